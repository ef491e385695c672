import CairnStore
import Foundation
import Testing

/// The daemon: a real `cairn watch` process on real repositories.
@Suite("Watcher daemon", .serialized)
struct WatcherTests {
    final class Daemon {
        let process = Process()
        init(_ f: GitFixture, repo: String? = nil, interval: Double = 2, extra: [String] = []) throws {
            process.executableURL = URL(fileURLWithPath: cairnBinary())
            process.arguments = ["watch", repo ?? f.repo, "--store", f.store, "--interval", String(interval)] + extra
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
        }
        func stop(_ signal: Int32 = SIGTERM) {
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
        }
        deinit { if process.isRunning { stop(SIGKILL) } }
    }

    /// Polls the store until `ok` holds (or 60 s pass).
    func waitFor(_ f: GitFixture, _ what: String, _ ok: ([RunRecord], [QueueEntry]) -> Bool) throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let s = try? ArtifactStore(root: f.store), let runs = try? s.runs(), let q = try? s.queue(), ok(runs.reversed(), q) { return }
            usleep(50_000)
        }
        Issue.record("timed out waiting for \(what)")
    }

    @Test func commitsStartRunsRestartsCatchUpAndNothingRunsTwice() throws {
        let f = try GitFixture()
        try commitPipeline(f)
        var d = try Daemon(f)
        try waitFor(f, "the first run") { runs, q in runs.count == 1 && q.allSatisfy { $0.state == "done" } }
        let c1 = try f.commit("more steps", ["pipelines/quick/sft_config.yaml": "max_steps: 3\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n"])
        try waitFor(f, "the run of \(c1)") { runs, q in runs.count == 2 && runs.last?.commit == c1 && q.allSatisfy { $0.state == "done" } }
        try f.commit("docs", ["README.md": "hello\n"])
        Thread.sleep(forTimeInterval: 0.5)
        d.stop()
        // Commits while the daemon is down are caught up on start.
        let c2 = try f.commit("while down", ["pipelines/quick/sft_config.yaml": "max_steps: 4\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n"])
        d = try Daemon(f)
        try waitFor(f, "the catch-up run of \(c2)") { runs, q in runs.count == 3 && runs.last?.commit == c2 && q.allSatisfy { $0.state == "done" } }
        // Replays: a hook's trigger and a restart start nothing more.
        #expect(try f.cairn(["trigger", f.repo]).err.contains("nothing to run"))
        d.stop()
        d = try Daemon(f)
        Thread.sleep(forTimeInterval: 1.5)
        d.stop()
        let s = try ArtifactStore(root: f.store)
        #expect(try s.runs().count == 3)
        #expect(try s.queue().map(\.state) == ["done", "done", "done"])
        #expect(Set(try s.runs().compactMap(\.commit)).count == 3)
    }

    @Test func aDaemonStoppedMidRunResumesTheRunOnRestart() throws {
        let f = try GitFixture()
        try commitPipeline(f, steps: 400)
        var d = try Daemon(f)
        // Stop it while the SFT stage is training (after its first checkpoints).
        try waitFor(f, "a checkpoint") { runs, _ in
            guard let r = runs.first, case .object(let m) = r.metadata, let cp = m["checkpoint"]?["step"]?.numberValue else { return false }
            return cp >= 2
        }
        d.stop()
        let s = try ArtifactStore(root: f.store)
        let run = try #require(try s.runs().first)
        #expect(run.status == .running || run.status == .interrupted)
        d = try Daemon(f)
        try waitFor(f, "the resumed run") { runs, q in runs.first?.status == .succeeded && q.allSatisfy { $0.state == "done" } }
        d.stop()
        #expect(try s.runs().count == 1)  // resumed, not run again
        let log = try s.stages(run: run.id).map(\.status)
        #expect(log.contains(.interrupted) && log.last == .succeeded, "\(log)")
    }

    /// The daemon stopped while a committed sweep runs: the running variant checkpoints, the sweep
    /// goes back to the queue with nothing promoted; restarted, the daemon finishes it (the
    /// interrupted variant resumed, none run twice) and promotes the best.
    @Test func aDaemonStoppedMidSweepFinishesTheSweepOnRestart() throws {
        let f = try GitFixture()
        try commitPipeline(f, steps: 2)
        var d = try Daemon(f)
        try waitFor(f, "the pipeline's first run") { runs, q in runs.count == 1 && q.allSatisfy { $0.state == "done" } }
        try f.commit("sweep max_steps", ["pipelines/quick/sweep-steps.yaml":
            "pipeline: .\nspace:\n  sft.max_steps: [300, 301]\nobjective: sft.final_loss\npromote_best_to: quick@sweep\n"])
        try waitFor(f, "a variant's checkpoint") { runs, _ in
            runs.contains { r in r.metadata["sweep"] != nil && (r.metadata["checkpoint"]?["step"]?.numberValue ?? 0) >= 2 }
        }
        d.stop()
        let s = try ArtifactStore(root: f.store)
        #expect((try? s.resolve("quick@sweep")) == nil)
        #expect(try s.queue().contains { $0.pipeline == "sweep:pipelines/quick/sweep-steps.yaml" && $0.state == "pending" })
        d = try Daemon(f)
        try waitFor(f, "the finished sweep") { runs, q in
            runs.filter { $0.metadata["sweep"] != nil }.count == 2 && q.allSatisfy { $0.state == "done" }
        }
        d.stop()
        let variants = try s.runs().filter { $0.metadata["sweep"] != nil }
        #expect(variants.count == 2 && variants.allSatisfy { $0.status == .succeeded }, "\(variants.map(\.status))")
        // The variant the stop caught was resumed (its stage interrupted once, then succeeded), not run again.
        #expect(try variants.contains { v in try s.stages(run: v.id).contains { $0.status == .interrupted } })
        #expect((try? s.resolve("quick@sweep")) != nil)
    }

    @Test func theDaemonOutlivesACrashingRunAndStoresEachRunsLog() throws {
        let f = try GitFixture()
        try commitPipeline(f, steps: 100_000)
        let d = try Daemon(f)
        // The run process of the first entry, killed as a crash would.
        var victim: pid_t?
        let deadline = Date().addingTimeInterval(60)
        while victim == nil && Date() < deadline {
            for p in (try FileManager.default.contentsOfDirectory(atPath: "/proc")).compactMap({ pid_t($0) }) {
                let cmd = (try? String(contentsOfFile: "/proc/\(p)/cmdline", encoding: .utf8)) ?? ""
                if cmd.contains("run-one") && cmd.contains(f.store) { victim = p }
            }
            usleep(20_000)
        }
        let pid = try #require(victim)
        Thread.sleep(forTimeInterval: 0.5)
        kill(pid, SIGKILL)
        try waitFor(f, "the crashed entry marked failed") { _, q in q.first?.state == "failed" && (q.first?.error ?? "").contains("before finishing") }
        // The daemon goes on: the next commit runs.
        let c = try f.commit("short again", ["pipelines/quick/sft_config.yaml": "max_steps: 2\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n"])
        try waitFor(f, "the next run") { runs, q in runs.last?.commit == c && runs.last?.status == .succeeded && q.last?.state == "done" }
        d.stop()
        // Each run's process log is in the store, named in the run's metadata.
        let s = try ArtifactStore(root: f.store)
        let run = try #require(try s.runs().first)
        guard case .array(let logs)? = run.metadata["logs"], let id = logs.first?.stringValue.flatMap(ArtifactID.init) else {
            Issue.record("no log in \(run.metadata)"); return
        }
        #expect(try s.artifact(id)?.kind == "log")
    }

    /// A lost event (here: no inotify at all) is covered by the periodic reconcile.
    @Test func thePeriodicReconcileCoversLostEvents() throws {
        let f = try GitFixture()
        try commitPipeline(f)
        let d = try Daemon(f, extra: ["--poll-only"])  // --interval 2 from Daemon
        try waitFor(f, "the first run") { runs, _ in runs.count == 1 }
        let c = try f.commit("tune", ["pipelines/quick/sft_config.yaml": "max_steps: 3\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n"])
        try waitFor(f, "the reconciled run") { runs, _ in runs.last?.commit == c }
        d.stop()
    }

    /// A branch in a nested folder created after the daemon started is watched all the same.
    @Test func aNestedBranchFolderCreatedLaterIsWatched() throws {
        let f = try GitFixture()
        try commitPipeline(f)
        // The reconcile every 600 s cannot be what finds it: inotify must.
        let d = try Daemon(f, interval: 600, extra: ["--branch", "team/feature"])
        Thread.sleep(forTimeInterval: 0.5)
        try f.git(["checkout", "-q", "-b", "team/feature"])
        let c = try f.commit("feature work", ["pipelines/quick/sft_config.yaml": "max_steps: 3\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n"])
        try waitFor(f, "the run on team/feature") { runs, _ in runs.contains { $0.commit == c && $0.branch == "team/feature" } }
        d.stop()
    }

    @Test func aShellCommandInAConfigIsRefusedUnlessAllowed() throws {
        let f = try GitFixture()
        try commitPipeline(f)
        let yaml = try String(contentsOfFile: f.repo + "/pipelines/quick/pipeline.yaml", encoding: .utf8)
            .replacingOccurrences(of: "validation:\n  max_loss: 1000\n", with: """
                validation:
                  max_loss: 1000
                  custom_checks:
                    - name: model_dir_present
                      command: test -f "$CAIRN_MODEL/adapter_model.safetensors" && echo adapter there

                """)
        let c1 = try f.commit("a command check", ["pipelines/quick/pipeline.yaml": yaml])
        // `cairn trigger` (as hooks run it) never allows commands: the run fails, naming why.
        #expect(try f.cairn(["trigger", f.repo, "--wait"]).status == 0)
        let s = try ArtifactStore(root: f.store)
        let refused = try #require(try s.runs().first)
        #expect(refused.commit == c1 && refused.status == .failed)
        let err = refused.metadata["error"]?.stringValue ?? ""
        #expect(err.contains("shell command") && err.contains("--allow-commands") && err.contains("pipelines/quick/pipeline.yaml"), "\(err)")
        // A daemon started with --allow-commands runs it as a check of the last stage.
        let c2 = try f.commit("again", ["pipelines/quick/sft_config.yaml": "max_steps: 3\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n"])
        let d = try Daemon(f, extra: ["--allow-commands"])
        try waitFor(f, "the allowed run") { runs, _ in runs.last?.commit == c2 && runs.last?.status == .succeeded }
        d.stop()
        let run = try #require(try s.runs().first)
        guard case .array(let checks)? = try s.stages(run: run.id).last?.gateReport?["checks"] else { Issue.record("no gate report"); return }
        let cmd = checks.first { $0["name"]?.stringValue == "model_dir_present" }
        #expect(cmd?["status"]?.stringValue == "passed" && (cmd?["details"]?.stringValue ?? "").contains("adapter there"), "\(String(describing: cmd))")
    }

    @Test func aPushToABareRepositoryTriggersThroughTheHookAndThroughTheWatcher() throws {
        let f = try GitFixture()
        try commitPipeline(f)
        let bare = f.root + "/server.git"
        try f.git(["clone", "-q", "--bare", f.repo, bare], cwd: f.root)
        try f.git(["remote", "add", "origin", bare])
        // The hook path: no daemon; post-receive runs `cairn trigger`, which starts a worker.
        let hookStore = f.root + "/hook-store"
        let install = try shell(cairnBinary(), ["hooks", "install", bare, "--store", hookStore], env: ["CAIRN_HOOKS_DIR": repoRoot + "/hooks"])
        #expect(install.status == 0, "\(install.err)")
        let c = try f.commit("tune", ["pipelines/quick/sft_config.yaml": "max_steps: 3\nbatch_size: 2\nlearning_rate: 1.0e-3\nlora_r: 4\nlora_alpha: 8\nmax_seq_length: 64\n"])
        // The watcher path: a daemon on the same bare repository, its own store.
        let d = try Daemon(f, repo: bare)
        Thread.sleep(forTimeInterval: 1)  // the daemon has taken the first sight of main
        try f.git(["push", "-q", "origin", "main"])
        let deadline = Date().addingTimeInterval(60)
        var hookRuns: [RunRecord] = []
        while Date() < deadline {
            hookRuns = (try? ArtifactStore(root: hookStore).runs()) ?? []
            if hookRuns.contains(where: { $0.commit == c && $0.status == .succeeded }) { break }
            usleep(100_000)
        }
        #expect(hookRuns.contains { $0.commit == c && $0.status == .succeeded }, "hook runs: \(hookRuns.map { ($0.commit ?? "-", $0.status) })")
        try waitFor(f, "the watcher's run of \(c)") { runs, _ in runs.contains { $0.commit == c && $0.status == .succeeded } }
        d.stop()
    }
}
