import CairnSystem
import Foundation

/// A file a worker stored as a blob, and who the file was when it was read: its inode, size and
/// modification time. The coordinator that indexes it later trusts the blob only while the file
/// on disk is still that file (the same test git's index makes before rehashing).
public struct WrittenBlob: Codable, Sendable, Equatable {
    public let path: String
    public let inode: UInt64
    public let size: Int64
    public let mtimeNs: Int64
    public let blob: String

    enum CodingKeys: String, CodingKey { case path, inode, size, mtimeNs = "mtime_ns", blob }
}

/// Blobs written into a store by a process that never opens its index: a cluster worker, for
/// which SQLite over a network filesystem is not safe. Blobs are content-addressed and appear by
/// an atomic link, so any number of workers may write them at once; gc's grace period keeps them
/// until the coordinator has indexed them.
public enum WorkerBlobs {
    /// Writes every regular file under `paths` as a blob of the store at `storeRoot` and makes
    /// them durable. Hidden files (temp files of a write a killed process never finished) and
    /// directories named in `skipping` (training checkpoints) are left out.
    public static func write(paths: [String], storeRoot: String, skipping: Set<String> = []) throws -> [WrittenBlob] {
        let blobs = BlobStore(root: storeRoot + "/objects/sha256")
        try FS.makeDirectory(storeRoot + "/objects")
        try FS.makeDirectory(blobs.root)
        var files: [SourceTree.File] = []
        for p in paths where FileManager.default.fileExists(atPath: p) {
            files += try SourceTree(path: p).files.filter { f in
                let parts = f.relative.split(separator: "/")
                return !parts.contains { $0.hasPrefix(".") } && !(parts.dropLast().contains { skipping.contains(String($0)) })
            }
        }
        let batch = BlobBatch(store: blobs, durability: files.count <= 16 ? .perFile : .batch)
        let written = try ArtifactStore.parallelMap(files) { f -> WrittenBlob in
            guard let before = try FS.statInfo(f.absolute) else { throw StoreError(.io, "'\(f.absolute)' vanished while being stored") }
            let (hex, size) = try batch.ingest(file: f.absolute)
            guard let after = try FS.statInfo(f.absolute), after.inode == before.inode, after.size == size,
                  after.modifiedNanoseconds == before.modifiedNanoseconds else {
                throw StoreError(.io, "'\(f.absolute)' changed while being stored")
            }
            return WrittenBlob(path: f.absolute, inode: after.inode, size: size, mtimeNs: after.modifiedNanoseconds, blob: hex)
        }
        try batch.commit()
        return written
    }
}

/// What workers reported storing, looked up by a file's identity on disk: `add` takes a blob
/// from here instead of reading the file when the file is still the one the worker read (same
/// inode, size and modification time; a hard link to it counts) and the blob exists.
public struct KnownBlobs: Sendable {
    private var byIdentity: [String: String] = [:]
    public init(_ written: [WrittenBlob] = []) {
        for w in written { byIdentity[Self.key(w.inode, w.size, w.mtimeNs)] = w.blob }
    }
    public var isEmpty: Bool { byIdentity.isEmpty }
    public var count: Int { byIdentity.count }

    static func key(_ inode: UInt64, _ size: Int64, _ mtime: Int64) -> String { "\(inode):\(size):\(mtime)" }

    func blob(for path: String) -> String? {
        guard !byIdentity.isEmpty, let info = try? FS.statInfo(path), info.kind == .file else { return nil }
        return byIdentity[Self.key(info.inode, info.size, info.modifiedNanoseconds)]
    }
}

/// A file whose body carries its own SHA-256, for what a worker reports to the coordinator over
/// a shared filesystem: `{"sha256": HEX, "body": "BODY"}`, written atomically. A torn, truncated
/// or edited file reads as damaged, never as a different report.
public enum ChecksummedFile {
    struct Wrapper: Codable { let sha256: String; let body: String }

    public static func write(_ body: Data, to path: String) throws {
        let text = String(decoding: body, as: UTF8.self)
        let data = try JSONEncoder().encode(Wrapper(sha256: SHA256Hasher.hex(Array(text.utf8)), body: text))
        try AtomicFile.write(data, to: path)
    }

    /// The body; nil when there is no file; throws when the file is damaged.
    public static func read(_ path: String) throws -> Data? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let w = try? JSONDecoder().decode(Wrapper.self, from: data), SHA256Hasher.hex(Array(w.body.utf8)) == w.sha256 else {
            throw StoreError(.integrity, "'\(path)' is damaged: its checksum does not match its contents")
        }
        return Data(w.body.utf8)
    }
}
