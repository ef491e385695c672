import CairnStore
import CairnTrain
import Foundation

/// What a pipeline run ended with: the reference's PipelineResult, plus the run and the
/// final artifact in the store.
public struct PipelineResult: Sendable {
    public var runID: Int64
    public var status: RunStatus
    public var pipelineID: String
    public var finalModelPath: String?
    public var finalArtifact: ArtifactID?
    public var stagesCompleted: [String]
    public var totalTimeSeconds: Double
    /// Seconds spent waiting for stage processes (training, merge) and for gate checks; the
    /// rest of totalTimeSeconds is orchestration (configs, store, lineage, cache, journal).
    public var trainingSeconds: Double
    public var gateSeconds: Double
    public var orchestrationSeconds: Double { max(0, totalTimeSeconds - trainingSeconds - gateSeconds) }
    public var stageResults: [String: [String: JSONValue]]
    public var errors: [String]
    public var notes: [String]
    public var success: Bool { status == .succeeded }

    /// pipeline_result.json with the reference's keys (and the run id and final artifact).
    public var json: JSONValue {
        .object([
            "success": .bool(success), "pipeline_id": .string(pipelineID),
            "final_model_path": finalModelPath.map { .string($0) } ?? .null,
            "stages_completed": .array(stagesCompleted.map { .string($0) }),
            "total_time_seconds": .number(totalTimeSeconds),
            "stage_results": .object(stageResults.mapValues { .object($0) }),
            "errors": .array(errors.map { .string($0) }),
            "timestamp": .string(ISO8601DateFormatter().string(from: Date())),
            "run_id": .number(Double(runID)), "status": .string(status.rawValue),
            "final_artifact": finalArtifact.map { .string($0.description) } ?? .null,
            "timings": .object(["total_seconds": .number(totalTimeSeconds), "stage_process_seconds": .number(trainingSeconds),
                                "gate_seconds": .number(gateSeconds), "orchestration_seconds": .number(orchestrationSeconds)]),
        ])
    }

    /// The reference's summary block.
    public var summary: String {
        var s = String(repeating: "=", count: 50) + "\nPIPELINE RESULT\n" + String(repeating: "=", count: 50) + "\n"
        s += "Run: \(runID) (\(status.rawValue))\n"
        s += "Success: \(success ? "True" : "False")\n"
        s += "Stages completed: \(stagesCompleted.joined(separator: ", "))\n"
        s += String(format: "Total time: %.1f minutes (%.2f s: stage processes %.2f s, gates %.2f s, orchestration %.2f s)\n",
                    totalTimeSeconds / 60, totalTimeSeconds, trainingSeconds, gateSeconds, orchestrationSeconds)
        if let p = finalModelPath { s += "Final model: \(p)\n" }
        if let a = finalArtifact { s += "Final artifact: \(a)\n" }
        if !errors.isEmpty { s += "\nErrors:\n" + errors.map { "  - \($0)\n" }.joined() }
        return s
    }
}

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

        public init(executable: String, sftDataset: String? = nil, preferenceDataset: String? = nil) {
            self.executable = executable; self.sftDataset = sftDataset; self.preferenceDataset = preferenceDataset
            if let b = ProcessInfo.processInfo.environment["CAIRN_RETRY_BACKOFF_SECONDS"], let v = Double(b) { retryBackoffSeconds = v }
        }
    }

    /// Bumped whenever a change to the training core can change what a stage produces: part of
    /// every stage's cache key.
    public static let trainingCodeVersion = "cairn-train-1"

    let store: ArtifactStore
    let config: PipelineConfig
    var options: Options
    var runID: Int64 = 0
    var workDir = ""
    var journal: [String: JSONValue] = [:]
    var trainingSeconds = 0.0
    var gateSeconds = 0.0
    var stageResults: [String: [String: JSONValue]] = [:]
    var errors: [String] = []
    var notes: [String] = []
    var materialized: [ArtifactID: String] = [:]

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
            let inputs = try storeInputs()
            journal = ["pipeline_file": .string(Paths.normalise(config.file)), "repository": .string(config.repository), "work_dir": .string(workDir),
                       "inputs": .object(inputs.mapValues { .string($0.description) }), "pid": .number(Double(getpid()))]
            try store.setRunMetadata(runID, .object(journal))
        } catch {
            // The run could not start: it is failed, with the reason, not left "running".
            try? store.setRunMetadata(runID, .object(["error": .string("\(error)")]))
            try? store.finishRun(runID, status: .failed)
            throw error
        }
        return try execute(start: Date())
    }

    /// Continues run `id` from its last successful stage (and, inside a training stage, from its
    /// last checkpoint), with the inputs it started with.
    public static func resume(run id: Int64, store: ArtifactStore, options: Options) throws -> PipelineResult {
        guard let rec = try store.run(id) else { throw ConfigError(file: "run \(id)", line: nil, "no such run") }
        let status = try effectiveStatus(rec)
        guard [.interrupted, .failed].contains(status) else {
            throw ConfigError(file: "run \(id)", line: nil, status == .running ? "run \(id) is still running (process \(rec.metadata["pid"]?.numberValue.map { Int($0) } ?? 0))"
                                                                               : "run \(id) has finished (\(status.rawValue)); start a new run instead")
        }
        guard case .object(var journal) = rec.metadata, let file = journal["pipeline_file"]?.stringValue,
              let work = journal["work_dir"]?.stringValue, case .object(let inputs)? = journal["inputs"] else {
            throw ConfigError(file: "run \(id)", line: nil, "this run has no journal to resume from")
        }
        let config: PipelineConfig
        if let repo = journal["repository"]?.stringValue {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ConfigError(file: file, line: nil, "cannot read the file") }
            config = try PipelineConfig(yaml: try YAMLNode.parse(text, file: file), file: file, repository: repo, allowCommands: options.allowCommands)
        } else {
            config = try PipelineConfig.load(file, allowCommands: options.allowCommands)
        }
        if let was = inputs["pipeline_config"]?.stringValue, try store.identify(path: file).description != was {
            throw ConfigError(file: file, line: nil, "changed since run \(id) started; run the pipeline again instead of resuming")
        }
        let o = Orchestrator(store: store, config: config, options: options)
        o.runID = id
        o.workDir = work
        journal["pid"] = .number(Double(getpid()))
        journal["resumed"] = .number((journal["resumed"]?.numberValue ?? 0) + 1)
        o.journal = journal
        try store.setRunMetadata(id, .object(journal))
        try store.finishRun(id, status: .running)
        // Executions the dead process left running are marked interrupted.
        for s in try store.stages(run: id) where s.status == .running {
            try store.finishStage(execution: s.id, status: .interrupted, metrics: s.metrics, error: "interrupted; resumed by a later process")
        }
        options.onRunStarted?(id)
        o.say("resuming run \(id) of pipeline \(config.pipelineID) (work directory \(work))")
        return try o.execute(start: Date(timeIntervalSince1970: rec.startedAt))
    }

    /// A run marked running whose process is gone reads as interrupted.
    public static func effectiveStatus(_ run: RunRecord) throws -> RunStatus {
        guard run.status == .running else { return run.status }
        guard let pid = run.metadata["pid"]?.numberValue.map({ pid_t($0) }) else { return .interrupted }
        let alive = kill(pid, 0) == 0 || errno == EPERM
        let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
        return alive && cmd.contains("cairn") ? .running : .interrupted
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

    func input(_ role: String) -> ArtifactID? {
        guard case .object(let i)? = journal["inputs"], let s = i[role]?.stringValue else { return nil }
        return ArtifactID(s)
    }

    /// A stored artifact as files in the work directory (checked out once per run): the file
    /// itself for a one-file artifact, else its directory.
    func materialize(_ id: ArtifactID) throws -> String {
        if let p = materialized[id] { return p }
        let dir = workDir + "/inputs/" + String(id.description.dropFirst(7).prefix(16))
        let manifest = try store.manifest(id)
        if !FileManager.default.fileExists(atPath: dir + "/.complete") {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try store.checkout(id, into: dir)
            FileManager.default.createFile(atPath: dir + "/.complete", contents: nil)
        }
        // A one-file artifact stored from a file (a dataset, a config) is that file; an artifact
        // stored from a directory keeps its directory even with one file in it.
        let rec = try store.artifact(id)
        let single = manifest.entries.count == 1 && !manifest.entries[0].path.contains("/") && rec?.name.hasSuffix(manifest.entries[0].path) == true
        let path = single ? dir + "/" + manifest.entries[0].path : dir
        materialized[id] = path
        return path
    }

    // MARK: The run

    struct StageOutcome {
        var outputs: [String: ArtifactID]
        var gate: GateReport?
        var cached: Bool
    }

    func execute(start: Date) throws -> PipelineResult {
        var completed: [String] = []
        var status = RunStatus.succeeded
        var model = input("base_model")!
        var modelRole = "base_model"
        var final: (role: String, id: ArtifactID)?
        stageLoop: for stage in config.stages where stage.enabled {
            if options.stopRequested() { status = .interrupted; break stageLoop }
            let outcome: StageOutcome
            do {
                switch stage.name {
                case .pretrain:
                    outcome = try trainingStage(stage, kind: "pretrain", used: [(modelRole, model), ("data", input("dataset:pretrain")!), ("config", input("config:pretrain")!)]
                                                )
                    model = outcome.outputs["model"]!; modelRole = "pretrained_model"
                    final = ("model", model)
                case .sft:
                    outcome = try trainingStage(stage, kind: "sft", used: [(modelRole, model), ("data", input("dataset:sft")!), ("config", input("config:sft")!)]
                                                + (input("dataset:eval").map { [("eval", $0)] } ?? []))
                    final = ("adapter", outcome.outputs["adapter"]!)
                case .merge:
                    let adapter = stageResults["sft"].flatMap { $0["artifact"]?.stringValue }.flatMap(ArtifactID.init)!
                    outcome = try mergeStage(stage, model: (modelRole, model), adapter: adapter)
                    model = outcome.outputs["model"]!; modelRole = "merged_model"
                    final = ("model", model)
                case .dpo:
                    outcome = try trainingStage(stage, kind: "dpo", used: [(modelRole, model), ("data", input("dataset:preference")!), ("config", input("config:dpo")!)]
                                                + (input("dataset:preference_eval").map { [("eval", $0)] } ?? []))
                    final = ("model", outcome.outputs["model"]!)
                case .export:
                    // The whole model the stages before made (the base model when none did); the
                    // alias is still promoted to that model, the file is an artifact made from it.
                    let source = final.flatMap { $0.role == "model" ? $0.id : nil } ?? model
                    outcome = try exportStage(stage, model: (final?.role == "model" ? "model" : modelRole, source))
                }
            } catch is StageInterrupted {
                say("stopped on request during \(stage.name.rawValue): the run is interrupted; `cairn resume \(runID)` continues it")
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

        var finalPath: String?
        var finalID: ArtifactID?
        if status == .succeeded, let f = final {
            finalID = f.id
            finalPath = try materialize(f.id)
            if let alias = config.promoteTo {
                do {
                    try store.setAlias(alias, to: f.id, reason: "run \(runID) of \(config.pipelineID): every gate passed", actor: "cairn run", run: runID, automated: true)
                    say("promoted \(alias) → \(f.id)")
                    notes.append("promoted \(alias)")
                } catch let e as StoreError where e.exitCode == 1 || "\(e)".contains("rolled back") {
                    notes.append("not promoted: \(e)")
                    say("note: not promoted: \(e)")
                }
            }
        }
        if status == .succeeded && !config.saveIntermediate {
            for st in config.stages { try? FileManager.default.removeItem(atPath: workDir + "/\(st.name.rawValue)/train/checkpoints") }
        }
        let result = PipelineResult(runID: runID, status: status, pipelineID: config.pipelineID, finalModelPath: finalPath, finalArtifact: finalID,
                                    stagesCompleted: completed, totalTimeSeconds: Date().timeIntervalSince(start), trainingSeconds: trainingSeconds, gateSeconds: gateSeconds,
                                    stageResults: stageResults, errors: errors, notes: notes)
        try writeResult(result)
        try store.finishRun(runID, status: status)
        return result
    }

    func writeResult(_ r: PipelineResult) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try enc.encode(r.json)
        try data.write(to: URL(fileURLWithPath: workDir + "/pipeline_result.json"), options: .atomic)
        try data.write(to: URL(fileURLWithPath: config.outputDir + "/pipeline_result.json"), options: .atomic)
        journal["result"] = .object(["path": .string(workDir + "/pipeline_result.json")])
        journal["final_artifact"] = r.finalArtifact.map { .string($0.description) } ?? .null
        if let id = try? store.add(path: workDir + "/pipeline_result.json", kind: .report, name: "\(config.pipelineID)/run-\(runID)/pipeline_result.json").artifact.id {
            journal["result_artifact"] = .string(id.description)
        }
        try store.setRunMetadata(runID, .object(journal))
    }

    // MARK: Stages

    struct StageFailure: Error { let message: String }
    struct StageInterrupted: Error {}

    /// The cache key of a stage: its name, every input artifact with its role, the parts of the
    /// pipeline that change its outputs, and the training code's version.
    func cacheKey(_ stage: String, _ used: [(String, ArtifactID)]) -> String {
        var text = "cairn-stage 1\nstage \(stage)\ncode \(Self.trainingCodeVersion)\n"
        for (role, id) in used.sorted(by: { $0.0 < $1.0 }) { text += "used \(role) \(id)\n" }
        return SHA256Hex.of(text)
    }

    /// The gate's own key: the stage's key plus the validation settings.
    func gateKey(_ stageKey: String) -> String {
        let v = config.validation
        var text = "gate 1\n\(stageKey)\nmax_loss \(v.maxLoss)\nmin_accuracy \(v.minAccuracy)\ncheck_nan \(v.checkNaN)\ntol \(v.mergeTolerance)\n"
        for c in v.customChecks { text += "check \(c.name) \(c.blocking) \(c.timeoutSeconds) \(c.threshold ?? -1) \(c.maxNewTokens ?? -1) \(c.command ?? "")\n" }
        for role in ["eval_prompts", "red_team", "schema", "blocklist", "preference_eval"] { text += "\(role) \(input("dataset:" + role)?.description ?? "-")\n" }
        return SHA256Hex.of(text)
    }

    /// Looks the stage up in the cache; on a hit records a `cached` execution in this run with
    /// the same inputs and outputs, and reuses the gate report when the gate is the same.
    func fromCache(_ stage: StageConfig, key: String, used: [(String, ArtifactID)]) throws -> StageOutcome? {
        guard let hit = try store.cachedStage(key: key) else { return nil }
        let exe = try store.beginStage(run: runID, stage: stage.name.rawValue, attempt: 1, cacheKey: key)
        for (role, id) in used { try store.record(execution: exe, .used, id, role: role) }
        var outputs: [String: ArtifactID] = [:]
        for o in hit.outputs { try store.record(execution: exe, .generated, o.artifact, role: o.role); outputs[o.role] = o.artifact }
        var gate: GateReport?
        var report = hit.execution.gateReport
        if let r = report, r["key"]?.stringValue == gateKey(key), case .array(let checks)? = r["checks"] {
            gate = GateReport(stage: stage.name.rawValue, results: checks.map { c in
                CheckResult(name: c["name"]?.stringValue ?? "?", status: CheckResult.Status(rawValue: c["status"]?.stringValue ?? "") ?? .error,
                            blocking: c["blocking"] == .bool(true), details: (c["details"]?.stringValue ?? "") + " (cached)", value: c["value"]?.numberValue, seconds: 0)
            }, seconds: 0)
        } else {
            gate = try runGate(stage, outputs: outputs, used: used)
            report = gateJSON(gate!, key: gateKey(key))
        }
        try store.finishStage(execution: exe, status: .cached, metrics: hit.execution.metrics, gateReport: report)
        recordResult(stage, metrics: hit.execution.metrics, cached: true, seconds: 0, artifact: outputs["adapter"] ?? outputs["model"])
        say("▶ \(stage.name.rawValue): cached (execution \(hit.execution.id) of run \(hit.execution.run) had the same inputs)")
        return StageOutcome(outputs: outputs, gate: gate, cached: true)
    }

    /// The gate report with the gate's key, so a cached stage can reuse it when the gate is the same.
    func gateJSON(_ g: GateReport, key: String) -> JSONValue {
        guard case .object(var m) = g.json else { return g.json }
        m["key"] = .string(key)
        return .object(m)
    }

    func recordResult(_ stage: StageConfig, metrics: JSONValue, cached: Bool, seconds: Double, artifact: ArtifactID?) {
        var r: [String: JSONValue] = ["success": .bool(true), "cached": .bool(cached), "time_seconds": .number(seconds)]
        if let l = metrics["final_loss"]?.numberValue { r["loss"] = .number(l) }
        if let a = artifact { r["artifact"] = .string(a.description) }
        if case .object(let m) = metrics { for (k, v) in m where ["eval_loss", "eval_accuracy", "size_gb", "total_steps"].contains(k) { r[k] = v } }
        stageResults[stage.name.rawValue] = r
    }

    /// Runs `arguments` as the stage's process (attempts, backoff, deadline); returns when one
    /// attempt succeeded, throws StageFailure when every attempt failed.
    func attempts(_ stage: StageConfig, key: String, used: [(String, ArtifactID)], processes: @escaping (Int) throws -> [[String]],
                  collect: (Int64) throws -> ([String: ArtifactID], JSONValue)) throws -> (outputs: [String: ArtifactID], execution: Int64, metrics: JSONValue, seconds: Double) {
        let dir = workDir + "/" + stage.name.rawValue
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let earlier = try store.stages(run: runID).filter { $0.stage == stage.name.rawValue }.map(\.attempt).max() ?? 0
        let total = stage.retryCount + 1
        var lastError = ""
        for attempt in 1...total {
            let n = earlier + attempt
            let exe = try store.beginStage(run: runID, stage: stage.name.rawValue, attempt: n, cacheKey: key)
            for (role, id) in used { try store.record(execution: exe, .used, id, role: role) }
            journal["stage"] = .object(["name": .string(stage.name.rawValue), "execution": .number(Double(exe))])
            try store.setRunMetadata(runID, .object(journal))
            let log = dir + "/attempt-\(n).log"
            say("▶ \(stage.name.rawValue): attempt \(attempt) of \(total) (timeout \(String(format: "%g", stage.timeoutMinutes)) min, log \(log))")
            let started = Date()
            let deadline = started.addingTimeInterval(stage.timeoutMinutes * 60)
            var outcome: Subprocess.Outcome?
            var journaledStep = -1
            let checkpoints = dir + "/train/checkpoints"
            // The journal follows the stage's training checkpoints (the newest complete one).
            let tick = { [self] in
                let steps = ((try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? [])
                    .filter { $0.hasPrefix("checkpoint-") && FileManager.default.fileExists(atPath: checkpoints + "/" + $0 + "/trainer_state.json") }
                    .compactMap { Int($0.dropFirst("checkpoint-".count)) }
                guard let newest = steps.max(), newest != journaledStep else { return }
                journaledStep = newest
                journal["checkpoint"] = .object(["stage": .string(stage.name.rawValue), "execution": .number(Double(exe)), "step": .number(Double(newest)),
                                                 "path": .string(checkpoints + "/checkpoint-\(newest)")])
                try? store.setRunMetadata(runID, .object(journal))
            }
            for args in try processes(n) {
                let p = try Subprocess(args, environment: childEnvironment(), logPath: log, echo: options.echo)
                // Asked to stop, the stage gets SIGTERM: it finishes its step, writes a checkpoint, exits.
                let o = p.wait(deadline: deadline, tick: tick, stopRequested: options.stopRequested)
                outcome = o
                if !o.succeeded || options.stopRequested() { break }
            }
            if options.stopRequested() {
                tick()
                try store.finishStage(execution: exe, status: .interrupted, error: "stopped on request (\(outcome?.description ?? "not started"))")
                throw StageInterrupted()
            }
            let seconds = Date().timeIntervalSince(started)
            trainingSeconds += seconds
            if let logID = try? store.add(path: log, kind: .log, name: "\(config.pipelineID)/run-\(runID)/\(stage.name.rawValue)-attempt-\(n).log").artifact.id {
                try? store.record(execution: exe, .generated, logID, role: "log")
            }
            tick()
            if let o = outcome, o.succeeded {
                let (outputs, metrics) = try collect(exe)
                return (outputs, exe, metrics, seconds)
            }
            let tail = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(3).joined(separator: " | ")
            lastError = "\(outcome?.description ?? "did not start")\(tail.isEmpty ? "" : ": " + tail)"
            try store.finishStage(execution: exe, status: .failed, error: lastError)
            say("✗ \(stage.name.rawValue) attempt \(attempt) failed: \(lastError)")
            if outcome?.exitCode == 2 {
                lastError += " (bad input: not retried, it would fail the same way)"
                break
            }
            if attempt < total {
                let wait = options.retryBackoffSeconds * pow(2, Double(attempt - 1))
                say("  retrying in \(String(format: "%g", wait)) s")
                Thread.sleep(forTimeInterval: wait)
            }
        }
        throw StageFailure(message: lastError)
    }

    func childEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["CAIRN_DIE_WITH_PARENT"] = String(getpid())
        return env
    }

    /// pretrain, sft or dpo: `cairn train KIND` in WORK/STAGE/train (resuming from its checkpoints),
    /// then the outputs stored: adapter or model, metrics, and for DPO the aligned (merged) model.
    func trainingStage(_ stage: StageConfig, kind: String, used: [(String, ArtifactID)]) throws -> StageOutcome {
        let key = cacheKey(stage.name.rawValue, used)
        if let hit = try fromCache(stage, key: key, used: used) { return hit }
        let modelID = used[0].1, dataID = used[1].1, configID = used[2].1
        let evalID = used.first { $0.0 == "eval" }?.1
        let dir = workDir + "/" + stage.name.rawValue
        let train = dir + "/train"
        let r = try attempts(stage, key: key, used: used, processes: { _ in
            let modelPath = try self.materialize(modelID)
            var a = [self.options.executable, "train", kind, "--model", modelPath, "--data", try self.materialize(dataID),
                     "--config", try self.materialize(configID), "--out", train, "--save-steps", String(self.config.checkpointEveryNSteps), "--resume",
                     // The adapter names its base by artifact id, not by this run's work path, so the
                     // same training gives the same adapter wherever it ran.
                     "--base-name", modelID.description]
            if let e = evalID { a += ["--eval", try self.materialize(e)] }
            var list = [a]
            if kind == "dpo" {
                // A merge killed half-way leaves files (and hidden temp files) behind: start clean.
                try? FileManager.default.removeItem(atPath: dir + "/aligned")
                list.append([self.options.executable, "merge", "--model", modelPath, "--adapter", train, "--out", dir + "/aligned"])
            }
            return list
        }, collect: { exe in
            var outputs: [String: ArtifactID] = [:]
            let name = "\(self.config.pipelineID)/run-\(self.runID)/\(stage.name.rawValue)"
            let files = try FileManager.default.contentsOfDirectory(atPath: train)
            let metricsDir = dir + "/metrics"
            try? FileManager.default.removeItem(atPath: metricsDir)
            try FileManager.default.createDirectory(atPath: metricsDir, withIntermediateDirectories: true)
            let productDir = dir + (kind == "pretrain" ? "/model" : "/adapter")
            try? FileManager.default.removeItem(atPath: productDir)
            try FileManager.default.createDirectory(atPath: productDir, withIntermediateDirectories: true)
            // Hidden files are temp files of writes a killed attempt never finished.
            for f in files where f != "checkpoints" && !f.hasPrefix(".") {
                let target = (f.hasPrefix("metrics") ? metricsDir : productDir) + "/" + f
                try FileManager.default.copyItem(atPath: train + "/" + f, toPath: target)
            }
            // Each output stored, and remembered as the files it already is here (no checkout later).
            func add(_ path: String, _ kind: ArtifactKind, _ suffix: String, role: String) throws {
                let id = try self.store.addGenerated(path: path, kind: kind, name: name + suffix, execution: exe, role: role).artifact.id
                outputs[role] = id
                self.materialized[id] = path
            }
            if kind == "pretrain" { try add(productDir, .baseModel, "/model", role: "model") } else { try add(productDir, .adapter, "/adapter", role: "adapter") }
            if kind == "dpo" { try add(dir + "/aligned", .alignedModel, "/aligned", role: "model") }
            try add(metricsDir, .metrics, "/metrics", role: "metrics")
            let summary = GateChecks.readSummary(metricsDir) ?? [:]
            return (outputs, .object(summary.mapValues { $0.isFinite ? .number($0) : .string("\($0)") }))
        })
        let gate = try runGate(stage, outputs: r.outputs, used: used)
        try finishWithGate(stage, execution: r.execution, key: key, metrics: r.metrics, gate: gate)
        recordResult(stage, metrics: r.metrics, cached: false, seconds: r.seconds, artifact: r.outputs["adapter"] ?? r.outputs["model"])
        return StageOutcome(outputs: r.outputs, gate: gate, cached: false)
    }

    func mergeStage(_ stage: StageConfig, model: (String, ArtifactID), adapter: ArtifactID) throws -> StageOutcome {
        let used = [model, ("adapter", adapter)]
        let key = cacheKey("merge", used)
        if let hit = try fromCache(stage, key: key, used: used) { return hit }
        let out = workDir + "/merge/model"
        let r = try attempts(stage, key: key, used: used, processes: { _ in
            try? FileManager.default.removeItem(atPath: out)
            return [[self.options.executable, "merge", "--model", try self.materialize(model.1), "--adapter", try self.materialize(adapter), "--out", out]]
        }, collect: { exe in
            let id = try self.store.addGenerated(path: out, kind: .mergedModel, name: "\(self.config.pipelineID)/run-\(self.runID)/merged", execution: exe, role: "model").artifact.id
            let size = Double(try self.store.artifact(id)?.size ?? 0)
            return (["model": id], .object(["size_gb": .number(size / 1_073_741_824), "size_bytes": .number(size)]))
        })
        materialized[r.outputs["model"]!] = out
        let gate = try runGate(stage, outputs: r.outputs, used: used)
        try finishWithGate(stage, execution: r.execution, key: key, metrics: r.metrics, gate: gate)
        recordResult(stage, metrics: r.metrics, cached: false, seconds: r.seconds, artifact: r.outputs["model"])
        return StageOutcome(outputs: r.outputs, gate: gate, cached: false)
    }

    /// Stores the gate report (JSON artifact + the execution's gate_report) and ends the execution.
    func finishWithGate(_ stage: StageConfig, execution: Int64, key: String, metrics: JSONValue, gate: GateReport) throws {
        let report = gateJSON(gate, key: gateKey(key))
        let path = workDir + "/\(stage.name.rawValue)/gate.json"
        try Data(report.description.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        _ = try store.addGenerated(path: path, kind: .report, name: "\(config.pipelineID)/run-\(runID)/\(stage.name.rawValue)-gate.json", execution: execution, role: "gate_report")
        try store.finishStage(execution: execution, status: .succeeded, metrics: metrics, gateReport: report)
    }

    // MARK: Gates

    /// Prompts for output_format_valid: datasets.eval_prompts, else the prompts of the held-out
    /// SFT pairs (datasets.eval), else of the held-out or training preference pairs.
    func evalPrompts() throws -> String? {
        if let p = try input("dataset:eval_prompts").map({ try materialize($0) }) { return p }
        for role in ["eval", "preference_eval", "preference", "sft"] {
            if let d = try input("dataset:" + role).map({ try materialize($0) }) {
                let prompts = try GateChecks.prompts(d).prefix(32)
                return builtinFile("prompts-from-\(role).jsonl", prompts.map(\.jsonLine))
            }
        }
        return nil
    }

    /// Writes lines into the run's work directory and returns the path.
    func builtinFile(_ name: String, _ lines: [String]) -> String {
        let p = workDir + "/inputs/" + name
        try? FileManager.default.createDirectory(atPath: workDir + "/inputs", withIntermediateDirectories: true)
        try? (lines.joined(separator: "\n") + "\n").write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func runGate(_ stage: StageConfig, outputs: [String: ArtifactID], used: [(String, ArtifactID)]) throws -> GateReport {
        let v = config.validation
        let dir = workDir + "/" + stage.name.rawValue + "/checks"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var tasks: [GateTask] = []
        func check(_ name: String, blocking: Bool, timeout: Double = 300, _ args: [String]) {
            tasks.append(GateTask(name: name, blocking: blocking, timeoutSeconds: timeout,
                                  work: .process(arguments: [options.executable, "check", name] + args, result: dir + "/\(name).json", log: dir + "/\(name).log")))
        }
        func custom(_ name: String) -> CheckConfig? { v.customChecks.first { $0.name == name } }
        let dataset = { (role: String) -> String? in try self.input("dataset:" + role).map { try self.materialize($0) } }
        switch stage.name {
        case .pretrain, .sft:
            let metricsDir = try materialize(outputs["metrics"]!)
            let summary = GateChecks.readSummary(metricsDir)
            if stage.name == .sft {
                let adapterDir = try materialize(outputs["adapter"]!)
                tasks.append(GateTask(name: "adapter_files_exist", blocking: false, timeoutSeconds: 10, work: .inline { [GateChecks.adapterFilesExist(adapterDir)] }))
            } else {
                let modelDir = try materialize(outputs["model"]!)
                tasks.append(GateTask(name: "model_files_exist", blocking: false, timeoutSeconds: 10, work: .inline { [GateChecks.modelFilesExist(modelDir)] }))
            }
            tasks.append(GateTask(name: "loss_acceptable", blocking: true, timeoutSeconds: 10, work: .inline { [GateChecks.lossAcceptable(summary, maxLoss: v.maxLoss)] }))
            if v.checkNaN { tasks.append(GateTask(name: "no_nan_values", blocking: true, timeoutSeconds: 10, work: .inline { [GateChecks.noNaNValues(metricsDir)] })) }
            tasks.append(GateTask(name: "heldout_loss", blocking: true, timeoutSeconds: 10, work: .inline { [GateChecks.heldoutLoss(summary, maxLoss: v.maxLoss)] }))
            if stage.name == .sft, let c = custom("output_format_valid"), let prompts = try evalPrompts() {
                var a = ["--model", try materialize(used[0].1), "--adapter", try materialize(outputs["adapter"]!), "--data", prompts,
                         "--threshold", String(c.threshold ?? 0.9)]
                if let s = try dataset("schema") { a += ["--schema", s] }
                if let m = c.maxNewTokens { a += ["--max-new-tokens", String(m)] }
                check("output_format_valid", blocking: c.blocking, timeout: c.timeoutSeconds, a)
            }
        case .merge:
            let base = try materialize(used[0].1), adapter = try materialize(used[1].1), merged = try materialize(outputs["model"]!)
            var a = ["--model", base, "--adapter", adapter, "--merged", merged, "--tolerance", String(v.mergeTolerance)]
            if let p = try dataset("eval_prompts") { a += ["--data", p] }
            check("merge_logits_match", blocking: true, a)
            check("size_as_expected", blocking: false, ["--model", base, "--merged", merged])
        case .export:
            var a = ["--model", try materialize(used[0].1), "--export", try materialize(outputs["export"]!)]
            if let p = try dataset("eval_prompts") { a += ["--data", p] }
            check("export_matches_model", blocking: true, a)
        case .dpo:
            let base = try materialize(used[0].1), adapter = try materialize(outputs["adapter"]!), aligned = try materialize(outputs["model"]!)
            // Held-out pairs: datasets.preference_eval, else what the DPO stage held out
            // (eval_split) and measured, else the training pairs, said so in the details.
            let tc = try TrainingConfig.load(yamlFile: try materialize(input("config:dpo")!))
            let summary = GateChecks.readSummary(try materialize(outputs["metrics"]!))
            if let pe = try dataset("preference_eval") {
                check("preference_accuracy", blocking: true, ["--model", base, "--adapter", adapter, "--data", pe, "--beta", String(tc.beta),
                                                              "--min-accuracy", String(v.minAccuracy), "--max-seq-length", String(tc.maxSeqLength)])
            } else if let acc = summary?["eval_accuracy"], let margin = summary?["eval_margin"] {
                tasks.append(GateTask(name: "preference_accuracy", blocking: true, timeoutSeconds: 10, work: .inline {
                    [CheckResult(name: "preference_accuracy", status: acc >= v.minAccuracy ? .passed : .failed,
                                 details: String(format: "accuracy %.3f on the pairs the DPO stage held out (eval_split), minimum %g", acc, v.minAccuracy), value: acc),
                     CheckResult(name: "reward_margin", status: margin > 0 ? .passed : .failed, details: String(format: "mean reward margin %.4f on the held-out split (must be > 0)", margin), value: margin)]
                }))
            } else {
                check("preference_accuracy", blocking: true, ["--model", base, "--adapter", adapter, "--data", try dataset("preference")!, "--beta", String(tc.beta),
                                                              "--min-accuracy", String(v.minAccuracy), "--max-seq-length", String(tc.maxSeqLength)])
                notes.append("no held-out preference pairs (datasets.preference_eval or eval_split): preference_accuracy measured on the training pairs")
            }
            if let c = custom("output_format_valid") {
                if let prompts = try evalPrompts() {
                    var a = ["--model", aligned, "--data", prompts, "--threshold", String(c.threshold ?? 0.9)]
                    if let s = try dataset("schema") { a += ["--schema", s] }
                    if let m = c.maxNewTokens { a += ["--max-new-tokens", String(m)] }
                    check("output_format_valid", blocking: c.blocking, timeout: c.timeoutSeconds, a)
                } else {
                    tasks.append(GateTask(name: "output_format_valid", blocking: true, timeoutSeconds: 10, work: .inline {
                        [CheckResult(name: "output_format_valid", status: .error, details: "needs datasets.eval_prompts")]
                    }))
                }
            }
            if let c = custom("no_harmful_content") {
                // Without datasets.red_team / blocklist, Cairn's built-in ones (GateChecks.builtinRedTeam).
                var a = ["--model", aligned, "--data", try dataset("red_team") ?? builtinFile("red_team.jsonl", GateChecks.builtinRedTeam.map { "{\"prompt\": \(jsonQuoted($0))}" })]
                a += ["--blocklist", try dataset("blocklist") ?? builtinFile("blocklist.txt", GateChecks.builtinBlocklist)]
                if let m = c.maxNewTokens { a += ["--max-new-tokens", String(m)] }
                check("no_harmful_content", blocking: c.blocking, timeout: c.timeoutSeconds, a)
            }
        }
        // Command checks (allowed by --allow-commands when the config was read) run after the
        // last stage, with the model it made.
        if stage.name == config.stages.last(where: \.enabled)?.name {
            let product = outputs["model"] ?? outputs["adapter"]
            for c in v.customChecks where c.command != nil {
                let env = ["CAIRN_MODEL": try product.map { try materialize($0) } ?? "", "CAIRN_RUN": String(runID), "CAIRN_STAGE": stage.name.rawValue,
                           "CAIRN_STORE": store.root]
                tasks.append(GateTask(name: c.name, blocking: c.blocking, timeoutSeconds: c.timeoutSeconds,
                                      work: .command(c.command!, environment: env, log: dir + "/\(c.name).log")))
            }
        }
        let report = Gate.run(stage: stage.name.rawValue, tasks: tasks)
        gateSeconds += report.seconds
        return report
    }
}

func jsonQuoted(_ s: String) -> String {
    String(decoding: (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8), as: UTF8.self)
}
