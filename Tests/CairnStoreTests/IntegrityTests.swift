import Foundation
import Testing
@testable import CairnStore

@Suite("fsck, corruption and crashes")
struct IntegrityTests {
    /// Flips one byte of a file the store made read-only.
    func flipByte(_ path: String, at offset: Int) throws {
        try FS.setMode(path, 0o644)
        var bytes = readFile(path)!
        bytes[offset] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test func flippedByteIsFoundAndCheckoutFailsLoudly() throws {
        let t = TempDir()
        let store = try t.makeStore()
        let shared = pseudoRandomBytes(100_000, seed: 3)
        t.writeBytes("a/weights.bin", shared)
        t.write("a/config.json", "{}")
        t.writeBytes("b/weights.bin", shared)  // a second artifact holding the same blob
        let a = try store.add(path: t.sub("a"), kind: .baseModel).artifact.id
        let b = try store.add(path: t.sub("b"), kind: .mergedModel).artifact.id
        #expect(try fsckErrors(store).isEmpty)

        let hex = SHA256Hasher.hex(shared)
        try flipByte(store.blobs.path(hex), at: 54_321)
        let report = try store.fsck()
        let corrupt = report.findings.filter { $0.kind == .corruptBlob }
        #expect(corrupt.count == 1)
        #expect(corrupt.first?.subject == hex)
        #expect(corrupt.first?.artifacts == [a, b].sorted())
        #expect(corrupt.first?.message.contains(a.description) == true)
        #expect(report.errors == 1)

        // Checkout refuses and leaves no file with bad bytes behind.
        do {
            try store.checkout(a, into: t.sub("out"))
            Issue.record("checkout of a corrupt artifact succeeded")
        } catch let e as StoreError {
            #expect(e.kind == .integrity)
            #expect(e.message.contains(hex))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: t.sub("out")).isEmpty)

        // Through the CLI: fsck exits 1 and names the blob; checkout exits 1.
        let f = try cairn(store.root, "fsck")
        #expect(f.status == 1)
        #expect(f.stdout.contains("corrupt-blob") && f.stdout.contains(hex))
        let c = try cairn(store.root, "checkout", a.description, t.sub("out2"))
        #expect(c.status == 1)
        #expect(c.stderr.contains("corrupt"))
        #expect(!FileManager.default.fileExists(atPath: t.sub("out2/weights.bin")))
    }

    @Test func missingOrphanTempAndDanglingAreEachReported() throws {
        let t = TempDir()
        let store = try t.makeStore()
        let id = try store.add(path: t.write("d/x.txt", "x-content"), kind: .dataset).artifact.id
        let xHex = SHA256Hasher.hex(Array("x-content".utf8))
        try FS.removeFile(store.blobs.path(xHex))
        // An orphan blob, a leftover temp file from a dead writer and a stray file.
        let orphan = Array("nobody's".utf8)
        let batch = BlobBatch(store: store.blobs, durability: .perFile)
        _ = try batch.ingest(bytes: orphan)
        try batch.commit()
        t.write("store/objects/sha256/.tmp-999999-abc", "half")
        t.write("store/objects/sha256/zz", "stray")
        // A lineage edge to an artifact row that does not exist (foreign keys off, as a broken tool would).
        let run = try store.beginRun(RunInfo(pipeline: "p"))
        let exe = try store.beginStage(run: run, stage: "sft")
        try store.db.execute("PRAGMA foreign_keys=OFF")
        try store.db.run("INSERT INTO lineage(execution, relation, artifact, role) VALUES(?, 'used', 4242, 'data')", [.int(exe)])

        let report = try store.fsck()
        let kinds = Dictionary(grouping: report.findings, by: \.kind)
        #expect(kinds[.missingBlob]?.first?.subject == xHex)
        #expect(kinds[.missingBlob]?.first?.artifacts == [id])
        #expect(kinds[.orphanBlob]?.first?.subject == SHA256Hasher.hex(orphan))
        #expect(kinds[.leftoverTemp]?.count == 1)
        #expect(kinds[.strayFile]?.count == 1)
        #expect(kinds[.danglingEdge]?.first?.message.contains("4242") == true)
        // The row was written behind the journal's back: the replayed journal does not have it.
        #expect(kinds[.indexDiffersFromJournal]?.map(\.subject) == ["lineage execution=\(exe) relation=\"used\" artifact=4242 role=\"data\""])
        #expect(report.errors == 3)
        #expect(report.warnings == 3)
        #expect(kinds[.orphanBlob]?.first?.severity == .warning)
    }

    @Test func damagedIndexIsABadStoreErrorAndIsNotTouched() throws {
        let t = TempDir()
        do { _ = try t.makeStore() }
        let index = t.sub("store/index.db")
        try? FileManager.default.removeItem(atPath: index + "-wal")
        try? FileManager.default.removeItem(atPath: index + "-shm")
        let garbage = pseudoRandomBytes(8192, seed: 9)
        try Data(garbage).write(to: URL(fileURLWithPath: index))
        do {
            _ = try ArtifactStore(root: t.sub("store"))
            Issue.record("a damaged index opened")
        } catch let e as StoreError {
            #expect(e.exitCode == 2)
            #expect(e.message.contains("index.db"))
        }
        #expect(readFile(index) == garbage)
        let r = try cairn(t.sub("store"), "artifacts")
        #expect(r.status == 2)
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(readFile(index) == garbage)
        // No store at all.
        let none = try cairn(t.sub("nowhere"), "artifacts")
        #expect(none.status == 2)
        #expect(none.stderr.contains("cairn init"))
    }

    @Test func newerSchemaIsRefused() throws {
        let t = TempDir()
        do {
            let s = try t.makeStore()
            try s.db.execute("PRAGMA user_version = 99")
        }
        #expect(throws: StoreError.self) { _ = try ArtifactStore(root: t.sub("store")) }
    }

    /// Random SIGKILLs during `cairn add`: afterwards no corrupt or missing blob, no index row
    /// pointing at a missing blob, and every indexed artifact checks out byte for byte.
    @Test func killNineDuringAddLeavesNothingHalfWritten() throws {
        let t = TempDir()
        let store = try t.makeStore()
        // A tree with many small files (batched syncfs path) and a few big ones (streamed).
        for i in 0..<60 { t.writeBytes("data/small/\(i).bin", pseudoRandomBytes(3000 + i * 97, seed: UInt64(i))) }
        for i in 0..<3 { t.writeBytes("data/big/\(i).bin", pseudoRandomBytes(6 << 20, seed: UInt64(100 + i))) }
        // How long one add of a changed tree takes here, to spread the kills over it (a fixed
        // window missed every add on a fast machine: they finish in about 50 ms).
        #expect(try cairn(store.root, "add", t.sub("data"), "--kind", "dataset").status == 0)
        t.writeBytes("data/big/round.bin", pseudoRandomBytes(5 << 20, seed: 1999))
        let started = Date()
        #expect(try cairn(store.root, "add", t.sub("data"), "--kind", "dataset").status == 0)
        let full = Date().timeIntervalSince(started)
        var killedMidway = 0
        for round in 0..<24 {
            // Vary the tree so that each round has new blobs to write.
            t.writeBytes("data/small/round.bin", pseudoRandomBytes(5000, seed: UInt64(1000 + round)))
            t.writeBytes("data/big/round.bin", pseudoRandomBytes(5 << 20, seed: UInt64(2000 + round)))
            let p = Process()
            p.executableURL = URL(fileURLWithPath: cairnBinary)
            p.arguments = ["add", t.sub("data"), "--kind", "dataset", "--store", store.root]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(UInt32(Double.random(in: 0...(full * 1.2)) * 1e6))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            if p.terminationReason == .uncaughtSignal { killedMidway += 1 }
            let errors = try fsckErrors(store)
            #expect(errors.isEmpty, "round \(round): \(errors.map(\.message))")
        }
        #expect(killedMidway > 0)
        // Everything the index holds is whole.
        for a in try store.artifacts() {
            let dir = t.sub("co-\(a.id.hex.prefix(8))")
            try store.checkout(a.id, into: dir)
            #expect(try store.identify(path: dir) == a.id)
        }
        // And a complete add afterwards works and gc clears the leftovers.
        t.write("data/small/round.bin", "final")
        try FS.removeFile(t.sub("data/big/round.bin"))
        let final = try store.add(path: t.sub("data"), kind: .dataset).artifact.id
        #expect(try store.identify(path: t.sub("data")) == final)
        _ = try store.collectGarbage(GCOptions(graceSeconds: 0))
        let after = try store.fsck()
        #expect(after.findings.isEmpty, "\(after.findings.map(\.message))")
    }
}
