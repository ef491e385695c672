/// ggml's tensor encodings ⇄ fp32: dequantising the block formats a GGUF file stores (to read
/// models) and quantising to the few that `cairn model export` writes.
///
/// Bit for bit what ggml defines: `dequantize` equals ggml-quants.c's `dequantize_row_*` and
/// gguf-py's `gguf.quants.dequantize` (float32, the same float operations in the same order, never
/// fused); `quantize` equals gguf-py's `gguf.quants.quantize` (ggml's `quantize_row_q8_0_ref`,
/// `ggml_compute_fp32_to_bf16`). GGMLQuantTests checks both against fixtures made by gguf-py.
///
/// Layouts (little-endian, blocks packed back to back, any alignment; `d`, `m`, `dmin` are f16):
///
///     F32  F16  BF16   one element per "block" (4, 2, 2 bytes)
///     Q8_0  34 B / 32: d, qs[32] int8                        x[j] = qs[j]·d
///     Q4_0  18 B / 32: d, qs[16]                             x[j] = (lo(qs[j]) − 8)·d, x[j+16] = (hi(qs[j]) − 8)·d
///     Q4_1  20 B / 32: d, m, qs[16]                          x[j] = lo(qs[j])·d + m,  x[j+16] = hi(qs[j])·d + m
///     Q5_0  22 B / 32: d, qh u32, qs[16]                     5th bit of x[j] is bit j of qh; q − 16, times d
///     Q5_1  24 B / 32: d, m, qh u32, qs[16]                  as Q5_0 without the −16, q·d + m
///     Q4_K 144 B / 256, Q5_K 176 B / 256, Q6_K 210 B / 256   see GGMLQuant+Fast.swift
///
/// (lo/hi: the low and high nibble.) The fast path (+Fast) works on 16 lanes of SIMD;
/// `dequantizeReference` (+Reference) is the element-by-element transcription of ggml's C that
/// the tests hold it to. Assumes a little-endian host, as ggml does.
public enum GGMLQuant {
    /// Dequantises `count` elements (a multiple of `type.blockSize`) of `type` stored at `source`
    /// (any alignment, little-endian, ggml's block layout) into `out[0..<count]`. Reads exactly
    /// `type.byteCount(elements: count)` bytes from `source`, never past them.
    /// Types: `GGMLType.readable` (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K).
    /// Throws `GGMLQuantError` naming the type for any other type, and for a count that is negative
    /// or not a whole number of blocks.
    static func dequantize(_ type: GGMLType, _ source: UnsafeRawPointer, count: Int,
                           into out: UnsafeMutablePointer<Float>) throws {
        let blocks = try checkedBlocks(type, count: count, supported: GGMLType.readable, .dequantize)
        switch type {
        case .f32: UnsafeMutableRawPointer(out).copyMemory(from: source, byteCount: 4 * count)
        case .f16: dequantizeF16(source, count: count, out)
        case .bf16: dequantizeBF16(source, count: count, out)
        case .q8_0: dequantizeQ8_0(source, blocks: blocks, out)
        case .q4_0: dequantizeQ4_0(source, blocks: blocks, out)
        case .q4_1: dequantizeQ4_1(source, blocks: blocks, out)
        case .q5_0: dequantizeQ5_0(source, blocks: blocks, out)
        case .q5_1: dequantizeQ5_1(source, blocks: blocks, out)
        case .q4_K: dequantizeQ4_K(source, blocks: blocks, out)
        case .q5_K: dequantizeQ5_K(source, blocks: blocks, out)
        case .q6_K: dequantizeQ6_K(source, blocks: blocks, out)
        default: throw GGMLQuantError.unsupported(type, .dequantize)
        }
    }

    /// The types `quantize` writes.
    public static let quantizable: [GGMLType] = [.f32, .f16, .bf16, .q8_0]

    /// Quantises `count` f32 elements (a multiple of `type.blockSize`) at `source` into `type`'s
    /// little-endian block layout at `out` (`type.byteCount(elements: count)` bytes), bit-identical
    /// to gguf-py's `gguf.quants.quantize`:
    /// - F16: round to nearest even (numpy's `astype(float16)`; ±∞ beyond 65504).
    /// - BF16: ggml's `ggml_compute_fp32_to_bf16`, round to nearest even; a NaN keeps its sign and
    ///   top payload bits and is made quiet (`bits >> 16 | 0x40`), unlike PyTorch's 0xFFFF.
    /// - Q8_0: per block of 32, `d = amax/127`, `id = d ≠ 0 ? 1/d : 0`, `qs = round-half-away(x·id)`,
    ///   d stored as f16 (ggml's `quantize_row_q8_0_ref`). Inputs are expected finite; a block with
    ///   ±∞ or NaN gets what x86 ggml writes (those qs become 0), never a trap.
    /// Throws `GGMLQuantError` for other types and for a count that is not a whole number of blocks.
    static func quantize(_ type: GGMLType, _ source: UnsafePointer<Float>, count: Int,
                         into out: UnsafeMutableRawPointer) throws {
        let blocks = try checkedBlocks(type, count: count, supported: quantizable, .quantize)
        switch type {
        case .f32: out.copyMemory(from: source, byteCount: 4 * count)
        case .f16:
            for i in 0..<count { out.storeBytes(of: Float16(source[i]).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for i in 0..<count { out.storeBytes(of: floatToBF16(source[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .q8_0: quantizeQ8_0(source, blocks: blocks, out)
        default: throw GGMLQuantError.unsupported(type, .quantize)
        }
    }

    /// count / blockSize after checking that `type` is in `supported` and count is whole blocks.
    static func checkedBlocks(_ type: GGMLType, count: Int, supported: [GGMLType],
                              _ operation: GGMLQuantError.Operation) throws -> Int {
        guard supported.contains(type) else { throw GGMLQuantError.unsupported(type, operation) }
        guard count >= 0, count % type.blockSize == 0 else { throw GGMLQuantError.partialBlock(type, count: count) }
        return count / type.blockSize
    }

    // MARK: Quantising

    /// ggml_compute_fp32_to_bf16 (ggml-impl.h); gguf-py's BF16.quantize_blocks does the same.
    @inline(__always) static func floatToBF16(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if u & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: u >> 16) | 0x40 }
        return UInt16(truncatingIfNeeded: (u &+ (0x7FFF &+ ((u >> 16) & 1))) >> 16)
    }

    /// quantize_row_q8_0_ref: Q8_0 block = f16 d, then 32 int8.
    static func quantizeQ8_0(_ x: UnsafePointer<Float>, blocks: Int, _ out: UnsafeMutableRawPointer) {
        for b in 0..<blocks {
            let xb = x + 32 * b, y = out + 34 * b
            var amax: Float = 0
            for j in 0..<32 { let a = abs(xb[j]); amax = amax > a ? amax : a }  // ggml's MAX macro
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            y.storeBytes(of: Float16(d).bitPattern.littleEndian, as: UInt16.self)
            for j in 0..<32 {
                let r = (xb[j] * id).rounded(.toNearestOrAwayFromZero)  // roundf
                // |r| ≤ 127 for finite input. Otherwise (∞, NaN) what x86 ggml writes: the float→int
                // conversion gives 0x80000000, low byte 0.
                let q: Int8 = abs(r) < 0x1p31 ? Int8(truncatingIfNeeded: Int32(r)) : 0
                y.storeBytes(of: q, toByteOffset: 2 + j, as: Int8.self)
            }
        }
    }
}

/// What `GGMLQuant` cannot do. The caller reading a file wraps it into a `FormatError` naming the
/// file and tensor (`FormatError(file:tensor:_:)` with `description`).
public enum GGMLQuantError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Operation: String, Sendable { case dequantize, quantize }

    /// The type is not one Cairn converts in that direction.
    case unsupported(GGMLType, Operation)
    /// The element count is negative or not a multiple of the type's block size.
    case partialBlock(GGMLType, count: Int)

    /// `has type IQ2_XXS, which Cairn cannot dequantize (it reads F32, F16, …)`.
    public var description: String {
        switch self {
        case let .unsupported(type, op):
            let supported = op == .dequantize ? GGMLType.readable : GGMLQuant.quantizable
            return "has type \(type), which Cairn cannot \(op.rawValue) (it \(op == .dequantize ? "reads" : "writes") "
                + supported.map(\.description).joined(separator: ", ") + ")"
        case let .partialBlock(type, count):
            return "has \(count) elements, not a whole number of \(type) blocks of \(type.blockSize)"
        }
    }
}
