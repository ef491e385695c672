/// A pending run in the persistent queue, unique per (pipeline, commit).
public struct QueueEntry: Codable, Sendable, Equatable {
    public let id: Int64
    public let pipeline: String
    public let commit: String
    public let repo: String?
    public let branch: String?
    public let state: String
    public let enqueuedAt: Double
    public let run: Int64?
    public let startedAt: Double?
    public let finishedAt: Double?
    public let pid: Int64?
    public let error: String?
}

extension ArtifactStore {
    /// Queues a run of `pipeline` at `commit`; returns the entry and whether it was new
    /// (a repeated event for the same pipeline and commit queues nothing).
    @discardableResult
    public func enqueue(pipeline: String, commit: String, repo: String? = nil, branch: String? = nil) throws -> (entry: QueueEntry, inserted: Bool) {
        try indexed("cannot queue \(pipeline)@\(commit)") {
            try write {
                try db.run("INSERT INTO run_queue(pipeline, commit_sha, repo, branch, enqueued_at) VALUES(?,?,?,?,?) ON CONFLICT(pipeline, commit_sha) DO NOTHING",
                           [.text(pipeline), .text(commit), opt(repo), opt(branch), .double(FS.now)])
                let inserted = db.changes == 1
                let entry = try queue(where: "pipeline = ? AND commit_sha = ?", [.text(pipeline), .text(commit)])[0]
                if inserted { try logRow("run_queue", ["id": .int(entry.id)]) }
                return (entry, inserted)
            }
        }
    }

    /// Sets a queue entry's state (`pending`, `running`, `done`) and the run it started.
    public func updateQueue(_ id: Int64, state: String, run: Int64? = nil) throws {
        try indexed("cannot update queue entry \(id)") {
            try write {
                try db.run("UPDATE run_queue SET state = ?, run = COALESCE(?, run) WHERE id = ?", [.text(state), run.map { .int($0) } ?? .null, .int(id)])
                try logRow("run_queue", ["id": .int(id)])
            }
        }
    }

    /// Takes the oldest pending entry (atomically, across processes): it becomes `running`
    /// with this start time and process id.
    public func claimNextPending(pid: Int32) throws -> QueueEntry? {
        try indexed("cannot take from the queue") {
            try write {
                guard let id = try db.query("SELECT id FROM run_queue WHERE state = 'pending' ORDER BY id LIMIT 1").first?.int(0) else { return nil }
                try db.run("UPDATE run_queue SET state = 'running', started_at = ?, pid = ? WHERE id = ?", [.double(FS.now), .int(Int64(pid)), .int(id)])
                try logRow("run_queue", ["id": .int(id)])
                return try queue(where: "id = ?", [.int(id)]).first
            }
        }
    }

    /// Records who runs an entry (the run process's pid) and, once known, its run.
    public func markQueueRunning(_ id: Int64, pid: Int32, run: Int64? = nil) throws {
        try indexed("cannot update queue entry \(id)") {
            try write {
                try db.run("UPDATE run_queue SET state = 'running', pid = ?, run = COALESCE(?, run), started_at = COALESCE(started_at, ?) WHERE id = ?",
                           [.int(Int64(pid)), run.map { .int($0) } ?? .null, .double(FS.now), .int(id)])
                try logRow("run_queue", ["id": .int(id)])
            }
        }
    }

    /// Ends an entry: `done` (the run finished, whatever its verdict), `failed` (it could not
    /// run: bad config, unsafe path), or `superseded` (a newer commit of the pipeline came first).
    public func finishQueue(_ id: Int64, state: String, run: Int64? = nil, error: String? = nil) throws {
        try indexed("cannot update queue entry \(id)") {
            try write {
                try db.run("UPDATE run_queue SET state = ?, run = COALESCE(?, run), error = ?, finished_at = ? WHERE id = ?",
                           [.text(state), run.map { .int($0) } ?? .null, opt(error), .double(FS.now), .int(id)])
                try logRow("run_queue", ["id": .int(id)])
            }
        }
    }

    /// One entry by id.
    public func queueEntry(_ id: Int64) throws -> QueueEntry? {
        try indexed("cannot read the queue") { try queue(where: "id = ?", [.int(id)]).first }
    }

    /// The last tip of `branch` in `repo` that the trigger handled.
    public func watchedTip(repo: String, branch: String) throws -> String? {
        try indexed("cannot read the trigger state") {
            try db.query("SELECT tip FROM watch_state WHERE repo = ? AND branch = ?", [.text(repo), .text(branch)]).first?.string(0)
        }
    }

    /// Every branch the trigger has handled: repository, branch, the tip handled and when.
    public func watchedTips() throws -> [(repo: String, branch: String, tip: String, updatedAt: Double)] {
        try indexed("cannot read the trigger state") {
            try db.query("SELECT repo, branch, tip, updated_at FROM watch_state ORDER BY repo, branch").map {
                ($0.string(0)!, $0.string(1)!, $0.string(2)!, $0.double(3)!)
            }
        }
    }

    /// Records the tip handled; with `expected`, only if the stored one is still that (so two
    /// reconciles at once never both handle the same commits). Returns whether it was stored.
    @discardableResult
    public func setWatchedTip(repo: String, branch: String, tip: String, expected: String?) throws -> Bool {
        try indexed("cannot write the trigger state") {
            try write {
                let current = try db.query("SELECT tip FROM watch_state WHERE repo = ? AND branch = ?", [.text(repo), .text(branch)]).first?.string(0)
                guard current == expected else { return false }
                try db.run("INSERT INTO watch_state(repo, branch, tip, updated_at) VALUES(?,?,?,?) ON CONFLICT(repo, branch) DO UPDATE SET tip = excluded.tip, updated_at = excluded.updated_at",
                           [.text(repo), .text(branch), .text(tip), .double(FS.now)])
                try logRow("watch_state", ["repo": .text(repo), "branch": .text(branch)])
                return true
            }
        }
    }

    /// Queue entries in order, optionally only those in one state.
    public func queue(state: String? = nil) throws -> [QueueEntry] {
        try indexed("cannot read the queue") {
            if let s = state { return try queue(where: "state = ?", [.text(s)]) }
            return try queue(where: "1", [])
        }
    }

    private func queue(where clause: String, _ params: [SQLValue]) throws -> [QueueEntry] {
        try db.query("""
            SELECT id, pipeline, commit_sha, repo, branch, state, enqueued_at, run, started_at, finished_at, pid, error
            FROM run_queue WHERE \(clause) ORDER BY id
            """, params).map {
            QueueEntry(id: $0.int(0)!, pipeline: $0.string(1)!, commit: $0.string(2)!, repo: $0.string(3), branch: $0.string(4),
                       state: $0.string(5)!, enqueuedAt: $0.double(6)!, run: $0.int(7), startedAt: $0.double(8), finishedAt: $0.double(9),
                       pid: $0.int(10), error: $0.string(11))
        }
    }
}
