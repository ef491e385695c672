import Dispatch
import Foundation

/// An artifact as the index knows it.
public struct ArtifactRecord: Codable, Equatable, Sendable {
    public let id: ArtifactID
    public let kind: String
    public let name: String
    public let size: Int64
    public let fileCount: Int
    public let createdAt: Double
    public let createdBy: String
    public let metadata: JSONValue
    /// Added by hand (`cairn add`): kept by gc like an alias target.
    public let pinned: Bool
    /// Set when gc removed the content; the record and its lineage stay for the audit trail.
    public let collectedAt: Double?

    enum CodingKeys: String, CodingKey {
        case id, kind, name, size, fileCount = "file_count", createdAt = "created_at"
        case createdBy = "created_by", metadata, pinned, collectedAt = "collected_at"
    }
}

/// What `add` did.
public struct AddResult: Sendable {
    public let artifact: ArtifactRecord
    /// False when the same content was already stored (the existing record is returned).
    public let created: Bool
    /// Bytes of new blobs written.
    public let files: Int
}

/// The content-addressed store: blobs under `objects/`, the journal of every index record in
/// `journal`, the SQLite index in `index.db` (rebuildable from the journal and the blobs).
/// One instance per thread; any number of processes may use the same store at once.
public final class ArtifactStore {
    public let root: String
    let db: Database
    let blobs: BlobStore
    let journal: Journal
    /// Rows logged by the open journaled write (`write`), nil outside one.
    var journalOps: [JSONValue]?
    /// Held shared while this instance lives: a rebuild (exclusive) never swaps the index under it.
    private let useLock: FileLock
    var indexPath: String { root + "/index.db" }
    var gcLockPath: String { root + "/gc.lock" }
    static func journalPath(_ root: String) -> String { root + "/journal" }
    static func useLockPath(_ root: String) -> String { root + "/index.lock" }

    /// Where the store is: `explicit` (--store), else `$CAIRN_STORE`, else the nearest `store/`
    /// holding a store in the current directory or a parent, else `./store`.
    public static func locate(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                              currentDirectory: String = FileManager.default.currentDirectoryPath) -> String {
        if let e = explicit, !e.isEmpty { return e }
        if let e = environment["CAIRN_STORE"], !e.isEmpty { return e }
        var dir = currentDirectory
        while true {
            if exists(at: dir + "/store") { return dir + "/store" }
            guard let slash = dir.lastIndex(of: "/"), dir != "/" else { break }
            dir = slash == dir.startIndex ? "/" : String(dir[..<slash])
        }
        return "store"
    }

    /// Whether a store was made at `root` (its marker, its journal or an index.db is there).
    public static func exists(at root: String) -> Bool {
        [StoreMarker.fileName, "journal", "index.db"].contains { FileManager.default.fileExists(atPath: root + "/" + $0) }
    }

    /// Creates the store (directories, marker, journal and index) if it does not exist, and opens it.
    @discardableResult
    public static func initialize(at root: String) throws -> ArtifactStore {
        do {
            try FileManager.default.createDirectory(atPath: root + "/objects/sha256", withIntermediateDirectories: true)
        } catch {
            throw StoreError(.io, "cannot create the store at '\(root)': \(error.localizedDescription)")
        }
        return try ArtifactStore(root: root, create: true)
    }

    /// Opens an existing store; a missing one is a `.badStore` error, one whose index does not
    /// match its journal a `.damagedIndex` error (nothing is written to it).
    public convenience init(root: String) throws {
        try self.init(root: root, create: false)
    }

    private init(root: String, create: Bool) throws {
        if !create && !Self.exists(at: root) {
            throw StoreError(.badStore, "no Cairn store at '\(root)': run `cairn init` or pass --store DIR")
        }
        self.root = root
        self.blobs = BlobStore(root: root + "/objects/sha256")
        useLock = try FileLock(path: Self.useLockPath(root), exclusive: false)
        let opened = try Self.open(root: root, blobs: blobs)
        if let damage = opened.damage { throw damage.error }
        db = opened.db!
        journal = opened.journal!
        try FS.makeDirectory(root + "/objects")
        try FS.makeDirectory(blobs.root)
    }

    /// Wraps index access so that SQLite errors become StoreErrors that name the index.
    func indexed<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw StoreError.wrap(error, what) }
    }

    // MARK: Adding

    /// Stores the file or directory at `path` as one artifact and indexes it.
    /// Concurrent adds of the same content, from threads or processes, give one blob set and
    /// one artifact. A process killed at any point leaves at worst unreferenced blobs and temp
    /// files (gc removes them), never a visible half-written blob or an index row without its blobs.
    @discardableResult
    /// `known`: blobs a worker already stored for these files (not read again while the file is
    /// the one it read).
    public func add(path: String, kind: ArtifactKind, name: String? = nil, metadata: JSONValue = .object([:]),
                    pin: Bool = false, known: KnownBlobs = KnownBlobs()) throws -> AddResult {
        let tree = try SourceTree(path: path, excluding: root)
        return try store("'\(path)'", files: tree.files.count, kind: kind, name: name ?? tree.name, metadata: metadata, pin: pin) { batch in
            try Self.parallelMap(tree.files) { file -> ManifestEntry in
                if let hex = known.blob(for: file.absolute), blobs.exists(hex) {
                    return ManifestEntry(path: file.relative, blob: hex, size: file.size, executable: file.executable)
                }
                let (hex, size) = try batch.ingest(file: file.absolute)
                return ManifestEntry(path: file.relative, blob: hex, size: size, executable: file.executable)
            }
        }
    }

    /// Stores `bytes` as a one-file artifact named `fileName`: the same artifact as adding a
    /// file of that name holding those bytes, without writing the file first.
    @discardableResult
    public func add(bytes: [UInt8], fileName: String, kind: ArtifactKind, name: String? = nil, metadata: JSONValue = .object([:])) throws -> AddResult {
        try Manifest.validate(path: fileName)
        guard !fileName.contains("/") else { throw StoreError.bad("'\(fileName)' is not a file name") }
        return try store("'\(fileName)'", files: 1, kind: kind, name: name ?? fileName, metadata: metadata, pin: false) { batch in
            [ManifestEntry(path: fileName, blob: try batch.ingest(bytes: bytes), size: Int64(bytes.count), executable: false)]
        }
    }

    /// Writes the blobs `entries` ingests and the manifest, makes them durable, then indexes
    /// the artifact. Holds the gc lock shared: gc never deletes a blob this add is about to reuse.
    private func store(_ what: String, files: Int, kind: ArtifactKind, name: String, metadata: JSONValue, pin: Bool,
                       entries: (BlobBatch) throws -> [ManifestEntry]) throws -> AddResult {
        let lock = try FileLock(path: gcLockPath, exclusive: false)
        defer { withExtendedLifetime(lock) {} }
        let batch = BlobBatch(store: blobs, durability: files <= 16 ? .perFile : .batch)
        let manifest = try Manifest(entries: try entries(batch))
        _ = try batch.ingest(bytes: manifest.canonicalBytes)
        do { try batch.commit() } catch { throw StoreError.wrap(error, "cannot store \(what)") }
        return try indexed("cannot index \(what)") {
            try write {
                try insertArtifact(manifest: manifest, kind: kind.rawValue, name: name, metadata: metadata, pin: pin)
            }
        }
    }

    /// One file of an artifact, verified against its hash, without checking the artifact out.
    public func readFile(_ id: ArtifactID, path: String) throws -> [UInt8] {
        guard let e = try manifest(id).entries.first(where: { $0.path == path }) else {
            throw StoreError.bad("artifact \(id) has no file '\(path)'")
        }
        return try blobs.readAll(e.blob)
    }

    /// Inserts (or revives after gc) the artifact row and its files; inside a journaled write.
    func insertArtifact(manifest: Manifest, kind: String, name: String, metadata: JSONValue, pin: Bool) throws -> AddResult {
        let id = manifest.id
        try db.run("""
            INSERT INTO artifacts(id, kind, name, size, file_count, created_at, created_by, metadata, pinned)
            VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING
            """, [.text(id.description), .text(kind), .text(name), .int(manifest.totalSize), .int(Int64(manifest.entries.count)),
                  .double(FS.now), .text(FS.userName), .text(metadata.description), .int(pin ? 1 : 0)])
        var created = db.changes == 1
        var changed = created
        let seq = try seqOf(id)!
        if !created {
            let row = try db.query("SELECT collected_at, pinned FROM artifacts WHERE seq = ?", [.int(seq)])[0]
            if row[0] != .null {  // gc removed it; the same content is back
                try db.run("UPDATE artifacts SET collected_at = NULL, created_at = ? WHERE seq = ?", [.double(FS.now), .int(seq)])
                created = true; changed = true
            }
            if pin && row[1] != .int(1) {
                try db.run("UPDATE artifacts SET pinned = 1 WHERE seq = ?", [.int(seq)])
                changed = true
            }
        }
        if created {
            for e in manifest.entries {
                try db.run("INSERT OR REPLACE INTO artifact_files(artifact, path, blob, size, executable) VALUES(?,?,?,?,?)",
                           [.int(seq), .text(e.path), .text(e.blob), .int(e.size), .int(e.executable ? 1 : 0)])
            }
        }
        if changed { try logRow("artifacts", ["seq": .int(seq)]) }
        return AddResult(artifact: try record(seq: seq)!, created: created, files: manifest.entries.count)
    }

    /// The id that `path` would get, without storing anything.
    public func identify(path: String) throws -> ArtifactID {
        let tree = try SourceTree(path: path, excluding: root)
        let entries = try Self.parallelMap(tree.files) { file -> ManifestEntry in
            guard let (hex, size) = BlobStore.hashFile(file.absolute) else { throw StoreError(.io, "cannot read '\(file.absolute)'") }
            return ManifestEntry(path: file.relative, blob: hex, size: size, executable: file.executable)
        }
        return try Manifest(entries: entries).id
    }

    /// Runs `body` on every element using every core; rethrows the first error.
    static func parallelMap<T, R>(_ items: [T], _ body: (T) throws -> R) throws -> [R] {
        if items.count <= 1 { return try items.map(body) }
        var results = [R?](repeating: nil, count: items.count)
        var firstError: Error?
        let lock = NSLock()
        results.withUnsafeMutableBufferPointer { out in
            let out = out
            DispatchQueue.concurrentPerform(iterations: items.count) { i in
                lock.lock(); let failed = firstError != nil; lock.unlock()
                if failed { return }
                do { out[i] = try body(items[i]) } catch {
                    lock.lock(); if firstError == nil { firstError = error }; lock.unlock()
                }
            }
        }
        if let e = firstError { throw e }
        return results.map { $0! }
    }

    // MARK: Reading

    func seqOf(_ id: ArtifactID) throws -> Int64? {
        try db.query("SELECT seq FROM artifacts WHERE id = ?", [.text(id.description)]).first?.int(0)
    }

    static let recordColumns = "id, kind, name, size, file_count, created_at, created_by, metadata, pinned, collected_at"

    static func record(from r: Row, offset o: Int = 0) -> ArtifactRecord {
        ArtifactRecord(id: ArtifactID(r.string(o)!)!, kind: r.string(o + 1)!, name: r.string(o + 2)!, size: r.int(o + 3)!,
                       fileCount: Int(r.int(o + 4)!), createdAt: r.double(o + 5)!, createdBy: r.string(o + 6)!,
                       metadata: JSONValue.parse(r.string(o + 7) ?? "{}") ?? .object([:]), pinned: r.int(o + 8) == 1,
                       collectedAt: r.double(o + 9))
    }

    func record(seq: Int64) throws -> ArtifactRecord? {
        try db.query("SELECT \(Self.recordColumns) FROM artifacts WHERE seq = ?", [.int(seq)]).first.map { Self.record(from: $0) }
    }

    /// The index record of an artifact, or nil.
    public func artifact(_ id: ArtifactID) throws -> ArtifactRecord? {
        try indexed("cannot read the index") {
            try db.query("SELECT \(Self.recordColumns) FROM artifacts WHERE id = ?", [.text(id.description)]).first.map { Self.record(from: $0) }
        }
    }

    /// Every artifact, newest first, optionally of one kind; gc-collected ones only when asked.
    public func artifacts(kind: ArtifactKind? = nil, includeCollected: Bool = false) throws -> [ArtifactRecord] {
        try indexed("cannot read the index") {
            var sql = "SELECT \(Self.recordColumns) FROM artifacts WHERE 1"
            var params: [SQLValue] = []
            if let k = kind { sql += " AND kind = ?"; params.append(.text(k.rawValue)) }
            if !includeCollected { sql += " AND collected_at IS NULL" }
            return try db.query(sql + " ORDER BY created_at DESC, seq DESC", params).map { Self.record(from: $0) }
        }
    }

    /// The artifact's manifest, read from its manifest blob and verified against the id.
    public func manifest(_ id: ArtifactID) throws -> Manifest {
        if let rec = try artifact(id), rec.collectedAt != nil {
            throw StoreError(.refused, "artifact \(id) was removed by gc; its record and lineage remain but its content is gone (add it again to restore it)")
        }
        let bytes = try blobs.readAll(id.hex)
        return try Manifest.parse(bytes)
    }

    // MARK: Checkout

    /// Writes the artifact's files under `directory`, verifying every byte against its hash.
    /// Nothing lands unless every blob verifies (files are written to temp names first, then
    /// renamed). Never writes outside `directory`: paths are re-validated and no existing
    /// symlink is followed. Existing files are refused unless `force`.
    @discardableResult
    public func checkout(_ id: ArtifactID, into directory: String, force: Bool = false) throws -> [String] {
        let manifest = try manifest(id)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard let base = FS.realPath(directory) else { throw StoreError.bad("cannot resolve '\(directory)'") }
        // Plan: check every target before writing anything.
        var conflicts: [String] = []
        for e in manifest.entries {
            try Manifest.validate(path: e.path)
            var dir = base
            for comp in e.path.split(separator: "/").dropLast() {
                dir += "/" + comp
                if let info = try FS.lstatInfo(dir), info.kind != .directory {
                    throw StoreError(.refused, "cannot check out '\(e.path)': '\(dir)' exists and is not a directory (symlinks are never followed)")
                }
            }
            if let info = try FS.lstatInfo(base + "/" + e.path) {
                if info.kind == .directory {
                    throw StoreError(.refused, "cannot check out '\(e.path)': a directory is in the way")
                }
                conflicts.append(e.path)
            }
        }
        if !conflicts.isEmpty && !force {
            let list = conflicts.prefix(5).joined(separator: ", ") + (conflicts.count > 5 ? ", …" : "")
            throw StoreError(.refused, "checkout would overwrite \(conflicts.count) existing file(s) in '\(directory)': \(list); use --force to overwrite")
        }
        // Write every file to a temp name, verifying as we go.
        var temps: [(temp: String, final: String)] = []
        do {
            for e in manifest.entries {
                var dir = base
                for comp in e.path.split(separator: "/").dropLast() {
                    dir += "/" + comp
                    try FS.makeDirectory(dir)
                    guard try FS.lstatInfo(dir)?.kind == .directory else {
                        throw StoreError(.refused, "cannot check out '\(e.path)': '\(dir)' is not a directory")
                    }
                }
                let temp = dir + "/.cairn-checkout-\(Processes.currentID)-" + UUID().uuidString.prefix(8).lowercased()
                let out = try FileDescriptor.createExclusive(temp, mode: 0o600)
                temps.append((temp, base + "/" + e.path))
                let n = try blobs.readVerified(e.blob) { try out.writeAll($0) }
                guard n == e.size else {
                    throw StoreError(.integrity, "blob \(e.blob) of '\(e.path)' has \(n) bytes, the manifest says \(e.size)")
                }
                try out.setMode(e.executable ? 0o755 : 0o644)
            }
            for t in temps { try FS.rename(t.temp, t.final) }
        } catch {
            for t in temps { try? FS.removeFile(t.temp) }
            if let e = error as? StoreError, e.kind == .integrity {
                throw StoreError(.integrity, "checkout of \(id) failed, nothing was written: \(e.message)")
            }
            throw StoreError.wrap(error, "checkout of \(id) into '\(directory)' failed")
        }
        return manifest.entries.map { base + "/" + $0.path }
    }
}
