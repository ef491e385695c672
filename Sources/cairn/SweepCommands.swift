import CairnPipeline
import CairnStore
import Foundation

/// `cairn sweep` (a sweep file's variants as runs) and `cairn compare` (their results side by side).
enum SweepCommands {
    static let specs: [CommandSpec] = [
        CommandSpec(name: "sweep", usage: "cairn sweep SWEEP.yaml [--allow-commands] [--quiet] [--executor local|slurm] [--store S]",
                    summary: "run a sweep file's variants of a pipeline (missing ones only), compare them, promote the best",
                    flags: ["quiet", "allow-commands"], options: ["executor"], positionals: 1...1),
        CommandSpec(name: "compare", usage: "cairn compare (SWEEP.yaml | SWEEP_ID | RUN...) [--csv | --json | --markdown]",
                    summary: "a sweep's runs (or the runs named) side by side: parameters, losses, accuracy, verdict, time; the best marked",
                    flags: ["csv", "json", "markdown"], positionals: 1...1_000),
    ]

    static func run(_ name: String, _ a: Arguments) throws -> Int32 {
        name == "sweep" ? try sweep(a) : try compare(a)
    }

    static func sweep(_ a: Arguments) throws -> Int32 {
        let store = try ArtifactStore.initialize(at: try a.storeRoot())
        let config = try SweepConfig.load(a.positionals[0], allowCommands: a.has("allow-commands"))
        let runner = SweepRunner(store: store, sweep: config, options: try PipelineCommands.orchestratorOptions(a, store: store))
        let outcome = try runner.run()
        Output.out(outcome.render(.table))
        if let p = outcome.promotion { Output.out(p) }
        return outcome.best == nil || outcome.interrupted ? 1 : 0
    }

    static func compare(_ a: Arguments) throws -> Int32 {
        let store = try a.openStore()
        let outcome: SweepOutcome
        let first = a.positionals[0]
        if a.positionals.allSatisfy({ Int64($0.hasPrefix("#") ? String($0.dropFirst()) : $0) != nil }) {
            outcome = try SweepOutcome(store: store, runs: try a.positionals.map(PipelineCommands.runID))
        } else {
            let sweepID = FileManager.default.fileExists(atPath: first) ? try SweepConfig.load(first).sweepID : first
            guard let key = try SweepOutcome.latestKey(store, sweepID: sweepID) else {
                throw UsageError(message: "no runs of a sweep '\(sweepID)' in this store (give a sweep file, a sweep id or run numbers)")
            }
            outcome = try SweepOutcome(store: store, sweepID: sweepID, key: key)
        }
        if a.has("json") { try Output.json(outcome.rows); return 0 }
        Output.out(outcome.render(a.has("csv") ? .csv : a.has("markdown") ? .markdown : .table))
        return 0
    }
}
