import CairnStore
import Foundation
import Testing
@testable import CairnPipeline

/// The orchestrator end to end, through the cairn executable, on copies of pipelines/task-api.
@Suite("Pipeline runs", .serialized)
struct PipelineRunTests {
    func stages(_ ws: Workspace, run: Int64) throws -> [StageExecutionRecord] { try ws.openStore().stages(run: run) }

    @Test func exampleRunsEndToEndGatesMeasureLearningAndTheCacheReusesStages() throws {
        let ws = try Workspace()
        let r = try ws.run()
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        let run = try #require(runNumber(r))
        let final = try #require(finalArtifact(r))
        let store = try ws.openStore()
        #expect(try store.run(run)?.status == .succeeded)
        let ex = try stages(ws, run: run)
        #expect(ex.map(\.stage) == ["sft", "merge", "dpo"])
        #expect(ex.allSatisfy { $0.status == .succeeded })
        // The journal followed the training checkpoints: the last one is DPO's newest (every
        // checkpoint_every_n_steps = 20 of its 32 steps).
        let journal = try #require(try store.run(run)?.metadata)
        #expect(journal["checkpoint"]?["stage"]?.stringValue == "dpo")
        #expect(journal["checkpoint"]?["step"]?.numberValue == 20)
        func check(_ stage: String, _ name: String) -> JSONValue? {
            guard case .array(let cs)? = ex.first(where: { $0.stage == stage })?.gateReport?["checks"] else { return nil }
            return cs.first { $0["name"]?.stringValue == name }
        }
        // Real learning: ≥ 90% valid JSON after SFT (the base: about 0%), ≥ 0.9 preference accuracy after DPO.
        #expect((check("sft", "output_format_valid")?["value"]?.numberValue ?? 0) >= 0.9)
        #expect((check("dpo", "preference_accuracy")?["value"]?.numberValue ?? 0) >= 0.9)
        #expect((check("merge", "merge_logits_match")?["value"]?.numberValue ?? 1) < 1e-3)
        let base = try cairn(["check", "output_format_valid", "--model", ws.pipeline + "/base", "--data", ws.pipeline + "/data/eval_prompts.jsonl",
                              "--schema", ws.pipeline + "/schema.json", "--result", ws.root + "/base-check.json"], store: ws.store)
        #expect(base.status == 0)
        let baseResult = try JSONDecoder().decode([CheckResult].self, from: Data(contentsOf: URL(fileURLWithPath: ws.root + "/base-check.json")))
        #expect((baseResult.first?.value ?? 1) <= 0.1, "the base model already writes JSON: \(baseResult)")

        // The reference's pipeline_result.json, the promoted alias, and the whole chain in lineage.
        let result = try #require(JSONValue.parse(try String(contentsOfFile: ws.pipeline + "/artifacts/pipeline_result.json", encoding: .utf8)))
        for k in ["success", "pipeline_id", "final_model_path", "stages_completed", "total_time_seconds", "stage_results", "errors", "timestamp"] {
            #expect(result[k] != nil, "pipeline_result.json lacks \(k)")
        }
        #expect(result["success"] == .bool(true) && result["final_artifact"]?.stringValue == final)
        #expect(try store.resolve("task-api@production").description == final)
        let lineage = try cairn(["lineage", "task-api@production"], store: ws.store)
        for name in ["sft.jsonl", "preferences.jsonl", "sft_config.yaml", "dpo_config.yaml", "merged", "sft/adapter", "(as base_model)"] {
            #expect(lineage.out.contains(name), "lineage lacks \(name):\n\(lineage.out)")
        }

        // The report: one self-contained page with a curve per training stage, every gate, the lineage.
        let rep = try cairn(["report", String(run), "--out", ws.root + "/report"], store: ws.store)
        #expect(rep.status == 0, "\(rep.err)")
        let html = try String(contentsOfFile: ws.root + "/report/run-\(run).html", encoding: .utf8)
        #expect(html.components(separatedBy: "<svg").count - 1 == 4)  // lineage, sft loss, dpo loss, dpo margin
        // A training loss line per chart, and held-out loss lines when the trainer logs evaluations.
        #expect(html.components(separatedBy: "<polyline").count - 1 >= 3)
        #expect(html.contains("held-out loss") && html.contains("data-artifact=\"\(final.dropFirst(7))\""))
        for text in ["After sft", "After merge", "After dpo", "output_format_valid", "merge_logits_match", "preference_accuracy",
                     "no_harmful_content", "Lineage of the final model", final] {
            #expect(html.contains(text), "the report lacks \(text)")
        }
        #expect(!html.contains("<script") && !html.contains("http://") || html.contains("xmlns=\"http://www.w3.org/2000/svg\""))

        // Unchanged: every stage comes from the cache, same final artifact.
        let again = try ws.run()
        #expect(again.status == 0 && finalArtifact(again) == final)
        let run2 = try #require(runNumber(again))
        #expect(try stages(ws, run: run2).map(\.status) == [.cached, .cached, .cached])

        // A changed DPO config re-runs DPO only.
        try ws.setKey("dpo_config.yaml", "beta", "0.15")
        let third = try ws.run()
        #expect(third.status == 0, "\(third.out)\n\(third.err)")
        let run3 = try #require(runNumber(third))
        #expect(try stages(ws, run: run3).map(\.status) == [.cached, .cached, .succeeded])
        #expect(finalArtifact(third) != final)
    }

    /// SFT → merge → export: the GGUF is an artifact made from the merged model, its gate reads it
    /// back, and the alias still moves to the model.
    @Test func anExportStageStoresAGGUFMadeFromTheModel() throws {
        let ws = try Workspace(quick: true) { yaml in
            yaml.replacingOccurrences(of: "  - name: dpo\n    enabled: true\n    config_path: ./dpo_config.yaml",
                                      with: "  - name: dpo\n    enabled: false\n    config_path: ./dpo_config.yaml\n  - name: export\n    format: gguf\n    type: q8_0")
                .replacingOccurrences(of: "threshold: 0.9", with: "threshold: 0.0")
        }
        let r = try ws.run()
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        let run = try #require(runNumber(r))
        let ex = try stages(ws, run: run)
        #expect(ex.map(\.stage) == ["sft", "merge", "export"] && ex.allSatisfy { $0.status == .succeeded })
        guard case .array(let checks)? = ex.last?.gateReport?["checks"] else { Issue.record("no export gate"); return }
        #expect(checks.map { $0["name"]?.stringValue } == ["export_reads_back", "export_logits_match"])
        #expect(checks.allSatisfy { $0["status"]?.stringValue == "passed" }, "\(checks)")
        let store = try ws.openStore()
        let exports = try store.artifacts(kind: .export)
        try #require(exports.count == 1)
        #expect(exports[0].name.hasSuffix("task-api-v1.0-q8_0.gguf"))
        let lineage = try cairn(["lineage", exports[0].id.description], store: ws.store)
        #expect(lineage.out.contains("merged") && lineage.out.contains("sft.jsonl"), "\(lineage.out)")
        // The alias is the model; the GGUF is what it exported to.
        let model = try store.resolve("task-api@production")
        #expect(try store.artifact(model)?.kind == "merged-model")
        let file = ws.root + "/exported"
        #expect(try cairn(["checkout", exports[0].id.description, file], store: ws.store).status == 0)
        let names = try FileManager.default.contentsOfDirectory(atPath: file)
        #expect(names == ["task-api-v1.0-q8_0.gguf"])
        let back = try cairn(["model", "import", file + "/" + names[0], "--out", ws.root + "/back"], store: ws.store)
        #expect(back.status == 0 && back.out.contains("Q8_0"), "\(back.err)")
    }

    @Test func aFailedGateRejectsTheRunWithoutRetryOrPromotionAndReportsEveryCheck() throws {
        let ws = try Workspace(quick: true) { $0.replacingOccurrences(of: "max_loss: 2.0", with: "max_loss: 0.01") }
        let r = try ws.run()
        #expect(r.status == 1)
        let run = try #require(runNumber(r))
        let store = try ws.openStore()
        #expect(try store.run(run)?.status == .rejected)
        let ex = try stages(ws, run: run)
        #expect(ex.count == 1 && ex[0].stage == "sft" && ex[0].attempt == 1)
        guard case .array(let checks)? = ex[0].gateReport?["checks"] else { Issue.record("no gate report"); return }
        let names = checks.compactMap { $0["name"]?.stringValue }
        #expect(names == ["adapter_files_exist", "loss_acceptable", "no_nan_values", "heldout_loss", "output_format_valid"])
        #expect(checks.first { $0["name"]?.stringValue == "loss_acceptable" }?["status"]?.stringValue == "failed")
        #expect(checks.first { $0["name"]?.stringValue == "adapter_files_exist" }?["status"]?.stringValue == "passed")
        #expect(throws: (any Error).self) { try store.resolve("task-api@production") }
        #expect(r.out.contains("loss_acceptable failed"))
    }

    @Test func aFailingStageIsRetriedWithBackoffThenTheRunFails() throws {
        let ws = try Workspace(quick: true)
        try ws.setKey("sft_config.yaml", "learning_rate", "1.0e+30")  // the loss becomes NaN: exit 1
        let r = try ws.run()
        #expect(r.status == 1)
        let run = try #require(runNumber(r))
        let ex = try stages(ws, run: run)
        #expect(ex.map(\.attempt) == [1, 2, 3])  // retry_count 2
        #expect(ex.allSatisfy { $0.status == .failed && ($0.error ?? "").contains("exit status 1") })
        #expect(try ws.openStore().run(run)?.status == .failed)
        #expect(r.out.contains("sft failed"))
    }

    @Test func aStagePastItsTimeoutIsStoppedWithItsProcessesWithinFiveSeconds() throws {
        let ws = try Workspace { $0.replacingOccurrences(of: "timeout_minutes: 30\n    retry_count: 2", with: "timeout_minutes: 0.03\n    retry_count: 0") }
        try ws.setKey("sft_config.yaml", "epochs", "400")
        let r = try ws.run()
        #expect(r.status == 1)
        let run = try #require(runNumber(r))
        let ex = try stages(ws, run: run)
        #expect(ex.count == 1 && ex[0].status == .failed)
        #expect((ex[0].error ?? "").contains("timed out"))
        let took = (ex[0].finishedAt ?? 0) - ex[0].startedAt
        #expect(took >= 1.8 && took < 1.8 + 5, "stopped after \(took) s")
        // Nothing it started is left: no process runs in this workspace.
        let left = (try FileManager.default.contentsOfDirectory(atPath: "/proc")).filter { Int($0) != nil }.filter {
            ((try? String(contentsOfFile: "/proc/\($0)/cmdline", encoding: .utf8)) ?? "").contains(ws.root)
        }
        #expect(left.isEmpty, "still running: \(left)")
    }
}

/// SIGKILL at several moments, then `cairn resume`: the same final artifact as an uninterrupted run.
@Suite("Pipeline resume", .serialized)
struct PipelineResumeTests {
    static func quickWorkspace(saveIntermediate: Bool = true) throws -> Workspace {
        // Short training passes no quality gate; these runs are about resuming, so the gates are opened.
        try Workspace(quick: true) {
            $0.replacingOccurrences(of: "checkpoint_every_n_steps: 20", with: "checkpoint_every_n_steps: 4")
                .replacingOccurrences(of: "threshold: 0.9", with: "threshold: 0.0").replacingOccurrences(of: "min_accuracy: 0.9", with: "min_accuracy: 0.0")
                .replacingOccurrences(of: "save_intermediate: true", with: "save_intermediate: \(saveIntermediate)")
        }
    }

    /// Starts `cairn run` in the background, waits until `trigger` exists in its work directory,
    /// SIGKILLs it (its stage processes die with it), and returns the run number.
    func killWhen(_ ws: Workspace, _ trigger: String) throws -> Int64 {
        let p = try ws.start()
        let deadline = Date().addingTimeInterval(120)
        let work = ws.pipeline + "/artifacts/run-1/"
        while !FileManager.default.fileExists(atPath: work + trigger) && p.isRunning && Date() < deadline { usleep(5_000) }
        #expect(p.isRunning, "the run ended before \(trigger) appeared")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        return 1
    }

    /// SIGTERM (a daemon shutting down, Ctrl-C): the running stage finishes its step, writes a
    /// checkpoint of it, and the run is left interrupted; resuming gives the same final artifact.
    @Test func aRunStoppedWithSIGTERMCheckpointsItsStageAndResumes() throws {
        let reference = try Self.quickWorkspace()
        let want = try #require(finalArtifact(try reference.run()))
        let ws = try Workspace(quick: true) {
            $0.replacingOccurrences(of: "checkpoint_every_n_steps: 20", with: "checkpoint_every_n_steps: 1000")
                .replacingOccurrences(of: "threshold: 0.9", with: "threshold: 0.0").replacingOccurrences(of: "min_accuracy: 0.9", with: "min_accuracy: 0.0")
        }
        let p = try ws.start()
        let metrics = ws.pipeline + "/artifacts/run-1/sft/train/metrics.jsonl"
        let deadline = Date().addingTimeInterval(60)
        while ((try? String(contentsOfFile: metrics, encoding: .utf8)) ?? "").isEmpty && p.isRunning && Date() < deadline { usleep(2_000) }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let store = try ws.openStore()
        #expect(try store.run(1)?.status == .interrupted)
        #expect(try store.stages(run: 1).first?.status == .interrupted)
        // The only checkpoint is the one SIGTERM asked for (the periodic ones are every 1000 steps).
        let cps = (try? FileManager.default.contentsOfDirectory(atPath: ws.pipeline + "/artifacts/run-1/sft/train/checkpoints")) ?? []
        #expect(cps.count == 1 && cps[0].hasPrefix("checkpoint-"), "\(cps)")
        let resumed = try cairn(["resume", "1", "--quiet"], store: ws.store)
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(finalArtifact(resumed) == want)
        let log = (try? String(contentsOfFile: ws.pipeline + "/artifacts/run-1/sft/attempt-2.log", encoding: .utf8)) ?? ""
        #expect(log.contains("resumed from \(cps.first ?? "?")"), "\(log)")
    }

    @Test(arguments: ["sft/train/checkpoints/checkpoint-4", "sft/gate.json", "merge/attempt-1.log", "dpo/train/checkpoints/checkpoint-4", "dpo/aligned"])
    func aRunKilledAtAnyMomentResumesToTheSameFinalArtifact(trigger: String) throws {
        let reference = try Self.quickWorkspace(saveIntermediate: false)
        let r = try reference.run()
        #expect(r.status == 0, "\(r.out)\n\(r.err)")
        let want = try #require(finalArtifact(r))
        // save_intermediate: false: the finished run's checkpoints are gone, its outputs stored.
        #expect(!FileManager.default.fileExists(atPath: reference.pipeline + "/artifacts/run-1/sft/train/checkpoints"))
        #expect(FileManager.default.fileExists(atPath: reference.pipeline + "/artifacts/run-1/sft/adapter/adapter_model.safetensors"))

        let ws = try Self.quickWorkspace()
        let run = try killWhen(ws, trigger)
        // Its stage processes died with it: nothing runs in the workspace.
        usleep(200_000)
        let left = (try FileManager.default.contentsOfDirectory(atPath: "/proc")).filter { Int($0) != nil }.filter {
            ((try? String(contentsOfFile: "/proc/\($0)/cmdline", encoding: .utf8)) ?? "").contains(ws.root)
        }
        #expect(left.isEmpty, "still running after the kill: \(left)")
        let runs = try cairn(["runs"], store: ws.store)
        #expect(runs.out.contains("interrupted"), "\(runs.out)")
        let resumed = try cairn(["resume", String(run), "--quiet"], store: ws.store)
        #expect(resumed.status == 0, "\(resumed.out)\n\(resumed.err)")
        #expect(finalArtifact(resumed) == want, "killed at \(trigger)")
        // Every intermediate too: the adapters name their base by artifact id, not by work path.
        func adapters(_ w: Workspace) throws -> [String] {
            let s = try w.openStore()
            return try s.stages(run: 1).filter { $0.status == .succeeded }.flatMap { try s.edges(execution: $0.id, .generated) }
                .filter { $0.role == "adapter" }.map(\.artifact.description)
        }
        #expect(try adapters(ws) == adapters(reference))
        #expect(try ws.openStore().run(run)?.status == .succeeded)
        let again = try cairn(["resume", String(run)], store: ws.store)
        #expect(again.status == 2 && again.err.contains("has finished"))
    }
}

/// The reference's own files, unchanged: configs/pipeline_config.yaml (hub base model, config
/// paths relative to the project root, custom checks without datasets) and its stage configs,
/// datasets given on the command line.
@Suite("The reference's config", .serialized)
struct ReferenceConfigTests {
    @Test func aConfigWrittenForTheReferenceRunsUnchanged() throws {
        let root = NSTemporaryDirectory() + "cairn-reference-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/.git", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/configs", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        try (PipelineConfigTests.reference.replacingOccurrences(of: "config_path: ./sft_config.yaml", with: "config_path: ./configs/sft_config.yaml")
            .replacingOccurrences(of: "enabled: false\n    config_path: ./sft_config.yaml", with: "enabled: true\n    config_path: ./configs/dpo_config.yaml"))
            .write(toFile: root + "/configs/pipeline_config.yaml", atomically: true, encoding: .utf8)
        // The keys the reference's stages read, with its defaults.
        try "max_seq_length: 2048\nlora_r: 16\nlora_alpha: 32\nlora_dropout: 0.05\nepochs: 3\nbatch_size: 4\ngradient_accumulation: 4\nlearning_rate: 2.0e-4\nwarmup_ratio: 0.1\nsave_steps: 100\n"
            .write(toFile: root + "/configs/sft_config.yaml", atomically: true, encoding: .utf8)
        try "max_seq_length: 2048\nlora_r: 8\nlora_alpha: 16\nlora_dropout: 0.05\nepochs: 1\nbatch_size: 2\ngradient_accumulation: 8\nlearning_rate: 5.0e-5\nbeta: 0.1\n"
            .write(toFile: root + "/configs/dpo_config.yaml", atomically: true, encoding: .utf8)
        for f in ["sft.jsonl", "preferences.jsonl"] { try fm.copyItem(atPath: repoRoot + "/pipelines/task-api/data/" + f, toPath: root + "/data/" + f) }
        let store = root + "/store"
        #expect(try cairn(["init"], store: store).status == 0)
        // Nothing is downloaded: the hub id resolves through the alias org--name.
        let unknown = try cairn(["run", root, "--sft-dataset", root + "/data/sft.jsonl", "--preference-dataset", root + "/data/preferences.jsonl"], store: store)
        #expect(unknown.status == 2 && unknown.err.contains("cairn alias set unsloth--Qwen2.5-3B-Instruct-bnb-4bit REF"), "\(unknown.err)")
        let added = try cairn(["add", SharedBase.dir, "--kind", "base-model"], store: store)
        #expect(try cairn(["alias", "set", "unsloth--Qwen2.5-3B-Instruct-bnb-4bit", added.out.trimmingCharacters(in: .whitespacesAndNewlines)], store: store).status == 0)

        let r = try cairn(["run", root, "--quiet", "--sft-dataset", root + "/data/sft.jsonl", "--preference-dataset", root + "/data/preferences.jsonl"], store: store)
        #expect(r.status == 0 || r.status == 1, "\(r.out)\n\(r.err)")
        #expect(r.err.contains("'gpu_memory_fraction'") && r.err.contains("ignored"))
        let s = try ArtifactStore(root: store)
        let run = try #require(runNumber(r))
        let ex = try s.stages(run: run)
        #expect(ex.first?.stage == "sft" && ex.first?.status == .succeeded)
        // Whatever the gates decide, they decided it with every check reported.
        for e in ex { #expect(e.gateReport?["checks"] != nil, "\(e.stage) has no gate report") }
        // output_dir is relative to the config file, as every path in it.
        #expect(FileManager.default.fileExists(atPath: root + "/configs/artifacts/pipeline_result.json"))
        if r.status == 1 { #expect(try s.run(run)?.status == .rejected && r.out.contains("gate after")) }
    }
}
