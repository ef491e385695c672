/// The element types Cairn reads from and writes to safetensors files. Every tensor in memory is
/// fp32 (`Tensor`); F16 and BF16 are converted once on read and on write.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"

    /// Bytes per element in a file.
    public var size: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        }
    }

    /// Bits per element of every dtype the safetensors format names (Cairn converts only three of
    /// them, but validates the layout of all). nil: not a safetensors dtype.
    static func safetensorsBits(_ name: String) -> Int? {
        switch name {
        case "F4": return 4
        case "F6_E2M3", "F6_E3M2": return 6
        case "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ": return 8
        case "I16", "U16", "F16", "BF16": return 16
        case "I32", "U32", "F32": return 32
        case "C64", "F64", "I64", "U64": return 64
        default: return nil
        }
    }
}

/// fp32 ⇄ F16/BF16 element conversion. Reading is exact; writing rounds to nearest, ties to even,
/// bit for bit like PyTorch's CPU `.to(torch.float16)` / `.to(torch.bfloat16)`.
enum HalfConversion {
    /// BF16 is the top half of an fp32.
    @inline(__always) static func bf16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Round to nearest even on the dropped 16 bits. NaN becomes 0xFFFF: that is what PyTorch's
    /// vectorized CPU kernel (the path `.to(torch.bfloat16)` takes) writes for every NaN.
    @inline(__always) static func floatToBF16(_ x: Float) -> UInt16 {
        if x.isNaN { return 0xFFFF }
        let u = x.bitPattern
        let bias = ((u >> 16) & 1) &+ 0x7FFF
        return UInt16(truncatingIfNeeded: (u &+ bias) >> 16)
    }

    @inline(__always) static func f16ToFloat(_ bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }

    /// IEEE binary16 with round to nearest even (Swift's Float16 conversion); NaN becomes the
    /// quiet NaN 0x7E00 with its sign, as PyTorch writes it.
    @inline(__always) static func floatToF16(_ x: Float) -> UInt16 {
        if x.isNaN { return x.sign == .minus ? 0xFE00 : 0x7E00 }
        return Float16(x).bitPattern
    }

    /// Converts `count` little-endian 2-byte elements at `source` (any alignment) to fp32.
    static func decode(_ dtype: DType, from source: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16:
            for i in 0..<count { out[i] = f16ToFloat(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .bf16:
            for i in 0..<count { out[i] = bf16ToFloat(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        }
    }

    /// Converts `count` fp32 elements to `dtype`'s little-endian bytes at `out` (count × size bytes).
    static func encode(_ dtype: DType, from source: UnsafePointer<Float>, count: Int, into out: UnsafeMutableRawPointer) {
        switch dtype {
        case .f32:
            for i in 0..<count { out.storeBytes(of: source[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        case .f16:
            for i in 0..<count { out.storeBytes(of: floatToF16(source[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for i in 0..<count { out.storeBytes(of: floatToBF16(source[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        }
    }
}
