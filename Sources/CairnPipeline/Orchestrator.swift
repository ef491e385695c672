import CairnStore
import CairnSystem
import CairnTrain
import Foundation

/// Runs a pipeline: stages as child processes (`cairn train …`, `cairn merge`) with retries,
/// backoff and timeouts; each stage's inputs and outputs stored with lineage; a stage whose
/// inputs match an earlier successful execution reused from the cache; a gate after each stage;
/// the run journaled in the store so that `resume` continues it.
public final class Orchestrator {
    public struct Options {
        /// The cairn executable that runs stages and checks.
        public var executable: String
        public var sftDataset: String?
        public var preferenceDataset: String?
        /// Copy stage output to this process's stderr.
        public var echo = true
        /// First retry waits this long, then twice as long each time.
        public var retryBackoffSeconds = 2.0
        public var info: RunInfo?
        /// Asked while stages run: true (SIGTERM) asks the running stage to checkpoint and stop,
        /// and leaves the run interrupted, to be resumed.
        public var stopRequested: () -> Bool = { false }
        /// Whether configs may name command checks (journaled, so a resume keeps the choice).
        public var allowCommands = false
        /// Called once the run has its id (before any stage runs).
        public var onRunStarted: ((Int64) -> Void)?
        public var say: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        /// Set in every stage and check process's environment (a sweep's CAIRN_THREADS share of the cores).
        public var environment: [String: String] = [:]
        /// What to say when a stop request interrupts a stage, when the request is not a person's
        /// (a sweep pausing a variant at a rung); nil: the resume hint.
        public var interruptedNote: () -> String? = { nil }
        /// Where stage and check processes run: this machine, or Slurm jobs on a cluster.
        public var executor: StageExecutor = LocalExecutor()

        public init(executable: String, sftDataset: String? = nil, preferenceDataset: String? = nil) {
            self.executable = executable; self.sftDataset = sftDataset; self.preferenceDataset = preferenceDataset
            if let b = ProcessInfo.processInfo.environment["CAIRN_RETRY_BACKOFF_SECONDS"], let v = Double(b) { retryBackoffSeconds = v }
        }
    }

    let store: ArtifactStore
    let config: PipelineConfig
    var options: Options
    var runID: Int64 = 0
    var workDir = ""
    /// Set once the run has its id and inputs (run) or was taken over (resume).
    var journal: RunJournal!
    /// Made with the journal: the stages' attempts.
    lazy var runner = StageRunner(store: store, runID: runID, pipelineID: config.pipelineID, workDir: workDir, options: options, journal: journal)
    var trainingSeconds: Double { runner.seconds }
    var gateSeconds = 0.0
    var stageResults: [String: [String: JSONValue]] = [:]
    var errors: [String] = []
    var notes: [String] = []
    /// Made with the journal: the run's artifacts as files in its work directory.
    lazy var files = RunFiles(store: store, workDir: workDir, journal: journal)

    public init(store: ArtifactStore, config: PipelineConfig, options: Options) {
        self.store = store; self.config = config; self.options = options
    }

    // MARK: Starting and resuming

    /// Starts a new run of the pipeline.
    public func run() throws -> PipelineResult {
        for k in config.ignoredKeys { say("note: '\(k)' in \(config.file) means nothing on a CPU machine; ignored") }
        var info = options.info ?? RunInfo(pipeline: config.pipelineID)
        info.pipeline = config.pipelineID
        runID = try store.beginRun(info)
        options.onRunStarted?(runID)
        do {
            workDir = config.outputDir + "/run-\(runID)"
            try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
            say("run \(runID) of pipeline \(config.pipelineID): work directory \(workDir)")
            journal = try RunJournal(store: store, runID: runID, pipelineFile: config.file, repository: config.repository, workDir: workDir,
                                     inputs: try storeInputs(), carried: info.metadata)
        } catch {
            // The run could not start: it is failed, with the reason, not left "running".
            RunJournal.failedToStart(store: store, runID: runID, error: error)
            try? store.finishRun(runID, status: .failed)
            throw error
        }
        return try execute(start: Date())
    }

    func say(_ s: String) { options.say(s) }

    // MARK: Inputs

    /// Stores the pipeline config, the stage configs, the datasets and the base model; returns
    /// role → artifact id (the run's inputs, journaled).
    func storeInputs() throws -> [String: ArtifactID] {
        var ids: [String: ArtifactID] = [:]
        ids["pipeline_config"] = try store.add(path: config.file, kind: .config, name: "\(config.pipelineID)/\((config.file as NSString).lastPathComponent)").artifact.id
        for s in config.stages where s.enabled {
            if let c = s.configPath { ids["config:\(s.name.rawValue)"] = try store.add(path: c, kind: .config).artifact.id }
        }
        var datasets = config.datasets
        if let f = options.sftDataset { datasets["sft"] = f }
        if let f = options.preferenceDataset { datasets["preference"] = f }
        for (role, path) in datasets {
            ids["dataset:\(role)"] = try store.add(path: path, kind: .dataset).artifact.id
        }
        for (stage, role) in [(StageConfig.Name.pretrain, "pretrain"), (.sft, "sft"), (.dpo, "preference")] where config.stage(stage) != nil {
            guard ids["dataset:\(role)"] != nil else {
                throw ConfigError(file: config.file, line: config.stage(stage)!.line, "stage '\(stage.rawValue)' needs datasets.\(role)\(role == "sft" ? " (or --sft-dataset)" : role == "preference" ? " (or --preference-dataset)" : "")")
            }
        }
        if config.baseModelIsPath {
            ids["base_model"] = try store.add(path: config.baseModel, kind: .baseModel).artifact.id
        } else {
            do { ids["base_model"] = try store.resolve(config.baseModel) } catch {
                // A Hugging Face hub id (org/name) cannot be downloaded here: it resolves through
                // the alias org--name (the hub cache's spelling), set to a stored model.
                let hubAlias = config.baseModel.replacingOccurrences(of: "/", with: "--")
                if config.baseModel.contains("/"), let id = try? store.resolve(hubAlias) {
                    ids["base_model"] = id
                } else {
                    throw ConfigError(file: config.file, line: nil, "base_model '\(config.baseModel)' is neither a model directory in the repository nor a store reference or alias"
                                      + (config.baseModel.contains("/") ? "; nothing can be downloaded here: store the model and run `cairn alias set \(hubAlias) REF`" : ""))
                }
            }
        }
        return ids
    }

    func input(_ role: String) -> ArtifactID? { journal.input(role) }

    func materialize(_ id: ArtifactID) throws -> String { try files.materialize(id) }

    // MARK: The run

    struct StageOutcome {
        var outputs: [String: ArtifactID]
        var gate: GateReport?
        var cached: Bool
    }

    /// What the stages so far have made: the whole model the next stage starts from (with its
    /// role in lineage) and the run's product (an adapter or a model).
    struct Progress {
        var model: ArtifactID
        var modelRole = "base_model"
        var final: (role: String, id: ArtifactID)?
    }

    /// The pipeline's story: each enabled stage in order, stopping at the first failure,
    /// rejection or stop request; then the product promoted and the result written.
    func execute(start: Date) throws -> PipelineResult {
        var completed: [String] = []
        var status = RunStatus.succeeded
        var progress = Progress(model: input("base_model")!)
        stageLoop: for stage in config.stages where stage.enabled {
            if options.stopRequested() { status = .interrupted; break stageLoop }
            let outcome: StageOutcome
            do {
                outcome = try run(stage, &progress)
            } catch is StageInterrupted {
                say(options.interruptedNote().map { "run \(runID): \($0)" }
                    ?? "stopped on request during \(stage.name.rawValue): the run is interrupted; `cairn resume \(runID)` continues it")
                status = .interrupted
                break stageLoop
            } catch let e as StageFailure {
                errors.append("\(stage.name.rawValue) failed: \(e.message)")
                stageResults[stage.name.rawValue, default: [:]]["success"] = .bool(false)
                status = .failed
                break stageLoop
            }
            if let g = outcome.gate {
                say(g.table)
                if !g.passed {
                    errors += g.results.filter { !$0.passed }.map { "gate after \(stage.name.rawValue): \($0.name) \($0.status.rawValue): \($0.details)" }
                    status = .rejected
                    break stageLoop
                }
            }
            completed.append(stage.name.rawValue)
        }
        let final = status == .succeeded ? progress.final : nil
        let finalPath = try final.map { try materialize($0.id) }
        if let f = final { try promote(f.id) }
        if status == .succeeded && !config.saveIntermediate {
            for st in config.stages { try? FileManager.default.removeItem(atPath: workDir + "/\(st.name.rawValue)/train/checkpoints") }
        }
        let result = PipelineResult(runID: runID, status: status, pipelineID: config.pipelineID, finalModelPath: finalPath,
                                    finalArtifact: final?.id, stagesCompleted: completed, totalTimeSeconds: Date().timeIntervalSince(start),
                                    trainingSeconds: trainingSeconds, gateSeconds: gateSeconds, stageResults: stageResults, errors: errors, notes: notes)
        try writeResult(result)
        try store.finishRun(runID, status: status)
        return result
    }

    /// One stage, with the inputs the stages before it made.
    func run(_ stage: StageConfig, _ p: inout Progress) throws -> StageOutcome {
        switch stage.name {
        case .pretrain:
            let o = try trainingStage(stage, kind: "pretrain", used: [(p.modelRole, p.model), ("data", input("dataset:pretrain")!), ("config", input("config:pretrain")!)])
            p.model = o.outputs["model"]!; p.modelRole = "pretrained_model"; p.final = ("model", p.model)
            return o
        case .sft:
            let o = try trainingStage(stage, kind: "sft", used: [(p.modelRole, p.model), ("data", input("dataset:sft")!), ("config", input("config:sft")!)]
                                      + (input("dataset:eval").map { [("eval", $0)] } ?? []))
            p.final = ("adapter", o.outputs["adapter"]!)
            return o
        case .merge:
            let adapter = stageResults["sft"].flatMap { $0["artifact"]?.stringValue }.flatMap(ArtifactID.init)!
            let o = try mergeStage(stage, model: (p.modelRole, p.model), adapter: adapter)
            p.model = o.outputs["model"]!; p.modelRole = "merged_model"; p.final = ("model", p.model)
            return o
        case .dpo:
            let o = try trainingStage(stage, kind: "dpo", used: [(p.modelRole, p.model), ("data", input("dataset:preference")!), ("config", input("config:dpo")!)]
                                      + (input("dataset:preference_eval").map { [("eval", $0)] } ?? []))
            p.final = ("model", o.outputs["model"]!)
            return o
        case .export:
            // The whole model the stages before made (the base model when none did); the
            // alias is still promoted to that model, the file is an artifact made from it.
            let source = p.final.flatMap { $0.role == "model" ? $0.id : nil } ?? p.model
            return try exportStage(stage, model: (p.final?.role == "model" ? "model" : p.modelRole, source))
        }
    }

    /// Moves promote_to to the run's product; a refusal (a rollback mark on it) is a note, not a
    /// failure. Anything else (an I/O error, a damaged index) fails the run: it promised the move.
    func promote(_ id: ArtifactID) throws {
        guard let alias = config.promoteTo else { return }
        do {
            try store.setAlias(alias, to: id, reason: "run \(runID) of \(config.pipelineID): every gate passed", actor: "cairn run", run: runID, automated: true)
            say("promoted \(alias) → \(id)")
            notes.append("promoted \(alias)")
        } catch let e as StoreError where e.kind == .refused {
            notes.append("not promoted: \(e)")
            say("note: not promoted: \(e)")
        }
    }

    func writeResult(_ r: PipelineResult) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try enc.encode(r.json)
        try AtomicFile.write(data, to: workDir + "/pipeline_result.json")
        try AtomicFile.write(data, to: config.outputDir + "/pipeline_result.json")
        let stored = try? store.add(bytes: Array(data), fileName: "pipeline_result.json", kind: .report, name: "\(config.pipelineID)/run-\(runID)/pipeline_result.json")
        try journal.finished(resultPath: workDir + "/pipeline_result.json", finalArtifact: r.finalArtifact, resultArtifact: stored?.artifact.id)
    }
}
