import CairnSystem
import Foundation

/// Drives a trainer to its end: resumes from the newest complete checkpoint when asked, writes
/// metrics.jsonl (one line per logged step), checkpoints every `saveSteps` steps (the newest
/// `keep` kept), and reports each step to `progress` with the elapsed time.
public struct TrainingRunner {
    public var checkpointDirectory: String
    public var metricsFile: String
    public var saveSteps: Int
    public var keep: Int
    public var loggingSteps: Int

    public init(checkpointDirectory: String, metricsFile: String, saveSteps: Int, keep: Int, loggingSteps: Int) {
        self.checkpointDirectory = checkpointDirectory; self.metricsFile = metricsFile
        self.saveSteps = saveSteps; self.keep = keep; self.loggingSteps = max(1, loggingSteps)
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
        let logged = trainer.history.filter { shouldLog($0.step, total: trainer.stepsTotal) }
        try AtomicFile.write(Data(logged.map(line).joined()), to: metricsFile)
        guard let handle = FileHandle(forWritingAtPath: metricsFile) else { throw TrainingError(step: nil, "cannot write '\(metricsFile)'") }
        defer { try? handle.close() }
        try handle.seekToEnd()
        let start = Date()
        var steps = 0
        while !trainer.isFinished {
            let m = try trainer.trainStep()
            steps += 1
            if shouldLog(m.step, total: trainer.stepsTotal) { try handle.write(contentsOf: line(m)) }
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

    func shouldLog(_ step: Int, total: Int) -> Bool { step % loggingSteps == 0 || step == total || step == 1 }

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
