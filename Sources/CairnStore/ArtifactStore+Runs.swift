/// The state of a run or a stage execution.
public enum RunStatus: String, Codable, Sendable, CaseIterable {
    /// stopped: a sweep's early stop ended it at a checkpoint because it was losing (never resumed).
    case queued, running, succeeded, failed, rejected, interrupted, cached, stopped
    /// Unfinished runs keep everything they touched out of gc's reach.
    public var isFinished: Bool { ![.queued, .running, .interrupted].contains(self) }
}

/// Where a run came from. Everything is optional but the pipeline name.
public struct RunInfo: Sendable {
    public var pipeline: String
    public var repo: String?
    public var branch: String?
    public var commit: String?
    public var author: String?
    public var message: String?
    public var metadata: JSONValue

    public init(pipeline: String, repo: String? = nil, branch: String? = nil, commit: String? = nil,
                author: String? = nil, message: String? = nil, metadata: JSONValue = .object([:])) {
        self.pipeline = pipeline; self.repo = repo; self.branch = branch; self.commit = commit
        self.author = author; self.message = message; self.metadata = metadata
    }
}

public struct RunRecord: Codable, Sendable, Equatable {
    public let id: Int64
    public let pipeline: String
    public let repo: String?
    public let branch: String?
    public let commit: String?
    public let author: String?
    public let message: String?
    public let status: RunStatus
    public let startedAt: Double
    public let finishedAt: Double?
    public let metadata: JSONValue

    enum CodingKeys: String, CodingKey {
        case id, pipeline, repo, branch, commit, author, message, status
        case startedAt = "started_at", finishedAt = "finished_at", metadata
    }
}

public struct StageExecutionRecord: Codable, Sendable, Equatable {
    public let id: Int64
    public let run: Int64
    public let stage: String
    public let attempt: Int
    public let status: RunStatus
    public let startedAt: Double
    public let finishedAt: Double?
    public let metrics: JSONValue
    public let gateReport: JSONValue?
    public let error: String?
    public let cacheKey: String?

    enum CodingKeys: String, CodingKey {
        case id, run, stage, attempt, status, startedAt = "started_at", finishedAt = "finished_at"
        case metrics, gateReport = "gate_report", error, cacheKey = "cache_key"
    }
}

/// How a stage execution touched an artifact.
public enum LineageRelation: String, Codable, Sendable { case used, generated }

/// The API the pipeline uses to record a run, its stage executions, what each used and
/// generated, and its metrics. Every call is one short write transaction.
extension ArtifactStore {
    /// Starts a run (status `running` unless given) and returns its id.
    public func beginRun(_ info: RunInfo, status: RunStatus = .running) throws -> Int64 {
        try indexed("cannot record the run") {
            try write {
                try db.run("""
                    INSERT INTO runs(pipeline, repo, branch, commit_sha, author, message, status, started_at, metadata)
                    VALUES(?,?,?,?,?,?,?,?,?)
                    """, [.text(info.pipeline), opt(info.repo), opt(info.branch), opt(info.commit), opt(info.author),
                          opt(info.message), .text(status.rawValue), .double(FS.now), .text(info.metadata.description)])
                let id = db.lastInsertRowID
                try logRow("runs", ["id": .int(id)])
                return id
            }
        }
    }

    /// Sets a run's status; a finished status also sets its end time.
    public func finishRun(_ run: Int64, status: RunStatus) throws {
        try indexed("cannot update run \(run)") {
            try write {
                try db.run("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?",
                           [.text(status.rawValue), status.isFinished ? .double(FS.now) : .null, .int(run)])
                guard db.changes == 1 else { throw StoreError.bad("unknown run \(run)") }
                try logRow("runs", ["id": .int(run)])
            }
        }
    }

    /// Starts one attempt of one stage of a run and returns the execution id.
    public func beginStage(run: Int64, stage: String, attempt: Int = 1, cacheKey: String? = nil) throws -> Int64 {
        try indexed("cannot record stage '\(stage)' of run \(run)") {
            try write {
                guard try !db.query("SELECT 1 FROM runs WHERE id = ?", [.int(run)]).isEmpty else { throw StoreError.bad("unknown run \(run)") }
                try db.run("INSERT INTO stage_executions(run, stage, attempt, status, started_at, cache_key) VALUES(?,?,?,?,?,?)",
                           [.int(run), .text(stage), .int(Int64(attempt)), .text(RunStatus.running.rawValue), .double(FS.now), opt(cacheKey)])
                let id = db.lastInsertRowID
                try logRow("stage_executions", ["id": .int(id)])
                return id
            }
        }
    }

    /// Records that an execution used (with a role: "base_model", "data", …) or generated an artifact.
    public func record(execution: Int64, _ relation: LineageRelation, _ artifact: ArtifactID, role: String = "") throws {
        try indexed("cannot record lineage") {
            try write { try insertEdge(execution: execution, relation, artifact, role: role) }
        }
    }

    func insertEdge(execution: Int64, _ relation: LineageRelation, _ artifact: ArtifactID, role: String) throws {
        guard let seq = try seqOf(artifact) else { throw StoreError.bad("unknown artifact \(artifact)") }
        guard try !db.query("SELECT 1 FROM stage_executions WHERE id = ?", [.int(execution)]).isEmpty else {
            throw StoreError.bad("unknown stage execution \(execution)")
        }
        try db.run("INSERT OR IGNORE INTO lineage(execution, relation, artifact, role) VALUES(?,?,?,?)",
                   [.int(execution), .text(relation.rawValue), .int(seq), .text(role)])
        if db.changes == 1 {
            try logRow("lineage", ["execution": .int(execution), "relation": .text(relation.rawValue), "artifact": .int(seq), "role": .text(role)])
        }
    }

    /// Ends a stage execution with its status, metrics, gate report and error.
    public func finishStage(execution: Int64, status: RunStatus, metrics: JSONValue = .object([:]),
                            gateReport: JSONValue? = nil, error: String? = nil) throws {
        try indexed("cannot update stage execution \(execution)") {
            try write {
                try db.run("UPDATE stage_executions SET status = ?, finished_at = ?, metrics = ?, gate_report = ?, error = ? WHERE id = ?",
                           [.text(status.rawValue), .double(FS.now), .text(metrics.description),
                            gateReport.map { .text($0.description) } ?? .null, opt(error), .int(execution)])
                guard db.changes == 1 else { throw StoreError.bad("unknown stage execution \(execution)") }
                try logRow("stage_executions", ["id": .int(execution)])
            }
        }
    }

    /// Adds `path` and records it in one go as an output of a stage execution.
    @discardableResult
    public func addGenerated(path: String, kind: ArtifactKind, name: String? = nil, metadata: JSONValue = .object([:]),
                             execution: Int64, role: String = "", known: KnownBlobs = KnownBlobs()) throws -> AddResult {
        let result = try add(path: path, kind: kind, name: name, metadata: metadata, known: known)
        try record(execution: execution, .generated, result.artifact.id, role: role)
        return result
    }

    /// Adds by hand with lineage recorded by hand (`cairn add --used ROLE=REF`): a run of
    /// pipeline "manual" with one stage "add" that used the given artifacts and generated this one.
    @discardableResult
    public func addByHand(path: String, kind: ArtifactKind, name: String? = nil, metadata: JSONValue = .object([:]),
                          used: [(role: String, artifact: ArtifactID)], pipeline: String = "manual", stage: String = "add") throws -> AddResult {
        for u in used where try seqOf(u.artifact) == nil { throw StoreError.bad("unknown artifact \(u.artifact) in --used") }
        let result = try add(path: path, kind: kind, name: name, metadata: metadata, pin: true)
        if used.isEmpty { return result }
        try indexed("cannot record lineage") {
            try write {
                try db.run("INSERT INTO runs(pipeline, status, started_at, finished_at, metadata) VALUES(?, 'succeeded', ?, ?, ?)",
                           [.text(pipeline), .double(FS.now), .double(FS.now), .text(JSONValue.object(["by": .string(FS.userName)]).description)])
                let run = db.lastInsertRowID
                try logRow("runs", ["id": .int(run)])
                try db.run("INSERT INTO stage_executions(run, stage, status, started_at, finished_at) VALUES(?, ?, 'succeeded', ?, ?)",
                           [.int(run), .text(stage), .double(FS.now), .double(FS.now)])
                let exe = db.lastInsertRowID
                try logRow("stage_executions", ["id": .int(exe)])
                for u in used { try insertEdge(execution: exe, .used, u.artifact, role: u.role) }
                try insertEdge(execution: exe, .generated, result.artifact.id, role: "")
            }
        }
        return result
    }

    /// Replaces a run's metadata (the orchestrator's journal of what the run uses).
    public func setRunMetadata(_ run: Int64, _ metadata: JSONValue) throws {
        try indexed("cannot update run \(run)") {
            try write {
                try db.run("UPDATE runs SET metadata = ? WHERE id = ?", [.text(metadata.description), .int(run)])
                guard db.changes == 1 else { throw StoreError.bad("unknown run \(run)") }
                try logRow("runs", ["id": .int(run)])
            }
        }
    }

    /// The newest succeeded (or cached) stage execution with this cache key whose outputs are
    /// all still stored (none removed by gc), with its outputs and gate report.
    public func cachedStage(key: String) throws -> (execution: StageExecutionRecord, outputs: [(role: String, artifact: ArtifactID)])? {
        try indexed("cannot read the stage cache") {
            let rows = try db.query("""
                SELECT id, run FROM stage_executions WHERE cache_key = ? AND status IN ('succeeded', 'cached') ORDER BY id DESC LIMIT 20
                """, [.text(key)])
            for r in rows {
                let exe = r.int(0)!
                let collected = try db.query("""
                    SELECT COUNT(*) FROM lineage l JOIN artifacts a ON a.seq = l.artifact
                    WHERE l.execution = ? AND l.relation = 'generated' AND a.collected_at IS NOT NULL
                    """, [.int(exe)])[0].int(0)!
                if collected > 0 { continue }
                let outputs = try edges(execution: exe, .generated)
                if outputs.isEmpty { continue }
                guard let rec = try stages(run: r.int(1)!).first(where: { $0.id == exe }) else { continue }
                return (rec, outputs)
            }
            return nil
        }
    }

    static let runColumns = "id, pipeline, repo, branch, commit_sha, author, message, status, started_at, finished_at, metadata"

    static func run(from r: Row) -> RunRecord {
        RunRecord(id: r.int(0)!, pipeline: r.string(1)!, repo: r.string(2), branch: r.string(3), commit: r.string(4),
                  author: r.string(5), message: r.string(6), status: RunStatus(rawValue: r.string(7)!) ?? .failed,
                  startedAt: r.double(8)!, finishedAt: r.double(9), metadata: JSONValue.parse(r.string(10) ?? "{}") ?? .null)
    }

    public func run(_ id: Int64) throws -> RunRecord? {
        try indexed("cannot read run \(id)") {
            try db.query("SELECT \(Self.runColumns) FROM runs WHERE id = ?", [.int(id)]).first.map(Self.run(from:))
        }
    }

    /// Runs, newest first.
    public func runs(limit: Int = 100) throws -> [RunRecord] {
        try indexed("cannot read runs") {
            try db.query("SELECT \(Self.runColumns) FROM runs ORDER BY id DESC LIMIT ?", [.int(Int64(limit))]).map(Self.run(from:))
        }
    }

    /// Runs whose metadata holds the text `value` at the JSON path `path` (`$.sweep.key`),
    /// newest first: SQLite reads the metadata, only the matching runs are decoded.
    public func runs(whereMetadata path: String, is value: String) throws -> [RunRecord] {
        try indexed("cannot read runs") {
            try db.query("SELECT \(Self.runColumns) FROM runs WHERE json_extract(metadata, ?) = ? ORDER BY id DESC",
                         [.text(path), .text(value)]).map(Self.run(from:))
        }
    }

    /// A run's stage executions in order.
    public func stages(run: Int64) throws -> [StageExecutionRecord] {
        try indexed("cannot read run \(run)") {
            try db.query("""
                SELECT id, run, stage, attempt, status, started_at, finished_at, metrics, gate_report, error, cache_key
                FROM stage_executions WHERE run = ? ORDER BY id
                """, [.int(run)]).map { r in
                StageExecutionRecord(id: r.int(0)!, run: r.int(1)!, stage: r.string(2)!, attempt: Int(r.int(3)!),
                                     status: RunStatus(rawValue: r.string(4)!) ?? .failed, startedAt: r.double(5)!,
                                     finishedAt: r.double(6), metrics: JSONValue.parse(r.string(7) ?? "{}") ?? .null,
                                     gateReport: r.string(8).flatMap(JSONValue.parse), error: r.string(9), cacheKey: r.string(10))
            }
        }
    }

    /// Artifacts an execution used or generated, with their roles.
    public func edges(execution: Int64, _ relation: LineageRelation) throws -> [(role: String, artifact: ArtifactID)] {
        try indexed("cannot read lineage") {
            try db.query("""
                SELECT l.role, a.id FROM lineage l JOIN artifacts a ON a.seq = l.artifact
                WHERE l.execution = ? AND l.relation = ? ORDER BY l.role, a.id
                """, [.int(execution), .text(relation.rawValue)]).map { ($0.string(0)!, ArtifactID($0.string(1)!)!) }
        }
    }
}

func opt(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
