import Foundation
import Testing
@testable import CairnStore

/// A store with one of everything the index holds: artifacts (one collected by gc, one pinned,
/// a directory), runs with stages, metrics and gate reports, lineage both ways, alias moves
/// with a rollback mark, queue entries in every state and the trigger's watch state.
func populatedStore(_ t: TempDir) throws -> String {
    let s = try t.makeStore()
    let base = try s.add(path: t.write("in/base.txt", "base model"), kind: .baseModel).artifact.id
    let data = try s.add(path: t.write("in/data/a.jsonl", "{\"x\": 1}\n"), kind: .dataset).artifact.id
    t.write("in/data/sub/b.jsonl", "{\"x\": 2}\n")
    let dir = try s.add(path: t.sub("in/data"), kind: .dataset, name: "data-dir").artifact.id
    let doomed = try s.add(path: t.write("in/doomed.txt", "gc takes me"), kind: .metrics).artifact.id
    var outputs: [ArtifactID] = []
    for i in 0..<3 {
        let run = try s.beginRun(RunInfo(pipeline: "task-api", repo: "/r", branch: "main", commit: "c\(i)", author: "Ada",
                                         message: "commit \(i)", metadata: .object(["n": .number(Double(i))])))
        let exe = try s.beginStage(run: run, stage: "sft", cacheKey: "key-\(i)")
        try s.record(execution: exe, .used, base, role: "base_model")
        try s.record(execution: exe, .used, i == 0 ? data : dir, role: "data")
        let out = try s.addGenerated(path: t.write("out/\(i)/adapter.bin", "adapter \(i)"), kind: .adapter, execution: exe, role: "adapter")
        outputs.append(out.artifact.id)
        try s.finishStage(execution: exe, status: .succeeded, metrics: .object(["loss": .number(1.0 / Double(i + 3))]),
                          gateReport: .object(["passed": .bool(i != 1)]))
        try s.setRunMetadata(run, .object(["n": .number(Double(i)), "done": .bool(true)]))
        try s.finishRun(run, status: i == 1 ? .rejected : .succeeded)
    }
    try s.addByHand(path: t.write("in/notes.md", "by hand"), kind: .report, used: [("source", outputs[0])])
    try s.setAlias("task-api@production", to: outputs[0], reason: "first", run: 1)
    try s.setAlias("task-api@production", to: outputs[2], reason: "second", run: 3, automated: true)
    try s.rollback("task-api@production", reason: "bad replies")
    try s.setAlias("task-api@staging", to: outputs[1])
    let (e1, _) = try s.enqueue(pipeline: "pipelines/task-api", commit: "c1", repo: "/r", branch: "main")
    try s.enqueue(pipeline: "pipelines/task-api", commit: "c2", repo: "/r", branch: "main")
    _ = try s.claimNextPending(pid: 4242)
    try s.markQueueRunning(e1.id, pid: 4243, run: 1)
    try s.finishQueue(e1.id, state: "done", run: 1)
    try s.setWatchedTip(repo: "/r", branch: "main", tip: "c2", expected: nil)
    // gc collects the unreferenced metrics file (grace 0), then the same content comes back and goes again.
    _ = try s.collectGarbage(GCOptions(keepRuns: 10, graceSeconds: -1))
    #expect(try s.artifact(doomed)?.collectedAt != nil)
    try s.add(path: t.sub("in/doomed.txt"), kind: .metrics)
    #expect(try s.artifact(doomed)?.collectedAt == nil)
    return s.root
}

/// Every row of every table of the index (the files of each artifact too), as text: two
/// indexes with equal dumps answer every query alike.
func indexDump(_ root: String) throws -> [String] {
    let s = try ArtifactStore(root: root)
    var out: [String] = []
    for (table, key) in ArtifactStore.journaledTables + [("artifact_files", ["artifact", "path"])] {
        let (columns, rows) = try s.db.queryNamed("SELECT * FROM \(table) ORDER BY \(key.joined(separator: ", "))")
        for r in rows { out.append(table + " " + zip(columns, r.values).map { "\($0)=\($1)" }.joined(separator: " ")) }
    }
    return out
}

/// What the commands show, as JSON: artifacts, aliases and histories, runs with stages and
/// lineage both ways, the queue and the trigger state.
func queryDump(_ root: String) throws -> String {
    let s = try ArtifactStore(root: root)
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    var parts: [String] = []
    func add<T: Encodable>(_ v: T) throws { parts.append(String(decoding: try enc.encode(v), as: UTF8.self)) }
    let artifacts = try s.artifacts(includeCollected: true)
    try add(artifacts)
    try add(try s.aliases())
    for a in try s.aliases() { try add(try s.history(a.name)) }
    for r in try s.runs() {
        try add(r)
        for st in try s.stages(run: r.id) {
            try add(st)
            try add(try s.edges(execution: st.id, .used).map { "\($0.role) \($0.artifact)" })
            try add(try s.edges(execution: st.id, .generated).map { "\($0.role) \($0.artifact)" })
        }
    }
    for a in artifacts {
        parts.append(try s.ancestors(of: a.id).renderTree())
        parts.append(try s.descendants(of: a.id).renderTree())
    }
    try add(try s.queue())
    parts.append(try s.watchedTip(repo: "/r", branch: "main") ?? "-")
    return parts.joined(separator: "\n")
}

@Suite struct JournalTests {
    @Test func aRebuiltIndexIsTheSameIndex() throws {
        let t = TempDir()
        let root = try populatedStore(t)
        let rows = try indexDump(root), queries = try queryDump(root)
        #expect(rows.count > 40)
        try FileManager.default.removeItem(atPath: root + "/index.db")
        #expect(try ArtifactStore.diagnose(root: root) == .missing(root + "/index.db"))
        let report = try #require(try ArtifactStore.repair(root: root))
        #expect(report.action == .rebuiltIndex)
        #expect([report.artifacts, report.runs, report.aliasMoves, report.queueEntries] as [Int] == [8, 4, 4, 2])
        #expect(try indexDump(root) == rows)
        #expect(try queryDump(root) == queries)
        #expect(try fsckErrors(ArtifactStore(root: root)).isEmpty)
        // The rebuilt store goes on: writes append after the journal's last record.
        let s = try ArtifactStore(root: root)
        try s.setAlias("task-api@staging", to: try s.resolve("task-api@production"))
        #expect(try ArtifactStore.diagnose(root: root) == nil)
    }

    @Test func eachRecordIsOneCheckedLineAndReadsAlone() throws {
        let t = TempDir()
        let root = try populatedStore(t)
        let lines = String(decoding: readFile(root + "/journal")!, as: UTF8.self).split(separator: "\n")
        let records = try Journal(path: root + "/journal").readAll()
        #expect(records.count == lines.count)
        #expect(records.first?.storeID == (try StoreMarker.read(root: root))?.id)
        for (i, r) in records.enumerated() { #expect(r.seq == Int64(i + 1)) }
        // A repeated add of stored content, or an automated move to the current target, writes nothing.
        let s = try ArtifactStore(root: root)
        try s.add(path: t.sub("in/base.txt"), kind: .baseModel)
        try s.setAlias("task-api@staging", to: try s.resolve("task-api@staging"), automated: true)
        #expect(try Journal(path: root + "/journal").readAll().count == records.count)
    }

    @Test func everyKindOfDamageIsRefusedUntilRepairedAndGcDeletesNothing() throws {
        let donor = TempDir()
        let other = try populatedStore(donor)
        let cases: [(String, (String) throws -> Void)] = [
            ("deleted", { try FileManager.default.removeItem(atPath: $0 + "/index.db") }),
            ("truncated", { _ = try FileDescriptor.openAppending($0 + "/index.db", create: false).truncate(to: 0) }),
            ("another store's", { try replace($0 + "/index.db", with: other + "/index.db") }),
            ("dropped table", { root in
                let s = try ArtifactStore(root: root)
                try s.db.execute("DROP TABLE alias_blocks; DROP TABLE aliases")
            }),
        ]
        for (what, damage) in cases {
            let t = TempDir()
            let root = try populatedStore(t)
            let rows = try indexDump(root), queries = try queryDump(root)
            let blobs = blobFiles(try ArtifactStore(root: root))
            try damage(root)
            let found = try #require(try ArtifactStore.diagnose(root: root), "\(what): not noticed")
            #expect(found.finding == .damagedIndex, "\(what)")
            do {
                _ = try ArtifactStore(root: root)
                Issue.record("\(what): a damaged index opened")
            } catch let e as StoreError {
                #expect(e.kind == .damagedIndex && e.exitCode == 2 && e.message.contains("cairn fsck --repair"), "\(what): \(e)")
            }
            let gc = try cairn(root, "gc", "--grace", "0s")
            #expect(gc.status == 2 && gc.stderr.contains("fsck --repair"), "\(what): \(gc.stderr)")
            #expect(FileManager.default.fileExists(atPath: root + "/objects/sha256/" + blobs[0].prefix(2) + "/" + blobs[0].dropFirst(2)))
            let fsck = try cairn(root, "fsck", "--json")
            #expect(fsck.status == 1 && fsck.stdout.contains("damaged-index"), "\(what)")
            let repaired = try cairn(root, "fsck", "--repair")
            #expect(repaired.status == 0, "\(what): \(repaired.stderr)")
            #expect(try indexDump(root) == rows, "\(what)")
            #expect(try queryDump(root) == queries, "\(what)")
            #expect(blobFiles(try ArtifactStore(root: root)) == blobs, "\(what)")
        }
    }

    /// The WAL held committed transactions and is lost (the file deleted while they were not yet
    /// checkpointed, or index.db copied without it): nothing committed is lost.
    @Test func aLostWALLosesNothingCommitted() throws {
        let t = TempDir()
        let root = try populatedStore(t)
        let copy = t.sub("copy")
        let holder = try ArtifactStore(root: root)  // keeps the WAL from being checkpointed on close
        try holder.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        let s = try ArtifactStore(root: root)
        let added = try s.add(path: t.write("in/late.txt", "added late"), kind: .dataset).artifact.id
        for target in ["task-api@production", "task-api@staging", "task-api@production"] {
            try s.setAlias("task-api@canary", to: try s.resolve(target), reason: "move to \(target)")
        }
        let rows = try indexDump(root), queries = try queryDump(root)
        #expect((try FS.lstatInfo(root + "/index.db-wal"))?.size ?? 0 > 0)
        // The store as it would be with index.db-wal deleted.
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: root) where !name.hasPrefix("index.db-") {
            try FileManager.default.copyItem(atPath: root + "/" + name, toPath: copy + "/" + name)
        }
        withExtendedLifetime(holder) {}
        #expect(try ArtifactStore.diagnose(root: copy) == .behindJournal(copy + "/index.db", records: 4))
        #expect(throws: StoreError.self) { _ = try ArtifactStore(root: copy).resolve(added.description) }
        #expect(try cairn(copy, "alias", "history", "task-api@canary").status == 2)
        let report = try #require(try ArtifactStore.repair(root: copy))
        #expect(report.damage?.contains("4 transaction(s) behind") == true)
        #expect(try indexDump(copy) == rows)
        #expect(try queryDump(copy) == queries)
    }

    /// A writer killed between its journal append and its commit leaves one record past the
    /// index: readers carry on, the next writer applies it. A torn line is cut off.
    @Test func aWritersLastRecordIsAppliedAndATornLineCutOff() throws {
        let t = TempDir()
        let root = try populatedStore(t)
        let before = try indexDump(root)
        let snapshot = t.sub("index-before.db")
        do {
            let s = try ArtifactStore(root: root)
            try s.db.execute("VACUUM INTO '\(snapshot)'")
            try s.setAlias("task-api@canary", to: try s.resolve("task-api@staging"), reason: "the killed writer's move")
        }
        let after = try indexDump(root)
        // Put back the index as it was before that commit: the journal holds one more record.
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: root + "/index.db" + suffix) }
        try replace(root + "/index.db", with: snapshot)
        #expect(try ArtifactStore.diagnose(root: root) == nil)
        #expect(try indexDump(root) == before)
        // A torn line after it, as from a second writer killed in mid-append.
        let j = try FileDescriptor.openAppending(root + "/journal", create: false)
        try Array("99 abc {\"ops\":[".utf8).withUnsafeBytes { try j.writeAll($0) }
        #expect(try ArtifactStore.diagnose(root: root) == nil)
        // The next writer applies the record and cuts the torn line, in a transaction of its
        // own: the record stays applied even when that writer's own transaction fails.
        let s = try ArtifactStore(root: root)
        #expect(throws: StoreError.self) { try s.setAlias("task-api@canary", to: ArtifactID("sha256:" + String(repeating: "0", count: 64))!) }
        #expect(try s.history("task-api@canary").map(\.reason) == ["the killed writer's move"])
        #expect(try ArtifactStore.diagnose(root: root) == nil)
        try s.setWatchedTip(repo: "/r", branch: "dev", tip: "d1", expected: nil)
        #expect(try s.history("task-api@canary").map(\.reason) == ["the killed writer's move"])
        #expect(try indexDump(root).filter { !$0.hasPrefix("watch_state") } == after.filter { !$0.hasPrefix("watch_state") })
        let records = try Journal(path: root + "/journal").readAll()
        #expect(records.last?.ops.count == 1)
        #expect(try Journal(path: root + "/journal").scan(from: 0).validEnd == (try Journal(path: root + "/journal").size))
    }

    @Test func aStoreFromBeforeTheJournalGetsOneHoldingEverything() throws {
        let t = TempDir()
        let root = try populatedStore(t)
        let rows = try indexDump(root)
        // Make it look like a store of schema 2: no marker, no journal, no journal_state.
        do {
            let s = try ArtifactStore(root: root)
            try s.db.execute("DROP TABLE journal_state; PRAGMA user_version = 2")
        }
        for f in ["journal", StoreMarker.fileName] { try FileManager.default.removeItem(atPath: root + "/" + f) }
        #expect(try indexDump(root) == rows)  // opening it adopts it
        let records = try Journal(path: root + "/journal").readAll()
        #expect(records.count == 2 && records[1].payload["snapshot"] == .bool(true))
        try FileManager.default.removeItem(atPath: root + "/index.db")
        _ = try ArtifactStore.repair(root: root)
        #expect(try indexDump(root) == rows)
    }

    @Test func aLostJournalIsWrittenAgainFromTheIndex() throws {
        let t = TempDir()
        let root = try populatedStore(t)
        let rows = try indexDump(root)
        try FileManager.default.removeItem(atPath: root + "/journal")
        #expect(try ArtifactStore.diagnose(root: root) == .journalMissing(root + "/journal"))
        let report = try #require(try ArtifactStore.repair(root: root))
        #expect(report.action == .rewroteJournal)
        try FileManager.default.removeItem(atPath: root + "/index.db")
        _ = try ArtifactStore.repair(root: root)
        #expect(try indexDump(root) == rows)
    }

    @Test func aRepairIsRefusedWhileAnotherProcessHasTheStoreOpen() throws {
        let t = TempDir()
        let root = try populatedStore(t)
        let s = try ArtifactStore(root: root)
        #expect(throws: StoreError.self) { _ = try ArtifactStore.rebuildIndex(root: root) }
        withExtendedLifetime(s) {}
    }
}

func replace(_ path: String, with source: String) throws {
    try? FileManager.default.removeItem(atPath: path)
    try FileManager.default.copyItem(atPath: source, toPath: path)
}

@Suite struct JournalAgainstIndexTests {
    /// fsck replays the journal and compares: a row changed or removed by hand is an error that
    /// `fsck --repair` puts right.
    @Test func fsckFindsARowChangedByHandAndRepairRestoresIt() throws {
        let t = TempDir()
        let root = try populatedStore(t)
        let rows = try indexDump(root)
        #expect(try fsckErrors(ArtifactStore(root: root)).isEmpty)
        do {
            let s = try ArtifactStore(root: root)
            try s.db.execute("UPDATE aliases SET artifact = 1 WHERE name = 'task-api@production'; DELETE FROM run_queue WHERE id = 2")
        }
        let kinds = try fsckErrors(ArtifactStore(root: root)).map { $0.kind.rawValue + " " + $0.subject }
        #expect(kinds == ["index-differs-from-journal aliases name=\"task-api@production\"", "index-differs-from-journal run_queue id=2"])
        let r = try cairn(root, "fsck", "--repair")
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("2 index row(s) differed from the journal"))
        #expect(try indexDump(root) == rows)
    }

    /// Writers killed with SIGKILL at random moments leave a store whose index opens, matches
    /// its journal, and lost no move it acknowledged.
    @Test func writersKilledAtRandomMomentsLeaveIndexAndJournalAgreeing() throws {
        let t = TempDir()
        let root = try populatedStore(t)
        let target = try ArtifactStore(root: root).resolve("task-api@staging").description
        var rng = SystemRandomNumberGenerator()
        var acknowledged: [Int] = []
        for i in 1...60 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: cairnBinary)
            p.arguments = ["alias", "set", "killed@x", target, "--reason", "\(i)", "--store", root]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32.random(in: 0...60_000, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if p.terminationReason == .exit && p.terminationStatus == 0 { acknowledged.append(i) }
            #expect(try ArtifactStore.diagnose(root: root) == nil, "after writer \(i)")
        }
        let s = try ArtifactStore(root: root)
        try s.setWatchedTip(repo: "/r", branch: "after", tip: "t", expected: nil)
        #expect(try s.fsck().findings.filter { $0.severity == .error }.isEmpty)
        let history = try s.history("killed@x").compactMap(\.reason).compactMap { Int($0) }
        #expect(history == history.sorted() && Set(acknowledged).isSubset(of: Set(history)), "\(history) vs \(acknowledged)")
        #expect(!acknowledged.isEmpty && acknowledged.count < 60, "\(acknowledged.count) of 60 finished: the kills missed the writes")
    }
}
