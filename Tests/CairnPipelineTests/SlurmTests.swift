import CairnStore
import CairnTestSupport
import Foundation
import Testing
@testable import CairnPipeline

/// The Slurm executor against a real Slurm (two nodes on this machine, SlurmCluster): each
/// stage attempt and gate check a job, the index written only by the coordinator from the
/// workers' result files, time limits, scancel, a coordinator killed and restarted, a sweep's
/// independent stages as concurrent jobs.
@Suite("Slurm executor", .serialized)
struct SlurmTests {
    func slurmRun(_ ws: Workspace, _ extra: [String] = []) throws -> ProcessResult {
        try SlurmCluster.writeSettings(store: ws.store)
        return try cairn(["run", ws.pipeline, "--quiet", "--executor", "slurm"] + extra, store: ws.store, env: SlurmCluster.environment)
    }

    /// `cairn run --executor slurm` in the background with an SFT of 30 epochs (about 15 s on
    /// one CPU here), once its SFT job is RUNNING: the process and the job's id.
    func startLongSFT(_ ws: Workspace) throws -> (Process, String) {
        try ws.setKey("sft_config.yaml", "epochs", "30")
        try SlurmCluster.writeSettings(store: ws.store)
        let p = try ws.start(["run", ws.pipeline, "--quiet", "--executor", "slurm"], env: SlurmCluster.environment, errorLog: ws.root + "/run.err")
        guard let id = try SlurmCluster.waitRunning(under: ws.root, "cairn-run1-sft-1") else {
            p.terminate()
            throw PipelineError("no SFT job ran: \((try? String(contentsOfFile: ws.root + "/run.err", encoding: .utf8)) ?? "")")
        }
        return (p, id)
    }

    /// Waits (up to a minute) until run 1's SFT has logged `n` steps.
    func waitForSteps(_ ws: Workspace, _ n: Int) throws {
        let metrics = ws.pipeline + "/artifacts/run-1/sft/train/metrics.jsonl"
        let end = Date().addingTimeInterval(60)
        while Date() < end && ((try? String(contentsOfFile: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0) < n {
            Thread.sleep(forTimeInterval: 0.2)
        }
    }

    /// The run's stage executions: stage → [(attempt, status, error)].
    func attempts(_ ws: Workspace, run: Int64 = 1) throws -> [String: [(Int, RunStatus, String)]] {
        var out: [String: [(Int, RunStatus, String)]] = [:]
        for s in try ws.openStore().stages(run: run) { out[s.stage, default: []].append((s.attempt, s.status, s.error ?? "")) }
        return out
    }

    @Test(arguments: [
        ("slurm:\n  partiton: cpu\n", 2, "unknown key 'partiton' — did you mean 'partition'?"),
        ("slurm:\n  resources:\n    train: {cpus: 0}\n", 3, "key 'cpus' must be at least 1, not 0"),
        ("slurm:\n  resources:\n    gpu: {cpus: 2}\n", 3, "unknown key 'gpu'"),
        ("slurm:\n  resources:\n    merge: {memory: lots}\n", 3, "key 'memory' must be a size such as 16G or 500M, not 'lots'"),
        ("slurm:\n  sbatch_options: [\"--time=10\"]\n", 2, "Cairn sets --time itself"),
        ("slurm:\n  sbatch_options: [\"qos=high\"]\n", 2, "'qos=high' is not an sbatch option"),
        ("slurm:\n  cairn: bin/cairn\n", 2, "key 'cairn' must be an absolute path"),
        ("slurm:\n  environment: {\"A-B\": x}\n", 2, "'A-B' is not a variable name"),
        ("slurm:\n  poll_seconds: 0\n", 2, "key 'poll_seconds' must be in"),
    ])
    func badExecutorSettingsNameFileLineAndKey(text: String, line: Int, message: String) throws {
        #expect {
            _ = try ExecutorSettings.parse(text, file: "STORE/executors.yaml")
        } throws: { e in
            let s = "\(e)"
            return s.hasPrefix("STORE/executors.yaml:\(line): ") && s.contains(message)
        }
    }

    @Test func settingsBecomeTheJobsSbatchOptions() throws {
        let s = try ExecutorSettings.parse("""
            slurm:
              partition: cpu
              account: ml
              signal_seconds: 90
              requeue: false
              sbatch_options: ["--qos=normal"]
              resources:
                train: {cpus: 8, memory: 16G, options: ["--constraint=avx512"]}
            """, file: "x")
        let ex = SlurmExecutor(settings: s.slurm!, executable: "/usr/bin/cairn")
        var job = StageJob(name: "run1-sft-1", kind: .train, commands: [["true"]], directory: "/d", log: "/d.log", timeLimitSeconds: 150, storeRoot: "/s")
        #expect(ex.sbatchOptions(job) == ["--job-name=cairn-run1-sft-1", "--output=/d.log", "--open-mode=append", "--chdir=/d", "--time=5",
                                          "--signal=B:TERM@90", "--no-requeue", "--partition=cpu", "--account=ml", "--cpus-per-task=8", "--mem=16G",
                                          "--qos=normal", "--constraint=avx512"])
        #expect(ex.environment(job)["CAIRN_THREADS"] == "8" && ex.environment(job)["CAIRN_DIE_WITH_PARENT"] == nil)
        // A one-minute check: Slurm's limit leaves room for the signal to come after the minute.
        job.timeLimitSeconds = 60
        job.kind = .check
        #expect(ex.sbatchOptions(job).contains("--time=4") && ex.sbatchOptions(job).contains("--signal=B:TERM@120")
                && ex.sbatchOptions(job).contains("--cpus-per-task=1"))
    }

    /// Slurm may send a job's signal up to 60 s before the time it was asked for; aimed a minute
    /// past the stage's timeout, it never comes before the timeout, and the stage still has its
    /// whole lead to checkpoint before Slurm's limit, with less than a minute's slack added.
    @Test(arguments: [1.0, 30, 59, 60, 61, 150, 1800, 86_400 * 2])
    func theCheckpointSignalNeverComesBeforeTheTimeout(timeout: Double) {
        for lead in [1, 30, 59, 60, 120, 3600, 65_000] {
            let (minutes, signal) = SlurmExecutor.timeLimit(timeout: timeout, lead: lead)
            let limit = Double(minutes * 60)
            #expect(limit - Double(signal) - Double(SlurmExecutor.signalEarliness) >= timeout, "\(timeout) \(lead)")
            #expect(signal >= lead && signal < lead + 60 && signal <= 65_535, "\(timeout) \(lead) → \(signal)")
            #expect(limit - timeout - Double(lead) - 60 < 60, "\(timeout) \(lead) → \(minutes) min")
        }
    }

    @Test func aBadExecutorsFileStopsTheRunBeforeItStartsWithExitCode2() throws {
        let ws = try Workspace()
        try FileManager.default.createDirectory(atPath: ws.store, withIntermediateDirectories: true)
        try "slurm:\n  resources:\n    train: {cpus: many}\n".write(toFile: ws.store + "/executors.yaml", atomically: true, encoding: .utf8)
        let r = try cairn(["run", ws.pipeline, "--executor", "slurm"], store: ws.store)
        #expect(r.status == 2 && r.err.contains(ws.store + "/executors.yaml:3: key 'cpus' must be a whole number, not 'many'"), "\(r.err)")
        let bad = try cairn(["run", ws.pipeline, "--executor", "kubernetes"], store: ws.store)
        #expect(bad.status == 2 && bad.err.contains("--executor is local or slurm, not 'kubernetes'"))
        #expect(try ws.openStore().runs().isEmpty)
    }

    @Test func theTinyPipelineThroughSlurmGivesTheSameModelLineageGatesAndPromotionAsLocally() throws {
        // The same thread count as the jobs' one CPU: a training step's shards follow the cores.
        let local = try Workspace()
        let l = try local.run(env: ["CAIRN_THREADS": "1"])
        #expect(l.status == 0, "\(l.err.suffix(2000))")
        let ws = try Workspace()
        let r = try slurmRun(ws)
        #expect(r.status == 0, "\(r.err.suffix(3000))")
        #expect(finalArtifact(r) != nil && finalArtifact(r) == finalArtifact(l))
        // Every stage attempt and model check was a job of this run.
        let names = Set(try SlurmCluster.jobs(under: ws.root, named: "cairn-run1-").map(\.name))
        for n in ["cairn-run1-sft-1", "cairn-run1-merge-1", "cairn-run1-dpo-1", "cairn-run1-sft-gate-output_format_valid",
                  "cairn-run1-merge-gate-merge_logits_match", "cairn-run1-dpo-gate-no_harmful_content"] {
            #expect(names.contains(n), "\(names.sorted())")
        }
        let a = try local.openStore(), b = try ws.openStore()
        // Lineage: the same artifacts, made from the same artifacts with the same roles.
        func edges(_ s: ArtifactStore) throws -> [String] {
            Set(try s.ancestors(of: ArtifactID(finalArtifact(l)!)!).edges.map { "\($0.input) \($0.role) \($0.output)" }).sorted()
        }
        #expect(try edges(a) == edges(b))
        // Gates: the same checks with the same verdicts.
        func verdicts(_ s: ArtifactStore) throws -> [String] {
            try s.stages(run: 1).compactMap { $0.gateReport }.flatMap { g -> [String] in
                guard case .array(let results)? = g["checks"] else { return [] }
                return results.map { "\($0["name"]?.stringValue ?? "") \($0["status"]?.stringValue ?? "")" }
            }.sorted()
        }
        let va = try verdicts(a), vb = try verdicts(b)
        #expect(va == vb && !vb.isEmpty, "\(va) \(vb)")
        #expect(try a.resolve("task-api@production") == b.resolve("task-api@production"))
        // The workers stored the outputs as blobs and said so in checksummed result files; the
        // adapter the coordinator indexed is made of exactly those blobs.
        let result = ws.pipeline + "/artifacts/run-1/sft/attempt-1/result.json"
        let body = try #require(try ChecksummedFile.read(result))
        let worker = try JSONDecoder().decode(WorkerResult.self, from: body)
        #expect(worker.succeeded && worker.slurmJobID != nil)
        // It ran on a node of its own, another host than this coordinator's, sharing only the
        // filesystem with it, as a cluster's nodes share the store.
        #expect(SlurmCluster.nodes.contains(worker.host) && worker.host != ProcessInfo.processInfo.hostName, "\(worker.host)")
        let adapter = try #require(try b.stages(run: 1).first { $0.stage == "sft" && $0.status == .succeeded })
        let adapterID = try #require(try b.edges(execution: adapter.id, .generated).first { $0.role == "adapter" }?.artifact)
        #expect(Set(try b.manifest(adapterID).entries.map(\.blob)).isSubset(of: Set(worker.blobs.map(\.blob))))
        // A damaged result file is refused, not read as another report.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: result))
        bytes[bytes.count / 2] ^= 1
        try bytes.write(to: URL(fileURLWithPath: result))
        #expect(throws: StoreError.self) { try ChecksummedFile.read(result) }
    }

    @Test func scancelOfARunningJobFailsTheAttemptAndTheRetrySucceeds() throws {
        let ws = try Workspace()
        let (p, id) = try startLongSFT(ws)
        try SlurmCluster.run("scancel", [id])
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\((try? String(contentsOfFile: ws.root + "/run.err", encoding: .utf8))?.suffix(3000) ?? "")")
        let sft = try attempts(ws)["sft"] ?? []
        #expect(sft.count == 2 && sft[0].1 == .failed && sft[0].2.contains("CANCELLED") && sft[1].1 == .succeeded, "\(sft)")
    }

    /// Preemption as Slurm does it with --requeue (`scontrol requeue`, then released at once
    /// instead of after Slurm's two-minute hold): the same job runs again, resumes from the
    /// checkpoint its SIGTERM wrote, and the coordinator follows it through as one attempt.
    @Test func aRequeuedJobRunsAgainUnderItsIdAndResumesFromItsCheckpoint() throws {
        let ws = try Workspace()
        let (p, id) = try startLongSFT(ws)
        try waitForSteps(ws, 3)  // something to resume from
        try SlurmCluster.run("scontrol", ["requeue", id])
        var pending = false
        for _ in 0..<100 where !pending {
            pending = try SlurmCluster.jobs(under: ws.root, named: "cairn-run1-sft-1").first?.fields["JobState"] == "PENDING"
            if !pending { Thread.sleep(forTimeInterval: 0.2) }
        }
        #expect(pending)
        try SlurmCluster.run("scontrol", ["update", "jobid=\(id)", "starttime=now"])
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\((try? String(contentsOfFile: ws.root + "/run.err", encoding: .utf8))?.suffix(3000) ?? "")")
        let sft = try attempts(ws)["sft"] ?? []
        #expect(sft.count == 1 && sft[0].1 == .succeeded, "\(sft)")
        let log = try String(contentsOfFile: ws.pipeline + "/artifacts/run-1/sft/attempt-1.log", encoding: .utf8)
        #expect(log.contains("DUE TO JOB REQUEUE") && log.contains("resumed from checkpoint-"), "\(log.suffix(3000))")
    }

    /// The coordinator asked to stop (SIGTERM: Ctrl-C, a daemon stopping): its running job gets
    /// the checkpoint signal through scancel, the stage checkpoints, the job ends, the run is
    /// interrupted; `cairn resume` continues from that checkpoint.
    @Test func aStoppedCoordinatorSignalsItsJobToCheckpointAndTheResumeContinuesFromIt() throws {
        let ws = try Workspace()
        let (p, id) = try startLongSFT(ws)
        try waitForSteps(ws, 3)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 1)
        #expect(try SlurmCluster.jobs(under: ws.root, named: "cairn-run1-sft-1").first?.fields["JobState"] != "RUNNING")
        let first = try String(contentsOfFile: ws.pipeline + "/artifacts/run-1/sft/attempt-1.log", encoding: .utf8)
        #expect(first.contains("stopped on request after step") && first.contains("stopped by its checkpoint signal"), "\(first.suffix(2000))")
        #expect((try attempts(ws)["sft"] ?? []).map(\.1) == [.interrupted])
        let r = try cairn(["resume", "1", "--executor", "slurm"], store: ws.store, env: SlurmCluster.environment)
        #expect(r.status == 0, "\(r.err.suffix(3000))")
        #expect(!r.err.contains("following slurm job \(id)"))
        let second = try String(contentsOfFile: ws.pipeline + "/artifacts/run-1/sft/attempt-2.log", encoding: .utf8)
        #expect(second.contains("resumed from checkpoint-"), "\(second.suffix(2000))")
    }

    /// `cairn watch --executor slurm` on a real git repository: the commit's run has its stages
    /// as jobs; the daemon stopped with SIGTERM gives its running job the checkpoint signal before
    /// it exits; restarted, it resumes the run from that checkpoint on the cluster and finishes it.
    @Test func aWatcherStoppedWithSIGTERMCheckpointsItsJobAndItsRestartFinishesTheRun() throws {
        let ws = try Workspace()
        try ws.setKey("sft_config.yaml", "epochs", "30")
        try SlurmCluster.writeSettings(store: ws.store)
        try FileManager.default.removeItem(atPath: ws.repo + "/.git")
        for args in [["init", "-q", "-b", "main"], ["config", "user.email", "ada@example.com"], ["config", "user.name", "Ada"],
                     ["add", "-A"], ["commit", "-q", "-m", "task-api"]] {
            let g = try TestProcess.run("/usr/bin/git", ["-C", ws.repo] + args, env: ["GIT_CONFIG_NOSYSTEM": "1"])
            try #require(g.status == 0, "git \(args): \(g.stderr)")
        }
        let watch = ["watch", ws.repo, "--interval", "2", "--executor", "slurm"]
        var daemon = try ws.start(watch, env: SlurmCluster.environment, errorLog: ws.root + "/watch-1.err")
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL); daemon.waitUntilExit() } }
        let id = try #require(try SlurmCluster.waitRunning(under: ws.root, "cairn-run1-sft-1"),
                              "\((try? String(contentsOfFile: ws.root + "/watch-1.err", encoding: .utf8)) ?? "")")
        let job = try #require(try SlurmCluster.jobs(under: ws.root, named: "cairn-run1-sft-1").first?.fields)
        let stage = try #require(job["WorkDir"]).replacingOccurrences(of: "/attempt-1", with: "")
        let end = Date().addingTimeInterval(60)
        while Date() < end && ((try? String(contentsOfFile: stage + "/train/metrics.jsonl", encoding: .utf8))?.split(separator: "\n").count ?? 0) < 3 {
            Thread.sleep(forTimeInterval: 0.2)
        }
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        #expect(try SlurmCluster.jobs(under: ws.root, named: "cairn-run1-sft-1").first?.fields["JobState"] != "RUNNING")
        let first = try String(contentsOfFile: stage + "/attempt-1.log", encoding: .utf8)
        #expect(first.contains("stopped by its checkpoint signal"), "\(first.suffix(2000))")
        #expect((try attempts(ws)["sft"] ?? []).map(\.1) == [.interrupted])

        daemon = try ws.start(watch, env: SlurmCluster.environment, errorLog: ws.root + "/watch-2.err")
        let deadline = Date().addingTimeInterval(240)
        while Date() < deadline, (try? ws.openStore().runs().first?.status) != .succeeded { Thread.sleep(forTimeInterval: 0.5) }
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        let runs = try ws.openStore().runs()
        #expect(runs.count == 1 && runs.first?.status == .succeeded,
                "\(runs.map(\.status)) \((try? String(contentsOfFile: ws.root + "/watch-2.err", encoding: .utf8))?.suffix(3000) ?? "")")
        #expect((try attempts(ws)["sft"] ?? []).map(\.1) == [.interrupted, .succeeded])
        let second = try String(contentsOfFile: stage + "/attempt-2.log", encoding: .utf8)
        #expect(second.contains("resumed from checkpoint-") && !second.contains("Slurm job \(id):"), "\(second.suffix(2000))")
        #expect(try SlurmCluster.jobs(under: ws.root, named: "cairn-run1-dpo-1").first?.fields["JobState"] == "COMPLETED")
    }

    /// Stopped while a gate's check job waits in a busy queue (here held: `--hold`), the
    /// coordinator does not wait for it: the job is cancelled, the stage ends interrupted with no
    /// verdict kept, and the resume runs the gate again.
    @Test func aStopDuringAGateCancelsItsQueuedCheckJobAndTheResumeRunsTheGateAgain() throws {
        let ws = try Workspace()
        try SlurmCluster.writeSettings(store: ws.store, check: "{cpus: 1, memory: 1G, options: [\"--hold\"]}")
        let p = try ws.start(["run", ws.pipeline, "--quiet", "--executor", "slurm"], env: SlurmCluster.environment, errorLog: ws.root + "/run.err")
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        let gateJobs = { try SlurmCluster.jobs(under: ws.root, named: "cairn-run1-sft-gate-") }
        var end = Date().addingTimeInterval(120)
        while Date() < end, !(try gateJobs().contains { $0.fields["JobState"] == "PENDING" }) { Thread.sleep(forTimeInterval: 0.2) }
        try #require(try gateJobs().contains { $0.fields["JobState"] == "PENDING" },
                     "\((try? String(contentsOfFile: ws.root + "/run.err", encoding: .utf8))?.suffix(2000) ?? "")")
        kill(p.processIdentifier, SIGTERM)
        end = Date().addingTimeInterval(60)
        while Date() < end && p.isRunning { Thread.sleep(forTimeInterval: 0.2) }
        #expect(!p.isRunning, "the coordinator still waits for its held check job a minute after SIGTERM")
        let states = try gateJobs().map { $0.fields["JobState"] ?? "" }
        #expect(!states.isEmpty && states.allSatisfy { $0 == "CANCELLED" }, "\(states)")
        let sft = try attempts(ws)["sft"] ?? []
        #expect(sft.count == 1 && sft[0].1 == .interrupted && sft[0].2.contains("during its gate"), "\(sft)")
        #expect(try ws.openStore().stages(run: 1).allSatisfy { $0.gateReport == nil })

        try SlurmCluster.writeSettings(store: ws.store)
        let r = try cairn(["resume", "1", "--executor", "slurm"], store: ws.store, env: SlurmCluster.environment)
        #expect(r.status == 0, "\(r.err.suffix(3000))")
        #expect((try attempts(ws)["sft"] ?? []).last?.1 == .succeeded)
        #expect(try SlurmCluster.jobs(under: ws.root, named: "cairn-run1-sft-gate-").contains { $0.fields["JobState"] == "COMPLETED" })
    }

    @Test func aCoordinatorKilledWithSIGKILLReattachesToItsJobAndSubmitsNothingTwice() throws {
        let ws = try Workspace()
        let (p, id) = try startLongSFT(ws)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        // The job goes on without its coordinator, and `cairn status` names it (in the state the
        // coordinator last saw).
        #expect(try SlurmCluster.jobs(under: ws.root, named: "cairn-run1-sft-1").first?.fields["JobState"] == "RUNNING")
        let status = try cairn(["status"], store: ws.store)
        #expect(status.out.contains("interrupted") && status.out.contains("[sft: slurm job \(id) "), "\(status.out)")
        let r = try cairn(["resume", "1", "--executor", "slurm"], store: ws.store, env: SlurmCluster.environment)
        #expect(r.status == 0, "\(r.err.suffix(3000))")
        #expect(r.err.contains("following slurm job \(id) (attempt 1)"), "\(r.err.prefix(3000))")
        // One SFT job, one SFT attempt, which succeeded.
        #expect(try SlurmCluster.jobs(under: ws.root, named: "cairn-run1-sft-").filter { $0.name.range(of: "-sft-[0-9]+$", options: .regularExpression) != nil }.count == 1)
        let sft = try attempts(ws)["sft"] ?? []
        #expect(sft.count == 1 && sft[0].1 == .succeeded, "\(sft)")
    }

    /// The checkpoint signal of a one-minute stage comes between one and two minutes after it
    /// starts (aimed a minute past the timeout, SlurmExecutor.timeLimit; Slurm's time checks run
    /// about every 30 s), so the SFT here is sized from a measured run on one core (the job's CPU)
    /// to take about 150 s: the first attempt is stopped by the signal and writes a checkpoint;
    /// the next resumes from it and finishes. Only SFT runs: it is the stage under test.
    @Test func aStagePastItsTimeLimitIsSignalledRetriedAndResumesFromItsCheckpoint() throws {
        let ws = try Workspace()
        let probeStart = Date()
        let probe = try cairn(["train", "sft", "--model", ws.pipeline + "/base", "--data", ws.pipeline + "/data/sft.jsonl",
                               "--config", ws.pipeline + "/sft_config.yaml", "--out", ws.root + "/probe"], store: ws.store, env: ["CAIRN_THREADS": "1"])
        #expect(probe.status == 0)
        let seconds = Date().timeIntervalSince(probeStart)
        try ws.setKey("sft_config.yaml", "epochs", String(max(60, Int((150 / max(seconds, 0.1) * 10).rounded()))))  // the probe trained 10 epochs
        var yaml = try String(contentsOfFile: ws.pipeline + "/pipeline.yaml", encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "    timeout_minutes: 30\n    retry_count: 2", with: "    timeout_minutes: 1\n    retry_count: 4")
        for stage in ["merge", "dpo"] {
            yaml = yaml.replacingOccurrences(of: "  - name: \(stage)\n    enabled: true", with: "  - name: \(stage)\n    enabled: false")
        }
        try yaml.write(toFile: ws.pipeline + "/pipeline.yaml", atomically: true, encoding: .utf8)
        let r = try slurmRun(ws)
        #expect(r.status == 0, "\(r.err.suffix(3000))")
        let sft = try attempts(ws)["sft"] ?? []
        #expect(sft.count >= 2 && sft.last?.1 == .succeeded, "\(sft)")
        #expect(sft.dropLast().allSatisfy { $0.1 == .failed && $0.2.contains("checkpoint signal") }, "\(sft)")
        let last = try String(contentsOfFile: ws.pipeline + "/artifacts/run-1/sft/attempt-\(sft.last!.0).log", encoding: .utf8)
        #expect(last.contains("resumed from checkpoint-"), "\(last.suffix(2000))")
        #expect(try attempts(ws)["dpo"] == nil)
        // The signal came no sooner than the stage's one-minute timeout, and Slurm did not kill it.
        let first = try #require(try SlurmCluster.jobs(under: ws.root, named: "cairn-run1-sft-1").first?.fields)
        let span = try #require(SlurmCluster.span(first))
        let ran = span.end.timeIntervalSince(span.start)
        #expect(ran >= 60 && first["JobState"] != "TIMEOUT", "\(first)")
    }

    @Test func aTwoByTwoSweepRunsItsIndependentStagesAsConcurrentJobs() throws {
        let ws = try Workspace()
        try SlurmCluster.writeSettings(store: ws.store)
        let file = ws.pipeline + "/sweep.yaml"
        try SweepTests.grid("cluster").write(toFile: file, atomically: true, encoding: .utf8)
        let r = try cairn(["sweep", file, "--quiet", "--executor", "slurm"], store: ws.store, env: SlurmCluster.environment)
        #expect(r.status == 0, "\(r.err.suffix(3000))")
        #expect(r.err.contains("4 runs at once, their stages as slurm jobs"))
        func spans(_ stage: String) throws -> [(Date, Date)] {
            try SlurmCluster.jobs(under: ws.root, named: "cairn-run").filter { $0.name.range(of: "-\(stage)-[0-9]+$", options: .regularExpression) != nil }
                .compactMap { SlurmCluster.span($0.fields) }
        }
        let sft = try spans("sft"), dpo = try spans("dpo")
        #expect(sft.count == 2 && dpo.count == 4, "\(sft) \(dpo)")
        // The two SFT jobs (different ranks) ran at the same time, and so did DPO jobs.
        func overlap(_ s: [(Date, Date)]) -> Bool { s.indices.contains { i in s.indices.contains { j in i != j && s[i].0 < s[j].1 && s[j].0 < s[i].1 } } }
        // Slurm spread them over both nodes (least loaded first, scripts/slurm-local.sh).
        let used = Set(try SlurmCluster.jobs(under: ws.root, named: "cairn-run").compactMap { $0.fields["NodeList"] })
        #expect(used == Set(SlurmCluster.nodes), "\(used)")
        #expect(overlap(sft), "SFT jobs ran one after the other: \(sft)")
        #expect(overlap(dpo), "DPO jobs ran one after the other: \(dpo)")
    }
}
