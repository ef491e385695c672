import CairnStore
import CairnSystem
import Foundation

/// Runs each attempt as one Slurm job: `sbatch` a script that execs `cairn worker JOB.json` on a
/// node, then follows the job with squeue (one query for every job followed) until it ends, and
/// reads the result file its worker wrote (checksummed). The job gets `--time` from the stage's
/// timeout, `--signal=B:TERM@S` so the stage checkpoints before the limit, `--requeue` so a
/// preempted job runs again and resumes from that checkpoint, and the resources its kind has in
/// executors.yaml. A stop request sends the checkpoint signal, then scancel after the grace.
public final class SlurmExecutor: StageExecutor, @unchecked Sendable {
    public var name: String { "slurm" }
    public let settings: ExecutorSettings.Slurm
    /// The cairn the nodes run.
    let cairn: String
    let slurm: SlurmCommands

    public init(settings: ExecutorSettings.Slurm, executable: String) {
        self.settings = settings
        cairn = settings.cairn ?? executable
        slurm = SlurmCommands(settings: settings)
    }

    /// squeue calls made so far (one serves every job followed at that moment).
    public var queries: Int { slurm.queries }

    /// How early Slurm may send a `--signal`: its time checks run about every 30 s, and sbatch(1)
    /// says the signal "may be sent up to 60 seconds earlier than specified".
    static let signalEarliness = 60

    /// Slurm's time limit (whole minutes) and checkpoint signal lead (seconds) for a job whose
    /// timeout is `timeout` seconds and which gets `lead` seconds to checkpoint. Aimed before the
    /// timeout, the signal could reach a short job at once (a one-minute limit with `@30` was
    /// signalled 60 ms after it started); so it is aimed `signalEarliness` past the timeout and
    /// arrives between the timeout and a minute after it, with at least `lead` seconds left
    /// before Slurm's limit: minutes = ⌈(timeout + lead + 60) / 60⌉, signal = minutes·60 − timeout − 60.
    static func timeLimit(timeout: Double, lead: Int) -> (minutes: Int, signal: Int) {
        let t = max(1, Int(timeout.rounded(.up)))
        let minutes = (t + lead + signalEarliness + 59) / 60
        return (minutes, minutes * 60 - t - signalEarliness)
    }

    /// The sbatch options of `job`: Cairn's own, then the settings', then the kind's.
    func sbatchOptions(_ job: StageJob) -> [String] {
        let (minutes, signal) = Self.timeLimit(timeout: job.timeLimitSeconds, lead: settings.signalSeconds)
        var o = ["--job-name=cairn-\(job.name)", "--output=\(job.log)", "--open-mode=append", "--chdir=\(job.directory)",
                 "--time=\(minutes)", "--signal=B:TERM@\(signal)", settings.requeue ? "--requeue" : "--no-requeue"]
        if let p = settings.partition { o.append("--partition=\(p)") }
        if let a = settings.account { o.append("--account=\(a)") }
        let r = settings.resources[job.kind] ?? ExecutorSettings.Resources()
        o.append("--cpus-per-task=\(r.cpus)")
        if let m = r.memory { o.append("--mem=\(m)") }
        return o + settings.sbatchOptions + r.options
    }

    /// What the job's processes see: this environment (sbatch exports it), the settings', the
    /// job's, and CAIRN_THREADS set to the CPUs the job asked for; never the local executor's
    /// die-with-parent (a job outlives its coordinator on purpose).
    func environment(_ job: StageJob) -> [String: String] {
        var env = job.processEnvironment(dieWithParent: false)
        for (k, v) in settings.environment where job.environment[k] == nil { env[k] = v }
        env["CAIRN_THREADS"] = String((settings.resources[job.kind] ?? ExecutorSettings.Resources()).cpus)
        return env
    }

    func submit(_ job: StageJob) throws -> String {
        try FileManager.default.createDirectory(atPath: job.directory, withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: job.resultPath)
        try job.write()
        let script = job.directory + "/job.sh"
        try AtomicFile.write("#!/bin/sh\n# Cairn job \(job.name): one attempt, run by `cairn worker` on the node.\nexec \(shellQuote(cairn)) worker \(shellQuote(job.specPath))\n",
                             to: script)
        return try slurm.submit(options: sbatchOptions(job), script: script, environment: environment(job))
    }

    public func run(_ job: StageJob, control: JobControl) -> JobOutcome {
        let id: String
        if let r = control.reattach {
            id = r
        } else {
            do { id = try submit(job) } catch {
                return JobOutcome(succeeded: false, exitCode: nil, description: "could not submit to Slurm: \(error)")
            }
            control.submitted(id)
        }
        var last: SlurmCommands.JobState?
        var signalledAt: Date?
        var lastTick = Date()
        let since = Date()
        while true {
            // Not in a squeue listing made after `since`: it ended long enough ago for squeue to
            // drop it, or Slurm lost it — scontrol (or sacct) says which; a job they still call
            // PENDING or RUNNING is followed on, never taken for ended.
            guard let s = slurm.state(of: id, polledAfter: since) ?? slurm.final(id) else { break }
            if s != last {
                last = s
                control.stateChanged(s.state, s.node)
            }
            if s.isFinal { break }
            if control.stopRequested() {
                if signalledAt == nil {
                    signalledAt = Date()
                    if last?.state == "PENDING" { slurm.cancel(id) } else { slurm.cancel(id, signal: "TERM") }
                } else if Date().timeIntervalSince(signalledAt!) > settings.stopGraceSeconds {
                    slurm.cancel(id)
                    signalledAt = .distantFuture
                }
            }
            if Date().timeIntervalSince(lastTick) >= 1 { lastTick = Date(); control.tick() }
            Thread.sleep(forTimeInterval: min(0.25, settings.pollSeconds))
        }
        control.tick()
        return outcome(of: job, id: id, state: slurm.final(id) ?? last)
    }

    /// The attempt's outcome: the worker's result when it wrote one, else how Slurm says the job ended.
    func outcome(of job: StageJob, id: String, state: SlurmCommands.JobState?) -> JobOutcome {
        let where_ = "Slurm job \(id)" + ((state?.node).map { $0.isEmpty || $0 == "(null)" ? "" : " on \($0)" } ?? "")
        var o: JobOutcome
        do {
            if let body = try ChecksummedFile.read(job.resultPath) {
                let r = try JSONDecoder().decode(WorkerResult.self, from: body)
                // Cancelled, timed out, preempted: Slurm's word beside the worker's.
                let ended = state.map { $0.isFinal && !["COMPLETED", "FAILED"].contains($0.state) ? ", ended \($0.state)" : "" } ?? ""
                o = JobOutcome(succeeded: r.succeeded, exitCode: r.exitCode, description: "\(r.description) (\(where_)\(ended))")
                o.signalled = r.signalled
                o.known = KnownBlobs(r.blobs)
            } else {
                let s = state.map { "\($0.state)\($0.exitCode.isEmpty ? "" : " (exit \($0.exitCode))")\($0.reason.isEmpty || $0.reason == "None" ? "" : ", \($0.reason)")" }
                o = JobOutcome(succeeded: false, exitCode: nil, description: "\(where_) ended \(s ?? "without a trace in Slurm") and wrote no result")
            }
            o.timedOut = state?.state == "TIMEOUT"
        } catch {
            o = JobOutcome(succeeded: false, exitCode: nil, description: "\(where_): \(error)")
        }
        o.jobID = id
        return o
    }

    public func canReattach(_ id: String, job: StageJob) -> Bool {
        if let s = slurm.state(of: id, polledAfter: Date()) ?? slurm.final(id), !s.isFinal { return true }
        return FileManager.default.fileExists(atPath: job.resultPath)
    }

    /// Cancels job `id` (the daemon's stop: after the checkpoint signal and its grace).
    public func cancel(_ id: String, signal: String? = nil) { slurm.cancel(id, signal: signal) }
}

func shellQuote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
