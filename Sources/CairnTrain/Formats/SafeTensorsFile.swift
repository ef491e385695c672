import Foundation

/// One memory-mapped .safetensors file (MAP_PRIVATE, PROT_READ|PROT_WRITE so that borrowed F32
/// tensors are copy-on-write: writing to them never changes the file).
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON
/// (`{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, "__metadata__": {...}}`,
/// offsets relative to the data section), then the data section, which the tensors cover exactly,
/// without gaps or overlaps. The whole header is checked when the file is opened, so that a damaged
/// file is refused before any weight is used.
public final class SafeTensorsFile {
    /// Headers larger than this are refused, as the reference implementation does.
    static let maxHeaderLength: UInt64 = 100_000_000

    struct Entry {
        /// The dtype as written; `dtype` is nil when Cairn cannot convert it.
        let dtypeName: String
        let dtype: DType?
        let shape: [Int]
        let begin: Int
        let end: Int
    }

    /// The path as given.
    public let path: String
    private let file: MappedFile
    private let entries: [String: Entry]
    private let dataStart: Int
    /// Metadata from `__metadata__` (string to string; empty when absent).
    public let metadata: [String: String]
    /// The tensor names, sorted.
    public let names: [String]

    /// Maps `path` and validates its whole header: the header length within the file, the JSON,
    /// every dtype, shape × dtype size == byte length, offsets inside the data section, no gaps or
    /// overlaps. Throws `FormatError` naming the file and the tensor.
    public init(path: String) throws {
        self.path = path
        file = try MappedFile(modelFile: path)
        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw FormatError(file: path, "the file has \(bytes.count) bytes; a safetensors file starts with an 8-byte header length (truncated file?)")
        }
        let n = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard n <= UInt64(bytes.count - 8) else {
            throw FormatError(file: path, "header length \(n) is past the end of the file (\(bytes.count) bytes): truncated file, or not a safetensors file")
        }
        guard n <= SafeTensorsFile.maxHeaderLength else {
            throw FormatError(file: path, "header length \(n) is over the \(SafeTensorsFile.maxHeaderLength)-byte limit")
        }
        let headerLength = Int(n)
        dataStart = 8 + headerLength
        let dataSize = bytes.count - dataStart
        let header = try SafeTensorsFile.parseHeader(Data(bytes[8..<dataStart]), path: path)
        metadata = header.metadata

        var entries: [String: Entry] = [:]
        for (name, raw) in header.tensors { entries[name] = try Self.entry(name, raw, dataSize: dataSize, path: path) }
        try Self.checkTiling(entries, dataSize: dataSize, path: path)
        self.entries = entries
        names = entries.keys.sorted()
    }

    /// One header entry checked: a dtype Cairn knows, a shape, offsets inside the data section
    /// holding exactly shape × dtype bytes.
    private static func entry(_ name: String, _ raw: RawEntry, dataSize: Int, path: String) throws -> Entry {
        guard let bits = DType.safetensorsBits(raw.dtype) else {
            throw FormatError(file: path, tensor: name, "has unknown dtype \"\(raw.dtype)\" (Cairn reads F32, F16 and BF16)")
        }
        guard raw.shape.allSatisfy({ $0 >= 0 }) else {
            throw FormatError(file: path, tensor: name, "has a negative dimension in shape \(raw.shape)")
        }
        guard raw.dataOffsets.count == 2 else {
            throw FormatError(file: path, tensor: name, "has data_offsets \(raw.dataOffsets); want [begin, end]")
        }
        let (begin, end) = (raw.dataOffsets[0], raw.dataOffsets[1])
        guard begin >= 0, begin <= end else {
            throw FormatError(file: path, tensor: name, "has data_offsets [\(begin), \(end)]: begin must be ≥ 0 and ≤ end")
        }
        guard end <= dataSize else {
            throw FormatError(file: path, tensor: name, "ends at byte \(end) but the data section has \(dataSize) bytes (truncated file?)")
        }
        var elements = 1, overflow = false
        for d in raw.shape where !overflow { (elements, overflow) = elements.multipliedReportingOverflow(by: d) }
        let (totalBits, overflow2) = elements.multipliedReportingOverflow(by: bits)
        guard !overflow, !overflow2, totalBits % 8 == 0, totalBits / 8 == end - begin else {
            let want = overflow || overflow2 ? "more than \(Int.max) bytes" : "\(Double(totalBits) / 8) bytes"
            throw FormatError(file: path, tensor: name, "has shape \(raw.shape) of \(raw.dtype) (\(want)) but data_offsets [\(begin), \(end)] hold \(end - begin) bytes")
        }
        return Entry(dtypeName: raw.dtype, dtype: DType(rawValue: raw.dtype), shape: raw.shape, begin: begin, end: end)
    }

    /// The tensors must tile the data section: sorted by offset, each starts where the last ended.
    static func checkTiling(_ entries: [String: Entry], dataSize: Int, path: String) throws {
        let byOffset = entries.sorted { ($0.value.begin, $0.value.end, $0.key) < ($1.value.begin, $1.value.end, $1.key) }
        var covered = 0
        var previous: (name: String, entry: Entry)?
        for (name, e) in byOffset {
            if e.begin < covered, let previous {
                throw FormatError(file: path, tensor: name, "at bytes [\(e.begin), \(e.end)) overlaps tensor '\(previous.name)' at bytes [\(previous.entry.begin), \(previous.entry.end))")
            }
            if e.begin > covered {
                throw FormatError(file: path, tensor: name, "starts at byte \(e.begin) but the tensor before it ends at byte \(covered): a gap of \(e.begin - covered) bytes (safetensors data is contiguous)")
            }
            covered = e.end
            previous = (name, e)
        }
        guard covered == dataSize else {
            throw FormatError(file: path, "the tensors end at byte \(covered) of a \(dataSize)-byte data section: \(dataSize - covered) bytes belong to no tensor")
        }
    }

    /// The tensor's dtype; nil when there is no such tensor, or its dtype is one Cairn does not
    /// convert (I64, F8_E4M3, …: `tensor(_:)` says which).
    public func dtype(_ name: String) -> DType? { entries[name]?.dtype }

    /// The tensor's shape; nil when there is no such tensor.
    public func shape(_ name: String) -> [Int]? { entries[name]?.shape }

    /// The tensor as fp32. An aligned F32 tensor is borrowed in place from the mapping (no copy;
    /// writes to it are private to this process); unaligned F32, F16 and BF16 are converted once
    /// into an owned tensor.
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = entries[name] else {
            throw FormatError(file: path, tensor: name, "is not in the file (\(entries.count) tensors)")
        }
        guard let dtype = e.dtype else {
            throw FormatError(file: path, tensor: name, "has dtype \(e.dtypeName); Cairn reads F32, F16 and BF16 only")
        }
        let count = e.shape.reduce(1, *)
        if count == 0 { return Tensor(shape: e.shape) }
        let start = file.base! + dataStart + e.begin
        if dtype == .f32, Int(bitPattern: start) % MemoryLayout<Float>.alignment == 0 {
            let p = start.bindMemory(to: Float.self, capacity: count)
            return Tensor(shape: e.shape, borrowing: p, owner: self)
        }
        let t = Tensor(shape: e.shape)
        HalfConversion.decode(dtype, from: UnsafeRawPointer(start), count: count, into: t.data)
        return t
    }

    // MARK: - Header JSON

    private struct RawEntry: Decodable {
        let dtype: String
        let shape: [Int]
        let dataOffsets: [Int]
        enum CodingKeys: String, CodingKey { case dtype, shape, dataOffsets = "data_offsets" }
    }

    private struct AnyKey: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    /// Decodes entry by entry, so that a malformed one is reported by name.
    private struct Header: Decodable {
        var metadata: [String: String] = [:]
        var tensors: [(String, RawEntry)] = []

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: AnyKey.self)
            let path = decoder.userInfo[Header.pathKey] as? String ?? "?"
            for key in c.allKeys {
                if key.stringValue == "__metadata__" {
                    guard let m = try? c.decode([String: String].self, forKey: key) else {
                        throw FormatError(file: path, key: "__metadata__", "is not an object of strings")
                    }
                    metadata = m
                    continue
                }
                do {
                    tensors.append((key.stringValue, try c.decode(RawEntry.self, forKey: key)))
                } catch {
                    throw FormatError(file: path, tensor: key.stringValue,
                                      "has a malformed header entry (want {\"dtype\": string, \"shape\": [int], \"data_offsets\": [int, int]}): \(Header.describe(error))")
                }
            }
        }

        static let pathKey = CodingUserInfoKey(rawValue: "cairn.path")!

        static func describe(_ error: Error) -> String {
            switch error {
            case DecodingError.keyNotFound(let k, _): return "missing \"\(k.stringValue)\""
            case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx),
                 DecodingError.dataCorrupted(let ctx):
                let at = ctx.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
                return at.isEmpty ? ctx.debugDescription : "bad \"\(at)\": \(ctx.debugDescription)"
            default: return "\(error)"
            }
        }
    }

    private static func parseHeader(_ json: Data, path: String) throws -> Header {
        let decoder = JSONDecoder()
        decoder.userInfo[Header.pathKey] = path
        do {
            return try decoder.decode(Header.self, from: json)
        } catch let e as FormatError {
            throw e
        } catch {
            let preview = String(decoding: json.prefix(60), as: UTF8.self)
            throw FormatError(file: path, "the header is not a JSON object (\(Header.describe(error))); it starts \"\(preview)\"")
        }
    }
}
