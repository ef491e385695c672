import CairnStore
import CairnTrain
import Foundation

/// The gates: which checks run after each stage, with what inputs.
extension Orchestrator {
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

    /// The gate after `stage`; `metrics` is what the stage's outputs were collected with.
    func runGate(_ stage: StageConfig, outputs: [String: ArtifactID], used: [(String, ArtifactID)], metrics: JSONValue) throws -> GateReport {
        let v = config.validation
        let dir = workDir + "/" + stage.name.rawValue + "/checks"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var tasks: [GateTask] = []
        // A check that loads a model runs as `cairn check NAME --request FILE` (the request written beside its result).
        func check(_ r: CheckRequest, blocking: Bool, timeout: Double = 300) throws {
            let file = dir + "/\(r.name).request.json"
            try r.bytes.write(to: URL(fileURLWithPath: file), options: .atomic)
            tasks.append(GateTask(name: r.name, blocking: blocking, timeoutSeconds: timeout,
                                  work: .process(arguments: [options.executable, "check", r.name, "--request", file], result: dir + "/\(r.name).json", log: dir + "/\(r.name).log")))
        }
        func request(_ name: String, _ fill: (inout CheckRequest) throws -> Void) rethrows -> CheckRequest {
            var r = CheckRequest(name: name)
            try fill(&r)
            return r
        }
        func custom(_ name: String) -> CheckConfig? { v.customChecks.first { $0.name == name } }
        let dataset = { (role: String) -> String? in try self.input("dataset:" + role).map { try self.materialize($0) } }
        switch stage.name {
        case .pretrain, .sft:
            let metricsDir = try materialize(outputs["metrics"]!)
            let summary = GateChecks.summary(metrics)
            if stage.name == .sft {
                let adapterDir = try materialize(outputs["adapter"]!)
                tasks.append(GateTask(name: "adapter_files_exist", blocking: false, timeoutSeconds: 10, work: .inline { [GateChecks.adapterFilesExist(adapterDir)] }))
            } else {
                let modelDir = try materialize(outputs["model"]!)
                tasks.append(GateTask(name: "model_files_exist", blocking: false, timeoutSeconds: 10, work: .inline { [GateChecks.modelFilesExist(modelDir)] }))
            }
            tasks.append(GateTask(name: "loss_acceptable", blocking: true, timeoutSeconds: 10, work: .inline { [GateChecks.lossAcceptable(summary, maxLoss: v.maxLoss)] }))
            if v.checkNaN { tasks.append(GateTask(name: "no_nan_values", blocking: true, timeoutSeconds: 10, work: .inline { [GateChecks.noNaNValues(summary, dir: metricsDir)] })) }
            tasks.append(GateTask(name: "heldout_loss", blocking: true, timeoutSeconds: 10, work: .inline { [GateChecks.heldoutLoss(summary, maxLoss: v.maxLoss)] }))
            if stage.name == .sft, let c = custom("output_format_valid"), let prompts = try evalPrompts() {
                try check(try request("output_format_valid") {
                    $0.model = try materialize(used[0].1); $0.adapter = try materialize(outputs["adapter"]!); $0.data = prompts
                    $0.schema = try dataset("schema"); c.apply(to: &$0)
                }, blocking: c.blocking, timeout: c.timeoutSeconds)
            }
        case .merge:
            let base = try materialize(used[0].1), adapter = try materialize(used[1].1), merged = try materialize(outputs["model"]!)
            try check(try request("merge_logits_match") {
                $0.model = base; $0.adapter = adapter; $0.merged = merged; $0.tolerance = v.mergeTolerance; $0.data = try dataset("eval_prompts")
            }, blocking: true)
            try check(request("size_as_expected") { $0.model = base; $0.merged = merged }, blocking: false)
        case .export:
            try check(try request("export_matches_model") {
                $0.model = try materialize(used[0].1); $0.export = try materialize(outputs["export"]!); $0.data = try dataset("eval_prompts")
            }, blocking: true)
        case .dpo:
            let base = try materialize(used[0].1), adapter = try materialize(outputs["adapter"]!), aligned = try materialize(outputs["model"]!)
            // Held-out pairs: datasets.preference_eval, else what the DPO stage held out
            // (eval_split) and measured, else the training pairs, said so in the details.
            let tc = stage.training ?? TrainingConfig()
            let summary = GateChecks.summary(metrics)
            let accuracy = { (pairs: String) in
                request("preference_accuracy") {
                    $0.model = base; $0.adapter = adapter; $0.data = pairs; $0.beta = tc.beta; $0.minAccuracy = v.minAccuracy; $0.maxSeqLength = tc.maxSeqLength
                }
            }
            if let pe = try dataset("preference_eval") {
                try check(accuracy(pe), blocking: true)
            } else if let acc = summary?["eval_accuracy"], let margin = summary?["eval_margin"] {
                tasks.append(GateTask(name: "preference_accuracy", blocking: true, timeoutSeconds: 10, work: .inline {
                    [CheckResult(name: "preference_accuracy", status: acc >= v.minAccuracy ? .passed : .failed,
                                 details: String(format: "accuracy %.3f on the pairs the DPO stage held out (eval_split), minimum %g", acc, v.minAccuracy), value: acc),
                     CheckResult(name: "reward_margin", status: margin > 0 ? .passed : .failed, details: String(format: "mean reward margin %.4f on the held-out split (must be > 0)", margin), value: margin)]
                }))
            } else {
                try check(accuracy(try dataset("preference")!), blocking: true)
                notes.append("no held-out preference pairs (datasets.preference_eval or eval_split): preference_accuracy measured on the training pairs")
            }
            if let c = custom("output_format_valid") {
                if let prompts = try evalPrompts() {
                    try check(try request("output_format_valid") {
                        $0.model = aligned; $0.data = prompts; $0.schema = try dataset("schema"); c.apply(to: &$0)
                    }, blocking: c.blocking, timeout: c.timeoutSeconds)
                } else {
                    tasks.append(GateTask(name: "output_format_valid", blocking: true, timeoutSeconds: 10, work: .inline {
                        [CheckResult(name: "output_format_valid", status: .error, details: "needs datasets.eval_prompts")]
                    }))
                }
            }
            if let c = custom("no_harmful_content") {
                // Without datasets.red_team / blocklist, Cairn's built-in ones (GateChecks.builtinRedTeam).
                try check(try request("no_harmful_content") {
                    $0.model = aligned
                    $0.data = try dataset("red_team") ?? builtinFile("red_team.jsonl", GateChecks.builtinRedTeam.map { "{\"prompt\": \(jsonQuoted($0))}" })
                    $0.blocklist = try dataset("blocklist") ?? builtinFile("blocklist.txt", GateChecks.builtinBlocklist)
                    c.apply(to: &$0)
                }, blocking: c.blocking, timeout: c.timeoutSeconds)
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
