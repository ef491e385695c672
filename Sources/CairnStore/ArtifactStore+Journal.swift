import Foundation

/// Writing the index through the journal: every write transaction logs the rows it changed,
/// appends them as one journal record (fdatasync'd) and only then commits. Replaying the
/// journal's records in order into an empty index gives the same index (`rebuildIndex`).
extension ArtifactStore {
    /// The tables the journal holds, parents before children, with their primary keys.
    /// `artifact_files` is not among them: an artifact's files are those of its manifest blob,
    /// read again when a record brings the artifact back.
    static let journaledTables: [(name: String, key: [String])] = [
        ("artifacts", ["seq"]), ("runs", ["id"]), ("stage_executions", ["id"]),
        ("lineage", ["execution", "relation", "artifact", "role"]), ("aliases", ["name"]),
        ("alias_history", ["id"]), ("alias_blocks", ["alias", "artifact"]), ("run_queue", ["id"]),
        ("watch_state", ["repo", "branch"]),
    ]

    static func key(of table: String) -> [String]? { journaledTables.first { $0.name == table }?.key }

    /// Runs `body` as one write transaction of the index, journaled: the rows it logs
    /// (`logRow`, `logDelete`) become one record, durable in the journal before the commit.
    func write<T>(_ body: () throws -> T) throws -> T {
        var appendedAt: Int64? = nil
        return try db.writeTransaction({
            var (position, redone) = try settleJournal()
            while redone {
                // The redo commits on its own: were this writer killed before its commit, the
                // journal would otherwise hold two records past the index (damage).
                try db.execute("COMMIT")
                try db.execute("BEGIN IMMEDIATE")
                (position, redone) = try settleJournal()
            }
            journalOps = []
            defer { journalOps = nil }
            let result = try body()
            if let ops = journalOps, !ops.isEmpty {
                let line = JournalRecord.line(seq: position.seq + 1, payload: .object([
                    "at": .number(FS.now), "by": .string(FS.userName), "ops": .array(ops)]))
                let (start, end) = try journal.append(line)
                appendedAt = start
                position = JournalPosition(seq: position.seq + 1, start: start, end: end)
                try setJournalPosition(position)
            }
            return result
        }, beforeRollback: {
            // Still holding the write lock: take back the record of a transaction that will not commit.
            if let start = appendedAt { try? journal.truncate(to: start) }
        })
    }

    /// Logs the current image of one row (after inserting or updating it) in the open write.
    func logRow(_ table: String, _ key: [String: SQLValue]) throws {
        guard let keyColumns = Self.key(of: table), journalOps != nil else {
            preconditionFailure("logRow(\(table)) outside a journaled write or for a table the journal does not hold")
        }
        let (columns, rows) = try db.queryNamed("SELECT * FROM \(table) WHERE " + keyColumns.map { "\($0) = ?" }.joined(separator: " AND "),
                                                keyColumns.map { key[$0]! })
        guard let row = rows.first else { return }
        journalOps!.append(Self.rowOp(table, columns, row))
    }

    /// Logs the deletion of one row, by its key, in the open write.
    func logDelete(_ table: String, _ key: [String: SQLValue]) {
        precondition(Self.key(of: table) != nil && journalOps != nil, "logDelete(\(table)) outside a journaled write")
        journalOps!.append(.object(["t": .string(table), "del": .object(key.mapValues(Self.json))]))
    }

    /// The op that gives a row back on replay: its full image.
    static func rowOp(_ table: String, _ columns: [String], _ row: Row) -> JSONValue {
        var image: [String: JSONValue] = [:]
        for (i, c) in columns.enumerated() { image[c] = json(row[i]) }
        return .object(["t": .string(table), "row": .object(image)])
    }

    static func json(_ v: SQLValue) -> JSONValue {
        switch v {
        case .null: return .null
        case .int(let i): return .number(Double(i))
        case .double(let d): return .number(d)
        case .text(let s): return .string(s)
        case .blob: preconditionFailure("the index holds no blobs")
        }
    }

    static func sql(_ v: JSONValue) -> SQLValue? {
        switch v {
        case .null: return .null
        case .number(let d): return d == d.rounded() && abs(d) < 9.0e15 ? .int(Int64(d)) : .double(d)
        case .string(let s): return .text(s)
        default: return nil
        }
    }

    // MARK: Position

    func journalPosition() throws -> JournalPosition? {
        try Self.journalPosition(db)
    }

    static func journalPosition(_ db: Database) throws -> JournalPosition? {
        try db.query("SELECT seq, line_start, line_end FROM journal_state WHERE one = 1").first.map {
            JournalPosition(seq: $0.int(0)!, start: $0.int(1)!, end: $0.int(2)!)
        }
    }

    func setJournalPosition(_ p: JournalPosition) throws {
        try db.run("UPDATE journal_state SET seq = ?, line_start = ?, line_end = ? WHERE one = 1", [.int(p.seq), .int(p.start), .int(p.end)])
    }

    /// Inside a write transaction: brings the index level with the journal before this writer
    /// appends. A record past the index's position is a writer's that was killed between its
    /// append and its commit: it is applied (the journal is the truth). A torn line is cut off.
    /// Anything more means damage (`IndexDamage`), and nothing is written. Says whether it
    /// applied a record.
    func settleJournal() throws -> (position: JournalPosition, redone: Bool) {
        guard var position = try journalPosition() else { throw IndexDamage.noJournalState(indexPath).error }
        let size = try journal.size
        if size == position.end { return (position, false) }
        if size < position.end { throw IndexDamage.aheadOfJournal(indexPath, journal: journal.path).error }
        let tail = try journal.scan(from: position.end, to: size)
        if tail.records.count > 1 || tail.records.first.map({ $0.seq != position.seq + 1 }) == true {
            throw IndexDamage.behindJournal(indexPath, records: tail.records.count).error
        }
        if let r = tail.records.first {
            _ = try Self.apply(r, db: db, blobs: blobs)
            position = JournalPosition(seq: r.seq, start: r.start, end: r.end)
            try setJournalPosition(position)
        }
        if tail.validEnd < size { try journal.truncate(to: tail.validEnd) }
        return (position, !tail.records.isEmpty)
    }

    // MARK: Replay

    /// Applies one record's ops to the index (inside a write transaction). Returns the ids of
    /// artifacts whose manifest could not be read (their file rows stay empty; fsck reports them).
    @discardableResult
    static func apply(_ record: JournalRecord, db: Database, blobs: BlobStore) throws -> [String] {
        var unreadable: [String] = []
        for (n, op) in record.ops.enumerated() {
            let fail = { (what: String) in StoreError(.badStore, "journal record \(record.seq), op \(n + 1): \(what)") }
            guard let table = op["t"]?.stringValue, let keyColumns = Self.key(of: table) else {
                throw fail("unknown table \(op["t"].map(\.description) ?? "(none)")")
            }
            if case .object(let key)? = op["del"] {
                let values = keyColumns.compactMap { key[$0].flatMap(Self.sql) }
                guard Set(key.keys) == Set(keyColumns), values.count == keyColumns.count else {
                    throw fail("the key of a deleted \(table) row must be \(keyColumns)")
                }
                try db.run("DELETE FROM \(table) WHERE " + keyColumns.map { "\($0) = ?" }.joined(separator: " AND "), values)
                continue
            }
            guard case .object(let row)? = op["row"], keyColumns.allSatisfy({ row[$0] != nil }) else { throw fail("no row image with its key") }
            let columns = row.keys.sorted()
            guard columns.allSatisfy({ $0.allSatisfy { $0.isLetter || $0 == "_" } }) else { throw fail("bad column name") }
            let values = columns.compactMap { row[$0].flatMap(Self.sql) }
            guard values.count == columns.count else { throw fail("a value of a \(table) row is not null, a number or a string") }
            let others = columns.filter { !keyColumns.contains($0) }
            let update = others.isEmpty ? "DO NOTHING" : "DO UPDATE SET " + others.map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
            try db.run("INSERT INTO \(table)(\(columns.joined(separator: ", "))) VALUES(\(columns.map { _ in "?" }.joined(separator: ", "))) "
                       + "ON CONFLICT(\(keyColumns.joined(separator: ", "))) \(update)", values)
            if table == "artifacts", case .int(let seq) = values[columns.firstIndex(of: "seq")!] {
                if try !syncFiles(seq: seq, db: db, blobs: blobs) { unreadable.append(row["id"]?.stringValue ?? "seq \(seq)") }
            }
        }
        return unreadable
    }

    /// Makes an artifact's file rows those of its manifest (none once gc collected it).
    /// False when the manifest blob cannot be read.
    private static func syncFiles(seq: Int64, db: Database, blobs: BlobStore) throws -> Bool {
        guard let r = try db.query("SELECT id, collected_at FROM artifacts WHERE seq = ?", [.int(seq)]).first else { return true }
        if r[1] != .null {
            try db.run("DELETE FROM artifact_files WHERE artifact = ?", [.int(seq)])
            return true
        }
        if try db.query("SELECT 1 FROM artifact_files WHERE artifact = ? LIMIT 1", [.int(seq)]).first != nil { return true }
        guard let id = ArtifactID(r.string(0)!), let m = try? Manifest.parse(try blobs.readAll(id.hex)), m.id == id else { return false }
        for e in m.entries {
            try db.run("INSERT OR REPLACE INTO artifact_files(artifact, path, blob, size, executable) VALUES(?,?,?,?,?)",
                       [.int(seq), .text(e.path), .text(e.blob), .int(e.size), .int(e.executable ? 1 : 0)])
        }
        return true
    }

    /// Every row of every journaled table, as ops: the record that starts a journal for an
    /// index that had none (a store made before the journal).
    static func snapshotOps(_ db: Database) throws -> [JSONValue] {
        var ops: [JSONValue] = []
        for (table, key) in Self.journaledTables {
            let (columns, rows) = try db.queryNamed("SELECT * FROM \(table) ORDER BY \(key.joined(separator: ", "))")
            ops += rows.map { rowOp(table, columns, $0) }
        }
        return ops
    }
}
