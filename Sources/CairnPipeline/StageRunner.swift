import CairnStore
import Foundation

/// A stage failed on every attempt (the last attempt's error).
struct StageFailure: Error { let message: String }
/// The run was asked to stop while a stage ran: the stage checkpointed and stopped.
struct StageInterrupted: Error {}

/// Runs a stage's processes through the run's executor (here, or as Slurm jobs): each attempt
/// is a stage execution in the store with its inputs and log, under the stage's time limit
/// (timeout_minutes), retried `retry_count` times with doubling backoff (not when the process
/// says its input is bad, exit 2); the journal follows the attempt, its cluster job and its
/// newest training checkpoint; asked to stop, the stage gets SIGTERM and the attempt ends
/// interrupted.
final class StageRunner {
    struct Attempted {
        let outputs: [String: ArtifactID]
        let execution: Int64
        let metrics: JSONValue
        let seconds: Double
    }

    let store: ArtifactStore
    let runID: Int64
    let pipelineID: String
    let workDir: String
    let options: Orchestrator.Options
    let journal: RunJournal
    /// Seconds spent waiting for stage processes, every attempt counted.
    private(set) var seconds = 0.0

    init(store: ArtifactStore, runID: Int64, pipelineID: String, workDir: String, options: Orchestrator.Options, journal: RunJournal) {
        self.store = store; self.runID = runID; self.pipelineID = pipelineID; self.workDir = workDir; self.options = options; self.journal = journal
    }

    /// What one attempt runs: its commands in order, and the outputs that become artifacts.
    struct Work {
        var commands: [[String]]
        var outputs: [String] = []
    }

    /// Runs the stage's work through the run's executor (attempts, backoff, the stage's time
    /// limit); returns when one attempt succeeded, throws StageFailure when every attempt failed.
    /// A cluster job an earlier coordinator of this run left behind is followed, not submitted again.
    func run(_ stage: StageConfig, key: String, used: [(String, ArtifactID)], work: @escaping (Int) throws -> Work,
             collect: (Int64, KnownBlobs) throws -> ([String: ArtifactID], JSONValue)) throws -> Attempted {
        let dir = workDir + "/" + stage.name.rawValue
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var next = (try store.stages(run: runID).filter { $0.stage == stage.name.rawValue }.map(\.attempt).max() ?? 0) + 1
        let total = stage.retryCount + 1
        var lastError = ""
        var reattach = try reattachable(stage)
        for attempt in 1...total {
            let n: Int, exe: Int64
            var job: StageJob
            var control = JobControl()
            if let r = reattach {
                (n, exe, job) = (r.attempt, r.execution, r.job)
                control.reattach = r.jobID
                reattach = nil
                options.say("▶ \(stage.name.rawValue): following \(options.executor.name) job \(r.jobID) (attempt \(n)), submitted before this process started; log \(job.log)")
            } else {
                n = next
                exe = try store.beginStage(run: runID, stage: stage.name.rawValue, attempt: n, cacheKey: key)
                for (role, id) in used { try store.record(execution: exe, .used, id, role: role) }
                try journal.atStage(stage.name.rawValue, execution: exe)
                let w = try work(n)
                job = StageJob(name: "run\(runID)-\(stage.name.rawValue)-\(n)", kind: Self.kind(of: stage), commands: w.commands,
                               directory: dir + "/attempt-\(n)", log: dir + "/attempt-\(n).log", timeLimitSeconds: stage.timeoutMinutes * 60,
                               storeRoot: store.root)
                job.outputs = w.outputs
                job.environment = options.environment
                job.echo = options.echo
                options.say("▶ \(stage.name.rawValue): attempt \(attempt) of \(total) (timeout \(String(format: "%g", stage.timeoutMinutes)) min, log \(job.log))")
            }
            next = n + 1
            control.tick = followCheckpoints(of: stage, execution: exe, in: dir + "/train/checkpoints")
            control.stopRequested = options.stopRequested
            control.submitted = { [journal, options] id in
                journal.atJob(stage: stage.name.rawValue, execution: exe, attempt: n, id: id, spec: job.specPath)
                options.say("  \(stage.name.rawValue): \(options.executor.name) job \(id)")
            }
            control.stateChanged = { [journal] state, node in journal.jobState(state, node: node) }
            let started = Date()
            let o = options.executor.run(job, control: control)
            journal.jobEnded()
            if options.stopRequested() {
                control.tick()
                try store.finishStage(execution: exe, status: .interrupted, error: "stopped on request (\(o.description))")
                throw StageInterrupted()
            }
            let seconds = Date().timeIntervalSince(started)
            self.seconds += seconds
            if let logID = try? store.add(path: job.log, kind: .log, name: "\(pipelineID)/run-\(runID)/\(stage.name.rawValue)-attempt-\(n).log").artifact.id {
                try? store.record(execution: exe, .generated, logID, role: "log")
            }
            control.tick()
            if o.succeeded {
                let (outputs, metrics) = try collect(exe, o.known)
                return Attempted(outputs: outputs, execution: exe, metrics: metrics, seconds: seconds)
            }
            let tail = ((try? String(contentsOfFile: job.log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(3).joined(separator: " | ")
            lastError = o.description + (o.signalled ? "; it wrote a checkpoint, the next attempt resumes from it" : "") + (tail.isEmpty ? "" : ": " + tail)
            try store.finishStage(execution: exe, status: .failed, error: lastError)
            options.say("✗ \(stage.name.rawValue) attempt \(attempt) failed: \(lastError)")
            if o.exitCode == 2 {
                lastError += " (bad input: not retried, it would fail the same way)"
                break
            }
            if attempt < total {
                let wait = options.retryBackoffSeconds * pow(2, Double(attempt - 1))
                options.say("  retrying in \(String(format: "%g", wait)) s")
                Thread.sleep(forTimeInterval: wait)
            }
        }
        throw StageFailure(message: lastError)
    }

    static func kind(of stage: StageConfig) -> StageJob.Kind {
        switch stage.name {
        case .merge: return .merge
        case .export: return .export
        default: return .train
        }
    }

    /// The cluster job of this stage that an earlier coordinator of the run was following, when
    /// its execution is still open and the job may still end well.
    private func reattachable(_ stage: StageConfig) throws -> (attempt: Int, execution: Int64, jobID: String, job: StageJob)? {
        guard let j = journal.job, j.stage == stage.name.rawValue,
              try store.stages(run: runID).contains(where: { $0.id == j.execution && $0.status == .running }),
              let job = j.followable(by: options.executor) else { return nil }
        return (j.attempt, j.execution, j.id, job)
    }

    /// What the journal does while a stage runs: note its newest complete training checkpoint.
    private func followCheckpoints(of stage: StageConfig, execution: Int64, in checkpoints: String) -> () -> Void {
        var journaledStep = -1
        return { [journal] in
            let steps = ((try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? [])
                .filter { $0.hasPrefix("checkpoint-") && FileManager.default.fileExists(atPath: checkpoints + "/" + $0 + "/trainer_state.json") }
                .compactMap { Int($0.dropFirst("checkpoint-".count)) }
            guard let newest = steps.max(), newest != journaledStep else { return }
            journaledStep = newest
            journal.atCheckpoint(stage: stage.name.rawValue, execution: execution, step: newest, path: checkpoints + "/checkpoint-\(newest)")
        }
    }
}
