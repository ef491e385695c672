/// One tensor of a GGUF file as its header describes it.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml's dimensions, fastest-varying first (`ne0, ne1, …`): a (rows, cols) PyTorch weight is
    /// written as [cols, rows].
    public let dimensions: [Int]
    public let type: GGMLType
    /// Offset of the first byte from the start of the data section.
    public let offset: Int

    /// The PyTorch shape: the dimensions reversed.
    public var shape: [Int] { dimensions.reversed() }
    public var elementCount: Int { dimensions.reduce(1, *) }
    public var byteCount: Int { type.byteCount(elements: elementCount) }
}

/// A memory-mapped GGUF file (versions 2 and 3, little-endian), as llama.cpp's gguf-py reads it.
///
/// Layout: magic `GGUF`, u32 version, u64 tensor count, u64 metadata count; metadata as
/// (string key, u32 value type, value); tensor infos as (string name, u32 n_dims, u64 dims[n_dims],
/// u32 ggml type, u64 offset); padding to `general.alignment` (default 32); the data section, where
/// every tensor starts at an aligned offset. A string is a u64 byte length then UTF-8 bytes; an array
/// is a u32 element type, a u64 count, then the elements.
///
/// The whole header is checked when the file is opened — every length, count and offset against the
/// file's size, every tensor's type, shape and byte range — so that a damaged file is refused with
/// the key or tensor named before any weight is read.
public final class GGUFFile {
    static let magic: UInt32 = 0x4655_4747  // "GGUF" read as a little-endian u32
    public static let defaultAlignment = 32

    /// The path as given.
    public let path: String
    public let version: UInt32
    public let metadata: GGUFMetadata
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Byte offset of the data section in the file.
    public let dataOffset: Int
    private let file: MappedFile
    private let tensorIndex: [String: Int]

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(modelFile: path)
        var r = ByteReader(bytes: file.bytes, path: path)
        guard file.size >= 24 else {
            throw FormatError(file: path, "has \(file.size) bytes; a GGUF header has at least 24 (truncated, or not a GGUF file)")
        }
        let magic = try r.u32("magic")
        guard magic == GGUFFile.magic else {
            throw FormatError(file: path, "is not a GGUF file (it does not start with the bytes 'GGUF')")
        }
        version = try r.u32("version")
        guard version == 2 || version == 3 else {
            if version.byteSwapped == 2 || version.byteSwapped == 3 {
                throw FormatError(file: path, "is a big-endian GGUF; Cairn reads little-endian GGUF only")
            }
            throw FormatError(file: path, "is GGUF version \(version); Cairn reads versions 2 and 3")
        }
        let tensorCount = try r.count("tensor count", minimumBytesEach: 24)
        let kvCount = try r.count("metadata count", minimumBytesEach: 13)

        let meta = try Self.readMetadata(&r, count: kvCount, path: path)
        metadata = meta

        var alignment = GGUFFile.defaultAlignment
        if let v = meta["general.alignment"] {
            guard case .uint32(let a) = v, a > 0, a & (a - 1) == 0 else {
                throw FormatError(file: path, key: "general.alignment", "is \(v.summary); it must be a uint32 power of two")
            }
            alignment = Int(a)
        }
        self.alignment = alignment

        var infos: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        infos.reserveCapacity(tensorCount)
        for i in 0..<tensorCount {
            let t = try Self.readTensorInfo(&r, number: i, seen: index, alignment: alignment, fileSize: file.size, path: path)
            index[t.name] = infos.count
            infos.append(t)
        }
        tensors = infos
        tensorIndex = index

        let headerEnd = r.position
        dataOffset = (headerEnd + alignment - 1) / alignment * alignment
        try Self.checkDataSection(infos, size: file.size - min(dataOffset, file.size), path: path)
    }

    /// The `count` key-value pairs of the metadata, each key once.
    private static func readMetadata(_ r: inout ByteReader, count kvCount: Int, path: String) throws -> GGUFMetadata {
        var meta = GGUFMetadata(file: path)
        for _ in 0..<kvCount {
            let key = try r.string("a metadata key")
            guard !meta.contains(key) else { throw FormatError(file: path, key: key, "appears twice in the metadata") }
            let rawType = try r.u32("the type of key '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw FormatError(file: path, key: key, "has unknown value type \(rawType)")
            }
            meta[key] = try r.value(type, key: key, depth: 0)
        }
        return meta
    }

    /// Tensor `i`'s info: its name (not one of `seen`), 1 to 4 dimensions, a ggml type whose blocks
    /// fit the first dimension, and an aligned offset before the end of the file.
    private static func readTensorInfo(_ r: inout ByteReader, number i: Int, seen: [String: Int], alignment: Int, fileSize: Int,
                                       path: String) throws -> GGUFTensorInfo {
        let name = try r.string("the name of tensor \(i)")
        guard seen[name] == nil else { throw FormatError(file: path, tensor: name, "appears twice") }
        let nDims = Int(try r.u32("the dimension count of tensor '\(name)'"))
        guard (1...4).contains(nDims) else {
            throw FormatError(file: path, tensor: name, "has \(nDims) dimensions; GGUF tensors have 1 to 4")
        }
        var dims: [Int] = []
        var elements = 1
        for _ in 0..<nDims {
            let d = try r.u64("a dimension of tensor '\(name)'")
            guard d > 0, d < 1 << 40 else { throw FormatError(file: path, tensor: name, "has dimension \(d)") }
            let (product, overflow) = elements.multipliedReportingOverflow(by: Int(d))
            guard !overflow, product < 1 << 48 else { throw FormatError(file: path, tensor: name, "has too many elements") }
            elements = product
            dims.append(Int(d))
        }
        let rawType = try r.u32("the type of tensor '\(name)'")
        guard let type = GGMLType(rawValue: rawType) else {
            throw FormatError(file: path, tensor: name, "has unknown ggml type \(rawType)")
        }
        guard dims[0] % type.blockSize == 0 else {
            throw FormatError(file: path, tensor: name, "has a first dimension of \(dims[0]), not a multiple of \(type)'s block of \(type.blockSize)")
        }
        let offset = try r.u64("the offset of tensor '\(name)'")
        guard offset % UInt64(alignment) == 0 else {
            throw FormatError(file: path, tensor: name, "starts at data offset \(offset), not a multiple of the alignment \(alignment)")
        }
        guard offset < UInt64(fileSize) else {
            throw FormatError(file: path, tensor: name, "starts at data offset \(offset), past the end of the file (\(fileSize) bytes): truncated file?")
        }
        return GGUFTensorInfo(name: name, dimensions: dims, type: type, offset: Int(offset))
    }

    /// Every tensor inside the data section of `size` bytes, none overlapping another.
    private static func checkDataSection(_ infos: [GGUFTensorInfo], size dataSize: Int, path: String) throws {
        var previousEnd = 0, previousName = ""
        for t in infos.sorted(by: { $0.offset < $1.offset }) {
            let end = t.offset + t.byteCount
            guard end <= dataSize else {
                throw FormatError(file: path, tensor: t.name, "(\(t.type), shape \(t.shape)) ends at data byte \(end) but the data section has \(dataSize) bytes: truncated file?")
            }
            guard t.offset >= previousEnd else {
                throw FormatError(file: path, tensor: t.name, "overlaps tensor '\(previousName)'")
            }
            previousEnd = end
            previousName = t.name
        }
    }

    /// The info of the tensor named `name`, or nil.
    public func info(_ name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// The tensor's bytes as stored (valid while this file is alive).
    func bytes(of info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: file.base! + dataOffset + info.offset, count: info.byteCount)
    }

    /// The tensor as fp32 in its PyTorch shape: F32 borrowed from the map when aligned, every other
    /// type dequantised. An unsupported type is an error naming the tensor and the type
    /// (`tensor 'blk.0.attn_q.weight' has type Q2_K, which Cairn cannot dequantize (it reads …)`).
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = info(name) else {
            throw FormatError(file: path, tensor: name, "is not in the file (\(tensors.count) tensors)")
        }
        let start = file.base! + dataOffset + info.offset
        if info.type == .f32, UInt32(1).littleEndian == 1, Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0 {
            return Tensor(shape: info.shape, borrowing: start.bindMemory(to: Float.self, capacity: info.elementCount), owner: self)
        }
        let t = Tensor(shape: info.shape)
        do {
            try GGMLQuant.dequantizeParallel(info.type, UnsafeRawPointer(start), count: info.elementCount, into: t.data)
        } catch {
            throw FormatError(file: path, tensor: name, "\(error)")
        }
        return t
    }
}

/// Reads the header of a mapped GGUF file, checking every length against what is left.
private struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var position = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - position }

    private mutating func take<T: FixedWidthInteger>(_: T.Type, _ what: String) throws -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else {
            throw FormatError(file: path, "ends inside \(what) (byte \(position) of \(bytes.count)): truncated file?")
        }
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
        position += n
        return v
    }

    mutating func u32(_ what: String) throws -> UInt32 { try take(UInt32.self, what) }
    mutating func u64(_ what: String) throws -> UInt64 { try take(UInt64.self, what) }

    /// A u64 count of items that each take at least `minimumBytesEach` bytes: larger than the file
    /// could hold is an error, not an allocation.
    mutating func count(_ what: String, minimumBytesEach: Int) throws -> Int {
        let n = try u64(what)
        guard n <= UInt64(remaining / max(minimumBytesEach, 1)) else {
            throw FormatError(file: path, "\(what) \(n) cannot fit in the \(bytes.count)-byte file: truncated or damaged")
        }
        return Int(n)
    }

    mutating func string(_ what: String) throws -> String {
        let n = try u64("the length of \(what)")
        guard n <= UInt64(remaining) else {
            throw FormatError(file: path, "\(what) has length \(n), past the end of the file (\(remaining) bytes left): truncated file?")
        }
        return text(Int(n))
    }

    /// The next `n` bytes (checked by the caller) as UTF-8.
    private mutating func text(_ n: Int) -> String {
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<position + n]), as: UTF8.self)
        position += n
        return s
    }

    mutating func value(_ type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        func truncated() -> FormatError {
            FormatError(file: path, key: key, "ends past the end of the file (byte \(position) of \(bytes.count)): truncated file?")
        }
        if let size = type.fixedSize, remaining < size { throw truncated() }
        switch type {
        case .uint8: return .uint8(try take(UInt8.self, key))
        case .int8: return .int8(try take(Int8.self, key))
        case .uint16: return .uint16(try take(UInt16.self, key))
        case .int16: return .int16(try take(Int16.self, key))
        case .uint32: return .uint32(try take(UInt32.self, key))
        case .int32: return .int32(try take(Int32.self, key))
        case .uint64: return .uint64(try take(UInt64.self, key))
        case .int64: return .int64(try take(Int64.self, key))
        case .float32: return .float32(Float(bitPattern: try take(UInt32.self, key)))
        case .float64: return .float64(Double(bitPattern: try take(UInt64.self, key)))
        case .bool:
            let b = try take(UInt8.self, key)
            guard b <= 1 else { throw FormatError(file: path, key: key, "is a bool with byte value \(b) (not 0 or 1)") }
            return .bool(b == 1)
        case .string:
            let n = try take(UInt64.self, key)
            guard n <= UInt64(remaining) else {
                throw FormatError(file: path, key: key, "is a string of length \(n), past the end of the file (\(remaining) bytes left): truncated file?")
            }
            return .string(text(Int(n)))
        case .array:
            guard depth < 4 else { throw FormatError(file: path, key: key, "nests arrays more than 4 deep") }
            let rawType = try take(UInt32.self, key)
            guard let element = GGUFValueType(rawValue: rawType) else {
                throw FormatError(file: path, key: key, "is an array of unknown value type \(rawType)")
            }
            let n = try take(UInt64.self, key)
            // Every element takes at least one byte (a string at least eight).
            let minimum = element.fixedSize ?? (element == .string ? 8 : 12)
            guard n <= UInt64(remaining / minimum) else {
                throw FormatError(file: path, key: key, "is an array of \(n) \(element) values, more than the \(remaining) bytes left can hold: truncated file?")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { items.append(try value(element, key: key, depth: depth + 1)) }
            return .array(element, items)
        }
    }
}
