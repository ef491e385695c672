import CairnGit
import CairnPipeline
import CairnStore
import CairnWatch
import Foundation

/// `cairn watch`, `trigger`, `queue`, `hooks install`: the GitOps trigger.
enum WatchCommands {
    static let specs: [CommandSpec] = [
        CommandSpec(name: "watch", usage: "cairn watch REPO [--branch B ...] [--jobs N] [--interval SECONDS] [--poll-only] [--allow-commands] [--store S]",
                    summary: "daemon: run pipelines when commits change them (inotify on refs + periodic reconcile)",
                    flags: ["allow-commands", "poll-only"], options: ["branch", "jobs", "interval"], positionals: 1...1),
        CommandSpec(name: "trigger", usage: "cairn trigger REPO [--branch B ...] [--wait] [--store S]",
                    summary: "one reconcile: queue runs for new commits, then start them (in the background unless --wait)",
                    flags: ["wait"], options: ["branch"], positionals: 1...1),
        CommandSpec(name: "queue", usage: "cairn queue [--all] [--json]", summary: "pending and running runs (--all: finished ones too)",
                    flags: ["all", "json"]),
        CommandSpec(name: "queue work", usage: "cairn queue work [--jobs N]", summary: "run queued entries until the queue is empty",
                    options: ["jobs"]),
        CommandSpec(name: "queue run-one", usage: "cairn queue run-one ID [--quiet]", summary: "run one queued entry (the worker starts these)",
                    flags: ["quiet", "allow-commands"], positionals: 1...1),
        CommandSpec(name: "hooks install", usage: "cairn hooks install REPO [--store S]",
                    summary: "install post-commit and post-receive hooks that run `cairn trigger`", positionals: 1...1),
    ]

    static func run(_ name: String, _ a: Arguments) throws -> Int32 {
        switch name {
        case "queue run-one":
            guard let id = Int64(a.positionals[0]) else { throw UsageError(message: "ID is a queue entry number") }
            var o = QueueRunner.Options(executable: Subprocess.currentExecutable)
            o.echo = !a.has("quiet")
            o.allowCommands = a.has("allow-commands")
            let stop = StopSignal()
            o.stopRequested = { stop.isSet }
            return QueueRunner.run(entry: id, store: try a.openStore(), options: o)
        case "queue work":
            let store = try a.openStore()
            return try work(store, jobs: try a.int("jobs", default: 1))
        case "queue":
            let store = try a.openStore()
            let entries = try store.queue().filter { a.has("all") || ["pending", "running"].contains($0.state) }
            if a.has("json") { try Output.json(entries); return 0 }
            Output.table(["ID", "PIPELINE", "COMMIT", "BRANCH", "STATE", "RUN", "QUEUED", "NOTE"], entries.map {
                [String($0.id), $0.pipeline, String($0.commit.prefix(10)), $0.branch ?? "-", $0.state, $0.run.map(String.init) ?? "-",
                 Output.time($0.enqueuedAt), $0.error ?? ""]
            })
            return 0
        case "trigger":
            let store = try ArtifactStore.initialize(at: try a.storeRoot())
            let repo = try GitRepository(path: a.positionals[0])
            let report = try Reconciler(repository: repo, store: store, branches: a.all("branch")).reconcile()
            for b in report.forcePushed { Output.note("\(b): force-pushed; runs for the commits now on it") }
            for e in report.queued { Output.out("queued \(e.id): \(e.pipeline) at \(e.commit.prefix(10)) on \(e.branch ?? "-")") }
            if report.queued.isEmpty { Output.note("nothing to run") }
            if a.has("wait") { return try work(store, jobs: 1) }
            if try !store.queue(state: "pending").isEmpty {
                // Hooks must not wait for training: a detached worker drains the queue, unless a
                // watcher or another worker already holds it.
                try FileManager.default.createDirectory(atPath: QueueRunner.workRoot(store) + "/logs", withIntermediateDirectories: true)
                try spawnDetached([Subprocess.currentExecutable, "queue", "work", "--store", store.root], logPath: QueueRunner.workRoot(store) + "/logs/worker.log")
            }
            return 0
        case "hooks install":
            let repo = try GitRepository(path: a.positionals[0])
            let store = Paths.normalise(try a.storeRoot())
            let hooks = repo.gitDirectory + "hooks"
            try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: store + "-work/logs", withIntermediateDirectories: true)  // the hooks' log
            let cairn = Subprocess.currentExecutable
            let template = try String(contentsOfFile: hookTemplate(), encoding: .utf8)
            for hook in ["post-commit", "post-receive"] {
                let text = template.replacingOccurrences(of: "@CAIRN@", with: cairn).replacingOccurrences(of: "@STORE@", with: store)
                    .replacingOccurrences(of: "@HOOK@", with: hook)
                let path = hooks + "/" + hook
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
                Output.out("installed \(path)")
            }
            return 0
        default:  // watch
            let store = try ArtifactStore.initialize(at: try a.storeRoot())
            let repo = try GitRepository(path: a.positionals[0])
            var o = Watcher.Options(executable: Subprocess.currentExecutable)
            o.branches = a.all("branch")
            o.jobs = max(1, try a.int("jobs", default: 1))
            if let i = try a.option("interval") {
                guard let v = Double(i), v > 0 else { throw UsageError(message: "--interval wants seconds, not '\(i)'") }
                o.interval = v
            }
            o.allowCommands = a.has("allow-commands")
            o.useInotify = !a.has("poll-only")
            let stop = StopSignal()
            let watcher = try Watcher(repository: repo, store: store, options: o)
            try watcher.run { stop.isSet }
            Output.note("stopped")
            return 0
        }
    }

    /// The hook script template: hooks/cairn-hook in the source tree, beside the executable's package.
    static func hookTemplate() throws -> String {
        let fromEnv: [String] = ProcessInfo.processInfo.environment["CAIRN_HOOKS_DIR"].map { [$0 + "/cairn-hook"] } ?? []
        // The executable sits somewhere under the source tree's .build/: look up from it.
        var dir = URL(fileURLWithPath: Subprocess.currentExecutable).deletingLastPathComponent()
        var upward: [String] = []
        for _ in 0..<6 { upward.append(dir.appendingPathComponent("hooks/cairn-hook").path); dir = dir.deletingLastPathComponent() }
        let candidates = fromEnv + upward + [FileManager.default.currentDirectoryPath + "/hooks/cairn-hook"]
        guard let t = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw UsageError(message: "cannot find hooks/cairn-hook (set CAIRN_HOOKS_DIR to the hooks folder of Cairn's source)")
        }
        return t
    }

    static func work(_ store: ArtifactStore, jobs: Int) throws -> Int32 {
        let lockPath = store.root + "/queue-worker.lock"
        while true {
            guard let lock = WorkerLock(path: lockPath) else { return 0 }  // a watcher or worker has it
            let w = QueueWorker(store: store, executable: Subprocess.currentExecutable, jobs: jobs)
            try w.drain()
            withExtendedLifetime(lock) {}
            // Something queued between the last claim and the release: take it too.
            if try store.queue(state: "pending").isEmpty { return 0 }
        }
    }
}
