/// The fast path of `GGMLQuant.dequantize`: whole blocks, 16 lanes of SIMD at a time.
///
/// Quants are widened u8 → i32 → f32 (exact; an offset such as −8 is taken off exactly), then
/// the same float operations as ggml's C in its order, never fused: `q·d`, `q·d + m`,
/// `(d·sc)·q − dmin·m`, `(d·sc)·q`. (Each element is rounded once at most anyway: d is an f16,
/// scales and quants have ≤ 8 bits, so every product but Q6_K's last is exact in f32, and an
/// FMA would give the same bits.) Every load lies inside its block: nothing past the last block
/// is read.
///
/// One file on purpose: a debug build (-O, but not whole-module) inlines only within a file, and
/// these helpers must inline. The widenings are written lane by lane (LLVM turns them into
/// punpck/cvtdq2ps): the stdlib's generic `init(truncatingIfNeeded:)` stays an out-of-line
/// call. Integer SIMD comparisons (`.<`, `.!=`) compile to lane-by-lane loops, so masks here
/// come from sign bits and look-up tables.
///
/// K-quant layouts (32-element types: GGMLQuant.swift; d, dmin f16; lo/hi: low/high nibble):
///
///     Q4_K 144 B / 256:  d @0, dmin @2, scales[12] @4, qs[128] @16
///     Q5_K 176 B / 256:  d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48
///         Element 64j + l (j < 4, l < 32) is in sub-block 2j with quant lo(qs[32j + l]); element
///         64j + 32 + l in sub-block 2j+1 with hi(qs[32j + l]). Q5_K adds bit 2j (resp. 2j+1) of
///         qh[l] as the fifth bit. Sub-block i's 6-bit scale and min: `scaleMinK4(i)`.
///     Q6_K 210 B / 256:  ql[128] @0, qh[64] @128, scales int8[16] @192, d @208
///         Halves n < 2 of 128; for l < 32, a = ql[64n + l], b = ql[64n + 32 + l], c = qh[32n + l],
///         s = scales[8n + l/16 + …]:
///           y[128n + l]      = d·s[0]·((lo(a) | (c      & 3) ≪ 4) − 32)
///           y[128n + 32 + l] = d·s[2]·((lo(b) | (c ≫ 2 & 3) ≪ 4) − 32)
///           y[128n + 64 + l] = d·s[4]·((hi(a) | (c ≫ 4 & 3) ≪ 4) − 32)
///           y[128n + 96 + l] = d·s[6]·((hi(b) | (c ≫ 6 & 3) ≪ 4) − 32)
extension GGMLQuant {
    typealias V = SIMD16<Float>
    typealias I = SIMD16<Int32>
    typealias Bytes = SIMD16<UInt8>

    // MARK: Helpers

    @inline(__always) static func ints(_ q: Bytes) -> I {
        I(Int32(q[0]), Int32(q[1]), Int32(q[2]), Int32(q[3]), Int32(q[4]), Int32(q[5]), Int32(q[6]), Int32(q[7]),
          Int32(q[8]), Int32(q[9]), Int32(q[10]), Int32(q[11]), Int32(q[12]), Int32(q[13]), Int32(q[14]), Int32(q[15]))
    }

    @inline(__always) static func ints(_ h: SIMD16<UInt16>) -> I {
        I(Int32(h[0]), Int32(h[1]), Int32(h[2]), Int32(h[3]), Int32(h[4]), Int32(h[5]), Int32(h[6]), Int32(h[7]),
          Int32(h[8]), Int32(h[9]), Int32(h[10]), Int32(h[11]), Int32(h[12]), Int32(h[13]), Int32(h[14]), Int32(h[15]))
    }

    @inline(__always) static func floats(_ q: I) -> V {
        V(Float(q[0]), Float(q[1]), Float(q[2]), Float(q[3]), Float(q[4]), Float(q[5]), Float(q[6]), Float(q[7]),
          Float(q[8]), Float(q[9]), Float(q[10]), Float(q[11]), Float(q[12]), Float(q[13]), Float(q[14]), Float(q[15]))
    }

    @inline(__always) static func floats(_ q: Bytes) -> V { floats(ints(q)) }

    /// Float(q) − k, exact, for 0 ≤ q < 2²³ and small integer k: the float with bits 0x4B000000 | q
    /// is 2²³ + q. (Written as `floats(q) - k`, LLVM rewrites it to a byte subtraction and a sign
    /// extension, twice as slow.)
    @inline(__always) static func floats(_ q: I, minus k: Float) -> V {
        unsafeBitCast(q | 0x4B00_0000, to: V.self) - (0x1p23 + k)
    }

    @inline(__always) static func load(_ p: UnsafeRawPointer, _ offset: Int) -> Bytes {
        p.loadUnaligned(fromByteOffset: offset, as: Bytes.self)
    }

    @inline(__always) static func store(_ v: V, _ out: UnsafeMutablePointer<Float>, _ index: Int) {
        UnsafeMutableRawPointer(out + index).storeBytes(of: v, as: V.self)
    }

    /// f16 bits → f32 as ggml's GGML_FP16_TO_FP32 gives them: exact for every number (subnormals,
    /// ±∞); a NaN keeps sign and payload and is made quiet, as F16C's vcvtph2ps and ggml's portable
    /// fallback both do (numpy, so gguf-py, leaves a signalling NaN signalling: the one difference).
    /// No denormal arithmetic. Swift's `Float(Float16)` gives the same results but is a library
    /// call on x86 (`__extendhfsf2`).
    @inline(__always) static func halfToFloat(_ h: UInt16) -> Float {
        let em = UInt32(h & 0x7FFF), sign = UInt32(h & 0x8000) << 16
        let normal = (em << 13) &+ (112 << 23)                                          // rebias 15 → 127
        let infNaN = (em << 13) | (em > 0x7C00 ? 0x7FC0_0000 : 0x7F80_0000)              // ±∞, quiet NaN
        let sub = (Float(bitPattern: (em << 13) &+ (113 << 23)) - 0x1p-14).bitPattern  // (1 + m/2¹⁰)·2⁻¹⁴ − 2⁻¹⁴
        return Float(bitPattern: (em >= 0x7C00 ? infNaN : em >= 0x0400 ? normal : sub) | sign)
    }

    /// The f16 at byte `offset` of `p`.
    @inline(__always) static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        halfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    /// 16 lanes of `halfToFloat`, branch-free.
    @inline(__always) static func halfToFloat(_ h: SIMD16<UInt16>) -> V {
        let w = ints(h), em = w & 0x7FFF, sign = (w & 0x8000) &<< 16
        // All ones where em ≥ 0x7C00 (±∞, NaN), em > 0x7C00 (NaN), em < 0x0400 (subnormal, ±0).
        let infNaN = (0x7BFF &- em) &>> 31, nan = (0x7C00 &- em) &>> 31, sub = (em &- 0x0400) &>> 31
        // Exponent rebiased by 112 (127 − 15), by 224 more for ±∞/NaN (31 → 255); NaN made quiet.
        let normal = ((em &<< 13) &+ (112 << 23) &+ (infNaN & (112 << 23))) | (nan & 0x0040_0000)
        let subnormal = unsafeBitCast(unsafeBitCast((em &<< 13) &+ (113 << 23), to: V.self) - 0x1p-14, to: I.self)
        return unsafeBitCast((normal & ~sub) | (subnormal & sub) | sign, to: V.self)
    }

    // MARK: Plain types

    static func dequantizeF16(_ p: UnsafeRawPointer, count: Int, _ out: UnsafeMutablePointer<Float>) {
        var i = 0
        while i + 16 <= count {  // little-endian host
            store(halfToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<UInt16>.self)), out, i)
            i += 16
        }
        while i < count { out[i] = half(p, 2 * i); i += 1 }
    }

    static func dequantizeBF16(_ p: UnsafeRawPointer, count: Int, _ out: UnsafeMutablePointer<Float>) {
        var i = 0
        while i + 16 <= count {
            store(unsafeBitCast(ints(p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<UInt16>.self)) &<< 16, to: V.self), out, i)
            i += 16
        }
        while i < count {
            out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
            i += 1
        }
    }

    // MARK: 32-element blocks

    static func dequantizeQ8_0(_ src: UnsafeRawPointer, blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + 34 * b, y = 32 * b, d = half(p, 0)
            // int8 q as (q + 128) − 128: zero-extending u8 is cheaper than sign-extending i8.
            store(floats(ints(load(p, 2) ^ 0x80), minus: 128) * d, out, y)
            store(floats(ints(load(p, 18) ^ 0x80), minus: 128) * d, out, y + 16)
        }
    }

    static func dequantizeQ4_0(_ src: UnsafeRawPointer, blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + 18 * b, y = 32 * b, d = half(p, 0), qs = load(p, 2)
            store(floats(ints(qs & 0x0F), minus: 8) * d, out, y)
            store(floats(ints(qs &>> 4), minus: 8) * d, out, y + 16)
        }
    }

    static func dequantizeQ4_1(_ src: UnsafeRawPointer, blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + 20 * b, y = 32 * b, d = half(p, 0), m = half(p, 2), qs = load(p, 4)
            store(floats(qs & 0x0F) * d + m, out, y)
            store(floats(qs &>> 4) * d + m, out, y + 16)
        }
    }

    /// fifthBitTable[b]: byte k is 0x10 where bit k of b is set, else 0.
    static let fifthBitTable: [UInt64] = (0..<256).map { (b: Int) -> UInt64 in
        var bytes: UInt64 = 0
        for k in 0..<8 where b >> k & 1 != 0 { bytes |= 0x10 << (8 * k) }
        return bytes
    }

    /// Bit j of `qh` as 0x10 in byte lane j (j < 16) of `low` and bit 16 + j in lane j of `high`:
    /// the Q5 quants' fifth bits, 8 lanes per table look-up.
    @inline(__always) static func fifthBits(_ qh: UInt32, _ table: UnsafePointer<UInt64>) -> (low: Bytes, high: Bytes) {
        func lanes(_ a: UInt32, _ b: UInt32) -> Bytes {
            unsafeBitCast(SIMD2<UInt64>(table[Int(a & 0xFF)], table[Int(b & 0xFF)]), to: Bytes.self)
        }
        return (lanes(qh, qh >> 8), lanes(qh >> 16, qh >> 24))
    }

    static func dequantizeQ5_0(_ src: UnsafeRawPointer, blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        fifthBitTable.withUnsafeBufferPointer { table in
            for b in 0..<blocks {
                let p = src + 22 * b, y = 32 * b, d = half(p, 0), qs = load(p, 6)
                let h = fifthBits(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)), table.baseAddress!)
                store(floats(ints(qs & 0x0F | h.low), minus: 16) * d, out, y)
                store(floats(ints(qs &>> 4 | h.high), minus: 16) * d, out, y + 16)
            }
        }
    }

    static func dequantizeQ5_1(_ src: UnsafeRawPointer, blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        fifthBitTable.withUnsafeBufferPointer { table in
            for b in 0..<blocks {
                let p = src + 24 * b, y = 32 * b, d = half(p, 0), m = half(p, 2), qs = load(p, 8)
                let h = fifthBits(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)), table.baseAddress!)
                store(floats(qs & 0x0F | h.low) * d + m, out, y)
                store(floats(qs &>> 4 | h.high) * d + m, out, y + 16)
            }
        }
    }

    // MARK: K-quants

    /// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block `j` (< 8) from the 12 bytes at
    /// `q`. Bytes 0–3 hold scales 0–3 in their low 6 bits, bytes 4–7 mins 0–3; scales and mins 4–7
    /// keep their low 4 bits in bytes 8–11 (scale: low nibble, min: high nibble) and their top 2
    /// bits in the top 2 bits of bytes 0–3 (scales) and 4–7 (mins).
    @inline(__always) static func scaleMinK4(_ j: Int, _ q: UnsafeRawPointer) -> (scale: UInt8, min: UInt8) {
        func byte(_ i: Int) -> UInt8 { q.load(fromByteOffset: i, as: UInt8.self) }
        if j < 4 { return (byte(j) & 63, byte(j + 4) & 63) }
        return ((byte(j + 4) & 0xF) | ((byte(j - 4) >> 6) << 4), (byte(j + 4) >> 4) | ((byte(j) >> 6) << 4))
    }

    /// Q4_K (`five` false) and Q5_K.
    @inline(__always) static func dequantizeQ45_K(_ src: UnsafeRawPointer, blocks: Int, five: Bool, _ out: UnsafeMutablePointer<Float>) {
        let size = five ? 176 : 144, qsAt = five ? 48 : 16
        for b in 0..<blocks {
            let p = src + size * b, d = half(p, 0), dmin = half(p, 2)
            // Q5_K: qh[0..<16], qh[16..<32], shifted right by 2 after each j so that the fifth bits
            // of sub-blocks 2j and 2j+1 are bits 0 and 1.
            var qh = five ? (load(p, 16), load(p, 32)) : (Bytes(), Bytes())
            for j in 0..<4 {
                let s1 = scaleMinK4(2 * j, p + 4), s2 = scaleMinK4(2 * j + 1, p + 4)
                let d1 = d * Float(s1.scale), m1 = dmin * Float(s1.min)
                let d2 = d * Float(s2.scale), m2 = dmin * Float(s2.min)
                for h in 0..<2 {
                    let qs = load(p, qsAt + 32 * j + 16 * h), hb = h == 0 ? qh.0 : qh.1, y = 256 * b + 64 * j + 16 * h
                    store(floats(qs & 0x0F | (hb & 1) &<< 4) * d1 - m1, out, y)
                    store(floats(qs &>> 4 | (hb & 2) &<< 3) * d2 - m2, out, y + 32)
                }
                qh = (qh.0 &>> 2, qh.1 &>> 2)
            }
        }
    }

    static func dequantizeQ4_K(_ src: UnsafeRawPointer, blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        dequantizeQ45_K(src, blocks: blocks, five: false, out)
    }

    static func dequantizeQ5_K(_ src: UnsafeRawPointer, blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        dequantizeQ45_K(src, blocks: blocks, five: true, out)
    }

    static func dequantizeQ6_K(_ src: UnsafeRawPointer, blocks: Int, _ out: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + 210 * b, d = half(p, 208)
            for n in 0..<2 {
                for h in 0..<2 {
                    let a = load(p, 64 * n + 16 * h), bq = load(p, 64 * n + 32 + 16 * h), c = load(p, 128 + 32 * n + 16 * h)
                    func scale(_ k: Int) -> Float { d * Float(p.load(fromByteOffset: 192 + 8 * n + h + k, as: Int8.self)) }
                    let y = 256 * b + 128 * n + 16 * h
                    store(floats(ints(a & 0x0F | (c & 0x03) &<< 4), minus: 32) * scale(0), out, y)
                    store(floats(ints(bq & 0x0F | (c & 0x0C) &<< 2), minus: 32) * scale(2), out, y + 32)
                    store(floats(ints(a &>> 4 | (c & 0x30)), minus: 32) * scale(4), out, y + 64)
                    store(floats(ints(bq &>> 4 | (c & 0xC0) &>> 2), minus: 32) * scale(6), out, y + 96)
                }
            }
        }
    }
}
