import CairnSystem
import Foundation

/// The one place that runs Slurm's commands (sbatch, squeue, scontrol, sacct, scancel) and reads
/// what they print. Cairn never schedules anything itself: Slurm decides where and when a job
/// runs; this asks it to, and asks how it went.
final class SlurmCommands: @unchecked Sendable {
    /// What Slurm says about a job.
    struct JobState: Equatable, Sendable {
        var state: String
        var node: String
        var reason: String
        var exitCode: String = ""
        /// The job will not run again: its processes are gone and Slurm will not requeue it.
        var isFinal: Bool { SlurmCommands.finalStates.contains(state) }
    }

    /// Job states after which nothing more happens (a requeued job goes back to PENDING instead).
    static let finalStates: Set<String> = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                                           "DEADLINE", "PREEMPTED", "SPECIAL_EXIT", "REVOKED"]

    let settings: ExecutorSettings.Slurm
    private let lock = NSLock()
    private var cached: [String: JobState] = [:]
    private var polledAt = Date.distantPast
    /// squeue calls made (what the throughput benchmark reports).
    private(set) var queries = 0

    init(settings: ExecutorSettings.Slurm) { self.settings = settings }

    struct CommandError: Error, CustomStringConvertible {
        let command: String
        let output: String
        var description: String { "`\(command)` failed: \(output.trimmingCharacters(in: .whitespacesAndNewlines))" }
    }

    /// Runs a Slurm command; its output, or CommandError with what it printed.
    func call(_ name: String, _ args: [String], environment: [String: String]? = nil) throws -> String {
        let out = NSTemporaryDirectory() + "/cairn-slurm-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let command = [settings.command(name)] + args
        let argv = command[0].hasPrefix("/") ? command : ["/usr/bin/env"] + command
        let o: Subprocess.Outcome
        do {
            o = try Subprocess(argv, environment: environment, logPath: out, echo: false).wait(deadline: Date().addingTimeInterval(120))
        } catch {
            throw CommandError(command: command.joined(separator: " "), output: "\(error)")
        }
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard o.succeeded else { throw CommandError(command: command.joined(separator: " "), output: "\(o.description): \(text)") }
        return text
    }

    /// `sbatch --parsable OPTIONS SCRIPT`: the new job's id.
    func submit(options: [String], script: String, environment: [String: String]) throws -> String {
        let out = try call("sbatch", ["--parsable"] + options + [script], environment: environment)
        // --parsable prints "ID" or "ID;CLUSTER".
        guard let line = out.split(separator: "\n").last, let id = line.split(separator: ";").first, Int(id) != nil else {
            throw CommandError(command: "sbatch", output: "no job id in its output: \(out)")
        }
        return String(id)
    }

    /// What squeue says of job `id`: one squeue lists every job of this user for all the jobs
    /// followed, at most once per poll interval whichever thread asks — sooner only when `id` is
    /// missing from a listing older than `polledAfter` (a job submitted since). nil: a listing
    /// made after `polledAfter` does not have it; UNKNOWN (not final) while squeue does not answer.
    func state(of id: String, polledAfter: Date) -> JobState? {
        lock.lock(); defer { lock.unlock() }
        if Date().timeIntervalSince(polledAt) >= settings.pollSeconds || (cached[id] == nil && polledAt < polledAfter) {
            // The listing's time is when squeue started, not when it answered: a job whose
            // sbatch returned while squeue ran may be missing from it.
            let started = Date()
            if let text = try? call("squeue", ["--me", "-h", "-t", "all", "-o", "%i|%T|%N|%r"]) {
                queries += 1
                var now: [String: JobState] = [:]
                for line in text.split(separator: "\n") {
                    let f = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                    if f.count >= 4 { now[f[0]] = JobState(state: f[1], node: f[2], reason: f[3]) }
                }
                cached = now
                polledAt = started
            }
        }
        // squeue failed (slurmctld restarting, a timeout): no listing says the job is gone yet.
        if cached[id] == nil && polledAt < polledAfter { return JobState(state: "UNKNOWN", node: "", reason: "squeue did not answer") }
        return cached[id]
    }

    /// The end of a job as `scontrol show job` (or, on a cluster with accounting, `sacct`) tells
    /// it: state, exit code (status:signal), node, reason. nil when Slurm has forgotten the job.
    func final(_ id: String) -> JobState? {
        if let text = try? call("scontrol", ["show", "job", "-o", id]) {
            var f: [String: String] = [:]
            for part in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
                let kv = part.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { f[String(kv[0])] = String(kv[1]) }
            }
            if let s = f["JobState"] {
                return JobState(state: s, node: f["NodeList"] ?? "", reason: f["Reason"] ?? "", exitCode: f["ExitCode"] ?? "")
            }
        }
        if let text = try? call("sacct", ["-n", "-P", "-X", "-j", id, "-o", "State,ExitCode,NodeList"]),
           let line = text.split(separator: "\n").first {
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            if f.count >= 3 { return JobState(state: String(f[0].split(separator: " ")[0]), node: f[2], reason: "", exitCode: f[1]) }
        }
        return nil
    }

    /// scancel: the whole job, or (with `signal`) only that signal to the batch shell (the
    /// worker, which passes it to the stage: a checkpoint, then a clean end).
    func cancel(_ id: String, signal: String? = nil) {
        _ = try? call("scancel", (signal.map { ["--batch", "--signal=\($0)"] } ?? []) + [id])
        lock.lock(); polledAt = .distantPast; lock.unlock()
    }
}
