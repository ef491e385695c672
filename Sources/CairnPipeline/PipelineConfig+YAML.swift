import CairnTrain
import Foundation

/// The parts of pipeline.yaml that parse themselves: a stage, the stages' order, the
/// validation block and each custom check. Errors name the file, the line and the key.
extension StageConfig {
    /// One item of `stages`; `path` resolves a path key inside the repository.
    init(yaml item: YAMLNode, file: String, path: (String, String, Int?) throws -> String) throws {
        let s = try YAMLMapping(item, file: file, known: StageConfig.keys)
        guard let n = try s.string("name") else { throw ConfigError(file: file, line: item.line, "missing required key 'name' in a stage") }
        guard let name = StageConfig.Name(rawValue: n) else {
            throw ConfigError(file: file, line: s.node("name")!.line,
                              "unknown stage '\(n)': stages are \(StageConfig.Name.allCases.map(\.rawValue).joined(separator: ", ")) (only built-in stages run)")
        }
        self.init(name: name, line: item.line)
        if let v = try s.bool("enabled") { enabled = v }
        if let v = try s.string("config_path") {
            let p = try path(v, "config_path", s.node("config_path")!.line)
            guard FileManager.default.fileExists(atPath: p) else {
                throw ConfigError(file: file, line: s.node("config_path")!.line, "key 'config_path': no such file '\(v)'")
            }
            configPath = p
            // The stage config is checked now, so a typo stops `cairn run` before anything trains.
            training = try TrainingConfig.load(yamlFile: p)
        }
        if let v = try s.double("timeout_minutes", StageConfig.timeoutBounds) { timeoutMinutes = v }
        if let v = try s.int("retry_count", min: 0, max: StageConfig.maxRetries) { retryCount = v }
        for key in ["format", "type"] where name != .export && s.node(key) != nil {
            throw ConfigError(file: file, line: s.node(key)!.line, "key '\(key)' belongs to the export stage, not '\(n)'")
        }
        if let v = try s.string("format") {
            guard v == "gguf" else { throw ConfigError(file: file, line: s.node("format")!.line, "key 'format': Cairn exports gguf, not '\(v)'") }
            format = v
        }
        if let v = try s.string("type") {
            guard StageConfig.exportTypes.contains(v) else {
                throw ConfigError(file: file, line: s.node("type")!.line, "key 'type' must be one of \(StageConfig.exportTypes.joined(separator: ", ")), not '\(v)'")
            }
            exportType = v
        }
        if [.pretrain, .sft, .dpo].contains(name), enabled, configPath == nil {
            throw ConfigError(file: file, line: item.line, "stage '\(n)' needs 'config_path' (its training config)")
        }
    }

    /// The enabled stages run in the built-in order, merge after sft, export after a whole model.
    static func checkOrder(_ stages: [StageConfig], file: String, line: Int?) throws {
        let order = StageConfig.Name.allCases
        let enabled = stages.filter(\.enabled).map(\.name)
        if enabled != enabled.sorted(by: { order.firstIndex(of: $0)! < order.firstIndex(of: $1)! }) {
            throw ConfigError(file: file, line: line, "stages run in the order pretrain, sft, merge, dpo, export; list them so")
        }
        if enabled.contains(.merge) && !enabled.contains(.sft) {
            throw ConfigError(file: file, line: line, "stage 'merge' needs stage 'sft' (it merges the SFT adapter)")
        }
        if let d = stages.first(where: { $0.name == .dpo && $0.enabled }), enabled.contains(.sft), !enabled.contains(.merge) {
            // DPO trains a fresh adapter on a whole model: without merge it would start from the
            // base model and silently leave the SFT adapter out.
            throw ConfigError(file: file, line: d.line, "stage 'dpo' after 'sft' needs stage 'merge' between them (DPO trains on a whole model)")
        }
        if let e = stages.first(where: { $0.name == .export && $0.enabled }), enabled.last(where: { $0 != .export }) == .sft {
            throw ConfigError(file: file, line: e.line, "stage 'export' needs a whole model: enable merge (or dpo) after sft")
        }
    }
}

extension ValidationConfig {
    /// The `validation` block.
    init(yaml v: YAMLNode, file: String, allowCommands: Bool) throws {
        self.init()
        let vm = try YAMLMapping(v, file: file, known: ValidationConfig.keys)
        if let x = try vm.double("max_loss", ValidationConfig.maxLossBounds) { maxLoss = x }
        if let x = try vm.double("min_accuracy", ValidationConfig.minAccuracyBounds) { minAccuracy = x }
        if let x = try vm.bool("check_nan") { checkNaN = x }
        if let x = try vm.double("merge_tolerance", ValidationConfig.mergeToleranceBounds) { mergeTolerance = x }
        if let list = vm.node("custom_checks"), !list.isNull {
            guard let items = list.items else { throw ConfigError(file: file, line: list.line, "key 'custom_checks' must be a list") }
            customChecks = try items.map { try CheckConfig(yaml: $0, file: file, allowCommands: allowCommands) }
        }
    }
}

extension CheckConfig {
    /// One item of `custom_checks`: a built-in check's name, or a mapping (a command check when
    /// commands are allowed).
    init(yaml item: YAMLNode, file: String, allowCommands: Bool) throws {
        if let name = item.scalar {
            self.init(name: name, blocking: CheckConfig.blockingByDefault(name), timeoutSeconds: 300)
        } else {
            let cm = try YAMLMapping(item, file: file, known: CheckConfig.keys)
            guard let name = try cm.string("name") else { throw ConfigError(file: file, line: item.line, "missing required key 'name' in a check") }
            self.init(name: name, blocking: try cm.bool("blocking") ?? CheckConfig.blockingByDefault(name),
                      timeoutSeconds: try cm.double("timeout_seconds", CheckConfig.timeoutBounds) ?? 300,
                      threshold: try cm.double("threshold", Bounds(0, 1)),
                      maxNewTokens: try cm.int("max_new_tokens", min: 1, max: CheckConfig.maxNewTokensLimit), command: try cm.string("command"))
            if let cmd = command {
                guard allowCommands else {
                    throw ConfigError(file: file, line: cm.node("command")!.line,
                                      "custom check '\(name)' asks to run a shell command ('\(cmd)'): refused; only built-in checks run unless cairn was started with --allow-commands")
                }
                if CheckConfig.customNames.contains(name) { throw ConfigError(file: file, line: item.line, "check '\(name)' is built in: give a command check another name") }
                return
            }
        }
        guard CheckConfig.customNames.contains(name) else {
            let near = CheckConfig.customNames.min { editDistance($0, name) < editDistance($1, name) }!
            let hint = editDistance(near, name) <= max(2, name.count / 3) ? " — did you mean '\(near)'?" : ""
            if ["command", "shell", "run", "script"].contains(name) || name.contains(" ") {
                throw ConfigError(file: file, line: item.line, "custom check '\(name)' refused: only built-in checks run (\(CheckConfig.customNames.joined(separator: ", ")))")
            }
            throw ConfigError(file: file, line: item.line, "unknown custom check '\(name)'\(hint); built-in checks are \(CheckConfig.customNames.joined(separator: ", "))")
        }
    }
}
