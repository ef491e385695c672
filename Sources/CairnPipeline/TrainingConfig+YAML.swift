import CairnTrain
import Foundation

extension TrainingConfig {
    /// The keys of the reference's sft_config.yaml and dpo_config.yaml, and Cairn's additions.
    public static let yamlKeys = [
        "epochs", "num_train_epochs", "max_steps", "batch_size", "per_device_train_batch_size", "gradient_accumulation",
        "gradient_accumulation_steps", "learning_rate", "warmup_ratio", "warmup_steps", "lr_scheduler_type", "weight_decay",
        "max_grad_norm", "adam_beta1", "adam_beta2", "adam_epsilon", "seed", "logging_steps", "save_steps", "save_total_limit",
        "max_seq_length", "max_length", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "completion_only_loss", "padding_free",
        "beta", "loss_type", "label_smoothing", "eval_split",
    ]

    /// Reads a stage config (sft_config.yaml, dpo_config.yaml). Unknown keys, wrong types and
    /// bad values are errors naming file, line and key.
    public static func load(yamlFile path: String) throws -> TrainingConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(file: path, line: nil, "cannot read the file")
        }
        return try TrainingConfig(yaml: try YAMLNode.parse(text, file: path), file: path)
    }

    public init(yaml node: YAMLNode, file: String) throws {
        self.init()
        let m = try YAMLMapping(node, file: file, known: Self.yamlKeys)
        if let v = try m.int("epochs", min: 1) ?? m.int("num_train_epochs", min: 1) { epochs = v }
        if let v = try m.int("max_steps", min: 1) { maxSteps = v }
        if let v = try m.int("batch_size", min: 1) ?? m.int("per_device_train_batch_size", min: 1) { batchSize = v }
        if let v = try m.int("gradient_accumulation", min: 1) ?? m.int("gradient_accumulation_steps", min: 1) { gradientAccumulation = v }
        if let v = try m.double("learning_rate") {
            guard v > 0 else { throw ConfigError(file: file, line: m.node("learning_rate")!.line, "key 'learning_rate' must be positive") }
            learningRate = v
        }
        if let v = try m.double("warmup_ratio") {
            guard (0..<1).contains(v) else { throw ConfigError(file: file, line: m.node("warmup_ratio")!.line, "key 'warmup_ratio' must be in [0, 1)") }
            warmupRatio = v
        }
        if let v = try m.double("warmup_steps") {
            // transformers 5: a value in [0, 1) is a ratio, one ≥ 1 a step count.
            if v < 1 { warmupRatio = max(0, v) } else { warmupSteps = Int(v) }
        }
        if let v = try m.choice("lr_scheduler_type", LearningRateSchedule.Kind.self, allowed: LearningRateSchedule.Kind.allCases.map(\.rawValue)) {
            lrSchedulerType = v
        }
        if let v = try m.double("weight_decay") { weightDecay = v }
        if let v = try m.double("max_grad_norm") { maxGradNorm = v }
        if let v = try m.double("adam_beta1") { adamBeta1 = v }
        if let v = try m.double("adam_beta2") { adamBeta2 = v }
        if let v = try m.double("adam_epsilon") { adamEpsilon = v }
        if let v = try m.int("seed", min: 0) { seed = UInt64(v) }
        if let v = try m.int("logging_steps", min: 1) { loggingSteps = v }
        if let v = try m.int("save_steps", min: 1) { saveSteps = v }
        if let v = try m.int("save_total_limit", min: 1) { saveTotalLimit = v }
        if let v = try m.int("max_seq_length", min: 2) ?? m.int("max_length", min: 2) { maxSeqLength = v }
        if let v = try m.int("lora_r", min: 1) { loraR = v }
        if let v = try m.double("lora_alpha") { loraAlpha = v }
        if let v = try m.double("lora_dropout") {
            guard (0..<1).contains(v) else { throw ConfigError(file: file, line: m.node("lora_dropout")!.line, "key 'lora_dropout' must be in [0, 1)") }
            loraDropout = v
        }
        if let v = try m.strings("target_modules") {
            for t in v where !LoRASpec.allTargets.contains(t) {
                throw ConfigError(file: file, line: m.node("target_modules")!.line,
                                  "key 'target_modules': '\(t)' is not one of \(LoRASpec.allTargets.joined(separator: ", "))")
            }
            targetModules = v
        }
        if let v = try m.bool("use_rslora") { useRslora = v }
        if let v = try m.bool("completion_only_loss") { completionOnlyLoss = v }
        if let v = try m.bool("padding_free") { paddingFree = v }
        if let v = try m.double("beta") {
            guard v > 0 else { throw ConfigError(file: file, line: m.node("beta")!.line, "key 'beta' must be positive") }
            beta = v
        }
        if let v = try m.choice("loss_type", DPOLoss.Kind.self, allowed: DPOLoss.Kind.allCases.map(\.rawValue)) { lossType = v }
        if let v = try m.double("label_smoothing") { labelSmoothing = v }
        if let v = try m.double("eval_split") {
            guard (0..<1).contains(v) else { throw ConfigError(file: file, line: m.node("eval_split")!.line, "key 'eval_split' must be in [0, 1)") }
            evalSplit = v
        }
    }
}
