import CairnPipeline
import CairnStore
import CairnSystem
import Foundation

/// `cairn run`, `runs`, `run show`, `resume` and the internal `check` (a gate check in its own process).
enum PipelineCommands {
    static let specs: [CommandSpec] = [
        CommandSpec(name: "run", usage: "cairn run PIPELINE [--sft-dataset F] [--preference-dataset F] [--allow-commands] [--quiet] [--executor local|slurm] [--store S]",
                    summary: "run a pipeline (a directory or its pipeline.yaml): stages, gates, store, promotion",
                    flags: ["quiet", "allow-commands"], options: ["sft-dataset", "preference-dataset", "executor"], positionals: 1...1),
        CommandSpec(name: "runs", usage: "cairn runs [--json] [--limit N]", summary: "list runs, newest first (interrupted ones too)",
                    flags: ["json"], options: ["limit"]),
        CommandSpec(name: "run show", usage: "cairn run show RUN [--json]", summary: "one run: stages, attempts, gates, outputs",
                    flags: ["json"], positionals: 1...1),
        CommandSpec(name: "resume", usage: "cairn resume RUN [--allow-commands] [--quiet] [--executor local|slurm]",
                    summary: "continue an interrupted or failed run from its last successful stage (following its cluster job if one still runs)",
                    flags: ["quiet", "allow-commands"], options: ["executor"], positionals: 1...1),
        CommandSpec(name: "report", usage: "cairn report (RUN | SWEEP.yaml | SWEEP_ID) --out DIR",
                    summary: "write a self-contained HTML page of a run (lineage graph, curves, samples, gates) or of a sweep (table, objective per parameter, parallel coordinates), and its SVG images",
                    options: ["out"], positionals: 1...1),
        CommandSpec(name: "worker", usage: "cairn worker JOB.json",
                    summary: "run one stage attempt on a cluster node: its commands, its outputs as blobs, a checksummed result (the Slurm executor submits these)",
                    positionals: 1...1),
        CommandSpec(name: "check", usage: "cairn check NAME --result FILE (--request FILE.json | [--model D] [--adapter D] [--merged D] [--export F] [--data F] [--schema F] [--blocklist F] [--threshold X] [--min-accuracy X] [--tolerance X] [--beta X] [--max-new-tokens N] [--max-seq-length N] [--baseline true|false])",
                    summary: "run one gate check (the orchestrator starts these)",
                    options: ["result", "request", "model", "adapter", "merged", "export", "data", "schema", "blocklist", "threshold", "min-accuracy", "tolerance", "beta", "max-new-tokens", "max-seq-length", "baseline"],
                    positionals: 1...1),
    ]

    static func runID(_ s: String) throws -> Int64 {
        guard let v = Int64(s.hasPrefix("#") ? String(s.dropFirst()) : s), v > 0 else { throw UsageError(message: "RUN is a run number, not '\(s)'") }
        return v
    }

    static func run(_ name: String, _ a: Arguments) throws -> Int32 {
        switch name {
        case "check": return try check(a)
        case "worker":
            let stop = StopSignal()  // the checkpoint signal (Slurm's --signal, scancel --signal=TERM)
            return JobWorker.run(spec: a.positionals[0], stopRequested: { stop.isSet })
        case "run": return try runPipeline(a)
        case "resume": return try resume(a)
        case "report": return try report(a)
        case "runs": return try runs(a)
        default: return try show(a)  // run show
        }
    }

    /// The options a run or a resume takes from the command line; SIGTERM asks it to stop.
    static func orchestratorOptions(_ a: Arguments, store: ArtifactStore, sft: String? = nil, preference: String? = nil) throws -> Orchestrator.Options {
        var o = Orchestrator.Options(executable: Subprocess.currentExecutable, sftDataset: sft, preferenceDataset: preference)
        o.executor = try executor(a, store: store)
        o.allowCommands = a.has("allow-commands")
        o.echo = !a.has("quiet")
        let stop = StopSignal()
        o.stopRequested = { stop.isSet }
        return o
    }

    /// `--executor local|slurm`: where stages and checks run; slurm takes its settings from
    /// STORE/executors.yaml (checked now, so a mistake stops the command before any run).
    static func executor(_ a: Arguments, store: ArtifactStore) throws -> StageExecutor {
        switch try a.option("executor") ?? "local" {
        case "local": return LocalExecutor()
        case "slurm":
            let settings = try ExecutorSettings.load(store: store.root)
            return SlurmExecutor(settings: settings.slurm ?? ExecutorSettings.Slurm(), executable: Subprocess.currentExecutable)
        case let other: throw UsageError(message: "--executor is local or slurm, not '\(other)'")
        }
    }

    /// The same choice, handed on to the run processes a queue worker starts.
    static func executorArguments(_ a: Arguments, store: ArtifactStore) throws -> [String] {
        _ = try executor(a, store: store)
        return try a.option("executor").map { ["--executor", $0] } ?? []
    }

    /// `cairn check NAME`: one gate check in its own process; its results go to --result.
    static func check(_ a: Arguments) throws -> Int32 {
        let results: [CheckResult]
        do {
            let request: CheckRequest
            if let file = try a.option("request") {
                request = try CheckRequest.read(file)
                guard request.name == a.positionals[0] else { throw PipelineError("the request '\(file)' is for check \(request.name), not \(a.positionals[0])") }
            } else {
                var flags: [String: String] = [:]
                for (k, v) in a.options where !["store", "result", "request"].contains(k) { flags[k] = v.last }
                request = try CheckRequest(name: a.positionals[0], flags: flags)
            }
            results = try GateChecks.run(request)
        } catch {
            results = [CheckResult(name: a.positionals[0], status: .error, details: "\(error)")]
        }
        let data = try JSONEncoder().encode(results)
        try AtomicFile.write(data, to: try a.required("result"))
        for r in results { Output.note("\(r.name): \(r.status.rawValue): \(r.details)") }
        return 0
    }

    static func runPipeline(_ a: Arguments) throws -> Int32 {
        let store = try ArtifactStore.initialize(at: try a.storeRoot())
        let config = try PipelineConfig.load(a.positionals[0], allowCommands: a.has("allow-commands"))
        let o = try orchestratorOptions(a, store: store, sft: try a.option("sft-dataset"), preference: try a.option("preference-dataset"))
        let result = try Orchestrator(store: store, config: config, options: o).run()
        Output.out(result.summary)
        return result.success ? 0 : 1
    }

    static func resume(_ a: Arguments) throws -> Int32 {
        let store = try a.openStore()
        let result = try Orchestrator.resume(run: try runID(a.positionals[0]), store: store, options: try orchestratorOptions(a, store: store))
        Output.out(result.summary)
        return result.success ? 0 : 1
    }

    static func report(_ a: Arguments) throws -> Int32 {
        let store = try a.openStore()
        let out = try a.required("out")
        let target = a.positionals[0]
        if Int64(target.hasPrefix("#") ? String(target.dropFirst()) : target) == nil {
            // A sweep: its file or its id.
            let sweepID = FileManager.default.fileExists(atPath: target) ? try SweepConfig.load(target).sweepID : target
            guard let key = try SweepOutcome.latestKey(store, sweepID: sweepID) else {
                throw UsageError(message: "'\(target)' is neither a run number nor a sweep with runs in this store")
            }
            for path in try SweepReport.write(try SweepOutcome(store: store, sweepID: sweepID, key: key), to: out) { Output.out(path) }
            return 0
        }
        let id = try runID(target)
        // The run's page first (what scripts read), then its drawings and the runs it links to.
        for path in try RunReport.write(store: store, run: id, to: out) { Output.out(path) }
        return 0
    }

    static func runs(_ a: Arguments) throws -> Int32 {
        let store = try a.openStore()
        let runs = try store.runs(limit: try a.int("limit", default: 50))
        let rows = try runs.map { r -> (RunRecord, RunStatus) in (r, try Orchestrator.effectiveStatus(r)) }
        if a.has("json") {
            try Output.json(rows.map { RunRow(run: $0.0, effectiveStatus: $0.1.rawValue) })
            return 0
        }
        Output.table(["RUN", "PIPELINE", "STATUS", "STARTED", "TIME", "COMMIT", "NOTE"], rows.map { r, s in
            [String(r.id), r.pipeline, s.rawValue, Output.time(r.startedAt),
             r.finishedAt.map { String(format: "%.1fs", $0 - r.startedAt) } ?? "-", r.commit.map { String($0.prefix(10)) } ?? "-",
             r.metadata["error"]?.stringValue ?? ""]
        })
        return 0
    }

    /// `cairn run show RUN`: stages, attempts, lineage and gates.
    static func show(_ a: Arguments) throws -> Int32 {
        let store = try a.openStore()
        let id = try runID(a.positionals[0])
        guard let r = try store.run(id) else { throw UsageError(message: "no run \(id) in this store") }
        let stages = try store.stages(run: id)
        let status = try Orchestrator.effectiveStatus(r)
        if a.has("json") {
            var outs: [String: [String: [String]]] = [:]
            for s in stages {
                outs[String(s.id)] = ["used": try store.edges(execution: s.id, .used).map { "\($0.role)=\($0.artifact)" },
                                      "generated": try store.edges(execution: s.id, .generated).map { "\($0.role)=\($0.artifact)" }]
            }
            try Output.json(RunShow(run: r, effectiveStatus: status.rawValue, stages: stages, lineage: outs))
            return 0
        }
        Output.out("run \(r.id)  pipeline \(r.pipeline)  \(status.rawValue)  started \(Output.time(r.startedAt))"
                   + (r.finishedAt.map { String(format: "  took %.1fs", $0 - r.startedAt) } ?? ""))
        if let c = r.commit { Output.out("commit \(c)\(r.branch.map { " on \($0)" } ?? "")\(r.author.map { " by \($0)" } ?? "")") }
        for s in stages {
            let t = s.finishedAt.map { String(format: "%.1fs", $0 - s.startedAt) } ?? "-"
            Output.out("\n\(s.stage) (execution \(s.id), attempt \(s.attempt)): \(s.status.rawValue), \(t)" + (s.error.map { "\n  error: \($0)" } ?? ""))
            for e in try store.edges(execution: s.id, .used) { Output.out("  used      \(e.role.padding(toLength: 16, withPad: " ", startingAt: 0)) \(e.artifact.short)") }
            for e in try store.edges(execution: s.id, .generated) { Output.out("  generated \(e.role.padding(toLength: 16, withPad: " ", startingAt: 0)) \(e.artifact.short)") }
            if let g = GateReport(json: s.gateReport) {
                Output.out("  gate: \(g.passed ? "passed" : "FAILED")")
                for c in g.results {
                    Output.out("    \(c.name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(c.status.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(c.details)")
                }
            }
        }
        return 0
    }

    struct RunRow: Encodable { let run: RunRecord; let effectiveStatus: String }
    struct RunShow: Encodable { let run: RunRecord; let effectiveStatus: String; let stages: [StageExecutionRecord]; let lineage: [String: [String: [String]]] }
}
