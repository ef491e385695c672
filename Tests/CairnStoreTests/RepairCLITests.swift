import Foundation
import Testing
@testable import CairnStore

@Suite("A damaged index through the command line")
struct RepairCLITests {
    /// Every command that reads or writes the store refuses a damaged index (deleted, emptied,
    /// another store's, a table dropped) with one line naming the repair, exit 2, and writes
    /// nothing: not the index, not the journal, no blob.
    @Test(arguments: ["deleted", "emptied", "another store's", "dropped table"])
    func everyCommandRefusesADamagedIndexAndWritesNothing(_ damage: String) throws {
        let t = TempDir()
        let root = try populatedStore(t)
        let index = root + "/index.db"
        switch damage {
        case "deleted": try FileManager.default.removeItem(atPath: index)
        case "emptied": _ = try FileDescriptor.openAppending(index, create: false).truncate(to: 0)
        case "another store's":
            let other = TempDir()
            try replace(index, with: try populatedStore(other) + "/index.db")
        default:
            let s = try ArtifactStore(root: root)
            try s.db.execute("DROP TABLE run_queue")
        }
        let indexBytes = readFile(index)
        let journal = readFile(root + "/journal")
        let objects = try FileManager.default.subpathsOfDirectory(atPath: root + "/objects").sorted()
        let commands: [[String]] = [
            ["artifacts"], ["artifacts", "--all", "--json"], ["show", "task-api@production"], ["lineage", "task-api@production"],
            ["descendants", "task-api@production"], ["alias", "list"], ["alias", "history", "task-api@production"],
            ["alias", "set", "x@y", "task-api@production"], ["rollback", "task-api@production"], ["gc"], ["gc", "--grace", "0s"],
            ["gc", "--dry-run"], ["add", t.write("new.txt", "new"), "--kind", "dataset"], ["checkout", "task-api@production", t.sub("co")],
            ["runs"], ["run", "show", "1"], ["queue", "--all"], ["report", "1", "--out", t.sub("report")], ["resume", "1"],
            ["init"],
        ]
        for args in commands {
            let r = try run(cairnBinary, args + ["--store", root])
            #expect(r.status == 2, "\(damage), \(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("store index") && r.stderr.contains("cairn fsck --repair"),
                    "\(damage), \(args): \(r.stderr)")
            #expect(readFile(index) == indexBytes, "\(damage): \(args) wrote to the index")
        }
        #expect(readFile(root + "/journal") == journal)
        #expect(try FileManager.default.subpathsOfDirectory(atPath: root + "/objects").sorted() == objects)
        let fsck = try cairn(root, "fsck")
        #expect(fsck.status == 1 && fsck.stdout.contains("error: damaged-index"))
        let repair = try cairn(root, "fsck", "--repair", "--json")
        #expect(repair.status == 0, "\(repair.stderr)")
        let parsed = try JSONSerialization.jsonObject(with: Data(repair.stdout.utf8)) as? [String: Any]
        #expect((parsed?["repair"] as? [String: Any])?["action"] as? String == "rebuilt-index")
        #expect(try cairn(root, "alias", "history", "task-api@production").stdout.contains("bad replies"))
    }

    /// `cairn index rebuild` killed with SIGKILL at random moments leaves the old index or the
    /// new one: every command then either refuses (old, damaged) or answers exactly as before.
    @Test func aRebuildKilledAtAnyMomentLeavesTheOldIndexOrTheNew() throws {
        let t = TempDir()
        let root = try populatedStore(t)
        do {
            let s = try ArtifactStore(root: root)
            let targets = try s.artifacts().map(\.id)
            for i in 0..<300 { try s.setAlias("bulk-\(i % 7)@prod", to: targets[i % targets.count], reason: "move \(i)") }
        }
        let rows = try indexDump(root)
        try FileManager.default.removeItem(atPath: root + "/index.db")
        // How long a whole rebuild takes here, to spread the kills over it.
        var rng = SystemRandomNumberGenerator()
        let started = Date()
        #expect(try cairn(root, "index", "rebuild").status == 0)
        let full = Date().timeIntervalSince(started)
        try FileManager.default.removeItem(atPath: root + "/index.db")
        var sawOld = 0, sawNew = 0
        for i in 0..<24 {
            // Each round starts from a damaged index: emptied, so that the old file is still there.
            if try ArtifactStore.diagnose(root: root) == nil {
                _ = try FileDescriptor.openAppending(root + "/index.db", create: false).truncate(to: 0)
            }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: cairnBinary)
            p.arguments = ["index", "rebuild", "--store", root]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32(Double.random(in: 0...(full * 1.2), using: &rng) * 1e6))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if let damage = try ArtifactStore.diagnose(root: root) {
                sawOld += 1
                #expect(damage.finding == .damagedIndex || damage.finding == .indexBehindJournal, "round \(i): \(damage)")
                #expect(try cairn(root, "artifacts").status == 2)
            } else {
                sawNew += 1
                #expect(try indexDump(root) == rows, "round \(i): a mixture")
            }
        }
        _ = try ArtifactStore.repair(root: root)
        #expect(try indexDump(root) == rows)
        #expect(sawOld + sawNew == 24)
    }
}
