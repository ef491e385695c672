/// The naive reference: ggml-quants.c's `dequantize_row_*` transcribed element by element (same
/// integer arithmetic, same float operations in the same order), with Swift's own `Float16` for
/// the f16 fields. Slow; the tests hold the fast path to it and both to gguf-py.
extension GGMLQuant {
    /// Dequantises like `dequantize`, element by element exactly as ggml's C reads the blocks. One
    /// case per type in one switch, each a transcription of ggml's `dequantize_row_*`: long because
    /// it is that table, kept together so that it reads against ggml-quants.c.
    static func dequantizeReference(_ type: GGMLType, _ source: UnsafeRawPointer, count: Int,
                                    into out: UnsafeMutablePointer<Float>) throws {
        let nb = try checkedBlocks(type, count: count, supported: GGMLType.readable, .dequantize)
        func u8(_ p: UnsafeRawPointer, _ i: Int) -> UInt8 { p.load(fromByteOffset: i, as: UInt8.self) }
        func i8(_ p: UnsafeRawPointer, _ i: Int) -> Int8 { p.load(fromByteOffset: i, as: Int8.self) }
        func u16(_ p: UnsafeRawPointer, _ i: Int) -> UInt16 { UInt16(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt16.self)) }
        func u32(_ p: UnsafeRawPointer, _ i: Int) -> UInt32 { UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self)) }
        func fp16(_ p: UnsafeRawPointer, _ i: Int) -> Float { HalfConversion.f16ToFloat(u16(p, i)) }
        let x = source, y = out

        switch type {
        case .f32:
            for i in 0..<count { y[i] = Float(bitPattern: u32(x, 4 * i)) }
        case .f16:
            for i in 0..<count { y[i] = fp16(x, 2 * i) }
        case .bf16:
            for i in 0..<count { y[i] = HalfConversion.bf16ToFloat(u16(x, 2 * i)) }
        case .q8_0:
            for i in 0..<nb {
                let b = x + 34 * i, d = fp16(b, 0)
                for j in 0..<32 { y[i * 32 + j] = Float(i8(b, 2 + j)) * d }
            }
        case .q4_0:
            for i in 0..<nb {
                let b = x + 18 * i, d = fp16(b, 0)
                for j in 0..<16 {
                    let x0 = Int(u8(b, 2 + j) & 0x0F) - 8, x1 = Int(u8(b, 2 + j) >> 4) - 8
                    y[i * 32 + j] = Float(x0) * d
                    y[i * 32 + j + 16] = Float(x1) * d
                }
            }
        case .q4_1:
            for i in 0..<nb {
                let b = x + 20 * i, d = fp16(b, 0), m = fp16(b, 2)
                for j in 0..<16 {
                    let x0 = Int(u8(b, 4 + j) & 0x0F), x1 = Int(u8(b, 4 + j) >> 4)
                    y[i * 32 + j] = Float(x0) * d + m
                    y[i * 32 + j + 16] = Float(x1) * d + m
                }
            }
        case .q5_0, .q5_1:
            let hasMin = type == .q5_1, qhAt = hasMin ? 4 : 2, size = hasMin ? 24 : 22
            for i in 0..<nb {
                let b = x + size * i, d = fp16(b, 0), m: Float = hasMin ? fp16(b, 2) : 0
                let qh = u32(b, qhAt)
                for j in 0..<16 {
                    let xh0 = UInt8(truncatingIfNeeded: (qh >> UInt32(j)) << 4) & 0x10
                    let xh1 = UInt8(truncatingIfNeeded: qh >> UInt32(j + 12)) & 0x10
                    let q = u8(b, qhAt + 4 + j)
                    if hasMin {
                        y[i * 32 + j] = Float(Int((q & 0x0F) | xh0)) * d + m
                        y[i * 32 + j + 16] = Float(Int((q >> 4) | xh1)) * d + m
                    } else {
                        y[i * 32 + j] = Float(Int((q & 0x0F) | xh0) - 16) * d
                        y[i * 32 + j + 16] = Float(Int((q >> 4) | xh1) - 16) * d
                    }
                }
            }
        case .q4_K, .q5_K:
            let five = type == .q5_K, size = five ? 176 : 144, qsAt = five ? 48 : 16
            var o = 0
            for i in 0..<nb {
                let b = x + size * i, d = fp16(b, 0), min = fp16(b, 2)
                var q = qsAt, u1: UInt8 = 1, u2: UInt8 = 2, isub = 0
                for _ in stride(from: 0, to: 256, by: 64) {
                    var sm = scaleMinK4(isub + 0, b + 4)
                    let d1 = d * Float(sm.scale), m1 = min * Float(sm.min)
                    sm = scaleMinK4(isub + 1, b + 4)
                    let d2 = d * Float(sm.scale), m2 = min * Float(sm.min)
                    for l in 0..<32 {
                        let h = five && u8(b, 16 + l) & u1 != 0 ? 16 : 0
                        y[o] = d1 * Float(Int(u8(b, q + l) & 0xF) + h) - m1; o += 1
                    }
                    for l in 0..<32 {
                        let h = five && u8(b, 16 + l) & u2 != 0 ? 16 : 0
                        y[o] = d2 * Float(Int(u8(b, q + l) >> 4) + h) - m2; o += 1
                    }
                    q += 32; isub += 2
                    u1 <<= 2; u2 <<= 2
                }
            }
        case .q6_K:
            for i in 0..<nb {
                let b = x + 210 * i, d = fp16(b, 208)
                var ql = 0, qh = 128, sc = 192, o = 256 * i
                for _ in stride(from: 0, to: 256, by: 128) {
                    for l in 0..<32 {
                        let isub = l / 16, h = u8(b, qh + l)
                        let q1 = Int(Int8(bitPattern: (u8(b, ql + l) & 0xF) | ((h >> 0) & 3) << 4)) - 32
                        let q2 = Int(Int8(bitPattern: (u8(b, ql + l + 32) & 0xF) | ((h >> 2) & 3) << 4)) - 32
                        let q3 = Int(Int8(bitPattern: (u8(b, ql + l) >> 4) | ((h >> 4) & 3) << 4)) - 32
                        let q4 = Int(Int8(bitPattern: (u8(b, ql + l + 32) >> 4) | ((h >> 6) & 3) << 4)) - 32
                        y[o + l] = d * Float(i8(b, sc + isub + 0)) * Float(q1)
                        y[o + l + 32] = d * Float(i8(b, sc + isub + 2)) * Float(q2)
                        y[o + l + 64] = d * Float(i8(b, sc + isub + 4)) * Float(q3)
                        y[o + l + 96] = d * Float(i8(b, sc + isub + 6)) * Float(q4)
                    }
                    o += 128; ql += 64; qh += 32; sc += 8
                }
            }
        default:
            throw GGMLQuantError.unsupported(type, .dequantize)
        }
    }
}
