/// fsck's deepest check: the journal replayed into an empty in-memory index must give the
/// index row for row (a row changed, added or removed by hand, or lost, shows here).
extension ArtifactStore {
    func compareWithJournal() throws -> [Finding] {
        try indexed("fsck cannot compare the index with the journal") {
            try db.readTransaction {
                guard let position = try journalPosition() else { return [Finding(.damagedIndex, indexPath, IndexDamage.noJournalState(indexPath).problem)] }
                let (records, validEnd, _) = try journal.scan(from: 0, to: position.end)
                guard validEnd == position.end, records.last?.seq == position.seq else {
                    return [Finding(.damagedJournal, journal.path, "the journal's records up to \(position.seq) (byte \(position.end)) are not all intact: the first bad line starts at byte \(validEnd)")]
                }
                let replay = try Database(path: ":memory:", create: true)
                try replay.execute("PRAGMA foreign_keys=ON")
                try Schema.migrate(replay, path: ":memory:")
                try replay.writeTransaction { for r in records.dropFirst() { try Self.apply(r, db: replay, blobs: blobs) } }
                var findings: [Finding] = []
                for (table, key) in Self.journaledTables + [("artifact_files", ["artifact", "path"])] {
                    let sql = "SELECT * FROM \(table) ORDER BY \(key.joined(separator: ", "))"
                    let (columns, mine) = try db.queryNamed(sql)
                    let theirs = try replay.queryNamed(sql).rows
                    let keyIndexes = key.map { columns.firstIndex(of: $0)! }
                    func keyOf(_ r: Row) -> String { keyIndexes.map { "\(columns[$0])=\(Self.json(r[$0]))" }.joined(separator: " ") }
                    let a = Dictionary(mine.map { (keyOf($0), $0.values) }, uniquingKeysWith: { x, _ in x })
                    let b = Dictionary(theirs.map { (keyOf($0), $0.values) }, uniquingKeysWith: { x, _ in x })
                    var differing = 0
                    for k in Set(a.keys).union(b.keys).sorted() where a[k] != b[k] {
                        differing += 1
                        if differing > 10 { continue }
                        let what = a[k] == nil ? "is missing from the index" : b[k] == nil ? "is in the index but not in the journal" : "differs from the journal's"
                        findings.append(Finding(.indexDiffersFromJournal, "\(table) \(k)", "\(table) row \(k) \(what); `cairn fsck --repair` rebuilds the index from the journal"))
                    }
                    if differing > 10 {
                        findings.append(Finding(.indexDiffersFromJournal, table, "\(differing - 10) more \(table) row(s) differ from the journal"))
                    }
                }
                return findings
            }
        }
    }
}
