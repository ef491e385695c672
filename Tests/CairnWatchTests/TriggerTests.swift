import CairnStore
import Foundation
import Testing

/// A tiny model (tokenizer + `model init`) made once per test process, committed into the
/// test repositories as their pipelines' base model.
enum TinyBase {
    static let dir: String = {
        let d = NSTemporaryDirectory() + "cairn-watch-base-\(getpid())"
        try? FileManager.default.removeItem(atPath: d)
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let corpus = (0..<200).map { "Please create the task \($0) due monday.\n{\"action\": \"create\", \"id\": \($0)}" }.joined(separator: "\n")
        try! corpus.write(toFile: d + "/corpus.txt", atomically: true, encoding: .utf8)
        try! "{\"hidden_size\": 32, \"intermediate_size\": 64, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"max_position_embeddings\": 128}"
            .write(toFile: d + "/model.json", atomically: true, encoding: .utf8)
        for args in [["tokenizer", "train", "--corpus", d + "/corpus.txt", "--vocab-size", "300", "--out", d + "/tok"],
                     ["model", "init", "--arch", "llama", "--config", d + "/model.json", "--tokenizer", d + "/tok", "--out", d + "/base", "--seed", "1"]] {
            let r = try! shell(cairnBinary(), args + ["--store", d + "/store"])
            precondition(r.status == 0, r.err)
        }
        return d + "/base"
    }()
}

/// A repository with one quick pipeline (SFT of a few steps, gates open) in `dir`.
func quickPipeline(_ f: GitFixture, dir: String = "pipelines/quick", id: String = "quick", steps: Int = 2) throws -> [String: String] {
    var files: [String: String] = [
        "\(dir)/pipeline.yaml": """
            pipeline_id: \(id)
            base_model: ./base
            output_dir: ./out
            stages:
              - name: sft
                config_path: ./sft_config.yaml
                timeout_minutes: 5
                retry_count: 0
            validation:
              max_loss: 1000
            datasets:
              sft: data/sft.jsonl
            checkpoint_every_n_steps: 1

            """,
        "\(dir)/sft_config.yaml": "max_steps: \(steps)\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n",
        "\(dir)/data/sft.jsonl": (0..<8).map { "{\"prompt\": \"Please create the task \($0) due monday.\\n\", \"completion\": \"{\\\"action\\\": \\\"create\\\", \\\"id\\\": \($0)}\"}" }
            .joined(separator: "\n") + "\n",
    ]
    for name in try FileManager.default.contentsOfDirectory(atPath: TinyBase.dir) {
        files["\(dir)/base/\(name)"] = try String(contentsOfFile: TinyBase.dir + "/" + name, encoding: .isoLatin1)
    }
    return files
}

@discardableResult
/// Commits binary-safe copies of the base model (the map above is only for text files).
func commitPipeline(_ f: GitFixture, dir: String = "pipelines/quick", id: String = "quick", steps: Int = 2, message: String = "add pipeline") throws -> String {
    var files = try quickPipeline(f, dir: dir, id: id, steps: steps)
    files = files.filter { !$0.key.contains("/base/") }
    try FileManager.default.createDirectory(atPath: f.repo + "/" + dir, withIntermediateDirectories: true)
    if !FileManager.default.fileExists(atPath: f.repo + "/\(dir)/base") { try FileManager.default.copyItem(atPath: TinyBase.dir, toPath: f.repo + "/\(dir)/base") }
    return try f.commit(message, files)
}

@Suite("Trigger: runs from commits", .serialized)
struct TriggerTests {
    func runs(_ f: GitFixture) throws -> [RunRecord] { try ArtifactStore(root: f.store).runs().reversed() }

    @Test func aConfigCommitStartsExactlyOneRunRecordingTheCommitAndAReadmeCommitNone() throws {
        let f = try GitFixture()
        try f.commit("readme", ["README.md": "# models\n"])
        try commitPipeline(f)
        var r = try f.cairn(["trigger", f.repo, "--wait"])
        #expect(r.status == 0, "\(r.err)")
        #expect(try runs(f).count == 1)  // first sight: the pipeline at the tip
        try f.commit("docs only", ["README.md": "# models\nmore words\n"])
        r = try f.cairn(["trigger", f.repo, "--wait"])
        let afterDocs = try runs(f).count
        #expect(r.err.contains("nothing to run") && afterDocs == 1)

        let c = try f.commit("quick: more steps", ["pipelines/quick/sft_config.yaml": "max_steps: 3\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n"])
        r = try f.cairn(["trigger", f.repo, "--wait"])
        #expect(r.status == 0)
        let all = try runs(f)
        #expect(all.count == 2)
        let run = try #require(all.last)
        #expect(run.status == .succeeded && run.commit == c && run.branch == "main" && run.author == "Ada <ada@example.com>" && run.message == "quick: more steps")
        #expect(run.repo?.hasSuffix("/repo/.git") == true)
        // Lineage of what the run made shows the commit.
        let store = try ArtifactStore(root: f.store)
        let adapter = try #require(try store.stages(run: run.id).first.flatMap { try store.edges(execution: $0.id, .generated).first { $0.role == "adapter" } })
        let lineage = try f.cairn(["lineage", adapter.artifact.description])
        #expect(lineage.out.contains("@ \(c.prefix(10))"), "\(lineage.out)")
        // A replayed hook or event starts nothing.
        r = try f.cairn(["trigger", f.repo, "--wait"])
        #expect(try runs(f).count == 2)
    }

    /// A committed sweep file starts the sweep at that commit: its variants are runs of the
    /// commit, tagged with the sweep; the pipeline itself is not run again for it. A later commit
    /// to the pipeline runs the pipeline, not the sweep.
    @Test func aCommittedSweepFileStartsTheSweepAndNotAPipelineRun() throws {
        let f = try GitFixture()
        try commitPipeline(f)
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        let c = try f.commit("sweep the learning rate", ["pipelines/quick/sweep-lr.yaml":
            "pipeline: .\nspace:\n  sft.learning_rate: [1.0e-3, 2.0e-3]\nobjective: sft.final_loss\npromote_best_to: quick@best\n"])
        let r = try f.cairn(["trigger", f.repo, "--wait"])
        #expect(r.status == 0, "\(r.err)")
        let all = try runs(f)
        let variants = all.filter { $0.metadata["sweep"] != nil }
        #expect(all.count == 3 && variants.count == 2, "\(all.map { ($0.id, $0.metadata["sweep"] != nil) })")
        #expect(variants.allSatisfy { $0.commit == c && $0.message == "sweep the learning rate" && $0.metadata["sweep"]?["id"]?.stringValue == "sweep-lr" })
        #expect(variants.allSatisfy { $0.metadata["queue_entry"] != nil })
        let store = try ArtifactStore(root: f.store)
        #expect(try store.history("quick@best").last.map { m in variants.contains { $0.id == m.run } } == true)
        try f.commit("quick: more steps", ["pipelines/quick/sft_config.yaml": "max_steps: 3\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n"])
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        let after = try runs(f)
        #expect(after.count == 4 && after.last?.metadata["sweep"] == nil)
    }

    @Test func twoPipelinesACommitTouchingOneRunsOnlyThatOne() throws {
        let f = try GitFixture()
        try commitPipeline(f, dir: "pipelines/one", id: "one")
        try commitPipeline(f, dir: "pipelines/two", id: "two")
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        #expect(Set(try runs(f).map(\.pipeline)) == ["one", "two"])
        try f.commit("tune two", ["pipelines/two/sft_config.yaml": "max_steps: 3\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n"])
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        let all = try runs(f)
        #expect(all.map(\.pipeline).suffix(1) == ["two"] && all.count == 3)
    }

    @Test func aMalformedConfigFailsItsRunWithAClearErrorAndTheNextCommitRuns() throws {
        let f = try GitFixture()
        try commitPipeline(f)
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        let bad = try f.commit("typo", ["pipelines/quick/sft_config.yaml": "max_steps: 2\nlearning_rte: 1.0e-3\n"])
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        let failed = try #require(try runs(f).last)
        #expect(failed.status == .failed && failed.commit == bad)
        let err = failed.metadata["error"]?.stringValue ?? ""
        #expect(err.contains("sft_config.yaml") && err.contains(":2") && err.contains("did you mean 'learning_rate'"), "\(err)")
        let q = try f.cairn(["queue", "--all"])
        #expect(q.out.contains("failed"))
        try f.commit("fix", ["pipelines/quick/sft_config.yaml": "max_steps: 2\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n"])
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        #expect(try runs(f).last?.status == .succeeded)
    }

    @Test func aPathLeavingTheRepositoryFailsTheRunNamingPathAndCommit() throws {
        let f = try GitFixture()
        try commitPipeline(f)
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        let c = try f.commit("escape", ["pipelines/quick/pipeline.yaml": try String(contentsOfFile: f.repo + "/pipelines/quick/pipeline.yaml", encoding: .utf8)
            .replacingOccurrences(of: "sft: data/sft.jsonl", with: "sft: ../../../etc/passwd")])
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        let failed = try #require(try runs(f).last)
        let err = failed.metadata["error"]?.stringValue ?? ""
        #expect(failed.status == .failed && err.contains("../../../etc/passwd") && err.contains(String(c.prefix(10))) && err.contains("leaves the repository"), "\(err)")
    }
}

extension TriggerTests {
    @Test func anArtifactRolledBackFromIsNeverPromotedAgainByATriggeredRun() throws {
        let f = try GitFixture()
        try commitPipeline(f)
        let path = f.repo + "/pipelines/quick/pipeline.yaml"
        let yaml = try String(contentsOfFile: path, encoding: .utf8) + "promote_to: quick@prod\n"
        try f.commit("promote", ["pipelines/quick/pipeline.yaml": yaml])
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        let store = try ArtifactStore(root: f.store)
        let a1 = try store.resolve("quick@prod")
        let config3 = "max_steps: 3\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n"
        try f.commit("three steps", ["pipelines/quick/sft_config.yaml": config3])
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        let a2 = try store.resolve("quick@prod")
        #expect(a2 != a1)
        #expect(try f.cairn(["rollback", "quick@prod", "--reason", "a2 regressed"]).status == 0)
        #expect(try store.resolve("quick@prod") == a1)
        // A new commit that trains the same artifact again (the config only gains a comment):
        // the run succeeds, the alias stays where the rollback put it.
        try f.commit("same training, new commit", ["pipelines/quick/sft_config.yaml": "# unchanged training\n" + config3])
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        let again = try #require(try store.runs().first)
        #expect(again.status == .succeeded)
        #expect(try store.resolve("quick@prod") == a1)
        // A commit that makes a different artifact may promote.
        try f.commit("four steps", ["pipelines/quick/sft_config.yaml": config3.replacingOccurrences(of: "max_steps: 3", with: "max_steps: 4")])
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        let a3 = try store.resolve("quick@prod")
        #expect(a3 != a1 && a3 != a2)
    }
}
