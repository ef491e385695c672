import CairnTrain
import Foundation

extension TrainingConfig {
    /// The keys of the reference's sft_config.yaml and dpo_config.yaml, and Cairn's additions.
    public static let yamlKeys = [
        "epochs", "num_train_epochs", "max_steps", "batch_size", "per_device_train_batch_size", "gradient_accumulation",
        "gradient_accumulation_steps", "learning_rate", "warmup_ratio", "warmup_steps", "lr_scheduler_type", "weight_decay",
        "max_grad_norm", "adam_beta1", "adam_beta2", "adam_epsilon", "seed", "logging_steps", "save_steps", "save_total_limit", "eval_steps",
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

    /// The range of every whole-number key (an alias takes its key's range). Wide enough for any
    /// real run on Cairn, narrow enough that the products training forms from them (micro-batch
    /// index × batch_size, step × gradient_accumulation, steps × epochs) stay far below Int.max.
    public static let intBounds: [String: ClosedRange<Int>] = [
        "epochs": 1...10_000, "max_steps": 1...100_000_000, "batch_size": 1...65_536, "gradient_accumulation": 1...65_536,
        "logging_steps": 1...100_000_000, "save_steps": 1...100_000_000, "eval_steps": 1...100_000_000, "save_total_limit": 1...10_000,
        "max_seq_length": 2...1_048_576, "lora_r": 1...4_096, "seed": 0...4_294_967_295,  // numpy's seed range, as transformers' set_seed
    ]
    /// The range of every other numeric key.
    public static let numberBounds: [String: Bounds] = [
        "learning_rate": .above(0, atMost: .infinity),  // any finite rate: a divergent one is a NaN stop (exit 1)
        "warmup_ratio": .from(0, below: 1), "warmup_steps": Bounds(0, 100_000_000),
        "weight_decay": Bounds(0, 1), "max_grad_norm": .above(0, atMost: 1e6), "adam_beta1": .from(0, below: 1),
        "adam_beta2": .from(0, below: 1), "adam_epsilon": .above(0, atMost: 1), "lora_alpha": .above(0, atMost: 65_536),
        "lora_dropout": .from(0, below: 1), "beta": .above(0, atMost: 100), "label_smoothing": .from(0, below: 0.5),
        "eval_split": .from(0, below: 1),
    ]

    public init(yaml node: YAMLNode, file: String) throws {
        self.init()
        let m = try YAMLMapping(node, file: file, known: Self.yamlKeys)
        // A whole-number key (or its alias) in its range.
        func int(_ key: String, alias: String? = nil) throws -> Int? {
            let r = Self.intBounds[key]!
            return try m.int(key, min: r.lowerBound, max: r.upperBound) ?? alias.flatMap { try m.int($0, min: r.lowerBound, max: r.upperBound) }
        }
        func number(_ key: String) throws -> Double? { try m.double(key, Self.numberBounds[key]!) }
        if let v = try int("epochs", alias: "num_train_epochs") { epochs = v }
        if let v = try int("max_steps") { maxSteps = v }
        if let v = try int("batch_size", alias: "per_device_train_batch_size") { batchSize = v }
        if let v = try int("gradient_accumulation", alias: "gradient_accumulation_steps") { gradientAccumulation = v }
        if let v = try number("learning_rate") { learningRate = v }
        if let v = try number("warmup_ratio") { warmupRatio = v }
        if let v = try number("warmup_steps") {
            // transformers 5: a value in [0, 1) is a ratio, one ≥ 1 a step count.
            if v < 1 { warmupRatio = v } else { warmupSteps = Int(v) }
        }
        if let v = try m.choice("lr_scheduler_type", LearningRateSchedule.Kind.self, allowed: LearningRateSchedule.Kind.allCases.map(\.rawValue)) {
            lrSchedulerType = v
        }
        if let v = try number("weight_decay") { weightDecay = v }
        if let v = try number("max_grad_norm") { maxGradNorm = v }
        if let v = try number("adam_beta1") { adamBeta1 = v }
        if let v = try number("adam_beta2") { adamBeta2 = v }
        if let v = try number("adam_epsilon") { adamEpsilon = v }
        if let v = try int("seed") { seed = UInt64(v) }
        if let v = try int("logging_steps") { loggingSteps = v }
        if let v = try int("save_steps") { saveSteps = v }
        if let v = try int("eval_steps") { evalSteps = v }
        if let v = try int("save_total_limit") { saveTotalLimit = v }
        if let v = try int("max_seq_length", alias: "max_length") { maxSeqLength = v }
        if let v = try int("lora_r") { loraR = v }
        if let v = try number("lora_alpha") { loraAlpha = v }
        if let v = try number("lora_dropout") { loraDropout = v }
        if let v = try m.strings("target_modules") {
            guard !v.isEmpty else { throw ConfigError(file: file, line: m.node("target_modules")!.line, "key 'target_modules' must name at least one module") }
            for t in v where !LoRASpec.allTargets.contains(t) {
                throw ConfigError(file: file, line: m.node("target_modules")!.line,
                                  "key 'target_modules': '\(t)' is not one of \(LoRASpec.allTargets.joined(separator: ", "))")
            }
            targetModules = v
        }
        if let v = try m.bool("use_rslora") { useRslora = v }
        if let v = try m.bool("completion_only_loss") { completionOnlyLoss = v }
        if let v = try m.bool("padding_free") { paddingFree = v }
        if let v = try number("beta") { beta = v }
        if let v = try m.choice("loss_type", DPOLoss.Kind.self, allowed: DPOLoss.Kind.allCases.map(\.rawValue)) { lossType = v }
        if let v = try number("label_smoothing") { labelSmoothing = v }
        if let v = try number("eval_split") { evalSplit = v }
    }
}
