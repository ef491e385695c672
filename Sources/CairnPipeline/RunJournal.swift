import CairnStore
import Foundation

/// The run's journal, kept as the run's metadata in the store: the pipeline file and inputs it
/// started with, where it works, its process, the stage and training checkpoint it is at, and
/// its result. `cairn resume` continues a run from it. Each change is saved at once.
///
/// Keys: pipeline_file, repository, work_dir, inputs {role: id}, pid, resumed (count),
/// stage {name, execution}, checkpoint {stage, execution, step, path}, job {stage, execution,
/// attempt, id, spec, state, node} while a cluster job runs an attempt, result {path},
/// final_artifact, result_artifact; error when the run could not start.
final class RunJournal {
    let store: ArtifactStore
    let runID: Int64
    private var fields: [String: JSONValue]
    /// The executor reports a job's state from its own thread.
    private let lock = NSLock()

    /// A new run's journal, beside what the run was started with (`carried`: the queue entry, the
    /// sweep and its values), which it keeps.
    init(store: ArtifactStore, runID: Int64, pipelineFile: String, repository: String, workDir: String, inputs: [String: ArtifactID],
         carried: JSONValue = .object([:])) throws {
        self.store = store; self.runID = runID
        if case .object(let c) = carried { fields = c } else { fields = [:] }
        fields.merge(["pipeline_file": .string(Paths.normalise(pipelineFile)), "repository": .string(repository), "work_dir": .string(workDir),
                      "inputs": .object(inputs.mapValues { .string($0.description) }), "pid": .number(Double(getpid()))]) { _, journal in journal }
        try save()
    }

    /// The journal of a stopped run, taken over by this process.
    init(resuming run: RunRecord, store: ArtifactStore) throws {
        guard case .object(let f) = run.metadata, f["pipeline_file"]?.stringValue != nil, f["work_dir"]?.stringValue != nil,
              case .object? = f["inputs"] else {
            throw ConfigError(file: "run \(run.id)", line: nil, "this run has no journal to resume from")
        }
        self.store = store; self.runID = run.id; fields = f
    }

    /// Records that the run could not start, and why (the journal is then only that).
    static func failedToStart(store: ArtifactStore, runID: Int64, error: Error) {
        try? store.setRunMetadata(runID, .object(["error": .string("\(error)")]))
    }

    var pipelineFile: String { fields["pipeline_file"]!.stringValue! }
    var repository: String? { fields["repository"]?.stringValue }
    var workDir: String { fields["work_dir"]!.stringValue! }

    func input(_ role: String) -> ArtifactID? {
        guard case .object(let i)? = fields["inputs"], let s = i[role]?.stringValue else { return nil }
        return ArtifactID(s)
    }

    /// This process runs the run now (once more, when resuming).
    func takenOver() throws {
        fields["pid"] = .number(Double(getpid()))
        fields["resumed"] = .number((fields["resumed"]?.numberValue ?? 0) + 1)
        try save()
    }

    func atStage(_ name: String, execution: Int64) throws {
        fields["stage"] = .object(["name": .string(name), "execution": .number(Double(execution))])
        try save()
    }

    /// The newest complete training checkpoint of the running stage.
    func atCheckpoint(stage: String, execution: Int64, step: Int, path: String) {
        fields["checkpoint"] = .object(["stage": .string(stage), "execution": .number(Double(execution)), "step": .number(Double(step)),
                                        "path": .string(path)])
        try? save()
    }

    /// A cluster job an attempt runs as.
    struct Job {
        let stage: String
        let execution: Int64
        let attempt: Int
        let id: String
        /// The job's spec (StageJob as JSON), to follow it again after a restart.
        let spec: String

        /// The job's spec, when `executor` can still follow it (queued, running, or finished
        /// with its result written).
        func followable(by executor: StageExecutor) -> StageJob? {
            guard let job = try? StageJob.read(spec), executor.canReattach(id, job: job) else { return nil }
            return job
        }
    }

    var job: Job? {
        guard case .object(let j)? = fields["job"], let stage = j["stage"]?.stringValue, let exe = j["execution"]?.numberValue,
              let attempt = j["attempt"]?.numberValue, let id = j["id"]?.stringValue, let spec = j["spec"]?.stringValue else { return nil }
        return Job(stage: stage, execution: Int64(exe), attempt: Int(attempt), id: id, spec: spec)
    }

    /// The attempt was submitted as job `id`: saved before anything else happens, so that a
    /// coordinator killed now reattaches to the job instead of submitting it again.
    func atJob(stage: String, execution: Int64, attempt: Int, id: String, spec: String) {
        lock.lock(); defer { lock.unlock() }
        fields["job"] = .object(["stage": .string(stage), "execution": .number(Double(execution)), "attempt": .number(Double(attempt)),
                                 "id": .string(id), "spec": .string(spec), "state": .string("PENDING"), "node": .string("")])
        try? save()
    }

    func jobState(_ state: String, node: String) {
        lock.lock(); defer { lock.unlock() }
        guard case .object(var j)? = fields["job"] else { return }
        j["state"] = .string(state); j["node"] = .string(node)
        fields["job"] = .object(j)
        try? save()
    }

    func jobEnded() {
        lock.lock(); defer { lock.unlock() }
        guard fields["job"] != nil else { return }
        fields["job"] = nil
        try? save()
    }

    func finished(resultPath: String, finalArtifact: ArtifactID?, resultArtifact: ArtifactID?) throws {
        fields["result"] = .object(["path": .string(resultPath)])
        fields["final_artifact"] = finalArtifact.map { .string($0.description) } ?? .null
        if let r = resultArtifact { fields["result_artifact"] = .string(r.description) }
        try save()
    }

    private func save() throws { try store.setRunMetadata(runID, .object(fields)) }
}
