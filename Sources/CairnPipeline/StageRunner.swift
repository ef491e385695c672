import CairnStore
import Foundation

/// A stage failed on every attempt (the last attempt's error).
struct StageFailure: Error { let message: String }
/// The run was asked to stop while a stage ran: the stage checkpointed and stopped.
struct StageInterrupted: Error {}

/// Runs a stage's processes: each attempt is a stage execution in the store with its inputs
/// and log, under a deadline (timeout_minutes), retried `retry_count` times with doubling
/// backoff (not when the process says its input is bad, exit 2); the journal follows the
/// attempt and its newest training checkpoint; asked to stop, the stage gets SIGTERM and the
/// attempt ends interrupted.
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

    /// Runs `arguments` as the stage's process (attempts, backoff, deadline); returns when one
    /// attempt succeeded, throws StageFailure when every attempt failed.
    func run(_ stage: StageConfig, key: String, used: [(String, ArtifactID)], processes: @escaping (Int) throws -> [[String]],
             collect: (Int64) throws -> ([String: ArtifactID], JSONValue)) throws -> Attempted {
        let dir = workDir + "/" + stage.name.rawValue
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let earlier = try store.stages(run: runID).filter { $0.stage == stage.name.rawValue }.map(\.attempt).max() ?? 0
        let total = stage.retryCount + 1
        var lastError = ""
        for attempt in 1...total {
            let n = earlier + attempt
            let exe = try store.beginStage(run: runID, stage: stage.name.rawValue, attempt: n, cacheKey: key)
            for (role, id) in used { try store.record(execution: exe, .used, id, role: role) }
            try journal.atStage(stage.name.rawValue, execution: exe)
            let log = dir + "/attempt-\(n).log"
            options.say("▶ \(stage.name.rawValue): attempt \(attempt) of \(total) (timeout \(String(format: "%g", stage.timeoutMinutes)) min, log \(log))")
            let started = Date()
            let deadline = started.addingTimeInterval(stage.timeoutMinutes * 60)
            var outcome: Subprocess.Outcome?
            let tick = followCheckpoints(of: stage, execution: exe, in: dir + "/train/checkpoints")
            for args in try processes(n) {
                let p = try Subprocess(args, environment: childEnvironment(), logPath: log, echo: options.echo)
                // Asked to stop, the stage gets SIGTERM: it finishes its step, writes a checkpoint, exits.
                let o = p.wait(deadline: deadline, tick: tick, stopRequested: options.stopRequested)
                outcome = o
                if !o.succeeded || options.stopRequested() { break }
            }
            if options.stopRequested() {
                tick()
                try store.finishStage(execution: exe, status: .interrupted, error: "stopped on request (\(outcome?.description ?? "not started"))")
                throw StageInterrupted()
            }
            let seconds = Date().timeIntervalSince(started)
            self.seconds += seconds
            if let logID = try? store.add(path: log, kind: .log, name: "\(pipelineID)/run-\(runID)/\(stage.name.rawValue)-attempt-\(n).log").artifact.id {
                try? store.record(execution: exe, .generated, logID, role: "log")
            }
            tick()
            if let o = outcome, o.succeeded {
                let (outputs, metrics) = try collect(exe)
                return Attempted(outputs: outputs, execution: exe, metrics: metrics, seconds: seconds)
            }
            let tail = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(3).joined(separator: " | ")
            lastError = "\(outcome?.description ?? "did not start")\(tail.isEmpty ? "" : ": " + tail)"
            try store.finishStage(execution: exe, status: .failed, error: lastError)
            options.say("✗ \(stage.name.rawValue) attempt \(attempt) failed: \(lastError)")
            if outcome?.exitCode == 2 {
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

    func childEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for (k, v) in options.environment { env[k] = v }
        env["CAIRN_DIE_WITH_PARENT"] = String(getpid())
        return env
    }
}
