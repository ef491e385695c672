import CairnStore
import CairnSystem
import CairnTrain
import Foundation

/// Resuming: a run stopped (interrupted, or failed) continues from its journal.
extension Orchestrator {
    /// Continues run `id` from its last successful stage (and, inside a training stage, from its
    /// last checkpoint), with the inputs it started with.
    public static func resume(run id: Int64, store: ArtifactStore, options: Options) throws -> PipelineResult {
        guard let rec = try store.run(id) else { throw ConfigError(file: "run \(id)", line: nil, "no such run") }
        let status = try effectiveStatus(rec)
        guard [.interrupted, .failed].contains(status) else {
            throw ConfigError(file: "run \(id)", line: nil, status == .running ? "run \(id) is still running (process \(rec.metadata["pid"]?.numberValue.map { Int($0) } ?? 0))"
                                                                               : "run \(id) has finished (\(status.rawValue)); start a new run instead")
        }
        let journal = try RunJournal(resuming: rec, store: store)
        let file = journal.pipelineFile, work = journal.workDir
        var config = try PipelineConfig.read(file: file, repository: journal.repository, allowCommands: options.allowCommands)
        if let was = journal.input("pipeline_config"), try store.identify(path: file) != was {
            throw ConfigError(file: file, line: nil, "changed since run \(id) started; run the pipeline again instead of resuming")
        }
        // The stage configs the run started with (journaled: a sweep variant's own, or the file
        // as it was), not the files as they are now: what the gates read must be what trained.
        for i in config.stages.indices where config.stages[i].training != nil {
            guard let cid = journal.input("config:\(config.stages[i].name.rawValue)"), let entry = try store.manifest(cid).entries.first else { continue }
            let label = "the \(config.stages[i].name.rawValue) config of run \(id)"
            let text = String(decoding: try store.readFile(cid, path: entry.path), as: UTF8.self)
            config.stages[i].training = try TrainingConfig(yaml: try YAMLNode.parse(text, file: label), file: label)
        }
        let o = Orchestrator(store: store, config: config, options: options)
        o.runID = id
        o.workDir = work
        o.journal = journal
        try journal.takenOver()
        try store.finishRun(id, status: .running)
        // Executions the dead process left running are marked interrupted, except one whose
        // cluster job is still queued, running or finished with its result: it is followed again.
        let following = journal.job.flatMap { $0.followable(by: options.executor) != nil ? $0.execution : nil }
        if following == nil { journal.jobEnded() }
        for s in try store.stages(run: id) where s.status == .running && s.id != following {
            try store.finishStage(execution: s.id, status: .interrupted, metrics: s.metrics, error: "interrupted; resumed by a later process")
        }
        options.onRunStarted?(id)
        o.say("resuming run \(id) of pipeline \(config.pipelineID) (work directory \(work))")
        return try o.execute(start: Date(timeIntervalSince1970: rec.startedAt))
    }

    /// A run marked running whose process is gone reads as interrupted.
    public static func effectiveStatus(_ run: RunRecord) throws -> RunStatus {
        guard run.status == .running else { return run.status }
        guard let pid = run.metadata["pid"]?.numberValue.map({ pid_t($0) }) else { return .interrupted }
        return Processes.isAlive(pid, running: "cairn") ? .running : .interrupted
    }
}
