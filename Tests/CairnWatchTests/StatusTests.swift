import CairnStore
import CairnSystem
import Foundation
import Testing
@testable import CairnWatch

@Suite("cairn status")
struct StatusTests {
    /// One screen: the queue's holder (read from /proc/locks, not by taking the lock), the
    /// branches handled, a running entry's stage and training step, runs and aliases.
    @Test func statusShowsTheWatcherTheQueueAndTheRunningStage() throws {
        let f = try GitFixture()
        let store = try ArtifactStore.initialize(at: f.store)
        #expect(try StoreStatus(store: store).queueHeld == false)
        do {
            let lock = try #require(WorkerLock(path: f.store + "/queue-worker.lock"))
            #expect(try StoreStatus(store: store).queueHeld)
            withExtendedLifetime(lock) {}
        }
        #expect(try StoreStatus(store: store).queueHeld == false)

        try store.setWatchedTip(repo: f.repo, branch: "main", tip: String(repeating: "a", count: 40), expected: nil)
        let (entry, _) = try store.enqueue(pipeline: "pipelines/quick", commit: String(repeating: "b", count: 40), repo: f.repo, branch: "main")
        try store.enqueue(pipeline: "pipelines/quick", commit: String(repeating: "c", count: 40), repo: f.repo, branch: "main")
        let run = try store.beginRun(RunInfo(pipeline: "quick"))
        let work = f.root + "/work"
        try FileManager.default.createDirectory(atPath: work + "/sft/train", withIntermediateDirectories: true)
        try "{\"step\": 1, \"loss\": 2.5}\n{\"step\": 2, \"loss\": 1.25}\n".write(toFile: work + "/sft/train/metrics.jsonl", atomically: false, encoding: .utf8)
        try store.setRunMetadata(run, .object(["work_dir": .string(work), "stage": .object(["name": .string("sft"), "execution": .number(1)])]))
        _ = try store.claimNextPending(pid: getpid())
        try store.markQueueRunning(entry.id, pid: getpid(), run: run)
        let artifact = try store.add(path: f.root + "/work/sft/train/metrics.jsonl", kind: .metrics).artifact.id
        try store.setAlias("quick@production", to: artifact)

        let s = try StoreStatus(store: store)
        #expect(s.branches.map(\.branch) == ["main"])
        #expect(s.queue.map(\.entry.state) == ["running", "pending"])
        #expect(s.queue[0].stage == "sft" && s.queue[0].step == 2 && s.queue[0].loss == 1.25)
        #expect(s.recentRuns.map(\.run.id) == [run])
        #expect(s.aliases.map(\.name) == ["quick@production"])

        let out = try f.cairn(["status"])
        #expect(out.status == 0, "\(out.err)")
        for text in ["watcher: not running", "main at aaaaaaaaaa", "queue: 1 running, 1 pending", "run \(run): sft step 2 loss 1.2500", "quick@production →"] {
            #expect(out.out.contains(text), "\(text) not in:\n\(out.out)")
        }
        let json = try f.cairn(["status", "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(json.out.utf8)) as? [String: Any])?["queue_held"] as? Bool == false)
    }
}
