import CairnGit
import CairnPipeline
import CairnStore
import CairnSystem
import Foundation

/// Runs one queue entry in this process (`cairn queue run-one ID`): the pipeline as it is in
/// the entry's commit — configs and datasets read from the commit's tree through libgit2 and
/// exported under the store, never from a work tree — recorded with the repository, branch,
/// commit, author and message. An entry whose run was interrupted is resumed instead.
public enum QueueRunner {
    public struct Options {
        public var executable: String
        public var allowCommands = false
        public var echo = true
        public var stopRequested: () -> Bool = { false }
        /// Where the run's stages and checks run.
        public var executor: StageExecutor = LocalExecutor()
        public init(executable: String) { self.executable = executable }
    }

    /// Returns the process exit code: 0 the run succeeded, 1 it failed or was rejected, 2 it could not start.
    public static func run(entry id: Int64, store: ArtifactStore, options: Options) -> Int32 {
        var started: Int64?  // the run the orchestrator recorded, once it has
        do {
            guard let e = try store.queueEntry(id) else { throw PipelineError("no queue entry \(id)") }
            try store.markQueueRunning(id, pid: getpid())
            var o = Orchestrator.Options(executable: options.executable)
            o.echo = options.echo
            o.stopRequested = options.stopRequested
            o.allowCommands = options.allowCommands
            o.executor = options.executor
            o.onRunStarted = { run in started = run; try? store.markQueueRunning(id, pid: getpid(), run: run) }
            if e.pipeline.hasPrefix("sweep:") { return try runSweep(id, e, store: store, options: o) }
            if let run = e.run, let rec = try store.run(run), try Orchestrator.effectiveStatus(rec) == .interrupted {
                let r = try Orchestrator.resume(run: run, store: store, options: o)
                return try finish(id, store: store, r)
            }
            guard let repoPath = e.repo, let commit = CommitID(e.commit) else { throw PipelineError("queue entry \(id) names no repository or commit") }
            let repo = try GitRepository(path: repoPath)
            let info = try repo.commit(commit)
            o.info = RunInfo(pipeline: e.pipeline, repo: repoPath, branch: e.branch, commit: commit.hex, author: "\(info.author) <\(info.email)>",
                             message: info.summary, metadata: .object(["queue_entry": .number(Double(id))]))
            do {
                let tree = try exportedTree(repo, commit, store: store)
                let file = try pipelineFile(in: tree, directory: e.pipeline, commit: commit)
                let config: PipelineConfig
                do {
                    // A run is named by its pipeline_id, also when the rest of the config is refused.
                    config = try PipelineConfig.read(file: file, repository: tree, allowCommands: options.allowCommands) { o.info?.pipeline = $0 }
                } catch let c as ConfigError {
                    throw inRepository(c, tree: tree, commit: commit)
                }
                let result = try Orchestrator(store: store, config: config, options: o).run()
                removeWorkFiles(of: result, config: config)
                return try finish(id, store: store, result)
            } catch let error as ConfigError {
                return try failBeforeRun(id, store: store, info: o.info!, run: started, error: "\(error)")
            } catch let error as UnsafePathError {
                return try failBeforeRun(id, store: store, info: o.info!, run: started, error: "\(error)")
            }
        } catch {
            FileHandle.standardError.write(Data("cairn: queue entry \(id): \(error)\n".utf8))
            if let run = started {  // the run's one record names its queue entry and the error
                try? store.setRunMetadata(run, .object(["queue_entry": .number(Double(id)), "error": .string("\(error)")]))
            }
            try? store.finishQueue(id, state: "failed", run: started, error: "\(error)")
            return 2
        }
    }

    /// A config error as the person reads it: the file as it is in the repository, and the
    /// commit; the export directory means nothing to them.
    static func inRepository(_ c: ConfigError, tree: String, commit: CommitID) -> ConfigError {
        let inRepo = c.file.hasPrefix(tree + "/") ? String(c.file.dropFirst(tree.count + 1)) : c.file
        let message = c.message.replacingOccurrences(of: tree + "/", with: "").replacingOccurrences(of: " " + tree, with: "")
        return ConfigError(file: inRepo, line: c.line, message + " (commit \(commit.short))")
    }

    /// A sweep file as it is in the entry's commit: its variants run as runs of that commit (each
    /// recorded with the repository, branch, commit, author and message), the best promoted.
    static func runSweep(_ id: Int64, _ e: QueueEntry, store: ArtifactStore, options: Orchestrator.Options) throws -> Int32 {
        guard let repoPath = e.repo, let commit = CommitID(e.commit) else { throw PipelineError("queue entry \(id) names no repository or commit") }
        let repo = try GitRepository(path: repoPath)
        let info = try repo.commit(commit)
        let tree = try exportedTree(repo, commit, store: store)
        let path = String(e.pipeline.dropFirst("sweep:".count))
        let sweep: SweepConfig
        do { sweep = try SweepConfig.load(tree + "/" + path, repository: tree, allowCommands: options.allowCommands) } catch let c as ConfigError {
            throw inRepository(c, tree: tree, commit: commit)
        }
        var o = options
        o.info = RunInfo(pipeline: sweep.pipeline.pipelineID, repo: repoPath, branch: e.branch, commit: commit.hex,
                         author: "\(info.author) <\(info.email)>", message: info.summary, metadata: .object(["queue_entry": .number(Double(id))]))
        let outcome = try SweepRunner(store: store, sweep: sweep, options: o).run()
        if outcome.interrupted {  // back to the queue: the next worker goes on with it
            try store.updateQueue(id, state: "pending", run: nil)
            return 1
        }
        try store.finishQueue(id, state: "done", run: outcome.best)
        return outcome.best == nil ? 1 : 0
    }

    /// Done whatever the verdict; an interrupted run (stopped on request) goes back to pending,
    /// to be resumed by the next worker.
    static func finish(_ id: Int64, store: ArtifactStore, _ r: PipelineResult) throws -> Int32 {
        if r.status == .interrupted {
            try store.updateQueue(id, state: "pending", run: r.runID)
            return 1
        }
        try store.finishQueue(id, state: "done", run: r.runID)
        return r.success ? 0 : 1
    }

    /// A triggered run that reached a verdict (promoted or rejected by a gate) has everything it
    /// made in the store; its working files (models, merged weights, checkpoints: about 1 GB a
    /// run on SmolLM2) go, so a watched repository does not fill the disk one commit at a time.
    /// A failed or interrupted run keeps them: its checkpoints are what `cairn resume` continues.
    static func removeWorkFiles(of r: PipelineResult, config: PipelineConfig) {
        guard r.status == .succeeded || r.status == .rejected else { return }
        try? FileManager.default.removeItem(atPath: config.outputDir + "/run-\(r.runID)")
    }

    /// A run that could not start (bad config, unsafe path) is recorded as a failed run with
    /// its error, so `cairn runs` shows it; the daemon goes on. When the orchestrator had already
    /// recorded the run (and failed it with the error), that record is the entry's only one.
    static func failBeforeRun(_ id: Int64, store: ArtifactStore, info: RunInfo, run started: Int64? = nil, error: String) throws -> Int32 {
        FileHandle.standardError.write(Data("cairn: \(error)\n".utf8))
        let metadata: [String: JSONValue] = ["queue_entry": .number(Double(id)), "error": .string(error)]
        let run: Int64
        if let started {
            run = started
            try store.setRunMetadata(run, .object(metadata))
        } else {
            var i = info
            i.metadata = .object(metadata)
            run = try store.beginRun(i, status: .failed)
        }
        try store.finishRun(run, status: .failed)
        try store.finishQueue(id, state: "failed", run: run, error: error)
        return 2
    }

    /// Where triggered runs work: beside the store (STORE-work/), not in it — the store refuses
    /// to add files from inside itself.
    public static func workRoot(_ store: ArtifactStore) -> String {
        (store.root.hasSuffix("/") ? String(store.root.dropLast()) : store.root) + "-work"
    }

    /// The commit's tree (exported once per commit, read-only afterwards) under STORE-work/checkouts.
    public static func exportedTree(_ repo: GitRepository, _ commit: CommitID, store: ArtifactStore) throws -> String {
        let base = workRoot(store) + "/checkouts"
        let dir = base + "/" + commit.hex
        if FileManager.default.fileExists(atPath: dir) { return dir }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        do { try repo.export(commit, into: dir) } catch where FileManager.default.fileExists(atPath: dir) {
            return dir  // another process exported it meanwhile
        }
        return dir
    }

    static func pipelineFile(in tree: String, directory: String, commit: CommitID) throws -> String {
        let dir = directory == "." ? tree : tree + "/" + directory
        for name in PipelineMap.fileNames.sorted() where FileManager.default.fileExists(atPath: dir + "/" + name) { return dir + "/" + name }
        throw ConfigError(file: "\(directory) at \(commit.short)", line: nil, "no pipeline.yaml in this directory at this commit")
    }
}

/// Starts queued runs as child processes (`cairn queue run-one ID`), `jobs` at a time, each with
/// its log under the store (and stored as a log artifact by its run); reaps them; marks an
/// entry whose process died without finishing it. Used by the watcher and by `cairn queue work`.
public final class QueueWorker {
    let store: ArtifactStore
    let executable: String
    public let jobs: Int
    public var allowCommands = false
    public var accepting = true
    /// Given to every `cairn queue run-one` (`--executor slurm`).
    public var runArguments: [String] = []
    var children: [(entry: Int64, process: Subprocess)] = []

    public init(store: ArtifactStore, executable: String, jobs: Int) {
        self.store = store; self.executable = executable; self.jobs = max(1, jobs)
    }

    public var running: Int { children.count }

    /// Entries left `running` by a process that is gone: back to pending (their run, if any,
    /// is resumed by the next process that takes them).
    public func recoverInterrupted() throws {
        for e in try store.queue(state: "running") where !children.contains(where: { $0.entry == e.id }) {
            if !(e.pid.map { Processes.isAlive(pid_t(truncatingIfNeeded: $0), running: "cairn") } ?? false) { try store.updateQueue(e.id, state: "pending") }
        }
    }

    /// Starts pending entries while fewer than `jobs` run. Returns how many it started.
    @discardableResult
    public func startAvailable() throws -> Int {
        var n = 0
        while accepting && children.count < jobs, let e = try store.claimNextPending(pid: getpid()) {
            let logDir = QueueRunner.workRoot(store) + "/logs"  // beside the store: logs are added to it
            try FileManager.default.createDirectory(atPath: logDir, withIntermediateDirectories: true)
            var args = [executable, "queue", "run-one", String(e.id), "--store", store.root, "--quiet"]
            if allowCommands { args.append("--allow-commands") }
            args += runArguments
            let p = try Subprocess(args, logPath: logDir + "/queue-\(e.id).log", echo: false)
            try store.markQueueRunning(e.id, pid: p.pid)
            children.append((e.id, p))
            n += 1
        }
        return n
    }

    /// Collects finished children; an entry its process left unfinished is marked failed. Each
    /// run process's log is stored (kind log) and named in its run's metadata as `log`.
    @discardableResult
    public func reap() throws -> Int {
        var done = 0
        children.removeAll { c in
            guard let o = c.process.poll() else { return false }
            done += 1
            storeLog(entry: c.entry)
            if let e = try? store.queueEntry(c.entry), e.state == "running" {
                if accepting {
                    try? store.finishQueue(c.entry, state: "failed", error: "run process ended with \(o.description) before finishing")
                } else {
                    try? store.updateQueue(c.entry, state: "pending")  // stopped by us: resumed on the next start
                }
            }
            return true
        }
        return done
    }

    func storeLog(entry id: Int64) {
        let path = QueueRunner.workRoot(store) + "/logs/queue-\(id).log"
        guard FileManager.default.fileExists(atPath: path), let e = try? store.queueEntry(id), let run = e.run,
              let rec = try? store.run(run), case .object(var meta) = rec.metadata,
              let log = try? store.add(path: path, kind: .log, name: "\(e.pipeline)@\(e.commit.prefix(10))/queue-\(id).log").artifact.id else { return }
        var logs: [JSONValue] = []
        if case .array(let l)? = meta["logs"] { logs = l }
        logs.append(.string(log.description))
        meta["logs"] = .array(logs)
        try? store.setRunMetadata(run, .object(meta))
    }

    /// Sends `signal` to every running child's process group.
    public func signalAll(_ signal: Int32) { for c in children { c.process.signalGroup(signal) } }

    /// Runs until the queue is empty and every child has ended.
    public func drain(poll: Double = 0.05) throws {
        try recoverInterrupted()
        while true {
            try reap()
            try startAvailable()
            if children.isEmpty { break }
            Thread.sleep(forTimeInterval: poll)
        }
    }
}
