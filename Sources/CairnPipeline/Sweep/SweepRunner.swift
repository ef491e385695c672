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
        say("sweep \(sweep.sweepID) (\(key)): \(variants.count) variant(s) of \(sweep.pipeline.pipelineID), \(sweep.strategy.rawValue), objective \(sweep.objectives[0].name)")
        // On a cluster every variant is submitted at once (Slurm queues what does not fit); here,
        // what the machine's cores and memory allow.
        let local = options.executor is LocalExecutor
        let parallel = sweep.parallel ?? (local ? Self.defaultParallel(variants: variants.count) : max(1, variants.count))
        if parallel > 1 && !local {
            say("\(parallel) runs at once, their stages as \(options.executor.name) jobs")
        } else if parallel > 1 {
            // Each run's stages get their share of the cores (OpenBLAS threads).
            let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / parallel)
            options.environment["CAIRN_THREADS"] = String(threads)
            say("\(parallel) runs at once, \(threads) BLAS thread(s) each")
        }
        if let rule = sweep.earlyStop {
            try halving(variants, configs, key: key, rule: rule, parallel: parallel)
        } else {
            try each(Array(variants.indices), parallel: parallel) { i, store in
                _ = try self.runVariant(i, variants, configs, key: key, pauseAt: nil, store: store)
            }
        }
        var outcome = try SweepOutcome(store: store, sweepID: sweep.sweepID, key: key)
        if options.stopRequested() {
            // Stopped (SIGTERM, the daemon stopping): the running variant keeps its checkpoint;
            // nothing is promoted from a sweep half done. Started again, it goes on.
            outcome.interrupted = true
            say("sweep \(sweep.sweepID) stopped on request; `cairn sweep \(sweep.file)` again continues it")
            return outcome
        }
        if let alias = sweep.promoteBestTo { outcome.promotion = try promote(outcome, to: alias) }
        return outcome
    }

    /// Runs variant `i` (or resumes it, or finds it finished by an earlier start); with `pauseAt`
    /// (stage, step) the run pauses, interrupted, once that stage has logged its held-out value at
    /// the step. Returns the run and how it ended.
    func runVariant(_ i: Int, _ variants: [SweepVariant], _ configs: [PipelineConfig], key: String,
                    pauseAt: (stage: String, step: Int)?, store: ArtifactStore) throws -> (Int64, RunStatus) {
        let v = variants[i]
        var o = options
        final class Box: @unchecked Sendable { var run: Int64?; var reached = false; var checked = Date.distantPast }
        let box = Box()
        if let (stage, step) = pauseAt, let metric = sweep.earlyStop?.metric {
            o.interruptedNote = { box.reached ? "paused at \(stage) step \(step) (a rung of successive halving): the sweep resumes it if it stays in the race" : nil }
            let user = options.stopRequested
            o.stopRequested = { [self] in
                if user() { return true }
                // The stage's metrics.jsonl, read at most four times a second.
                if !box.reached, let run = box.run, Date().timeIntervalSince(box.checked) > 0.25 {
                    box.checked = Date()
                    box.reached = (try? self.rungValue(run, SweepConfig.Objective(stage: stage, key: metric.key, maximize: metric.maximize), step: step)) != nil
                }
                return box.reached
            }
        }
        let pause = pauseAt.map { " until \($0.stage) step \($0.step)" } ?? ""
        if let r = try SweepOutcome.runs(store, key: key)[v.id] {
            let status = try Orchestrator.effectiveStatus(r)
            guard status == .interrupted else {
                say("▶ variant \(i + 1)/\(variants.count) \(v.label): run \(r.id) (\(status.rawValue)) from an earlier start")
                return (r.id, status)
            }
            if let (_, step) = pauseAt, let metric = sweep.earlyStop?.metric, try rungValue(r.id, metric, step: step) != nil {
                return (r.id, .interrupted)  // already paused at this rung
            }
            say("▶ variant \(i + 1)/\(variants.count) \(v.label): resuming run \(r.id)\(pause)")
            box.run = r.id
            return (r.id, try Orchestrator.resume(run: r.id, store: store, options: o).status)
        }
        say("▶ variant \(i + 1)/\(variants.count) \(v.label)\(pause)")
        var params: [String: JSONValue] = [:]
        for p in v.values { params[p.name] = .string(p.text) }
        var info = options.info ?? RunInfo(pipeline: sweep.pipeline.pipelineID)
        var carried: [String: JSONValue] = [:]
        if case .object(let m) = info.metadata { carried = m }  // a queue entry, say
        info.metadata = .object(carried.merging(["sweep": .object([
            "id": .string(sweep.sweepID), "key": .string(key), "file": .string(sweep.file), "variant": .string(v.id),
            "index": .number(Double(i)), "params": .object(params), "objective": .string(SweepOutcome.text(sweep.objectives)),
        ])]) { _, new in new })
        o.info = info
        let started = o.onRunStarted
        o.onRunStarted = { box.run = $0; started?($0) }
        let result = try Orchestrator(store: store, config: configs[i], options: o).run()
        return (result.runID, result.status)
    }

    /// Runs at once when the sweep file does not say: one per two cores (a training process
    /// uses two threads well), one per 4 GiB of memory, at most one per variant.
    static func defaultParallel(variants: Int) -> Int {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let memory = Int(ProcessInfo.processInfo.physicalMemory >> 32)
        return max(1, min(cores / 2, memory, variants))
    }

    /// Runs `body` for each index, `parallel` at a time, each worker with its own connection to
    /// the store; stops taking new indices after the first error (which it throws) or a stop request.
    func each(_ indices: [Int], parallel: Int, _ body: @escaping @Sendable (Int, ArtifactStore) throws -> Void) throws {
        let n = min(parallel, indices.count)
        if n <= 1 {
            for i in indices where !options.stopRequested() { try body(i, store) }
            return
        }
        final class Queue: @unchecked Sendable { var next = 0; var failure: Error?; let lock = NSLock() }
        let q = Queue(), root = store.root, stop = options.stopRequested
        let group = DispatchGroup()
        for _ in 0..<n {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    let s = try ArtifactStore(root: root)
                    while true {
                        q.lock.lock()
                        guard q.failure == nil, q.next < indices.count, !stop() else { q.lock.unlock(); return }
                        let i = indices[q.next]
                        q.next += 1
                        q.lock.unlock()
                        try body(i, s)
                    }
                } catch {
                    q.lock.lock(); q.failure = q.failure ?? error; q.lock.unlock()
                }
            }.start()
        }
        group.wait()
        if let e = q.failure { throw e }
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
