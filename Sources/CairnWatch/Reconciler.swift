import CairnGit
import CairnStore
import Foundation

/// Compares the watched branches' tips with the last tips handled (kept in the store) and
/// queues a run for each pipeline that the new commits affect — the newest affecting commit
/// per pipeline. Queue entries are unique per (pipeline, commit), so a replayed event, a
/// repeated hook or two reconciles at once never queue the same run twice, and a crash between
/// queueing and recording the tip only repeats work that is then deduplicated.
public struct Reconciler {
    public struct Report: Sendable {
        public var queued: [QueueEntry] = []
        /// New commits looked at, per branch.
        public var commits: [String: Int] = [:]
        /// Branches whose tip does not descend from the last one handled (a force-push).
        public var forcePushed: [String] = []
        /// Branches seen for the first time: every pipeline at the tip is queued (the desired state).
        public var firstSeen: [String] = []
    }

    public let repository: GitRepository
    public let store: ArtifactStore
    /// The repository's key in the store: its git directory, absolute.
    public let repoKey: String
    public let branches: [String]

    /// `branches` empty: the branch HEAD names (or every branch of a bare repository without one).
    public init(repository: GitRepository, store: ArtifactStore, branches: [String]) throws {
        self.repository = repository
        self.store = store
        repoKey = repository.gitDirectory.hasSuffix("/") ? String(repository.gitDirectory.dropLast()) : repository.gitDirectory
        if branches.isEmpty {
            if let h = repository.headBranch(), try repository.tip(branch: h) != nil { self.branches = [h] }
            else { self.branches = try repository.branches() }
        } else {
            self.branches = branches
        }
    }

    public func reconcile() throws -> Report {
        // A fresh handle per reconcile: libgit2's object cache (up to 256 MiB by default) goes
        // with it, so a long-lived daemon does not grow with every commit it reads.
        let repository = try GitRepository(path: self.repository.path)
        var report = Report()
        for branch in branches {
            guard let tip = try repository.tip(branch: branch) else { continue }
            let last = try store.watchedTip(repo: repoKey, branch: branch).flatMap(CommitID.init)
            if last == tip { continue }
            let map = try PipelineMap(repository: repository, commit: tip)
            var newest: [String: CommitID] = [:]  // queue name (a pipeline directory, a sweep) → newest commit affecting it
            if let l = last {
                if repository.exists(l), try !repository.isDescendant(tip, of: l) { report.forcePushed.append(branch) }
                let commits = try repository.commits(from: tip, hiding: l)
                report.commits[branch] = commits.count
                for c in commits {
                    if newest.count == map.entries.count { break }
                    let info = try repository.commit(c)
                    let changed = try repository.changedPaths(from: info.parents.first, to: c)
                    for e in map.affected(by: changed) where newest[e.queueName] == nil { newest[e.queueName] = c }
                }
            } else {
                report.firstSeen.append(branch)
                report.commits[branch] = 1
                // The desired state: every pipeline at the tip (a sweep starts only when its file changes).
                for e in map.entries where !e.isSweep { newest[e.queueName] = tip }
            }
            for (name, commit) in newest.sorted(by: { $0.key < $1.key }) {
                let (entry, inserted) = try store.enqueue(pipeline: name, commit: commit.hex, repo: repoKey, branch: branch)
                if inserted { report.queued.append(entry) }
                // Older commits of the same pipeline still waiting are superseded by this one.
                for old in try store.queue(state: "pending") where old.pipeline == entry.pipeline && old.repo == repoKey && old.id < entry.id {
                    try store.finishQueue(old.id, state: "superseded", error: "superseded by \(commit.short)")
                }
            }
            try store.setWatchedTip(repo: repoKey, branch: branch, tip: tip.hex, expected: last?.hex)
        }
        return report
    }
}
