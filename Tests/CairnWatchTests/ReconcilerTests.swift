import CairnGit
import CairnStore
import Foundation
import Testing
@testable import CairnWatch

/// The trigger rules and the reconcile, on real repositories made with git.
@Suite("Reconcile")
struct ReconcilerTests {
    func reconcile(_ f: GitFixture, branches: [String] = []) throws -> Reconciler.Report {
        let store = try ArtifactStore.initialize(at: f.store)
        return try Reconciler(repository: try GitRepository(path: f.repo), store: store, branches: branches).reconcile()
    }

    func twoPipelines() throws -> GitFixture {
        let f = try GitFixture()
        try f.commit("two pipelines", [
            "README.md": "# models\n",
            "pipelines/a/pipeline.yaml": pipelineYAML("a", dataset: "../../data/a.jsonl"),
            "pipelines/a/sft_config.yaml": "lora_r: 8\n",
            "pipelines/b/pipeline.yaml": pipelineYAML("b", dataset: "../../data/b.jsonl"),
            "pipelines/b/sft_config.yaml": "lora_r: 8\n",
            "data/a.jsonl": "{}\n", "data/b.jsonl": "{}\n",
        ])
        return f
    }

    @Test func aCommitRunsExactlyThePipelinesItTouches() throws {
        let f = try twoPipelines()
        // First sight of the branch: every pipeline at its tip (the desired state).
        let first = try reconcile(f)
        #expect(first.queued.map(\.pipeline) == ["pipelines/a", "pipelines/b"] && first.firstSeen == ["main"])
        #expect(try reconcile(f).queued.isEmpty)  // nothing new: nothing queued

        try f.commit("docs", ["README.md": "# models\nmore\n"])
        #expect(try reconcile(f).queued.isEmpty)

        let c1 = try f.commit("tune a", ["pipelines/a/sft_config.yaml": "lora_r: 16\n"])
        let r1 = try reconcile(f)
        #expect(r1.queued.map(\.pipeline) == ["pipelines/a"] && r1.queued.map(\.commit) == [c1])

        // A dataset outside the pipeline's folder, named in its pipeline.yaml.
        let c2 = try f.commit("more b data", ["data/b.jsonl": "{}\n{}\n"])
        let r2 = try reconcile(f)
        #expect(r2.queued.map(\.pipeline) == ["pipelines/b"] && r2.queued.map(\.commit) == [c2])

        // A sweep file starts its sweep, not the pipeline; anything else in the pipeline's folder runs the pipeline.
        try f.commit("sweep", ["pipelines/a/sweep.yaml": "learning_rate: [1e-4, 2e-4]\n"])
        #expect(try reconcile(f).queued.map(\.pipeline) == ["sweep:pipelines/a/sweep.yaml"])
        try f.commit("notes", ["pipelines/a/NOTES.md": "why the learning rate\n"])
        #expect(try reconcile(f).queued.map(\.pipeline) == ["pipelines/a"])
    }

    @Test func severalCommitsTogetherRunTheNewestPerPipelineAndReplaysQueueNothing() throws {
        let f = try twoPipelines()
        _ = try reconcile(f)
        try f.commit("a1", ["pipelines/a/sft_config.yaml": "lora_r: 4\n"])
        let b = try f.commit("b1", ["data/b.jsonl": "{\"x\": 1}\n"])
        let a2 = try f.commit("a2", ["pipelines/a/sft_config.yaml": "lora_r: 32\n"])
        try f.commit("docs", ["README.md": "x\n"])
        let r = try reconcile(f)
        #expect(r.commits["main"] == 4)
        #expect(Dictionary(uniqueKeysWithValues: r.queued.map { ($0.pipeline, $0.commit) }) == ["pipelines/a": a2, "pipelines/b": b])
        // The same events again, and a reconcile whose tip record was lost (a crash between
        // queueing and recording): the queue's uniqueness keeps every run single.
        #expect(try reconcile(f).queued.isEmpty)
        let store = try ArtifactStore(root: f.store)
        let repoKey = try Reconciler(repository: try GitRepository(path: f.repo), store: store, branches: []).repoKey
        let before = try store.queue().count
        _ = try store.setWatchedTip(repo: repoKey, branch: "main", tip: try f.git(["rev-parse", "HEAD~4"]), expected: try f.git(["rev-parse", "HEAD"]))
        #expect(try reconcile(f).queued.isEmpty)
        #expect(try store.queue().count == before)
    }

    @Test func aForcePushIsHandledWithoutError() throws {
        let f = try twoPipelines()
        _ = try reconcile(f)
        try f.commit("a1", ["pipelines/a/sft_config.yaml": "lora_r: 4\n"])
        _ = try reconcile(f)
        try f.git(["reset", "-q", "--hard", "HEAD~1"])
        let rewritten = try f.commit("a1 again, rewritten", ["pipelines/a/sft_config.yaml": "lora_r: 2\n"])
        let r = try reconcile(f)
        #expect(r.forcePushed == ["main"])
        #expect(r.queued.map(\.commit) == [rewritten])
    }

    @Test func nestedBranchFoldersAreWatchedBranches() throws {
        let f = try twoPipelines()
        try f.git(["checkout", "-q", "-b", "team/feature"])
        _ = try reconcile(f, branches: ["team/feature"])
        let c = try f.commit("feature", ["pipelines/b/sft_config.yaml": "lora_r: 2\n"])
        let r = try reconcile(f, branches: ["team/feature"])
        #expect(r.queued.map(\.commit) == [c] && r.queued.map(\.branch) == ["team/feature"])
        #expect(try GitRepository(path: f.repo).branches() == ["main", "team/feature"])
    }

    @Test func runsReadTheCommitNeverTheWorkTree() throws {
        let f = try twoPipelines()
        let c = try f.git(["rev-parse", "HEAD"])
        try f.write("pipelines/a/sft_config.yaml", "lora_r: 999\n")  // not committed
        let repo = try GitRepository(path: f.repo)
        let out = f.root + "/export"
        try repo.export(CommitID(c)!, into: out)
        #expect(try String(contentsOfFile: out + "/pipelines/a/sft_config.yaml", encoding: .utf8) == "lora_r: 8\n")
        #expect(try repo.file("pipelines/a/sft_config.yaml", at: CommitID(c)!)?.data == Data("lora_r: 8\n".utf8))
    }

    /// A triggered run that fails as it starts — its base model is not in the commit, or a stage
    /// config has a key no stage knows — has one record, failed, with the error and its queue
    /// entry (a failure after the orchestrator had recorded the run used to add a second).
    @Test(arguments: [[:], ["pipelines/a/base/config.json": "{}\n", "pipelines/a/sft_config.yaml": "lora_rr: 8\n"]])
    func aTriggeredRunThatCannotStartHasExactlyOneRecord(change: [String: String]) throws {
        let f = try twoPipelines()
        if !change.isEmpty { _ = try f.commit("a bad stage config", change) }
        let store = try ArtifactStore.initialize(at: f.store)
        let head = try f.git(["rev-parse", "HEAD"])
        let entry = try store.enqueue(pipeline: "pipelines/a", commit: head, repo: f.repo, branch: "main").entry
        let code = QueueRunner.run(entry: entry.id, store: store, options: QueueRunner.Options(executable: cairnBinary()))
        #expect(code == 2)
        let runs = try store.runs()
        #expect(runs.count == 1, "\(runs.map { ($0.id, $0.pipeline, $0.status) })")
        let e = try store.queueEntry(entry.id)
        #expect(e?.state == "failed" && e?.run == runs.first?.id)
        #expect(runs.first?.status == .failed && runs.first?.metadata["queue_entry"]?.numberValue == Double(entry.id))
        #expect(runs.first?.metadata["error"]?.stringValue?.isEmpty == false)
        // Named by its pipeline_id whichever way it failed, as a run that starts is.
        #expect(runs.first?.pipeline == "a")
    }

    @Test func aSymlinkLeavingTheRepositoryIsRefusedNamingPathAndCommit() throws {
        let f = try twoPipelines()
        try FileManager.default.createSymbolicLink(atPath: f.repo + "/data/secret.jsonl", withDestinationPath: "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: f.repo + "/data/inside.jsonl", withDestinationPath: "a.jsonl")
        let c = try f.commit("links", [:])
        let repo = try GitRepository(path: f.repo)
        #expect { try repo.export(CommitID(c)!, into: f.root + "/export") } throws: { e in
            "\(e)".contains("data/secret.jsonl") && "\(e)".contains(String(c.prefix(10))) && "\(e)".contains("leaves the repository")
        }
        #expect(!FileManager.default.fileExists(atPath: f.root + "/export"))
        #expect(GitRepository.staysInside(link: "data/inside.jsonl", target: "a.jsonl"))
        #expect(!GitRepository.staysInside(link: "data/x", target: "../../x"))
    }
}
