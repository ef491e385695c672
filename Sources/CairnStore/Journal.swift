import Foundation

/// One journal record: every row one index transaction wrote, as it stood after the transaction.
///
/// On disk a record is one line, `<seq> <sha256 of payload> <payload>\n`, the payload compact
/// JSON with sorted keys: `{"at": time, "by": user, "ops": [op...]}`. An op is
/// `{"t": table, "row": {column: value...}}` (the row's full image; replay upserts it) or
/// `{"t": table, "del": {key column: value...}}`. Record 1 of every journal is its header,
/// `{"format": 1, "store": id}`, and names the store the journal belongs to.
struct JournalRecord {
    let seq: Int64
    let payload: JSONValue
    /// Where the line starts and ends (just past its newline) in the journal file.
    var start: Int64 = 0
    var end: Int64 = 0

    var ops: [JSONValue] { if case .array(let a)? = payload["ops"] { return a }; return [] }
    var storeID: String? { payload["store"]?.stringValue }

    /// The line for a record.
    static func line(seq: Int64, payload: JSONValue) -> [UInt8] {
        let body = Array(payload.description.utf8)
        return Array("\(seq) \(SHA256Hasher.hex(body)) ".utf8) + body + [0x0A]
    }

    /// Record 1 of every journal: which store it belongs to.
    static func headerLine(store: String) -> [UInt8] {
        line(seq: 1, payload: .object(["format": .number(1), "store": .string(store)]))
    }

    /// Record 2 of a journal written from an index that had none: every row, as ops.
    static func snapshotLine(ops: [JSONValue]) -> [UInt8] {
        line(seq: 2, payload: .object(["at": .number(FS.now), "by": .string(FS.userName), "ops": .array(ops), "snapshot": .bool(true)]))
    }

    /// Decodes one line without its newline; nil when it is not a whole, intact record.
    static func decode(_ line: ArraySlice<UInt8>) -> JournalRecord? {
        guard let s1 = line.firstIndex(of: 0x20), let seq = Int64(String(decoding: line[line.startIndex..<s1], as: UTF8.self)),
              seq > 0 else { return nil }
        let hashStart = s1 + 1, hashEnd = hashStart + 64
        guard hashEnd < line.endIndex, line[hashEnd] == 0x20 else { return nil }
        let body = Array(line[(hashEnd + 1)...])
        guard SHA256Hasher.hex(body) == String(decoding: line[hashStart..<hashEnd], as: UTF8.self),
              let payload = JSONValue.parse(String(decoding: body, as: UTF8.self)), case .object = payload else { return nil }
        return JournalRecord(seq: seq, payload: payload)
    }
}

/// The last record an index has applied: its number and where it lies in the journal.
struct JournalPosition: Equatable {
    var seq: Int64
    var start: Int64
    var end: Int64
}

/// `STORE/journal`: the append-only, checksummed record of everything the index holds. Lines
/// are appended only by a process holding the index's write lock (inside `BEGIN IMMEDIATE`)
/// and made durable (fdatasync) before that transaction commits, so the journal is never
/// behind the index; it is ahead by at most the one record of a writer killed before its
/// commit, which the next writer applies (redo) or cuts off when torn.
final class Journal {
    let path: String
    private let file: FileDescriptor

    init(path: String, create: Bool = false) throws {
        self.path = path
        file = try FileDescriptor.openAppending(path, create: create)
    }

    var size: Int64 { get throws { try file.info().size } }

    /// Writes one record's line at the end and makes it durable; returns where it landed.
    /// The caller holds the index's write lock, so nobody else appends meanwhile.
    func append(_ line: [UInt8]) throws -> (start: Int64, end: Int64) {
        let start = try size
        try line.withUnsafeBytes { try file.writeAll($0) }
        try file.dataSync()
        return (start, start + Int64(line.count))
    }

    /// Cuts off what lies past `size` (a torn line, or the record of a transaction that did not commit).
    func truncate(to size: Int64) throws {
        try file.truncate(to: size)
        try file.dataSync()
    }

    /// The record on the line `[start, end)`, or nil when that is not one intact record.
    func record(start: Int64, end: Int64) throws -> JournalRecord? {
        guard start >= 0, end > start, end - start <= Self.maxLine else { return nil }
        let bytes = try file.read(at: start, count: Int(end - start))
        guard bytes.count == end - start, bytes.last == 0x0A, !bytes.dropLast().contains(0x0A),
              var r = JournalRecord.decode(bytes.dropLast()) else { return nil }
        r.start = start; r.end = end
        return r
    }

    /// The header (record 1), read from the file's first 4 KiB; nil when it is not there.
    func header() throws -> JournalRecord? {
        let bytes = try file.read(at: 0, count: 4096)
        guard let nl = bytes.firstIndex(of: 0x0A) else { return nil }
        return try record(start: 0, end: Int64(nl + 1)).flatMap { $0.seq == 1 ? $0 : nil }
    }

    /// What follows `offset`: the intact records in order up to the first line that is not one,
    /// and where the intact part ends (what lies beyond is a torn line or damage).
    func scan(from offset: Int64, to limit: Int64? = nil) throws -> (records: [JournalRecord], validEnd: Int64, end: Int64) {
        let end = try limit ?? size
        guard end > offset else { return ([], offset, max(end, offset)) }
        var records: [JournalRecord] = []
        var pos = offset
        let chunk = 1 << 22
        var buffer: [UInt8] = []
        var bufferStart = offset
        while pos < end {
            // Find the next newline, reading more as needed.
            var nl: Int? = nil
            while true {
                let from = Int(pos - bufferStart)
                if let i = buffer[from...].firstIndex(of: 0x0A) { nl = i; break }
                let readAt = bufferStart + Int64(buffer.count)
                if readAt >= end { break }
                buffer += try file.read(at: readAt, count: Int(min(Int64(chunk), end - readAt)))
                if buffer.count - from > Self.maxLine { break }
            }
            guard let n = nl else { break }
            let lineStart = Int(pos - bufferStart)
            guard var r = JournalRecord.decode(buffer[lineStart..<n]) else { break }
            r.start = pos; r.end = bufferStart + Int64(n) + 1
            records.append(r)
            pos = r.end
            let consumed = Int(pos - bufferStart)
            if consumed > chunk { buffer.removeFirst(consumed); bufferStart = pos }
        }
        return (records, pos, end)
    }

    /// Every record, for a rebuild. A torn last line (a writer killed mid-append) is left out;
    /// a damaged line followed by intact ones is an error naming its line and byte.
    func readAll() throws -> [JournalRecord] {
        let (records, validEnd, end) = try scan(from: 0)
        if validEnd < end {
            // Anything intact after the bad spot means damage in the middle, not a torn tail.
            let rest = try file.read(at: validEnd, count: Int(min(end - validEnd, Int64(Self.maxLine) * 2)))
            var lines = rest.split(separator: 0x0A, omittingEmptySubsequences: false).dropFirst()
            if rest.last == 0x0A { lines = lines.dropLast() }
            if lines.contains(where: { JournalRecord.decode($0) != nil }) || end - validEnd > Int64(Self.maxLine) * 2 {
                throw StoreError(.badStore, "the journal '\(path)' is damaged at line \(records.count + 1) (byte \(validEnd)): that line is not an intact record but later ones are; the records before it are intact")
            }
        }
        for (i, r) in records.enumerated() where r.seq != Int64(i + 1) {
            throw StoreError(.badStore, "the journal '\(path)' is damaged at line \(i + 1) (byte \(r.start)): record \(r.seq) where record \(i + 1) belongs")
        }
        return records
    }

    /// No line may be longer (a snapshot of a whole index is one line, so this is generous).
    static let maxLine = 1 << 30

    /// Writes a new journal at `path` from whole lines (temp file, fsync, rename, fsync the directory).
    static func create(at path: String, lines: [[UInt8]]) throws {
        let dir = String(path[..<path.lastIndex(of: "/")!])
        let temp = path + ".new-\(Processes.currentID)"
        try FS.removeFile(temp)
        let out = try FileDescriptor.createExclusive(temp, mode: 0o644)
        for l in lines { try l.withUnsafeBytes { try out.writeAll($0) } }
        try out.sync()
        try FS.rename(temp, path)
        try FS.syncDirectory(dir)
    }
}

/// `STORE/cairn-store.json`: the store's identity, written once at `cairn init`. With it the
/// store knows it exists, and which journal and index are its own, without asking the index.
struct StoreMarker: Codable, Equatable {
    let format: String
    let version: Int
    let id: String
    let createdAt: Double

    enum CodingKeys: String, CodingKey { case format, version, id, createdAt = "created_at" }

    static let fileName = "cairn-store.json"

    static func read(root: String) throws -> StoreMarker? {
        let path = root + "/" + fileName
        guard try FS.lstatInfo(path) != nil else { return nil }
        guard let data = FileManager.default.contents(atPath: path),
              let m = try? JSONDecoder().decode(StoreMarker.self, from: data), m.format == "cairn-store" else {
            throw StoreError(.badStore, "'\(path)' is not a Cairn store marker (it should hold {\"format\": \"cairn-store\", \"id\": …}); restore it, or remove it and run `cairn fsck --repair` to recreate it from the journal")
        }
        guard m.version <= 1 else {
            throw StoreError(.badStore, "the store at '\(root)' has format version \(m.version), newer than this cairn (1); upgrade cairn")
        }
        return m
    }

    func write(root: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        let bytes = Array(try enc.encode(self)) + [0x0A]
        try Journal.create(at: root + "/" + Self.fileName, lines: [bytes])
    }
}
