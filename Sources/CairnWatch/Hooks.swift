import CairnGit
import CairnPipeline
import CairnStore
import CairnSystem
import Foundation

/// The git hooks Cairn installs in a training repository (post-commit, post-receive), made from
/// the template hooks/cairn-hook: each runs `cairn trigger` on the store, in the background.
public enum Hooks {
    public static let names = ["post-commit", "post-receive"]

    /// Writes the hooks into `repository` from `template` for the store at `store`, run by
    /// `executable`; returns their paths.
    public static func install(in repository: GitRepository, store: String, executable: String, template: String) throws -> [String] {
        let store = Paths.normalise(store)
        let hooks = repository.gitDirectory + "hooks"
        try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: store + "-work/logs", withIntermediateDirectories: true)  // the hooks' log
        let template = try String(contentsOfFile: template, encoding: .utf8)
        return try names.map { hook in
            let text = template.replacingOccurrences(of: "@CAIRN@", with: executable).replacingOccurrences(of: "@STORE@", with: store)
                .replacingOccurrences(of: "@HOOK@", with: hook)
            let path = hooks + "/" + hook
            try AtomicFile.write(text, to: path)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
            return path
        }
    }

    /// The hook script template: $CAIRN_HOOKS_DIR/cairn-hook, else hooks/cairn-hook in the source
    /// tree the executable was built in (looked up from it), else in the current directory.
    public static func template(executable: String) -> String? {
        let fromEnv: [String] = ProcessInfo.processInfo.environment["CAIRN_HOOKS_DIR"].map { [$0 + "/cairn-hook"] } ?? []
        var dir = URL(fileURLWithPath: executable).deletingLastPathComponent()
        var upward: [String] = []
        for _ in 0..<6 { upward.append(dir.appendingPathComponent("hooks/cairn-hook").path); dir = dir.deletingLastPathComponent() }
        let candidates = fromEnv + upward + [FileManager.default.currentDirectoryPath + "/hooks/cairn-hook"]
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }
}

extension QueueWorker {
    /// Runs queued entries until the queue is empty (`cairn queue work`), unless a watcher or
    /// another worker holds the queue: then returns at once, that one drains it.
    public static func drainAll(store: ArtifactStore, executable: String, jobs: Int, runArguments: [String] = []) throws {
        let lockPath = store.root + "/queue-worker.lock"
        while true {
            guard let lock = WorkerLock(path: lockPath) else { return }
            let worker = QueueWorker(store: store, executable: executable, jobs: jobs)
            worker.runArguments = runArguments
            try worker.drain()
            withExtendedLifetime(lock) {}
            // Something queued between the last claim and the release: take it too.
            if try store.queue(state: "pending").isEmpty { return }
        }
    }

    /// Starts a detached `cairn queue work` when entries are pending: a hook must not wait for
    /// training. A watcher or another worker already holding the queue makes it return at once.
    public static func startDetachedIfPending(store: ArtifactStore, executable: String, runArguments: [String] = []) throws {
        guard try !store.queue(state: "pending").isEmpty else { return }
        try FileManager.default.createDirectory(atPath: QueueRunner.workRoot(store) + "/logs", withIntermediateDirectories: true)
        try spawnDetached([executable, "queue", "work", "--store", store.root] + runArguments, logPath: QueueRunner.workRoot(store) + "/logs/worker.log")
    }
}
