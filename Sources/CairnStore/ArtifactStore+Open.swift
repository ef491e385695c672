import Foundation

/// Opening a store: its marker says it exists and whose it is; the index is checked against
/// the journal before anything is written to it.
extension ArtifactStore {
    struct Opened {
        let db: Database?
        let journal: Journal?
        let marker: StoreMarker
        let damage: IndexDamage?
    }

    /// Opens the index and journal at `root` and checks them; a store without a marker (new,
    /// or made before the journal) gets its identity and a journal first.
    static func open(root: String, blobs: BlobStore) throws -> Opened {
        let index = root + "/index.db", jpath = journalPath(root)
        var marker = try StoreMarker.read(root: root)
        if marker == nil, try FS.lstatInfo(jpath) != nil {
            // The marker was lost: the journal's header says whose journal it is.
            guard let id = try Journal(path: jpath).header()?.storeID else {
                throw StoreError(.badStore, "the store at '\(root)' has a journal whose first record is damaged and no marker (\(StoreMarker.fileName)); restore them from a backup")
            }
            marker = StoreMarker(id: id)
            try marker!.write(root: root)
        }
        guard let m = marker else {
            let db = try openIndex(index, create: true)
            do {
                try configure(db)
                try Schema.migrate(db, path: index)
                let m = try adopt(db, root: root)
                let (journal, damage) = try check(db, marker: m, root: root)
                return Opened(db: db, journal: journal, marker: m, damage: damage)
            } catch let e as SQLiteError {
                throw StoreError(.badStore, "cannot open the store index '\(index)': \(e.description)")
            }
        }
        guard try FS.lstatInfo(index) != nil else { return Opened(db: nil, journal: nil, marker: m, damage: .missing(index)) }
        let db = try openIndex(index, create: false)
        let (journal, damage) = try check(db, marker: m, root: root)
        if damage == nil {
            do {
                try configure(db)
                try Schema.migrate(db, path: index)
            } catch let e as SQLiteError {
                throw StoreError(.badStore, "cannot open the store index '\(index)': \(e.description)")
            }
        }
        return Opened(db: db, journal: journal, marker: m, damage: damage)
    }

    private static func openIndex(_ path: String, create: Bool) throws -> Database {
        do { return try Database(path: path, create: create) } catch let e as SQLiteError {
            throw StoreError(.badStore, "cannot open the store index '\(path)': \(e.description)")
        }
    }

    static func configure(_ db: Database) throws {
        try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON")
    }

    /// Gives a store without a marker its identity and a journal: a header, then one record
    /// holding every row the index has (none for a new store). Idempotent across processes.
    private static func adopt(_ db: Database, root: String) throws -> StoreMarker {
        let jpath = journalPath(root)
        let id: String = try db.writeTransaction {
            let existing = try db.query("SELECT store FROM journal_state WHERE one = 1").first?.string(0)
            if let e = existing, try FS.lstatInfo(jpath) != nil { return e }
            let id = existing ?? UUID().uuidString.lowercased()
            var lines = [JournalRecord.headerLine(store: id)]
            let ops = try snapshotOps(db)
            if !ops.isEmpty { lines.append(JournalRecord.snapshotLine(ops: ops)) }
            try Journal.create(at: jpath, lines: lines)
            let end = Int64(lines.reduce(0) { $0 + $1.count })
            try db.run("INSERT OR REPLACE INTO journal_state(one, store, seq, line_start, line_end) VALUES(1, ?, ?, ?, ?)",
                       [.text(id), .int(Int64(lines.count)), .int(end - Int64(lines.last!.count)), .int(end)])
            return id
        }
        let m = StoreMarker(id: id)
        try m.write(root: root)
        return m
    }

    /// Checks the index against the marker and the journal, reading only (the journal's first
    /// line, the line of the index's last record, and what follows it).
    static func check(_ db: Database, marker: StoreMarker, root: String) throws -> (Journal?, IndexDamage?) {
        let index = root + "/index.db", jpath = journalPath(root)
        do {
            _ = try db.query("SELECT count(*) FROM sqlite_master")
            let version = Int(try db.query("PRAGMA user_version")[0].int(0) ?? 0)
            if version == 0 { return (nil, .empty(index)) }
            if version > Schema.version {
                throw StoreError(.badStore, "store index '\(index)' has schema version \(version), newer than this cairn (\(Schema.version)); upgrade cairn")
            }
            if version < Schema.journalVersion { return (nil, .tooOld(index, version: version)) }
            let tables = Set(try db.query("SELECT name FROM sqlite_master WHERE type = 'table'").compactMap { $0.string(0) })
            for t in journaledTables.map(\.name) + ["artifact_files", "journal_state"] where !tables.contains(t) {
                return (nil, .missingTable(index, table: t))
            }
            guard let store = try db.query("SELECT store FROM journal_state WHERE one = 1").first?.string(0) else {
                return (nil, .noJournalState(index))
            }
            guard store == marker.id else { return (nil, .otherStore(index, indexStore: store, store: marker.id)) }
            guard try FS.lstatInfo(jpath) != nil else { return (nil, .journalMissing(jpath)) }
            let journal = try Journal(path: jpath)
            guard try journal.header()?.storeID == marker.id else { return (journal, .journalOfOtherStore(jpath)) }
            // The journal's size before the index's position: records appended before that
            // size are committed by then, but for at most one writer's in flight.
            let before = try journal.size
            guard let p = try journalPosition(db) else { return (journal, .noJournalState(index)) }
            if p.end > (try journal.size) { return (journal, .aheadOfJournal(index, journal: jpath)) }
            guard let last = try journal.record(start: p.start, end: p.end), last.seq == p.seq else {
                return (journal, .mismatch(index, journal: jpath))
            }
            if before > p.end {
                let tail = try journal.scan(from: p.end, to: before)
                if let first = tail.records.first, first.seq != p.seq + 1 { return (journal, .mismatch(index, journal: jpath)) }
                if tail.records.count > 1 { return (journal, .behindJournal(index, records: tail.records.count)) }
            }
            return (journal, nil)
        } catch let e as SQLiteError {
            return (nil, .unreadable(index, detail: e.isCorruption ? "the file is damaged or not a SQLite database" : e.message))
        }
    }
}

extension StoreMarker {
    init(id: String) { self.init(format: "cairn-store", version: 1, id: id, createdAt: FS.now) }
}
