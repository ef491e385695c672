import CairnGit
import CairnStore
import Foundation

/// `cairn watch REPO`: inotify on the repository's refs, debounced; on a change (and every
/// `interval` seconds, for lost events or a queue overflow) a reconcile queues runs, and the
/// queue worker starts them, `jobs` at a time. On start it catches up on commits made while it
/// was down and takes back entries whose process died (their runs resume).
public final class Watcher {
    public struct Options {
        public var branches: [String] = []
        public var jobs = 1
        public var interval = 60.0
        public var debounce = 0.01
        public var allowCommands = false
        /// false: no inotify, only the periodic reconcile (what a polling GitOps tool does;
        /// the trigger benchmark's peer).
        public var useInotify = true
        public var executable: String
        /// Given to every run process (`--executor slurm`).
        public var runArguments: [String] = []
        public var say: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        public init(executable: String) { self.executable = executable }
    }

    let repository: GitRepository
    let store: ArtifactStore
    let options: Options
    public let worker: QueueWorker
    let reconciler: Reconciler

    public init(repository: GitRepository, store: ArtifactStore, options: Options) throws {
        self.repository = repository
        self.store = store
        self.options = options
        worker = QueueWorker(store: store, executable: options.executable, jobs: options.jobs)
        worker.allowCommands = options.allowCommands
        worker.runArguments = options.runArguments
        reconciler = try Reconciler(repository: repository, store: store, branches: options.branches)
    }

    func reconcile(_ why: String) {
        do {
            let r = try reconciler.reconcile()
            for b in r.forcePushed { options.say("\(b): force-pushed; runs for the commits now on it") }
            for e in r.queued { options.say("queued \(e.pipeline) at \(e.commit.prefix(10)) (\(why))") }
        } catch {
            options.say("reconcile failed (\(why)): \(error)")
        }
    }

    /// Runs until `stop()` is true (checked at least every 0.25 s); then takes no new work,
    /// asks running runs to stop (SIGTERM: their training writes a checkpoint) and waits for them.
    public func run(stop: () -> Bool) throws {
        let lockPath = store.root + "/queue-worker.lock"
        var lock = WorkerLock(path: lockPath)
        if lock == nil {
            // One process works a store's queue; a second watcher waits, and says so.
            options.say("another watcher or `cairn queue work` holds this store's queue (\(lockPath)); waiting for it to stop")
        }
        while lock == nil && !stop() { Thread.sleep(forTimeInterval: 0.1); lock = WorkerLock(path: lockPath) }
        defer { withExtendedLifetime(lock) {} }
        let refs = options.useInotify ? try RefWatcher(gitDirectory: repository.gitDirectory) : nil
        options.say("watching \(repository.path) (branches: \(reconciler.branches.joined(separator: ", "))), \(options.jobs) job(s), reconcile every \(Int(options.interval)) s")
        try worker.recoverInterrupted()
        reconcile("start")
        try worker.startAvailable()
        var nextReconcile = Date().addingTimeInterval(options.interval)
        while !stop() {
            let timeout = min(0.25, max(0, nextReconcile.timeIntervalSinceNow))
            let events: [RefWatcher.Event]
            if let refs { events = refs.wait(timeout: timeout) } else { Thread.sleep(forTimeInterval: timeout); events = [] }
            if !events.isEmpty {
                // Debounce: a push moves several refs; take them together.
                var all = events
                while true {
                    let more = refs?.wait(timeout: options.debounce) ?? []
                    if more.isEmpty { break }
                    all += more
                }
                reconcile(all.contains(.overflow) ? "inotify overflow" : "ref change")
            } else if Date() >= nextReconcile {
                reconcile("periodic")
                nextReconcile = Date().addingTimeInterval(options.interval)
            }
            try worker.reap()
            try worker.startAvailable()
        }
        worker.accepting = false
        worker.signalAll(SIGTERM)
        let deadline = Date().addingTimeInterval(60)
        while worker.running > 0 && Date() < deadline {
            try worker.reap()
            Thread.sleep(forTimeInterval: 0.05)
        }
        if worker.running > 0 { worker.signalAll(SIGKILL); Thread.sleep(forTimeInterval: 0.2); try worker.reap() }
    }
}
