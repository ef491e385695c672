import Foundation

/// What `cairn fsck --repair` (or `cairn index rebuild`) did.
public struct RepairReport: Codable, Sendable {
    public enum Action: String, Codable, Sendable {
        /// index.db rebuilt from the journal and the manifests.
        case rebuiltIndex = "rebuilt-index"
        /// The journal written again from the index (it was missing, cut short or another store's).
        case rewroteJournal = "rewrote-journal"
    }
    public let action: Action
    /// The damage that was repaired; nil for a rebuild asked for on a healthy store.
    public let damage: String?
    public let records: Int
    public let artifacts: Int
    public let runs: Int
    public let aliasMoves: Int
    public let queueEntries: Int
    /// Artifacts whose manifest blob could not be read: indexed without their files (fsck reports them).
    public let unreadableManifests: [String]
    /// Where the replaced file was kept.
    public let keptAs: String?

    enum CodingKeys: String, CodingKey {
        case action, damage, records, artifacts, runs, aliasMoves = "alias_moves", queueEntries = "queue_entries"
        case unreadableManifests = "unreadable_manifests", keptAs = "kept_as"
    }
}

extension ArtifactStore {
    /// What is wrong with the store's index or journal, or nil; changes nothing (except that a
    /// store from before the journal gets one, as any command would give it).
    public static func diagnose(root: String) throws -> IndexDamage? {
        guard exists(at: root) else { throw StoreError(.badStore, "no Cairn store at '\(root)': run `cairn init` or pass --store DIR") }
        return try open(root: root, blobs: BlobStore(root: root + "/objects/sha256")).damage
    }

    /// Repairs what `diagnose` finds: journal-side damage by writing the journal again from the
    /// index, anything else by rebuilding the index from the journal. Nil when nothing was wrong.
    public static func repair(root: String) throws -> RepairReport? {
        guard let damage = try diagnose(root: root) else { return nil }
        if damage.finding == .damagedJournal { return try rewriteJournal(root: root, damage: damage) }
        return try rebuildIndex(root: root, damage: damage)
    }

    /// Takes the store for a repair: no other process may have it open meanwhile.
    private static func exclusive(_ root: String) throws -> FileLock {
        guard let lock = try FileLock(trying: useLockPath(root), exclusive: true) else {
            throw StoreError(.refused, "the store at '\(root)' is in use by another process (`cairn watch`, a run, a gc): stop it, then repair; nothing was changed")
        }
        return lock
    }

    /// Builds a new index from the journal (and each artifact's manifest blob) beside the old
    /// one, then swaps it in with one rename. Killed at any moment, it leaves the old index
    /// (kept as `index.db.before-repair`, with its WAL) or the new one, never a mixture.
    public static func rebuildIndex(root: String, damage: IndexDamage? = nil, reason: String? = nil) throws -> RepairReport {
        let lock = try exclusive(root)
        defer { withExtendedLifetime(lock) {} }
        let index = root + "/index.db", jpath = journalPath(root), temp = index + ".rebuild"
        let blobs = BlobStore(root: root + "/objects/sha256")
        guard try FS.lstatInfo(jpath) != nil else {
            throw StoreError(.badStore, "the store at '\(root)' has no journal ('\(jpath)') to rebuild its index from")
        }
        let journal = try Journal(path: jpath)
        let records = try journal.readAll()
        guard let id = records.first?.storeID else {
            throw StoreError(.badStore, "the journal '\(jpath)' does not start with its header record; nothing was changed")
        }
        if let m = try StoreMarker.read(root: root) {
            guard m.id == id else {
                throw StoreError(.badStore, "the journal '\(jpath)' belongs to store \(id), the marker to \(m.id): restore this store's journal; nothing was changed")
            }
        } else {
            try StoreMarker(id: id).write(root: root)
        }
        for suffix in ["", "-wal", "-shm", "-journal"] { try FS.removeFile(temp + suffix) }
        var unreadable: [String] = []
        var counts: [Int] = []  // artifacts, runs, alias moves, queue entries
        do {
            let db = try Database(path: temp, create: true)
            defer { db.close() }
            try db.execute("PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF; PRAGMA foreign_keys=ON")
            try Schema.migrate(db, path: temp)
            try db.writeTransaction {
                for r in records.dropFirst() { unreadable += try apply(r, db: db, blobs: blobs) }
                let last = records.last!
                try db.run("INSERT INTO journal_state(one, store, seq, line_start, line_end) VALUES(1, ?, ?, ?, ?)",
                           [.text(id), .int(last.seq), .int(last.start), .int(last.end)])
            }
            counts = try recordCounts(db)
            try db.execute("PRAGMA journal_mode=WAL")
        } catch let e as SQLiteError {
            throw StoreError(.io, "cannot build the new index '\(temp)': \(e.description); the old index was not touched")
        }
        try FileDescriptor.openForReading(temp).sync()
        // The old index's WAL must never meet the new file: it moves aside with the old index.
        let kept = index + ".before-repair"
        if try FS.lstatInfo(index) != nil {
            try FS.removeFile(kept)
            _ = try FS.linkNoReplace(index, kept)
        }
        if try FS.lstatInfo(index + "-wal") != nil { try FS.rename(index + "-wal", kept + "-wal") } else { try FS.removeFile(kept + "-wal") }
        try FS.removeFile(index + "-shm")
        try FS.rename(temp, index)
        try FS.syncDirectory(root)
        if let last = records.last, try journal.size > last.end { try journal.truncate(to: last.end) }  // a torn last line
        return RepairReport(action: .rebuiltIndex, damage: damage?.problem ?? reason, records: records.count, artifacts: counts[0], runs: counts[1],
                            aliasMoves: counts[2], queueEntries: counts[3], unreadableManifests: unreadable,
                            keptAs: try FS.lstatInfo(kept) != nil ? kept : nil)
    }

    /// Writes the journal again from a whole index (header, then one record of every row), the
    /// old journal kept as `journal.before-repair`.
    static func rewriteJournal(root: String, damage: IndexDamage) throws -> RepairReport {
        let lock = try exclusive(root)
        defer { withExtendedLifetime(lock) {} }
        let index = root + "/index.db", jpath = journalPath(root)
        let marker = try StoreMarker.read(root: root)
        let db = try Database(path: index, create: false)
        defer { db.close() }
        if let problem = try db.query("PRAGMA quick_check").compactMap({ $0.string(0) }).first(where: { $0 != "ok" }) {
            throw StoreError(.badStore, "\(damage.problem), and the index '\(index)' is damaged too (\(problem)): restore one of them from a backup; nothing was changed")
        }
        try configure(db)
        let kept = jpath + ".before-repair"
        var counts: [Int] = []
        try db.writeTransaction {
            guard let id = try db.query("SELECT store FROM journal_state WHERE one = 1").first?.string(0), marker.map({ $0.id == id }) ?? true else {
                throw StoreError(.badStore, "\(damage.problem), and the index '\(index)' is not this store's either: restore them from a backup; nothing was changed")
            }
            let lines = [JournalRecord.headerLine(store: id), JournalRecord.snapshotLine(ops: try snapshotOps(db))]
            if try FS.lstatInfo(jpath) != nil { try FS.removeFile(kept); _ = try FS.linkNoReplace(jpath, kept) }
            try Journal.create(at: jpath, lines: lines)
            let end = Int64(lines[0].count + lines[1].count)
            try db.run("UPDATE journal_state SET seq = 2, line_start = ?, line_end = ? WHERE one = 1", [.int(Int64(lines[0].count)), .int(end)])
            counts = try recordCounts(db)
            if marker == nil { try StoreMarker(id: id).write(root: root) }
        }
        return RepairReport(action: .rewroteJournal, damage: damage.problem, records: 2, artifacts: counts[0], runs: counts[1],
                            aliasMoves: counts[2], queueEntries: counts[3], unreadableManifests: [],
                            keptAs: try FS.lstatInfo(kept) != nil ? kept : nil)
    }

    /// What a repair report counts: artifacts, runs, alias moves and queue entries.
    private static func recordCounts(_ db: Database) throws -> [Int] {
        try ["artifacts", "runs", "alias_history", "run_queue"].map { Int(try db.query("SELECT count(*) FROM \($0)")[0].int(0)!) }
    }
}
