import CairnStore
import CairnSystem
import Foundation

/// The stage cache. A stage's key is its name, each input artifact with its role, and the
/// training code's version; the gate's key adds the validation settings and the datasets the
/// gate reads. A hit is an earlier succeeded (or cached) execution with the same key whose
/// outputs are all still stored.
enum StageCache {
    /// Bumped whenever a change to the training core can change what a stage produces.
    static let trainingCodeVersion = "cairn-train-1"

    static func key(_ stage: String, _ used: [(String, ArtifactID)]) -> String {
        var text = "cairn-stage 1\nstage \(stage)\ncode \(trainingCodeVersion)\n"
        for (role, id) in used.sorted(by: { $0.0 < $1.0 }) { text += "used \(role) \(id)\n" }
        return SHA256Hex.of(text)
    }

    /// `input` gives the run's input artifact of a role ("dataset:red_team").
    static func gateKey(_ stageKey: String, validation v: ValidationConfig, input: (String) -> ArtifactID?) -> String {
        var text = "gate 1\n\(stageKey)\nmax_loss \(v.maxLoss)\nmin_accuracy \(v.minAccuracy)\ncheck_nan \(v.checkNaN)\ntol \(v.mergeTolerance)\n"
        for c in v.customChecks { text += "check \(c.name) \(c.blocking) \(c.timeoutSeconds) \(c.threshold ?? -1) \(c.maxNewTokens ?? -1) \(c.command ?? "")\n" }
        for role in ["eval_prompts", "red_team", "schema", "blocklist", "preference_eval"] { text += "\(role) \(input("dataset:" + role)?.description ?? "-")\n" }
        return SHA256Hex.of(text)
    }
}

/// Reuse: a stage found in the cache is recorded in this run without running.
extension Orchestrator {
    /// Claims the stage with cache key `key` while this run looks it up and computes it: an
    /// exclusive flock on STORE-work/stage-claims/KEY. Another run (a sweep's variant beside
    /// this one, another process) that needs the same stage waits here, then finds it in the
    /// cache instead of computing it twice. Released with the returned lock (or by the kernel
    /// when the process dies).
    func claim(_ stage: StageConfig, key: String) throws -> FileLock {
        let dir = (store.root.hasSuffix("/") ? String(store.root.dropLast()) : store.root) + "-work/stage-claims"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/" + key + ".lock"
        if let held = try FileLock(trying: path, exclusive: true) { return held }
        say("▶ \(stage.name.rawValue): another run is computing this stage with the same inputs; waiting for it")
        return try FileLock(path: path, exclusive: true)
    }

    /// Looks the stage up in the cache; on a hit records a `cached` execution in this run with
    /// the same inputs and outputs, and reuses the gate report when the gate is the same.
    func fromCache(_ stage: StageConfig, key: String, used: [(String, ArtifactID)]) throws -> StageOutcome? {
        guard let hit = try store.cachedStage(key: key) else { return nil }
        let exe = try store.beginStage(run: runID, stage: stage.name.rawValue, attempt: 1, cacheKey: key)
        for (role, id) in used { try store.record(execution: exe, .used, id, role: role) }
        var outputs: [String: ArtifactID] = [:]
        for o in hit.outputs { try store.record(execution: exe, .generated, o.artifact, role: o.role); outputs[o.role] = o.artifact }
        var gate: GateReport
        let report: JSONValue?
        if let stored = GateReport(json: hit.execution.gateReport), stored.key == gateKey(key) {
            gate = stored
            gate.results = stored.results.map { var r = $0; r.details += " (cached)"; r.seconds = 0; return r }
            gate.seconds = 0
            report = hit.execution.gateReport  // stored as it was
        } else {
            gate = try runGate(stage, execution: exe, outputs: outputs, used: used, metrics: hit.execution.metrics)
            gate.key = gateKey(key)
            report = gate.json
        }
        try store.finishStage(execution: exe, status: .cached, metrics: hit.execution.metrics, gateReport: report)
        recordResult(stage, metrics: hit.execution.metrics, cached: true, seconds: 0, artifact: outputs["adapter"] ?? outputs["model"])
        say("▶ \(stage.name.rawValue): cached (execution \(hit.execution.id) of run \(hit.execution.run) had the same inputs)")
        return StageOutcome(outputs: outputs, gate: gate, cached: true)
    }
}
