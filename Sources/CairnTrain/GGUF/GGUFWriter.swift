import CairnSystem
/// Writes GGUF version 3 files as gguf-py's `GGUFWriter` lays them out: header, metadata in the
/// order given, tensor infos, padding to the alignment, then each tensor's data at an aligned offset
/// (zero padding between). Written to a temp file, fsync'd and renamed (`AtomicFile`), one
/// tensor at a time, so memory stays at one converted tensor.
public enum GGUFWriter {
    /// One tensor to write: its PyTorch shape comes from `tensor`; `type` is what it is stored as.
    public struct Entry {
        public var name: String
        public var tensor: Tensor
        public var type: GGMLType
        public init(name: String, tensor: Tensor, type: GGMLType) {
            self.name = name; self.tensor = tensor; self.type = type
        }
    }

    /// Writes `metadata` and `tensors` to `path`. `general.alignment` in the metadata, when present,
    /// sets the alignment (default 32). Each tensor's last dimension must be a multiple of its type's
    /// block size.
    public static func write(metadata: GGUFMetadata, tensors: [Entry], to path: String) throws {
        let alignment = metadata["general.alignment"]?.int ?? GGUFFile.defaultAlignment
        var names = Set<String>()
        for t in tensors {
            guard names.insert(t.name).inserted else { throw FormatError(file: path, tensor: t.name, "is given twice") }
            guard GGMLType.writable.contains(t.type) || t.type == .bf16 else {
                throw FormatError(file: path, tensor: t.name, "cannot be written as \(t.type) (Cairn writes F32, F16, BF16 and Q8_0)")
            }
            guard let row = t.tensor.shape.last, row % t.type.blockSize == 0, (1...4).contains(t.tensor.shape.count) else {
                throw FormatError(file: path, tensor: t.name, "has shape \(t.tensor.shape), which \(t.type) cannot store (rows must be a multiple of \(t.type.blockSize))")
            }
        }
        var header = ByteWriter()
        header.u32(GGUFFile.magic)
        header.u32(3)
        header.u64(UInt64(tensors.count))
        header.u64(UInt64(metadata.entries.count))
        for (key, value) in metadata.entries {
            header.string(key)
            header.u32(value.type.rawValue)
            header.value(value)
        }
        var offset = 0
        for t in tensors {
            header.string(t.name)
            let dims = t.tensor.shape.reversed()
            header.u32(UInt32(dims.count))
            for d in dims { header.u64(UInt64(d)) }
            header.u32(t.type.rawValue)
            header.u64(UInt64(offset))
            offset = padded(offset + t.type.byteCount(elements: t.tensor.count), alignment)
        }
        header.pad(to: alignment)

        let out: AtomicFile
        do { out = try AtomicFile(path: path) } catch { throw FormatError(file: path, "cannot be written: \(error)") }
        do {
            try out.write(header.bytes)
            let zeros = [UInt8](repeating: 0, count: alignment)
            for t in tensors {
                let n = t.type.byteCount(elements: t.tensor.count)
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 16)
                defer { buffer.deallocate() }
                try GGMLQuant.quantize(t.type, t.tensor.data, count: t.tensor.count, into: buffer)
                try out.write(UnsafeRawBufferPointer(start: buffer, count: n))
                let pad = padded(n, alignment) - n
                if pad > 0 { try zeros.withUnsafeBytes { try out.write(UnsafeRawBufferPointer(rebasing: $0[0..<pad])) } }
            }
            try out.commit()
        } catch let e as FormatError {
            throw e
        } catch {
            throw FormatError(file: path, "cannot be written: \(error)")
        }
    }

    static func padded(_ n: Int, _ alignment: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

/// Little-endian bytes of a GGUF header.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func integer<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    mutating func u32(_ v: UInt32) { integer(v) }
    mutating func u64(_ v: UInt64) { integer(v) }
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u64(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }
    mutating func pad(to alignment: Int) {
        bytes.append(contentsOf: [UInt8](repeating: 0, count: GGUFWriter.padded(bytes.count, alignment) - bytes.count))
    }

    mutating func value(_ v: GGUFValue) {
        switch v {
        case .uint8(let x): integer(x)
        case .int8(let x): integer(x)
        case .uint16(let x): integer(x)
        case .int16(let x): integer(x)
        case .uint32(let x): integer(x)
        case .int32(let x): integer(x)
        case .uint64(let x): integer(x)
        case .int64(let x): integer(x)
        case .float32(let x): integer(x.bitPattern)
        case .float64(let x): integer(x.bitPattern)
        case .bool(let b): bytes.append(b ? 1 : 0)
        case .string(let s): string(s)
        case .array(let type, let items):
            u32(type.rawValue)
            u64(UInt64(items.count))
            for item in items { value(item) }
        }
    }
}
