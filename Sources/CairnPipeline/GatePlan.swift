import CairnStore
import CairnSystem
import CairnTrain
import Foundation

/// Which checks a stage's gate runs, with what inputs. Cheap checks of files and metrics run in
/// this process; checks that load a model run as `cairn check NAME --request FILE`, the request
/// written beside the check's result; the pipeline's command checks run after its last stage.
final class GatePlan {
    let config: PipelineConfig
    let stage: StageConfig
    /// The stage's outputs and inputs by role, and the metrics its outputs were collected with.
    let outputs: [String: ArtifactID]
    let used: [(String, ArtifactID)]
    let metrics: JSONValue
    let files: RunFiles
    let executable: String
    let runID: Int64
    private(set) var tasks: [GateTask] = []
    /// What the report should say about how the gate measured (e.g. on training pairs).
    private(set) var notes: [String] = []

    init(config: PipelineConfig, stage: StageConfig, outputs: [String: ArtifactID], used: [(String, ArtifactID)], metrics: JSONValue,
         files: RunFiles, executable: String, runID: Int64) throws {
        self.config = config; self.stage = stage; self.outputs = outputs; self.used = used; self.metrics = metrics
        self.files = files; self.executable = executable; self.runID = runID
        try FileManager.default.createDirectory(atPath: checksDir, withIntermediateDirectories: true)
        switch stage.name {
        case .pretrain, .sft: try planTraining()
        case .merge: try planMerge()
        case .export: try planExport()
        case .dpo: try planDPO()
        }
        if stage.name == config.stages.last(where: \.enabled)?.name { try planCommands() }
    }

    var checksDir: String { files.workDir + "/" + stage.name.rawValue + "/checks" }
    var v: ValidationConfig { config.validation }
    func custom(_ name: String) -> CheckConfig? { v.customChecks.first { $0.name == name } }
    func output(_ role: String) throws -> String { try files.materialize(outputs[role]!) }
    func input(_ i: Int) throws -> String { try files.materialize(used[i].1) }

    func inline(_ name: String, blocking: Bool, _ check: @escaping () -> [CheckResult]) {
        tasks.append(GateTask(name: name, blocking: blocking, timeoutSeconds: 10, work: .inline(check)))
    }

    /// A check that loads a model: its own process with a timeout.
    func process(_ name: String, blocking: Bool, timeout: Double = 300, _ fill: (inout CheckRequest) throws -> Void) throws {
        var r = CheckRequest(name: name)
        try fill(&r)
        let file = checksDir + "/\(name).request.json"
        try AtomicFile.write(r.bytes, to: file)
        tasks.append(GateTask(name: name, blocking: blocking, timeoutSeconds: timeout,
                              work: .process(arguments: [executable, "check", name, "--request", file], result: checksDir + "/\(name).json",
                                             log: checksDir + "/\(name).log")))
    }

    /// Gate 1 (after pretrain or SFT): files, loss, finite values, held-out loss; output format for SFT.
    func planTraining() throws {
        let metricsDir = try output("metrics"), summary = GateChecks.summary(metrics), maxLoss = v.maxLoss
        if stage.name == .sft {
            let adapterDir = try output("adapter")
            inline("adapter_files_exist", blocking: false) { [GateChecks.adapterFilesExist(adapterDir)] }
        } else {
            let modelDir = try output("model")
            inline("model_files_exist", blocking: false) { [GateChecks.modelFilesExist(modelDir)] }
        }
        inline("loss_acceptable", blocking: true) { [GateChecks.lossAcceptable(summary, maxLoss: maxLoss)] }
        if v.checkNaN { inline("no_nan_values", blocking: true) { [GateChecks.noNaNValues(summary, dir: metricsDir)] } }
        inline("heldout_loss", blocking: true) { [GateChecks.heldoutLoss(summary, maxLoss: maxLoss)] }
        if stage.name == .sft, let c = custom("output_format_valid"), let prompts = try files.evalPrompts() {
            try process("output_format_valid", blocking: c.blocking, timeout: c.timeoutSeconds) {
                $0.model = try input(0); $0.adapter = try output("adapter"); $0.data = prompts
                $0.schema = try files.dataset("schema"); $0.baseline = true; c.apply(to: &$0)
            }
        }
    }

    /// Gate 2 (after merge): the merged model's logits equal base + adapter; its size.
    func planMerge() throws {
        let base = try input(0), adapter = try input(1), merged = try output("model"), tolerance = v.mergeTolerance
        try process("merge_logits_match", blocking: true) {
            $0.model = base; $0.adapter = adapter; $0.merged = merged; $0.tolerance = tolerance; $0.data = try files.dataset("eval_prompts")
        }
        try process("size_as_expected", blocking: false) { $0.model = base; $0.merged = merged }
    }

    /// After export: the file reads back as the same model.
    func planExport() throws {
        let model = try input(0), export = try output("export")
        try process("export_matches_model", blocking: true) { $0.model = model; $0.export = export; $0.data = try files.dataset("eval_prompts") }
    }

    /// Gate 3 (after DPO): preference accuracy on held-out pairs, then the custom checks.
    func planDPO() throws {
        let base = try input(0), adapter = try output("adapter")
        // Held-out pairs: datasets.preference_eval, else what the DPO stage held out
        // (eval_split) and measured, else the training pairs, said so in the notes.
        let tc = stage.training ?? TrainingConfig(), minAccuracy = v.minAccuracy
        let summary = GateChecks.summary(metrics)
        let accuracy = { (pairs: String) in
            { (r: inout CheckRequest) in
                r.model = base; r.adapter = adapter; r.data = pairs; r.beta = tc.beta; r.minAccuracy = minAccuracy; r.maxSeqLength = tc.maxSeqLength
            }
        }
        if let pe = try files.dataset("preference_eval") {
            try process("preference_accuracy", blocking: true, accuracy(pe))
        } else if let acc = summary?["eval_accuracy"], let margin = summary?["eval_margin"] {
            inline("preference_accuracy", blocking: true) {
                [CheckResult(name: "preference_accuracy", status: acc >= minAccuracy ? .passed : .failed,
                             details: String(format: "accuracy %.3f on the pairs the DPO stage held out (eval_split), minimum %g", acc, minAccuracy), value: acc),
                 CheckResult(name: "reward_margin", status: margin > 0 ? .passed : .failed,
                             details: String(format: "mean reward margin %.4f on the held-out split (must be > 0)", margin), value: margin)]
            }
        } else {
            try process("preference_accuracy", blocking: true, accuracy(try files.dataset("preference")!))
            notes.append("no held-out preference pairs (datasets.preference_eval or eval_split): preference_accuracy measured on the training pairs")
        }
        try planDPOCustomChecks(aligned: try output("model"))
    }

    func planDPOCustomChecks(aligned: String) throws {
        if let c = custom("output_format_valid") {
            if let prompts = try files.evalPrompts() {
                try process("output_format_valid", blocking: c.blocking, timeout: c.timeoutSeconds) {
                    $0.model = aligned; $0.data = prompts; $0.schema = try files.dataset("schema"); c.apply(to: &$0)
                }
            } else {
                tasks.append(GateTask(name: "output_format_valid", blocking: true, timeoutSeconds: 10, work: .inline {
                    [CheckResult(name: "output_format_valid", status: .error, details: "needs datasets.eval_prompts")]
                }))
            }
        }
        if let c = custom("no_harmful_content") {
            // Without datasets.red_team / blocklist, Cairn's built-in ones (GateChecks.builtinRedTeam).
            try process("no_harmful_content", blocking: c.blocking, timeout: c.timeoutSeconds) {
                $0.model = aligned
                $0.data = try files.dataset("red_team") ?? files.builtinFile("red_team.jsonl", GateChecks.builtinRedTeam.map { "{\"prompt\": \(jsonQuoted($0))}" })
                $0.blocklist = try files.dataset("blocklist") ?? files.builtinFile("blocklist.txt", GateChecks.builtinBlocklist)
                c.apply(to: &$0)
            }
        }
    }

    /// Command checks (allowed by --allow-commands when the config was read) run after the last
    /// stage, with the model it made.
    func planCommands() throws {
        let product = outputs["model"] ?? outputs["adapter"]
        for c in v.customChecks where c.command != nil {
            let env = ["CAIRN_MODEL": try product.map { try files.materialize($0) } ?? "", "CAIRN_RUN": String(runID), "CAIRN_STAGE": stage.name.rawValue,
                       "CAIRN_STORE": files.store.root]
            tasks.append(GateTask(name: c.name, blocking: c.blocking, timeoutSeconds: c.timeoutSeconds,
                                  work: .command(c.command!, environment: env, log: checksDir + "/\(c.name).log")))
        }
    }
}

/// Runs the gate after a stage.
extension Orchestrator {
    /// `metrics` is what the stage's outputs were collected with. Asked to stop meanwhile, the
    /// checks are stopped too (a pending check job cancelled, a running one signalled) and no
    /// verdict is kept: `execution` ends interrupted, and the resume runs the gate again.
    func runGate(_ stage: StageConfig, execution: Int64, outputs: [String: ArtifactID], used: [(String, ArtifactID)], metrics: JSONValue) throws -> GateReport {
        let plan = try GatePlan(config: config, stage: stage, outputs: outputs, used: used, metrics: metrics, files: files,
                                executable: options.executable, runID: runID)
        notes += plan.notes
        let report = Gate.run(stage: stage.name.rawValue, tasks: plan.tasks, executor: options.executor, environment: options.environment,
                              jobPrefix: "run\(runID)-\(stage.name.rawValue)-gate-", stopRequested: options.stopRequested)
        if options.stopRequested() {
            try store.finishStage(execution: execution, status: .interrupted, error: "stopped on request during its gate")
            throw StageInterrupted()
        }
        gateSeconds += report.seconds
        return report
    }
}

func jsonQuoted(_ s: String) -> String {
    String(decoding: (try? JSONEncoder().encode(s)) ?? Data("\"\"".utf8), as: UTF8.self)
}
