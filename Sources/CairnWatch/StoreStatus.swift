import CairnPipeline
import CairnSystem
import CairnStore
import Foundation

/// What `cairn status` shows in one screen: the store, whether a watcher (or queue worker) holds
/// the queue and which branches the trigger follows, the runs queued and running with their
/// stage and training step, the newest runs, and every alias.
public struct StoreStatus: Encodable {
    public struct Branch: Encodable {
        public let repo: String
        public let branch: String
        public let tip: String
        /// When the trigger last handled this branch.
        public let handledAt: Double
        enum CodingKeys: String, CodingKey { case repo, branch, tip, handledAt = "handled_at" }
    }

    public struct Active: Encodable {
        public let entry: QueueEntry
        public let run: Int64?
        /// The stage the run is in, its newest training step and loss (from the stage's metrics.jsonl).
        public let stage: String?
        public let step: Int?
        public let loss: Double?
        /// The training process's newest progress line from the stage's log: "step 16/40  loss
        /// 0.0064  lr 1.0e-03  2310 tok/s  ETA 0:42".
        public let progress: String?
        /// The cluster job the stage runs as (the Slurm executor), as the coordinator last saw it.
        public let job: Job?
    }

    /// A stage attempt's cluster job: its id, Slurm's state for it and the node it runs on.
    public struct Job: Encodable, Equatable {
        public let id: String
        public let stage: String
        public let state: String
        public let node: String

        /// The run journal's `job`, when a cluster job runs one of its stages.
        public init?(run: RunRecord?) {
            guard let j = run?.metadata["job"], let id = j["id"]?.stringValue, let stage = j["stage"]?.stringValue else { return nil }
            self.id = id; self.stage = stage
            state = j["state"]?.stringValue ?? ""; node = j["node"]?.stringValue ?? ""
        }

        /// "slurm job 42 RUNNING on node7".
        public var summary: String { "slurm job \(id) \(state)" + (node.isEmpty || node == "(null)" ? "" : " on \(node)") }
    }

    public struct Run: Encodable {
        public let run: RunRecord
        public let effectiveStatus: String
        public let job: Job?
        enum CodingKeys: String, CodingKey { case run, effectiveStatus = "effective_status", job }
    }

    public let store: String
    public let artifacts: Int
    /// A watcher or `cairn queue work` holds the queue now.
    public let queueHeld: Bool
    public let branches: [Branch]
    public let queue: [Active]
    public let recentRuns: [Run]
    public let aliases: [AliasRecord]

    enum CodingKeys: String, CodingKey {
        case store, artifacts, queueHeld = "queue_held", branches, queue, recentRuns = "recent_runs", aliases
    }

    public init(store: ArtifactStore, recent: Int = 5) throws {
        self.store = store.root
        artifacts = try store.artifacts().count
        queueHeld = FileLock.isHeld(path: store.root + "/queue-worker.lock")
        branches = try store.watchedTips().map { Branch(repo: $0.repo, branch: $0.branch, tip: $0.tip, handledAt: $0.updatedAt) }
        queue = try store.queue().filter { ["pending", "running"].contains($0.state) }.map { e in
            let rec = try e.run.flatMap { try store.run($0) }
            let stage = rec?.metadata["stage"]?["name"]?.stringValue
            let last = stage.flatMap { s in rec?.metadata["work_dir"]?.stringValue.flatMap { Self.lastMetrics($0 + "/\(s)/train/metrics.jsonl") } }
            let progress = stage.flatMap { s in rec?.metadata["work_dir"]?.stringValue.flatMap { Self.lastProgress(stageDirectory: $0 + "/\(s)") } }
            return Active(entry: e, run: e.run, stage: stage, step: last?.step, loss: last?.loss, progress: progress, job: Job(run: rec))
        }
        recentRuns = try store.runs(limit: recent).map { Run(run: $0, effectiveStatus: try Orchestrator.effectiveStatus($0).rawValue, job: Job(run: $0)) }
        aliases = try store.aliases()
    }

    /// The last 4 KiB of a file, as lines.
    static func tailLines(_ path: String) -> [Substring] {
        guard let file = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? file.close() }
        let size = (try? file.seekToEnd()) ?? 0
        try? file.seek(toOffset: size > 4096 ? size - 4096 : 0)
        guard let data = try? file.readToEnd() else { return [] }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == "\r" })
    }

    /// The newest "step N/T …" line of the stage's newest attempt log (attempt-K.log).
    static func lastProgress(stageDirectory dir: String) -> String? {
        let attempts = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).compactMap { name -> Int? in
            guard name.hasPrefix("attempt-"), name.hasSuffix(".log") else { return nil }
            return Int(name.dropFirst(8).dropLast(4))
        }
        guard let newest = attempts.max() else { return nil }
        return tailLines(dir + "/attempt-\(newest).log").last { $0.hasPrefix("step ") && $0.contains("/") }.map {
            $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        }
    }

    /// The step and loss of the last line of a training log (read from its end).
    static func lastMetrics(_ path: String) -> (step: Int, loss: Double?)? {
        guard let line = tailLines(path).last,
              let v = JSONValue.parse(String(line)),
              let step = v["step"]?.numberValue else { return nil }
        return (Int(step), v["loss"]?.numberValue)
    }
}
