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
