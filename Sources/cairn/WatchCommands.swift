import CairnGit
import CairnPipeline
import CairnStore
import CairnWatch
import Foundation

/// `cairn watch`, `trigger`, `queue`, `hooks install`: the GitOps trigger.
enum WatchCommands {
    static let specs: [CommandSpec] = [
        CommandSpec(name: "watch", usage: "cairn watch REPO [--branch B ...] [--jobs N] [--interval SECONDS] [--poll-only] [--allow-commands] [--executor local|slurm] [--store S]",
                    summary: "daemon: run pipelines when commits change them (inotify on refs + periodic reconcile)",
                    flags: ["allow-commands", "poll-only"], options: ["branch", "jobs", "interval", "executor"], positionals: 1...1),
        CommandSpec(name: "trigger", usage: "cairn trigger REPO [--branch B ...] [--wait] [--executor local|slurm] [--store S]",
                    summary: "one reconcile: queue runs for new commits, then start them (in the background unless --wait)",
                    flags: ["wait"], options: ["branch", "executor"], positionals: 1...1),
        CommandSpec(name: "queue", usage: "cairn queue [--all] [--json]", summary: "pending and running runs (--all: finished ones too)",
                    flags: ["all", "json"]),
        CommandSpec(name: "queue work", usage: "cairn queue work [--jobs N] [--executor local|slurm]", summary: "run queued entries until the queue is empty",
                    options: ["jobs", "executor"]),
        CommandSpec(name: "queue run-one", usage: "cairn queue run-one ID [--quiet] [--executor local|slurm]", summary: "run one queued entry (the worker starts these)",
                    flags: ["quiet", "allow-commands"], options: ["executor"], positionals: 1...1),
        CommandSpec(name: "status", usage: "cairn status [--json]",
                    summary: "one screen: the store, the watcher and its branches, queued and running runs, newest runs, aliases",
                    flags: ["json"]),
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
            let store = try a.openStore()
            o.executor = try PipelineCommands.executor(a, store: store)
            return QueueRunner.run(entry: id, store: store, options: o)
        case "queue work":
            let store = try a.openStore()
            try QueueWorker.drainAll(store: store, executable: Subprocess.currentExecutable, jobs: try a.int("jobs", default: 1),
                                     runArguments: try PipelineCommands.executorArguments(a, store: store))
            return 0
        case "queue":
            let store = try a.openStore()
            let entries = try store.queue().filter { a.has("all") || ["pending", "running"].contains($0.state) }
            if a.has("json") { try Output.json(entries); return 0 }
            let jobs = try entries.map { e in StoreStatus.Job(run: try e.run.flatMap { try store.run($0) }) }
            Output.table(["ID", "PIPELINE", "COMMIT", "BRANCH", "STATE", "RUN", "JOB", "QUEUED", "NOTE"], zip(entries, jobs).map { e, job in
                [String(e.id), e.pipeline, String(e.commit.prefix(10)), e.branch ?? "-", e.state, e.run.map(String.init) ?? "-",
                 e.state == "running" ? job.map { "\($0.stage): \($0.summary)" } ?? "-" : "-", Output.time(e.enqueuedAt), e.error ?? ""]
            })
            return 0
        case "trigger":
            let store = try ArtifactStore.initialize(at: try a.storeRoot())
            let repo = try GitRepository(path: a.positionals[0])
            let report = try Reconciler(repository: repo, store: store, branches: a.all("branch")).reconcile()
            for b in report.forcePushed { Output.note("\(b): force-pushed; runs for the commits now on it") }
            for e in report.queued { Output.out("queued \(e.id): \(e.pipeline) at \(e.commit.prefix(10)) on \(e.branch ?? "-")") }
            if report.queued.isEmpty { Output.note("nothing to run") }
            if a.has("wait") {
                try QueueWorker.drainAll(store: store, executable: Subprocess.currentExecutable, jobs: 1,
                                         runArguments: try PipelineCommands.executorArguments(a, store: store))
            } else {
                try QueueWorker.startDetachedIfPending(store: store, executable: Subprocess.currentExecutable,
                                                       runArguments: try PipelineCommands.executorArguments(a, store: store))
            }
            return 0
        case "status": return try status(a)
        case "hooks install":
            let repo = try GitRepository(path: a.positionals[0])
            let cairn = Subprocess.currentExecutable
            guard let template = Hooks.template(executable: cairn) else {
                throw UsageError(message: "cannot find hooks/cairn-hook (set CAIRN_HOOKS_DIR to the hooks folder of Cairn's source)")
            }
            for path in try Hooks.install(in: repo, store: try a.storeRoot(), executable: cairn, template: template) { Output.out("installed \(path)") }
            return 0
        default: return try watch(a)
        }
    }

    /// `cairn watch REPO`: runs for commits as they land, until SIGTERM.
    static func watch(_ a: Arguments) throws -> Int32 {
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
        o.runArguments = try PipelineCommands.executorArguments(a, store: store)
        let stop = StopSignal()
        let watcher = try Watcher(repository: repo, store: store, options: o)
        try watcher.run { stop.isSet }
        Output.note("stopped")
        return 0
    }

    /// `cairn status`: like `git status`, what is going on in the store.
    static func status(_ a: Arguments) throws -> Int32 {
        let s = try StoreStatus(store: try a.openStore())
        if a.has("json") { try Output.json(s); return 0 }
        let now = Date().timeIntervalSince1970
        Output.out("store \(s.store): \(s.artifacts) artifact(s)")
        Output.out(s.queueHeld ? "watcher: running (a watcher or `cairn queue work` holds the queue)" : "watcher: not running (`cairn watch REPO` starts one)")
        for b in s.branches {
            Output.out("  \(b.repo) \(b.branch) at \(b.tip.prefix(10)), handled \(Output.age(now - b.handledAt)) ago")
        }
        let running = s.queue.filter { $0.entry.state == "running" }.count
        Output.out("\nqueue: \(running) running, \(s.queue.count - running) pending")
        for q in s.queue {
            var line = "  #\(q.entry.id) \(q.entry.pipeline) at \(q.entry.commit.prefix(10))  \(q.entry.state)"
            if let r = q.run { line += "  run \(r)" }
            if let st = q.stage {
                line += ": \(st)" + (q.progress.map { " " + $0 } ?? (q.step.map { " step \($0)" } ?? "") + (q.loss.map { String(format: " loss %.4f", $0) } ?? ""))
            }
            if let j = q.job { line += "  [\(j.summary)]" }
            Output.out(line)
        }
        Output.out("\nnewest runs:")
        if s.recentRuns.isEmpty { Output.out("  none yet") }
        for r in s.recentRuns {
            Output.out("  \(r.run.id)  \(r.run.pipeline)  \(r.effectiveStatus)  \(Output.age(now - r.run.startedAt)) ago"
                       + (r.run.commit.map { "  commit \($0.prefix(10))" } ?? "") + (r.job.map { "  [\($0.stage): \($0.summary)]" } ?? ""))
        }
        Output.out("\naliases:")
        if s.aliases.isEmpty { Output.out("  none yet") }
        for al in s.aliases {
            Output.out("  \(al.name) → \(al.artifact.short)  (version \(al.version), moved \(Output.age(now - al.updatedAt)) ago)")
        }
        return 0
    }
}
