import CairnStore
import Foundation

extension Orchestrator {
    /// The export stage: `cairn model export` writes the model as one GGUF file (kind `export`,
    /// made from the model), then a gate checks that the file reads back as the same model.
    func exportStage(_ stage: StageConfig, model: (String, ArtifactID)) throws -> StageOutcome {
        let used = [model]
        let key = cacheKey("export \(stage.format) \(stage.exportType)", used)
        let claimed = try claim(stage, key: key)
        defer { withExtendedLifetime(claimed) {} }
        if let hit = try fromCache(stage, key: key, used: used) { return hit }
        let dir = workDir + "/export"
        let file = dir + "/\(config.pipelineID)-\(stage.exportType).gguf"
        let r = try attempts(stage, key: key, used: used, work: { _ in
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return StageRunner.Work(commands: [[self.options.executable, "model", "export", try self.materialize(model.1), "--format", stage.format,
                                                "--type", stage.exportType, "--out", file, "--name", self.config.pipelineID]], outputs: [file])
        }, collect: { exe, known in
            let id = try self.store.addGenerated(path: file, kind: .export, name: "\(self.config.pipelineID)/run-\(self.runID)/\(URL(fileURLWithPath: file).lastPathComponent)",
                                                 metadata: .object(["format": .string(stage.format), "type": .string(stage.exportType)]),
                                                 execution: exe, role: "export", known: known).artifact.id
            let size = Double(try self.store.artifact(id)?.size ?? 0)
            return (["export": id], .object(["size_bytes": .number(size), "type": .string(stage.exportType)]))
        })
        files.remember(r.outputs["export"]!, at: file)
        let gate = try runGate(stage, execution: r.execution, outputs: r.outputs, used: used, metrics: r.metrics)
        try finishWithGate(stage, execution: r.execution, key: key, metrics: r.metrics, gate: gate)
        recordResult(stage, metrics: r.metrics, cached: false, seconds: r.seconds, artifact: r.outputs["export"])
        return StageOutcome(outputs: r.outputs, gate: gate, cached: false)
    }
}
