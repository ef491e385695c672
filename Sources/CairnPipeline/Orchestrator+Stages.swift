import CairnStore
import CairnSystem
import CairnTrain
import Foundation

/// The stages that train and merge: their processes, their outputs stored, their gates.
extension Orchestrator {
    // MARK: Stages

    func cacheKey(_ stage: String, _ used: [(String, ArtifactID)]) -> String { StageCache.key(stage, used) }
    func gateKey(_ stageKey: String) -> String { StageCache.gateKey(stageKey, validation: config.validation, input: input) }

    func recordResult(_ stage: StageConfig, metrics: JSONValue, cached: Bool, seconds: Double, artifact: ArtifactID?) {
        var r: [String: JSONValue] = ["success": .bool(true), "cached": .bool(cached), "time_seconds": .number(seconds)]
        if let l = metrics["final_loss"]?.numberValue { r["loss"] = .number(l) }
        if let a = artifact { r["artifact"] = .string(a.description) }
        if case .object(let m) = metrics { for (k, v) in m where ["eval_loss", "eval_accuracy", "size_gb", "total_steps"].contains(k) { r[k] = v } }
        stageResults[stage.name.rawValue] = r
    }

    /// The stage's attempts, through the run's StageRunner.
    func attempts(_ stage: StageConfig, key: String, used: [(String, ArtifactID)], work: @escaping (Int) throws -> StageRunner.Work,
                  collect: (Int64, KnownBlobs) throws -> ([String: ArtifactID], JSONValue)) throws -> StageRunner.Attempted {
        try runner.run(stage, key: key, used: used, work: work, collect: collect)
    }

    /// pretrain, sft or dpo: `cairn train KIND` in WORK/STAGE/train (resuming from its checkpoints),
    /// then the outputs stored: adapter or model, metrics, and for DPO the aligned (merged) model.
    func trainingStage(_ stage: StageConfig, kind: String, used: [(String, ArtifactID)]) throws -> StageOutcome {
        let key = cacheKey(stage.name.rawValue, used)
        let claimed = try claim(stage, key: key)
        defer { withExtendedLifetime(claimed) {} }
        if let hit = try fromCache(stage, key: key, used: used) { return hit }
        let modelID = used[0].1, dataID = used[1].1, configID = used[2].1
        let evalID = used.first { $0.0 == "eval" }?.1
        let dir = workDir + "/" + stage.name.rawValue
        let train = dir + "/train"
        let r = try attempts(stage, key: key, used: used, work: { _ in
            let modelPath = try self.materialize(modelID)
            var a = [self.options.executable, "train", kind, "--model", modelPath, "--data", try self.materialize(dataID),
                     "--config", try self.materialize(configID), "--out", train, "--save-steps", String(self.config.checkpointEveryNSteps), "--resume",
                     // The adapter names its base by artifact id, not by this run's work path, so the
                     // same training gives the same adapter wherever it ran.
                     "--base-name", modelID.description]
            if let e = evalID { a += ["--eval", try self.materialize(e)] }
            var work = StageRunner.Work(commands: [a], outputs: [train])
            if kind == "dpo" {
                // A merge killed half-way leaves files (and hidden temp files) behind: start clean.
                try? FileManager.default.removeItem(atPath: dir + "/aligned")
                work.commands.append([self.options.executable, "merge", "--model", modelPath, "--adapter", train, "--out", dir + "/aligned"])
                work.outputs.append(dir + "/aligned")
            }
            return work
        }, collect: { exe, known in
            var outputs: [String: ArtifactID] = [:]
            let name = "\(self.config.pipelineID)/run-\(self.runID)/\(stage.name.rawValue)"
            let files = try FileManager.default.contentsOfDirectory(atPath: train)
            let metricsDir = dir + "/metrics"
            try? FileManager.default.removeItem(atPath: metricsDir)
            try FileManager.default.createDirectory(atPath: metricsDir, withIntermediateDirectories: true)
            let productDir = dir + (kind == "pretrain" ? "/model" : "/adapter")
            try? FileManager.default.removeItem(atPath: productDir)
            try FileManager.default.createDirectory(atPath: productDir, withIntermediateDirectories: true)
            // Hidden files are temp files of writes a killed attempt never finished. The outputs
            // are hard links to what training wrote (no bytes copied), stored from there once.
            for f in files where f != "checkpoints" && !f.hasPrefix(".") {
                let target = (f.hasPrefix("metrics") ? metricsDir : productDir) + "/" + f
                do { try FileManager.default.linkItem(atPath: train + "/" + f, toPath: target) } catch {
                    try FileManager.default.copyItem(atPath: train + "/" + f, toPath: target)  // a directory
                }
            }
            // Each output stored, and remembered as the files it already is here (no checkout later).
            func add(_ path: String, _ kind: ArtifactKind, _ suffix: String, role: String) throws {
                let id = try self.store.addGenerated(path: path, kind: kind, name: name + suffix, execution: exe, role: role, known: known).artifact.id
                outputs[role] = id
                self.files.remember(id, at: path)
            }
            if kind == "pretrain" { try add(productDir, .baseModel, "/model", role: "model") } else { try add(productDir, .adapter, "/adapter", role: "adapter") }
            if kind == "dpo" { try add(dir + "/aligned", .alignedModel, "/aligned", role: "model") }
            try add(metricsDir, .metrics, "/metrics", role: "metrics")
            let summary = GateChecks.readSummary(metricsDir) ?? [:]
            return (outputs, .object(summary.mapValues { $0.isFinite ? .number($0) : .string("\($0)") }))
        })
        let gate = try runGate(stage, execution: r.execution, outputs: r.outputs, used: used, metrics: r.metrics)
        try finishWithGate(stage, execution: r.execution, key: key, metrics: r.metrics, gate: gate)
        recordResult(stage, metrics: r.metrics, cached: false, seconds: r.seconds, artifact: r.outputs["adapter"] ?? r.outputs["model"])
        return StageOutcome(outputs: r.outputs, gate: gate, cached: false)
    }

    func mergeStage(_ stage: StageConfig, model: (String, ArtifactID), adapter: ArtifactID) throws -> StageOutcome {
        let used = [model, ("adapter", adapter)]
        let key = cacheKey("merge", used)
        let claimed = try claim(stage, key: key)
        defer { withExtendedLifetime(claimed) {} }
        if let hit = try fromCache(stage, key: key, used: used) { return hit }
        let out = workDir + "/merge/model"
        let r = try attempts(stage, key: key, used: used, work: { _ in
            try? FileManager.default.removeItem(atPath: out)
            return StageRunner.Work(commands: [[self.options.executable, "merge", "--model", try self.materialize(model.1), "--adapter", try self.materialize(adapter), "--out", out]],
                                    outputs: [out])
        }, collect: { exe, known in
            let id = try self.store.addGenerated(path: out, kind: .mergedModel, name: "\(self.config.pipelineID)/run-\(self.runID)/merged", execution: exe, role: "model",
                                                 known: known).artifact.id
            let size = Double(try self.store.artifact(id)?.size ?? 0)
            return (["model": id], .object(["size_gb": .number(size / 1_073_741_824), "size_bytes": .number(size)]))
        })
        files.remember(r.outputs["model"]!, at: out)
        let gate = try runGate(stage, execution: r.execution, outputs: r.outputs, used: used, metrics: r.metrics)
        try finishWithGate(stage, execution: r.execution, key: key, metrics: r.metrics, gate: gate)
        recordResult(stage, metrics: r.metrics, cached: false, seconds: r.seconds, artifact: r.outputs["model"])
        return StageOutcome(outputs: r.outputs, gate: gate, cached: false)
    }

    /// Stores the gate report (JSON artifact + the execution's gate_report) and ends the execution.
    func finishWithGate(_ stage: StageConfig, execution: Int64, key: String, metrics: JSONValue, gate: GateReport) throws {
        var keyed = gate
        keyed.key = gateKey(key)
        let report = keyed.json
        let bytes = Array(report.description.utf8)
        try AtomicFile.write(bytes, to: workDir + "/\(stage.name.rawValue)/gate.json")
        let stored = try store.add(bytes: bytes, fileName: "gate.json", kind: .report, name: "\(config.pipelineID)/run-\(runID)/\(stage.name.rawValue)-gate.json")
        try store.record(execution: execution, .generated, stored.artifact.id, role: "gate_report")
        try store.finishStage(execution: execution, status: .succeeded, metrics: metrics, gateReport: report)
    }
}
