import CairnSystem
import Foundation

/// Drives a trainer to its end: resumes from the newest complete checkpoint when asked, writes
/// metrics.jsonl (one line per logged step), checkpoints every `saveSteps` steps (the newest
/// `keep` kept), measures held-out data every `evalSteps` steps (logged with the step, as
/// `eval_loss` and the like), and reports each step to `progress` with the elapsed time.
public struct TrainingRunner {
    public var checkpointDirectory: String
    public var metricsFile: String
    public var saveSteps: Int
    public var keep: Int
    public var loggingSteps: Int
    /// 0: never during training (the stage measures held-out data once, at its end).
    public var evalSteps: Int
    /// The held-out measurement, with the model as it is after the step; nil: none.
    public var evaluate: (() throws -> [String: Double])?

    public init(checkpointDirectory: String, metricsFile: String, saveSteps: Int, keep: Int, loggingSteps: Int,
                evalSteps: Int = 0, evaluate: (() throws -> [String: Double])? = nil) {
        self.checkpointDirectory = checkpointDirectory; self.metricsFile = metricsFile
        self.saveSteps = saveSteps; self.keep = keep; self.loggingSteps = max(1, loggingSteps)
        self.evalSteps = evalSteps; self.evaluate = evaluate
    }

    /// Returns the step the run resumed from (0 for a fresh run).
    @discardableResult
    /// `stopRequested` is asked after every step: when it says yes (SIGTERM), a checkpoint of
    /// that step is written and TrainingInterrupted thrown, so a resume loses nothing.
    public func run(_ trainer: ResumableTrainer, resume: Bool,
                    progress: ((LoggedMetrics, _ total: Int, _ elapsed: Double, _ stepsThisRun: Int) -> Void)? = nil,
                    stopRequested: () -> Bool = { false }) throws -> Int {
        var resumedFrom = 0
        if resume, let latest = TrainerCheckpoint.list(in: checkpointDirectory).last {
            try trainer.restore(try TrainerCheckpoint.read(latest.path))
            resumedFrom = latest.step
        }
        // metrics.jsonl restarts from what the checkpoint logged, so a resumed run's file is whole.
        try FileManager.default.createDirectory(atPath: (metricsFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let logged = trainer.history.filter { shouldLog($0, total: trainer.stepsTotal) }
        try AtomicFile.write(Data(logged.map(line).joined()), to: metricsFile)
        guard let handle = FileHandle(forWritingAtPath: metricsFile) else { throw TrainingError(step: nil, "cannot write '\(metricsFile)'") }
        defer { try? handle.close() }
        try handle.seekToEnd()
        let start = Date()
        var steps = 0
        while !trainer.isFinished {
            var m = try trainer.trainStep()
            steps += 1
            // Not after the last step: the stage measures its held-out data at the end itself.
            if let evaluate, evalSteps > 0, m.step % evalSteps == 0, !trainer.isFinished {
                let values = try evaluate()
                trainer.record(evaluation: values)
                m.values.merge(values) { _, new in new }
            }
            if shouldLog(m, total: trainer.stepsTotal) { try handle.write(contentsOf: line(m)) }
            progress?(m, trainer.stepsTotal, Date().timeIntervalSince(start), steps)
            if saveSteps > 0, m.step % saveSteps == 0, !trainer.isFinished {
                _ = try trainer.checkpointState().write(into: checkpointDirectory)
                TrainerCheckpoint.prune(checkpointDirectory, keep: keep)
            } else if stopRequested(), !trainer.isFinished {
                _ = try trainer.checkpointState().write(into: checkpointDirectory)
                TrainerCheckpoint.prune(checkpointDirectory, keep: keep)
            }
            if stopRequested() && !trainer.isFinished { throw TrainingInterrupted(step: m.step) }
        }
        return resumedFrom
    }

    /// Every logging_steps-th step, the first, the last, and every step with a held-out measurement.
    func shouldLog(_ m: LoggedMetrics, total: Int) -> Bool {
        m.step % loggingSteps == 0 || m.step == total || m.step == 1 || m.values.keys.contains { $0.hasPrefix("eval_") }
    }

    func line(_ m: LoggedMetrics) -> Data {
        var obj: [String: Any] = ["step": m.step, "epoch": (m.epoch * 1e4).rounded() / 1e4]
        for (k, v) in m.values { obj[k] = v }
        var d = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data()
        d.append(10)
        return d
    }
}

/// Training stopped on request (SIGTERM) after `step`, with a checkpoint of that step written.
public struct TrainingInterrupted: Error, CustomStringConvertible, Sendable {
    public let step: Int
    public var description: String { "stopped on request after step \(step); checkpoint written, resume continues from it" }
}
