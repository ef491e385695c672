import Foundation
import Testing
@testable import CairnStore

@Suite("Garbage collection")
struct GCTests {
    @Test func gcKeepsRootsAndTheirAncestorsAndRemovesTheRest() throws {
        let f = try PipelineFixture()
        let store = f.store
        // A second run whose outputs nothing keeps: an adapter from a failed experiment.
        let run2 = try store.beginRun(RunInfo(pipeline: "task-api", commit: "badc0de"))
        let exe = try store.beginStage(run: run2, stage: "sft")
        try store.record(execution: exe, .used, f.ids["unrelated"]!, role: "data")
        let junk = try store.addGenerated(path: f.t.write("out/junk", String(repeating: "j", count: 5000)), kind: .adapter, execution: exe).artifact.id
        try store.finishStage(execution: exe, status: .failed)
        try store.finishRun(run2, status: .failed)
        try store.setAlias("task-api@production", to: f.ids["aligned"]!)
        let junkBlob = try store.manifest(junk).entries[0].blob

        // Young artifacts are protected by the grace period.
        let young = try store.collectGarbage(GCOptions(keepRuns: 0, graceSeconds: 3600))
        #expect(young.collected.isEmpty)

        let dry = try store.collectGarbage(GCOptions(dryRun: true, keepRuns: 0, graceSeconds: 0))
        let expected = Set([junk, f.ids["unrelated"]!])
        #expect(Set(dry.collected.map(\.id)) == expected)
        #expect(store.blobs.exists(junkBlob))  // a dry run changes nothing

        let report = try store.collectGarbage(GCOptions(keepRuns: 0, graceSeconds: 0))
        #expect(Set(report.collected.map(\.id)) == expected)
        #expect(report.removedBlobs == 4)  // two content blobs and two manifests
        #expect(!store.blobs.exists(junkBlob))
        // The alias target and its whole provenance survive, byte for byte.
        for name in ["aligned", "merged", "adapter", "base", "sft.jsonl", "pref.jsonl"] {
            let dir = f.t.sub("check-\(name)")
            try store.checkout(f.ids[name]!, into: dir)
            #expect(try store.identify(path: dir) == f.ids[name]!)
        }
        // The collected record and its lineage stay; reading its content is a clear error.
        #expect(try store.artifact(junk)?.collectedAt != nil)
        #expect(try store.ancestors(of: junk).nodes.count == 2)
        #expect(throws: StoreError.self) { try store.checkout(junk, into: f.t.sub("gone")) }
        #expect(try fsckErrors(store).isEmpty)
        #expect(try store.fsck().findings.isEmpty)
        // The same content added again comes back under the same id.
        let back = try store.add(path: f.t.sub("out/junk"), kind: .adapter)
        #expect(back.created && back.artifact.id == junk && back.artifact.collectedAt == nil)
        try store.checkout(junk, into: f.t.sub("back"))
    }

    @Test func newestRunsAndUnfinishedRunsAndPinnedArtifactsAreKept() throws {
        let t = TempDir()
        let store = try t.makeStore()
        var outputs: [ArtifactID] = []
        for i in 0..<4 {
            let run = try store.beginRun(RunInfo(pipeline: "p"))
            let exe = try store.beginStage(run: run, stage: "sft")
            outputs.append(try store.addGenerated(path: t.write("o\(i)", "output \(i)"), kind: .adapter, execution: exe).artifact.id)
            try store.finishStage(execution: exe, status: .succeeded)
            if i != 0 { try store.finishRun(run, status: .succeeded) }  // run 0 stays "running"
        }
        let pinned = try store.add(path: t.write("by-hand", "kept"), kind: .dataset, pin: true).artifact.id
        let loose = try store.add(path: t.write("loose", "not kept"), kind: .dataset).artifact.id
        let report = try store.collectGarbage(GCOptions(keepRuns: 2, graceSeconds: 0))
        // Kept: run 0 (unfinished), runs 2 and 3 (newest two), the pinned one.
        #expect(Set(report.collected.map(\.id)) == [outputs[1], loose])
        #expect(try store.artifact(pinned)?.collectedAt == nil)
    }

    /// gc running over and over while other processes add: no add loses a blob.
    @Test func gcIsSafeWhileAnotherProcessIsAdding() throws {
        let t = TempDir()
        let store = try t.makeStore()
        // Shared content: every add reuses blobs that gc would otherwise see as garbage.
        for i in 0..<40 { t.writeBytes("shared/\(i).bin", pseudoRandomBytes(2000, seed: UInt64(i))) }
        let loose = try store.add(path: t.sub("shared"), kind: .dataset).artifact.id  // not pinned: collectable
        _ = loose
        let adders = try (0..<2).map { p -> Process in
            let proc = Process()
            proc.executableURL = URL(fileURLWithPath: "/bin/sh")
            proc.arguments = ["-c", """
                while [ ! -e "$DIR/go" ]; do sleep 0.01; done
                for i in $(seq 1 12); do
                  mkdir -p "$DIR/v$1-$i" && cp -r "$DIR/shared" "$DIR/v$1-$i/shared" && echo "$1 $i" > "$DIR/v$1-$i/tag"
                  "$CAIRN" add "$DIR/v$1-$i" --kind dataset --store "$STORE" >/dev/null || exit 1
                done
                """, "sh", String(p)]
            proc.environment = ["CAIRN": cairnBinary, "STORE": store.root, "DIR": t.path, "PATH": "/usr/bin:/bin"]
            try proc.run()
            return proc
        }
        // The adders start together; gc runs back to back until both are done. (How many gc
        // runs fit depends on the machine's load; at least one starts while both still add.)
        FileManager.default.createFile(atPath: t.path + "/go", contents: nil)
        var gcRuns = 0, overlapped = false
        while adders.contains(where: { $0.isRunning }) {
            if gcRuns == 0 { overlapped = adders.allSatisfy { $0.isRunning } }
            let gc = try cairn(store.root, "gc", "--grace", "0", "--keep-runs", "0", "--json")
            #expect(gc.status == 0, "\(gc.stderr)")
            gcRuns += 1
        }
        for p in adders { #expect(p.terminationStatus == 0) }
        #expect(gcRuns >= 1 && overlapped)
        #expect(try fsckErrors(store).isEmpty)
        let kept = try store.artifacts()
        #expect(kept.count == 24)
        for a in kept {
            let dir = t.sub("co-\(a.id.hex.prefix(10))")
            try store.checkout(a.id, into: dir)
            #expect(try store.identify(path: dir) == a.id)
        }
    }
}
