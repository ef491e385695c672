import CairnStore
import Foundation

/// Successive halving. Rung r is step minSteps·factorʳ of the metric's stage. Every variant still
/// in the race trains to the rung and pauses there (a checkpoint: the run is interrupted, as
/// SIGTERM leaves it); its held-out value at the rung is recorded in its run. The best
/// 1/factor go on to the next rung; the others stop for good (status `stopped`, with the value
/// that stopped them and the one that was kept). The last one standing trains to the end. A
/// variant whose stage ends before a rung competes with its final value.
extension SweepRunner {
    func halving(_ variants: [SweepVariant], _ configs: [PipelineConfig], key: String, rule e: SweepConfig.EarlyStop, parallel: Int) throws {
        var alive = Array(variants.indices)
        var rung = 0
        while alive.count > 1 {
            let target = e.minSteps * Int(pow(Double(e.factor), Double(rung)))
            say("rung \(rung + 1): \(alive.count) variant(s) train \(e.metric.stage) to step \(target), then the best \(keepCount(alive.count, e.factor)) go on")
            final class Results: @unchecked Sendable { var values: [Int: Double?] = [:]; var finished = Set<Int>(); let lock = NSLock() }
            let results = Results()
            try each(alive, parallel: parallel) { i, store in
                let (run, status) = try self.runVariant(i, variants, configs, key: key, pauseAt: (e.metric.stage, target), store: store)
                var value: Double?, done = false
                if status == .interrupted, let v = try self.rungValue(run, e.metric, step: target) {
                    value = v.value
                    try self.annotate(run, store: store) { $0["rungs"] = Self.merged($0["rungs"], String(target), .number(v.value)) }
                } else {
                    done = true
                    value = try store.stages(run: run).last { $0.stage == e.metric.stage && [.succeeded, .cached].contains($0.status) }?
                        .metrics[e.metric.key]?.numberValue
                }
                results.lock.lock(); results.values[i] = value; if done { results.finished.insert(i) }; results.lock.unlock()
            }
            if options.stopRequested() { return }
            let values = results.values, finished = results.finished
            let ranked = alive.sorted { a, b in
                let x = values[a] ?? nil, y = values[b] ?? nil
                if e.metric.better(x, y) { return true }
                if e.metric.better(y, x) { return false }
                return a < b
            }
            let keep = Array(ranked.prefix(keepCount(alive.count, e.factor)))
            let cut = (values[keep.last!] ?? nil).map { String(format: "%.4g", $0) } ?? "?"
            for i in ranked.dropFirst(keep.count) where !finished.contains(i) {
                guard let run = try SweepOutcome.runs(store, key: key)[variants[i].id] else { continue }
                let v = (values[i] ?? nil).map { String(format: "%.4g", $0) } ?? "none"
                let why = "stopped at rung \(rung + 1) (step \(target)): \(e.metric.name) \(v), the \(keep.count) kept reached \(cut) or better"
                try annotate(run.id, store: store) { $0["stopped"] = .object(["rung": .number(Double(rung + 1)), "step": .number(Double(target)),
                                                                  "metric": .string(e.metric.name), "value": (values[i] ?? nil).map { .number($0) } ?? .null,
                                                                  "reason": .string(why)]) }
                try store.finishRun(run.id, status: .stopped)
                say("■ \(variants[i].label): \(why)")
            }
            alive = keep.sorted()
            if alive.allSatisfy(finished.contains) { break }
            rung += 1
        }
        try each(alive, parallel: parallel) { i, store in _ = try self.runVariant(i, variants, configs, key: key, pauseAt: nil, store: store) }
    }

    func keepCount(_ n: Int, _ factor: Int) -> Int { max(1, (n + factor - 1) / factor) }

    /// The first held-out value the stage logged at or after `step` in run `run`'s metrics.jsonl.
    func rungValue(_ run: Int64, _ metric: SweepConfig.Objective, step: Int) throws -> (step: Int, value: Double)? {
        let file = sweep.pipeline.outputDir + "/run-\(run)/\(metric.stage)/train/metrics.jsonl"
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            guard let v = JSONValue.parse(String(line)), let s = v["step"]?.numberValue, Int(s) >= step, let x = v[metric.key]?.numberValue else { continue }
            return (Int(s), x)
        }
        return nil
    }

    /// Changes run `run`'s sweep record (kept through a resume: the journal carries it).
    func annotate(_ run: Int64, store: ArtifactStore, _ change: (inout [String: JSONValue]) -> Void) throws {
        guard let r = try store.run(run), case .object(var all) = r.metadata, case .object(var s)? = all["sweep"] else { return }
        change(&s)
        all["sweep"] = .object(s)
        try store.setRunMetadata(run, .object(all))
    }

    static func merged(_ object: JSONValue?, _ key: String, _ value: JSONValue) -> JSONValue {
        var o: [String: JSONValue] = [:]
        if case .object(let m)? = object { o = m }
        o[key] = value
        return .object(o)
    }
}
