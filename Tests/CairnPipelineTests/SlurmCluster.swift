import CairnSystem
import CairnTestSupport
import Foundation

/// A two-node Slurm cluster for this test process (scripts/slurm-local.sh: Debian's slurm-wlm and
/// munge, every file under one directory, ports of its own, each node's slurmd in network and
/// hostname namespaces of its own: cairn-n1 and cairn-n2), started on first use and stopped when
/// the process exits. Every cairn the tests start gets SLURM_CONF pointing at it.
enum SlurmCluster {
    static let nodes = ["cairn-n1", "cairn-n2"]
    static let dir = NSTemporaryDirectory() + "cairn-slurm-\(getpid())"
    static let port = 20_000 + Int(getpid() % 20_000) * 2

    static let environment: [String: String] = {
        let script = repoRoot + "/scripts/slurm-local.sh"
        // Started through CairnSystem's Subprocess (posix_spawn, waitpid): Foundation's Process
        // missed this script's exit here, its daemons having forked away from it.
        let log = dir + ".log"
        var env = ProcessInfo.processInfo.environment
        env["SLURM_LOCAL_PORT"] = String(port)
        env["SLURM_LOCAL_NODES"] = String(nodes.count)
        let o = try! Subprocess(["/bin/bash", script, "start", dir], environment: env, logPath: log, echo: false).wait(deadline: Date().addingTimeInterval(300))
        precondition(o.succeeded, "the test cluster did not start (\(o.description)): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        atexit {
            _ = try? Subprocess(["/bin/bash", repoRoot + "/scripts/slurm-local.sh", "stop", SlurmCluster.dir], logPath: nil, echo: false).wait()
            try? FileManager.default.removeItem(atPath: SlurmCluster.dir)
            try? FileManager.default.removeItem(atPath: SlurmCluster.dir + ".log")
        }
        return ["SLURM_CONF": dir + "/slurm.conf"]
    }()

    /// A Slurm command's output (`squeue`, `scontrol`, `scancel`).
    @discardableResult
    static func run(_ command: String, _ args: [String]) throws -> String {
        try TestProcess.run("/usr/bin/env", [command] + args, env: environment).stdout
    }

    /// Every job slurmctld knows that works under `root` (one test's workspace) and whose name
    /// starts with `prefix`: name → [field: value] of `scontrol show job` (JobState, StartTime,
    /// EndTime, NodeList, ExitCode, JobId).
    static func jobs(under root: String, named prefix: String) throws -> [(name: String, fields: [String: String])] {
        try run("scontrol", ["show", "job", "-o"]).split(separator: "\n").compactMap { line in
            var f: [String: String] = [:]
            for part in line.split(separator: " ") {
                let kv = part.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { f[String(kv[0])] = String(kv[1]) }
            }
            guard let name = f["JobName"], name.hasPrefix(prefix), f["WorkDir"]?.hasPrefix(root) ?? false else { return nil }
            return (name, f)
        }
    }

    /// How long a finished job ran, from its `scontrol show job` StartTime and EndTime (whole
    /// seconds, the cluster's local time); nil when either is missing.
    static func span(_ fields: [String: String]) -> (start: Date, end: Date)? {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        guard let s = fields["StartTime"].flatMap(f.date(from:)), let e = fields["EndTime"].flatMap(f.date(from:)) else { return nil }
        return (s, e)
    }

    /// Waits (up to `seconds`) until a job whose name starts with `prefix` is RUNNING; its id.
    static func waitRunning(under root: String, _ prefix: String, seconds: Double = 120) throws -> String? {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if let j = try jobs(under: root, named: prefix).first(where: { $0.fields["JobState"] == "RUNNING" }) { return j.fields["JobId"] }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return nil
    }

    /// STORE/executors.yaml for this cluster: one CPU and 1 GiB per job, so eight run at once
    /// (the nodes have at least eight slots between them, scripts/slurm-local.sh).
    /// `check`: the check jobs' resources (a test holds them in the queue with `--hold`).
    static func writeSettings(store: String, extra: String = "", check: String = "{cpus: 1, memory: 1G}") throws {
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        let text = """
        slurm:
          poll_seconds: 0.5
          stop_grace_seconds: 60
          resources:
            train: {cpus: 1, memory: 1G}
            merge: {cpus: 1, memory: 1G}
            export: {cpus: 1, memory: 1G}
            check: \(check)
        \(extra)
        """
        try text.write(toFile: store + "/executors.yaml", atomically: true, encoding: .utf8)
    }
}
