import CairnStore
import CairnSystem
import Foundation

/// One attempt's work, as an executor runs it: the commands in order (the first failure ends
/// it), where they log, how long they may take, and which outputs a worker stores as blobs
/// before it reports. Written as JSON beside the attempt for a cluster worker to read.
public struct StageJob: Codable, Sendable {
    /// What the cluster settings give resources by: train, merge, export, check.
    public enum Kind: String, Codable, Sendable, CaseIterable { case train, merge, export, check }

    /// A readable name, unique per attempt: `RUN-sft-3`, `RUN-sft-gate-output_format_valid`.
    public var name: String
    public var kind: Kind
    public var commands: [[String]]
    /// Set in the commands' environment, beside what the executor sets.
    public var environment: [String: String] = [:]
    /// The attempt's own directory: the job's spec, script and result file live here.
    public var directory: String
    public var log: String
    /// Files and directories the commands write that become artifacts: a cluster worker stores
    /// them as blobs and lists them in its result, so the coordinator indexes without reading
    /// them again. Hidden files and `checkpoints` directories are left out.
    public var outputs: [String] = []
    public var timeLimitSeconds: Double
    /// The store the outputs go to.
    public var storeRoot: String
    /// Copy the commands' output to this process's stderr too (local only).
    public var echo = false

    enum CodingKeys: String, CodingKey {
        case name, kind, commands, environment, directory, log, outputs, timeLimitSeconds = "time_limit_seconds", storeRoot = "store_root"
    }

    public init(name: String, kind: Kind, commands: [[String]], directory: String, log: String, timeLimitSeconds: Double, storeRoot: String) {
        self.name = name; self.kind = kind; self.commands = commands; self.directory = directory; self.log = log
        self.timeLimitSeconds = timeLimitSeconds; self.storeRoot = storeRoot
    }

    /// Where a cluster worker writes its report (WorkerResult, checksummed).
    var resultPath: String { directory + "/result.json" }
    /// Where the spec is written for a cluster worker to read.
    var specPath: String { directory + "/job.json" }

    static func read(_ path: String) throws -> StageJob {
        try JSONDecoder().decode(StageJob.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func write() throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try enc.encode(self), to: specPath)
    }

    /// The commands' environment: this process's with the job's on top; `dieWithParent` only for
    /// children of this process (a cluster job outlives its coordinator on purpose).
    func processEnvironment(dieWithParent: Bool) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "CAIRN_DIE_WITH_PARENT")
        for (k, v) in environment { env[k] = v }
        if dieWithParent { env["CAIRN_DIE_WITH_PARENT"] = String(getpid()) }
        return env
    }
}

/// How an attempt ended.
public struct JobOutcome: Sendable {
    public var succeeded: Bool
    /// The exit status of the command that failed (2: its input is bad; not worth retrying).
    public var exitCode: Int32?
    /// Stopped at its time limit.
    public var timedOut = false
    /// Ended by its checkpoint signal (a time limit coming, a preemption, a stop): it wrote a
    /// checkpoint that the next attempt resumes from.
    public var signalled = false
    public var description: String
    /// Blobs a worker stored for the outputs.
    public var known = KnownBlobs()
    /// The cluster's job id, when it ran on one.
    public var jobID: String?

    public init(succeeded: Bool, exitCode: Int32?, description: String) {
        self.succeeded = succeeded; self.exitCode = exitCode; self.description = description
    }
}

/// What the caller of an executor hears while an attempt runs, and can ask of it.
public struct JobControl {
    /// Runs about once a second (the journal follows training checkpoints).
    public var tick: () -> Void = {}
    /// True asks the attempt to checkpoint and stop (SIGTERM to its processes).
    public var stopRequested: () -> Bool = { false }
    /// The attempt became cluster job ID (journaled at once: a restarted coordinator reattaches).
    public var submitted: (String) -> Void = { _ in }
    /// The job's state or node changed (`cairn status` shows them).
    public var stateChanged: (_ state: String, _ node: String) -> Void = { _, _ in }
    /// A job an earlier coordinator submitted for this attempt: followed, not submitted again.
    public var reattach: String?
    public init() {}
}

/// Where a stage's processes run: on this machine (LocalExecutor) or as cluster jobs
/// (SlurmExecutor). Safe to call from several threads at once (a gate's parallel checks, a
/// sweep's variants).
public protocol StageExecutor: AnyObject, Sendable {
    /// "local" or "slurm".
    var name: String { get }
    /// Runs the job's commands; returns when they ended (or could not start).
    func run(_ job: StageJob, control: JobControl) -> JobOutcome
    /// Whether job `id`, submitted by an earlier coordinator, may still end well: queued,
    /// running, or finished with its result written. False for a local executor (its children
    /// die with their parent).
    func canReattach(_ id: String, job: StageJob) -> Bool
}

/// Runs the commands as child processes of this one, in their own process groups, under the
/// job's deadline (SIGTERM, then SIGKILL), and dying with this process.
public final class LocalExecutor: StageExecutor, @unchecked Sendable {
    public var name: String { "local" }
    public init() {}

    public func run(_ job: StageJob, control: JobControl) -> JobOutcome {
        let env = job.processEnvironment(dieWithParent: true)
        let deadline = Date().addingTimeInterval(job.timeLimitSeconds)
        var last: Subprocess.Outcome?
        for args in job.commands {
            do {
                let p = try Subprocess(args, environment: env, logPath: job.log, echo: job.echo)
                let o = p.wait(deadline: deadline, tick: control.tick, stopRequested: control.stopRequested)
                last = o
                if !o.succeeded || control.stopRequested() { break }
            } catch {
                return JobOutcome(succeeded: false, exitCode: nil, description: "\(error)")
            }
        }
        guard let o = last else { return JobOutcome(succeeded: true, exitCode: 0, description: "nothing to run") }
        var r = JobOutcome(succeeded: o.succeeded, exitCode: o.exitCode, description: o.description)
        r.timedOut = o.timedOut
        return r
    }

    public func canReattach(_ id: String, job: StageJob) -> Bool { false }
}
