import Foundation
import Testing
@testable import CairnPipeline

/// How the coordinator follows a job when squeue's listing and the job's submission race, with
/// stand-in squeue and scontrol scripts (settings `bin`) that replay exactly the order of events
/// a busy cluster produced once: no cluster needed, nothing left to timing.
@Suite("Slurm job following")
struct SlurmFollowTests {
    /// A directory of stand-in Slurm commands: squeue prints the file `listing` as it was when
    /// it started, after waiting until the file `go` exists when `hold` does; scontrol answers
    /// PENDING `pending` times, then COMPLETED, counting its calls in `scontrol.calls`.
    func fakeSlurm(pending: Int = 0) throws -> String {
        let dir = NSTemporaryDirectory() + "cairn-fake-slurm-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let squeue = """
            #!/bin/sh
            d=\(dir)
            listing=$(cat $d/listing 2>/dev/null)
            touch $d/squeue.started
            if [ -f $d/hold ]; then rm -f $d/hold; while [ ! -f $d/go ]; do sleep 0.02; done; fi
            [ -n "$listing" ] && echo "$listing"
            exit 0
            """
        let scontrol = """
            #!/bin/sh
            d=\(dir)
            n=$(cat $d/scontrol.calls 2>/dev/null || echo 0); n=$((n + 1)); echo $n > $d/scontrol.calls
            if [ $n -le \(pending) ]; then echo "JobId=8 JobState=PENDING Reason=Priority NodeList=(null) ExitCode=0:0"
            else echo "JobId=8 JobState=COMPLETED Reason=None NodeList=node1 ExitCode=0:0"; fi
            """
        for (name, text) in [("squeue", squeue), ("scontrol", scontrol)] {
            try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
            chmod(dir + "/" + name, 0o755)
        }
        return dir
    }

    func settings(_ bin: String) -> ExecutorSettings.Slurm {
        var s = ExecutorSettings.Slurm()
        s.bin = bin
        s.pollSeconds = 0.2
        return s
    }

    /// A squeue that started before job 8's sbatch returned, and answered after, does not list
    /// it; asked about job 8 next, the coordinator must ask squeue again, not call the job gone.
    @Test func aListingThatStartedBeforeTheSubmissionDoesNotCountAsAfterIt() throws {
        let dir = try fakeSlurm()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let slurm = SlurmCommands(settings: settings(dir))
        try "7|RUNNING|node1|None".write(toFile: dir + "/listing", atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: dir + "/hold", contents: nil)
        // Another job's follower runs squeue; it has read its listing and is still running.
        let other = Thread { _ = slurm.state(of: "7", polledAfter: Date()) }
        other.start()
        while !FileManager.default.fileExists(atPath: dir + "/squeue.started") { Thread.sleep(forTimeInterval: 0.01) }
        // Meanwhile job 8 is submitted (sbatch returned), and only then does that squeue answer.
        try "7|RUNNING|node1|None\n8|PENDING||Priority".write(toFile: dir + "/listing", atomically: true, encoding: .utf8)
        let submitted = Date()
        FileManager.default.createFile(atPath: dir + "/go", contents: nil)
        let s = slurm.state(of: "8", polledAfter: submitted)
        #expect(s?.state == "PENDING", "\(String(describing: s))")
        #expect(slurm.queries == 2)
    }

    /// A job squeue does not list while scontrol still calls it PENDING is followed on until it
    /// ends, and its outcome says how it ended — never "ended PENDING".
    @Test func aJobSqueueMissesButScontrolCallsPendingIsFollowedUntilItEnds() throws {
        let dir = try fakeSlurm(pending: 3)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ex = SlurmExecutor(settings: settings(dir), executable: "/usr/bin/cairn")
        let job = StageJob(name: "run1-sft-1", kind: .train, commands: [["true"]], directory: dir + "/job", log: dir + "/job.log",
                           timeLimitSeconds: 60, storeRoot: dir + "/store")
        var control = JobControl()
        control.reattach = "8"
        let o = ex.run(job, control: control)
        let calls = Int((try String(contentsOfFile: dir + "/scontrol.calls", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(calls >= 4, "scontrol was asked \(calls) times")
        #expect(!o.succeeded && o.description.contains("ended COMPLETED") && !o.description.contains("PENDING"), "\(o.description)")
        #expect(o.jobID == "8")
    }
}
