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
}

extension ArtifactStore {
    /// Queues a run of `pipeline` at `commit`; returns the entry and whether it was new
    /// (a repeated event for the same pipeline and commit queues nothing).
    @discardableResult
    public func enqueue(pipeline: String, commit: String, repo: String? = nil, branch: String? = nil) throws -> (entry: QueueEntry, inserted: Bool) {
        try indexed("cannot queue \(pipeline)@\(commit)") {
            try db.writeTransaction {
                try db.run("INSERT INTO run_queue(pipeline, commit_sha, repo, branch, enqueued_at) VALUES(?,?,?,?,?) ON CONFLICT(pipeline, commit_sha) DO NOTHING",
                           [.text(pipeline), .text(commit), opt(repo), opt(branch), .double(FS.now)])
                let inserted = db.changes == 1
                let entry = try queue(where: "pipeline = ? AND commit_sha = ?", [.text(pipeline), .text(commit)])[0]
                return (entry, inserted)
            }
        }
    }

    /// Sets a queue entry's state (`pending`, `running`, `done`) and the run it started.
    public func updateQueue(_ id: Int64, state: String, run: Int64? = nil) throws {
        try indexed("cannot update queue entry \(id)") {
            try db.writeTransaction {
                try db.run("UPDATE run_queue SET state = ?, run = COALESCE(?, run) WHERE id = ?", [.text(state), run.map { .int($0) } ?? .null, .int(id)])
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
        try db.query("SELECT id, pipeline, commit_sha, repo, branch, state, enqueued_at, run FROM run_queue WHERE \(clause) ORDER BY id", params).map {
            QueueEntry(id: $0.int(0)!, pipeline: $0.string(1)!, commit: $0.string(2)!, repo: $0.string(3), branch: $0.string(4),
                       state: $0.string(5)!, enqueuedAt: $0.double(6)!, run: $0.int(7))
        }
    }
}
