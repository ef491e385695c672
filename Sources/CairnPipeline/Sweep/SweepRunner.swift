import CairnStore
import CairnTrain
import Foundation

/// Runs a sweep: every variant checked first (a wrong value stops the sweep before anything
/// trains), then each variant as a normal run of its pipeline, tagged in its record with the
/// sweep and its values. Started again, a sweep reuses the variants that reached a verdict,
/// resumes the interrupted ones and runs the missing ones. Stages that variants share (the same
/// inputs: variants that differ only in DPO settings) come from the stage cache.
public final class SweepRunner {
    let store: ArtifactStore
    let sweep: SweepConfig
    var options: Orchestrator.Options
    public var say: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }

    public init(store: ArtifactStore, sweep: SweepConfig, options: Orchestrator.Options) {
        self.store = store; self.sweep = sweep; self.options = options
    }

    /// The sweep's identity: its id and a hash of the sweep file and every file its pipeline
    /// reads (pipeline, stage configs, datasets). The same files give the same key, so a sweep
    /// started again finds its runs; a changed file makes a new sweep.
    public func key() throws -> String {
        var text = "cairn-sweep 1\n\(sweep.sweepID)\n"
        var files = [sweep.file, sweep.pipeline.file] + sweep.pipeline.stages.compactMap(\.configPath)
        files += sweep.pipeline.datasets.sorted { $0.key < $1.key }.map(\.value)
        if sweep.pipeline.baseModelIsPath { files.append(sweep.pipeline.baseModel) } else { text += "base \(sweep.pipeline.baseModel)\n" }
        // Each file or model directory as the store identifies it (its manifest's hash).
        for f in files { text += "\(f) \(try store.identify(path: f))\n" }
        return String(SHA256Hex.of(text).prefix(16))
    }

    /// Runs what is missing and returns every variant's row, the best marked and promoted.
    public func run() throws -> SweepOutcome {
        let variants = try sweep.variants()
        let root = sweep.pipeline.outputDir + "/sweep-\(sweep.sweepID)"
        // Every variant's configs written and checked before any run starts.
        let configs = try variants.map { try $0.apply(to: sweep, directory: root + "/" + $0.id) }
        let key = try key()
        let earlier = try SweepOutcome.runs(store, key: key)
        say("sweep \(sweep.sweepID) (\(key)): \(variants.count) variant(s) of \(sweep.pipeline.pipelineID), \(sweep.strategy.rawValue), objective \(sweep.objectives[0].name)")
        for (i, v) in variants.enumerated() {
            if let r = earlier[v.id] {
                let status = try Orchestrator.effectiveStatus(r)
                if status == .interrupted {
                    say("▶ variant \(i + 1)/\(variants.count) \(v.label): resuming run \(r.id)")
                    _ = try Orchestrator.resume(run: r.id, store: store, options: options)
                } else {
                    say("▶ variant \(i + 1)/\(variants.count) \(v.label): run \(r.id) (\(status.rawValue)) from an earlier start")
                }
                continue
            }
            say("▶ variant \(i + 1)/\(variants.count) \(v.label)")
            var o = options
            var params: [String: JSONValue] = [:]
            for p in v.values { params[p.name] = .string(p.text) }
            var info = options.info ?? RunInfo(pipeline: sweep.pipeline.pipelineID)
            info.metadata = .object(["sweep": .object([
                "id": .string(sweep.sweepID), "key": .string(key), "file": .string(sweep.file), "variant": .string(v.id),
                "index": .number(Double(i)), "params": .object(params), "objective": .string(SweepOutcome.text(sweep.objectives)),
            ])])
            o.info = info
            _ = try Orchestrator(store: store, config: configs[i], options: o).run()
        }
        var outcome = try SweepOutcome(store: store, sweepID: sweep.sweepID, key: key)
        if let alias = sweep.promoteBestTo { outcome.promotion = try promote(outcome, to: alias) }
        return outcome
    }

    /// Moves `alias` to the best run's model when that run passed every gate; an alias that was
    /// rolled back from that model is left (a refusal, said in the outcome).
    func promote(_ outcome: SweepOutcome, to alias: String) throws -> String {
        guard let best = outcome.best, let row = outcome.rows.first(where: { $0.run == best }) else {
            return "\(alias) not moved: no variant passed every gate"
        }
        guard let final = row.finalArtifact.flatMap(ArtifactID.init) else { return "\(alias) not moved: run \(best) has no final model" }
        let value = row.metrics[sweep.objectives[0].name].map { String(format: "%.4g", $0) } ?? "?"
        do {
            try store.setAlias(alias, to: final, reason: "sweep \(sweep.sweepID): best by \(sweep.objectives[0].name) = \(value) (run \(best): \(row.label))",
                               actor: "cairn sweep", run: best, automated: true)
            return "promoted \(alias) → \(final.short) (run \(best))"
        } catch let e as StoreError where e.kind == .refused {
            return "\(alias) not moved: \(e)"
        }
    }
}
