// How many jobs a minute Cairn's coordinator follows and ingests through Slurm, against Slurm
// alone running the same jobs (sbatch --wrap, followed with squeue): the peer is the floor
// Slurm sets; the ratio is what Cairn adds. Also the coordinator's own CPU seconds per job
// (getrusage), which is what bounds it on a large cluster.
//
// usage: bench-slurm --cairn PATH [--jobs N] [--parallel P] [--dir DIR]   (DIR given: kept afterwards)
// SLURM_CONF must name a running cluster (scripts/slurm-local.sh start DIR prints it).
import CairnPipeline
import CairnStore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

func arg(_ name: String) -> String? {
    let a = CommandLine.arguments
    return a.firstIndex(of: "--" + name).flatMap { $0 + 1 < a.count ? a[$0 + 1] : nil }
}

/// CPU seconds of this process, or (`children`) of the processes it waited for: sbatch, squeue,
/// scontrol.
func cpuSeconds(children: Bool = false) -> Double {
    var u = rusage()
    getrusage(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}

/// Runs `body` for 0..<n on `parallel` threads.
func each(_ n: Int, parallel: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let next = NSLock()
    nonisolated(unsafe) var i = 0
    let group = DispatchGroup()
    for _ in 0..<parallel {
        group.enter()
        Thread {
            while true {
                next.lock(); let k = i; i += 1; next.unlock()
                if k >= n { break }
                body(k)
            }
            group.leave()
        }.start()
    }
    group.wait()
}

func shell(_ command: String) -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command]
    let out = Pipe()
    p.standardOutput = out
    try! p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

guard let cairn = arg("cairn") else { FileHandle.standardError.write(Data("usage: bench-slurm --cairn PATH [--jobs N] [--parallel P] [--dir DIR]\n".utf8)); exit(2) }
let jobs = Int(arg("jobs") ?? "40")!
let parallel = Int(arg("parallel") ?? "8")!
let dir = arg("dir") ?? NSTemporaryDirectory() + "cairn-bench-slurm-\(getpid())"
try? FileManager.default.removeItem(atPath: dir)
try FileManager.default.createDirectory(atPath: dir + "/peer", withIntermediateDirectories: true)
// Each job writes 64 KiB of its own bytes: a tiny stage with one output.
let work = "head -c 65536 /dev/urandom > out"

// Slurm alone: sbatch --wrap, then squeue until every job has left the queue.
let peerStart = Date()
var ids: [String] = []
for i in 0..<jobs {
    let d = dir + "/peer/\(i)"
    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    ids.append(shell("sbatch --parsable --chdir=\(d) --output=\(d)/log --cpus-per-task=1 --mem=256M --time=1 --wrap '\(work)'").trimmingCharacters(in: .whitespacesAndNewlines))
}
while true {
    let live = shell("squeue --me -h -t pending,running,completing -o %i").split(separator: "\n").map(String.init)
    if !ids.contains(where: live.contains) { break }
    Thread.sleep(forTimeInterval: 0.5)
}
let peerSeconds = Date().timeIntervalSince(peerStart)

// Cairn: the same jobs through SlurmExecutor from `parallel` threads (a sweep's runs, a gate's
// checks), each output stored by its worker and indexed by this coordinator.
let store = try ArtifactStore.initialize(at: dir + "/store")
var settings = ExecutorSettings.Slurm()
settings.pollSeconds = 0.5
settings.resources[.check] = ExecutorSettings.Resources(cpus: 1, memory: "256M", options: [])
let executor = SlurmExecutor(settings: settings, executable: cairn)
let cpu0 = cpuSeconds(), children0 = cpuSeconds(children: true)
let start = Date()
let failures = NSLock()
nonisolated(unsafe) var failed = 0
nonisolated(unsafe) var reused = 0
each(jobs, parallel: parallel) { i in
    let d = dir + "/cairn/\(i)"
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    var job = StageJob(name: "bench-\(i)", kind: .check, commands: [["/bin/sh", "-c", "cd \(d) && \(work)"]], directory: d + "/job", log: d + "/log",
                       timeLimitSeconds: 60, storeRoot: store.root)
    job.outputs = [d + "/out"]
    let o = executor.run(job, control: JobControl())
    let s = try! ArtifactStore(root: store.root)  // one connection per thread, as a sweep's runs have
    do {
        guard o.succeeded else { throw PipelineError(o.description) }
        _ = try s.add(path: d + "/out", kind: .log, known: o.known)
        failures.lock(); if !o.known.isEmpty { reused += 1 }; failures.unlock()
    } catch {
        // Said on stderr: a failed job is a finding, not only a count.
        FileHandle.standardError.write(Data("job \(i) failed: \(error)\n".utf8))
        failures.lock(); failed += 1; failures.unlock()
    }
}
let seconds = Date().timeIntervalSince(start)
let cpu = cpuSeconds() - cpu0
let slurmCommands = cpuSeconds(children: true) - children0
let result: [String: Any] = [
    "jobs": jobs, "parallel": parallel,
    "peer_seconds": peerSeconds, "peer_jobs_per_minute": Double(jobs) / peerSeconds * 60,
    "cairn_seconds": seconds, "cairn_jobs_per_minute": Double(jobs) / seconds * 60,
    "ratio_cairn_to_peer": (Double(jobs) / seconds) / (Double(jobs) / peerSeconds),
    "coordinator_cpu_seconds_per_job": cpu / Double(jobs),
    "slurm_commands_cpu_seconds_per_job": slurmCommands / Double(jobs),
    "squeue_calls": executor.queries, "failed": failed, "outputs_indexed_from_worker_blobs": reused,
]
print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
if arg("dir") == nil { try? FileManager.default.removeItem(atPath: dir) }  // --dir: kept, to read the jobs afterwards
