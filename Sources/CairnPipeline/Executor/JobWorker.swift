import CairnStore
import CairnSystem
import Foundation

/// What a worker reports: written by `cairn worker` beside the job, checksummed, read by the
/// coordinator, which indexes the outputs from `blobs` without reading the files again.
struct WorkerResult: Codable {
    var job: String
    var host: String
    var slurmJobID: String?
    var succeeded: Bool
    var exitCode: Int32?
    /// Stopped by its checkpoint signal (time limit coming, preemption, a stop).
    var signalled: Bool
    var description: String
    var seconds: Double
    var blobs: [WrittenBlob]

    enum CodingKeys: String, CodingKey {
        case job, host, slurmJobID = "slurm_job_id", succeeded, exitCode = "exit_code", signalled, description, seconds, blobs
    }
}

/// `cairn worker JOB.json`, on a cluster node: runs the job's commands in order, passing SIGTERM
/// on to the running one (the stage checkpoints and stops), stores the outputs as blobs (no
/// SQLite: the index is the coordinator's), then writes the result. Never opens the index.
public enum JobWorker {
    /// Returns the exit status for the job: 0 when every command succeeded.
    public static func run(spec path: String, stopRequested: @escaping () -> Bool) -> Int32 {
        let job: StageJob
        do { job = try StageJob.read(path) } catch {
            FileHandle.standardError.write(Data("cairn worker: cannot read the job '\(path)': \(error)\n".utf8))
            return 2
        }
        let resultPath = job.resultPath
        try? FileManager.default.removeItem(atPath: resultPath)  // a requeued job's earlier run
        let started = Date()
        let env = job.processEnvironment(dieWithParent: false)
        var result = WorkerResult(job: job.name, host: ProcessInfo.processInfo.hostName, slurmJobID: env["SLURM_JOB_ID"], succeeded: true,
                                  exitCode: 0, signalled: false, description: "exit status 0", seconds: 0, blobs: [])
        say("cairn worker: job \(job.name) on \(result.host)\(result.slurmJobID.map { ", Slurm job \($0)" } ?? ""): \(job.commands.count) command(s)")
        for args in job.commands {
            do {
                let o = try Subprocess(args, environment: env, logPath: nil, echo: true).wait(stopRequested: stopRequested)
                result.exitCode = o.exitCode
                result.description = o.description
                if stopRequested() {
                    result.succeeded = false
                    result.signalled = true
                    result.description = "stopped by its checkpoint signal (\(o.description))"
                    break
                }
                if !o.succeeded { result.succeeded = false; break }
            } catch {
                result.succeeded = false; result.exitCode = nil; result.description = "\(error)"
                break
            }
        }
        if result.succeeded {
            do { result.blobs = try WorkerBlobs.write(paths: job.outputs, storeRoot: job.storeRoot, skipping: ["checkpoints"]) } catch {
                result.succeeded = false; result.exitCode = nil; result.description = "cannot store the outputs: \(error)"
            }
        }
        result.seconds = Date().timeIntervalSince(started)
        do {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            try ChecksummedFile.write(try enc.encode(result), to: resultPath)
        } catch {
            say("cairn worker: cannot write the result '\(resultPath)': \(error)")
            return 1
        }
        say("cairn worker: \(result.description); \(result.blobs.count) blob(s) stored; result \(resultPath)")
        if result.succeeded { return 0 }
        return result.signalled ? 143 : (result.exitCode.map { $0 == 0 ? 1 : $0 } ?? 1)
    }

    static func say(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }
}
