import Foundation

/// A PEFT LoRA `adapter_config.json`. Reading ignores keys Cairn does not use; writing produces
/// the key set PEFT 0.21's `LoraConfig.save_pretrained` writes (features Cairn does not use at their
/// defaults: no DoRA, no rank/alpha patterns, no layer selection), so PEFT loads it without
/// warnings. `peft_version` is left out: PEFT fills it in and does not need it for LoRA.
public struct LoRAAdapterConfig: Codable, Equatable, Sendable {
    /// The rank: A is (r, in), B is (out, r).
    public var r: Int
    /// The numerator of `scaling`.
    public var loraAlpha: Double
    /// Dropout on the adapter's input while training (0: none).
    public var loraDropout: Double
    /// Module names (`q_proj`, …, `down_proj`) the adapter wraps.
    public var targetModules: [String]
    /// "none": no bias weights in the adapter (the only value Cairn's keys cover).
    public var bias: String
    /// Rank-stabilized scaling: alpha/√r instead of alpha/r.
    public var useRslora: Bool
    /// The base model the adapter was trained on (a hub name or a path), if recorded.
    public var baseModelNameOrPath: String?
    /// "LORA".
    public var peftType: String
    /// "CAUSAL_LM".
    public var taskType: String
    /// True when the base weights are stored (in, out) (GPT-2's Conv1D); false for Llama/Qwen2.
    public var fanInFanOut: Bool
    /// PEFT writes true when it saves an adapter (it is loaded for inference unless asked otherwise).
    public var inferenceMode: Bool

    /// A LoRA config with PEFT's defaults for what is not given: all seven modules, no bias, CAUSAL_LM.
    public init(r: Int, loraAlpha: Double, loraDropout: Double = 0, targetModules: [String] = PEFTKey.modules,
                bias: String = "none", useRslora: Bool = false, baseModelNameOrPath: String? = nil,
                peftType: String = "LORA", taskType: String = "CAUSAL_LM", fanInFanOut: Bool = false,
                inferenceMode: Bool = true) {
        self.r = r
        self.loraAlpha = loraAlpha
        self.loraDropout = loraDropout
        self.targetModules = targetModules
        self.bias = bias
        self.useRslora = useRslora
        self.baseModelNameOrPath = baseModelNameOrPath
        self.peftType = peftType
        self.taskType = taskType
        self.fanInFanOut = fanInFanOut
        self.inferenceMode = inferenceMode
    }

    /// The factor on B·A: lora_alpha / r, or lora_alpha / √r with `useRslora`.
    public var scaling: Double {
        useRslora ? loraAlpha / Double(r).squareRoot() : loraAlpha / Double(r)
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case r, loraAlpha = "lora_alpha", loraDropout = "lora_dropout", targetModules = "target_modules", bias
        case useRslora = "use_rslora", baseModelNameOrPath = "base_model_name_or_path", peftType = "peft_type"
        case taskType = "task_type", fanInFanOut = "fan_in_fan_out", inferenceMode = "inference_mode"
        // Written at PEFT's defaults, never read.
        case aloraInvocationTokens = "alora_invocation_tokens", alphaPattern = "alpha_pattern", arrowConfig = "arrow_config"
        case autoMapping = "auto_mapping", cordaConfig = "corda_config", ensureWeightTying = "ensure_weight_tying"
        case evaConfig = "eva_config", excludeModules = "exclude_modules", initLoraWeights = "init_lora_weights"
        case kasaConfig = "kasa_config", layerReplication = "layer_replication", layersPattern = "layers_pattern"
        case layersToTransform = "layers_to_transform", loftqConfig = "loftq_config", loraBias = "lora_bias"
        case loraGaConfig = "lora_ga_config", megatronConfig = "megatron_config", megatronCore = "megatron_core"
        case modulesToSave = "modules_to_save", montecloraConfig = "monteclora_config"
        case qaloraGroupSize = "qalora_group_size", rankPattern = "rank_pattern", revision
        case targetParameters = "target_parameters", trainableTokenIndices = "trainable_token_indices"
        case useBdlora = "use_bdlora", useDora = "use_dora", useQalora = "use_qalora", veloraConfig = "velora_config"
    }

    /// Reads the keys Cairn uses; others are ignored. `r` and `peft_type` are required.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        r = try c.decode(Int.self, forKey: .r)
        loraAlpha = try c.decodeIfPresent(Double.self, forKey: .loraAlpha) ?? 8
        loraDropout = try c.decodeIfPresent(Double.self, forKey: .loraDropout) ?? 0
        if let list = try? c.decodeIfPresent([String].self, forKey: .targetModules) {
            targetModules = list
        } else if let one = try? c.decodeIfPresent(String.self, forKey: .targetModules) {
            targetModules = [one]  // a regex or "all-linear"
        } else {
            targetModules = []
        }
        bias = try c.decodeIfPresent(String.self, forKey: .bias) ?? "none"
        useRslora = try c.decodeIfPresent(Bool.self, forKey: .useRslora) ?? false
        baseModelNameOrPath = try c.decodeIfPresent(String.self, forKey: .baseModelNameOrPath)
        peftType = try c.decode(String.self, forKey: .peftType)
        taskType = try c.decodeIfPresent(String.self, forKey: .taskType) ?? ""
        fanInFanOut = try c.decodeIfPresent(Bool.self, forKey: .fanInFanOut) ?? false
        inferenceMode = try c.decodeIfPresent(Bool.self, forKey: .inferenceMode) ?? true
        // Features that change what the weights mean are refused, never silently run as plain LoRA.
        func refuse(_ key: CodingKeys, _ why: String) throws -> Never {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: why + " (Cairn applies plain LoRA only)")
        }
        if try c.decodeIfPresent(Bool.self, forKey: .useDora) == true { try refuse(.useDora, "is true: DoRA adapters are not supported") }
        if (try? c.decodeIfPresent(Bool.self, forKey: .useQalora)) == true { try refuse(.useQalora, "is true: QA-LoRA adapters are not supported") }
        if (try? c.decodeIfPresent(Bool.self, forKey: .loraBias)) == true { try refuse(.loraBias, "is true: a LoRA bias is not supported") }
        if bias != "none" { try refuse(.bias, "is \"\(bias)\": adapters that train biases are not supported") }
        for key in [CodingKeys.rankPattern, .alphaPattern] {
            // PEFT writes {} by default; any entry gives some modules another rank or alpha.
            if let pattern = try? c.decodeIfPresent([String: Double].self, forKey: key), !pattern.isEmpty {
                try refuse(key, "gives \(pattern.keys.sorted().joined(separator: ", ")) their own \(key == .rankPattern ? "rank" : "alpha"): per-module ranks and alphas are not supported")
            }
        }
    }

    /// Writes PEFT 0.21's full key set (unused features at their defaults).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(r, forKey: .r)
        if loraAlpha == loraAlpha.rounded(), abs(loraAlpha) < 1e15 {
            try c.encode(Int(loraAlpha), forKey: .loraAlpha)  // 8, as PEFT writes it, not 8.0
        } else {
            try c.encode(loraAlpha, forKey: .loraAlpha)
        }
        try c.encode(loraDropout, forKey: .loraDropout)
        try c.encode(targetModules, forKey: .targetModules)
        try c.encode(bias, forKey: .bias)
        try c.encode(useRslora, forKey: .useRslora)
        try c.encode(baseModelNameOrPath, forKey: .baseModelNameOrPath)
        try c.encode(peftType, forKey: .peftType)
        if taskType.isEmpty { try c.encodeNil(forKey: .taskType) } else { try c.encode(taskType, forKey: .taskType) }
        try c.encode(fanInFanOut, forKey: .fanInFanOut)
        try c.encode(inferenceMode, forKey: .inferenceMode)
        let empty: [String: Int] = [:]
        for key in [CodingKeys.alphaPattern, .rankPattern, .loftqConfig] { try c.encode(empty, forKey: key) }
        for key in [CodingKeys.ensureWeightTying, .loraBias, .useDora, .useQalora] { try c.encode(false, forKey: key) }
        try c.encode(true, forKey: .initLoraWeights)
        try c.encode("megatron.core", forKey: .megatronCore)
        try c.encode(16, forKey: .qaloraGroupSize)
        for key in [CodingKeys.aloraInvocationTokens, .arrowConfig, .autoMapping, .cordaConfig, .evaConfig,
                    .excludeModules, .kasaConfig, .layerReplication, .layersPattern, .layersToTransform,
                    .loraGaConfig, .megatronConfig, .modulesToSave, .montecloraConfig, .revision,
                    .targetParameters, .trainableTokenIndices, .useBdlora, .veloraConfig] {
            try c.encodeNil(forKey: key)
        }
    }

    /// The file's bytes: sorted keys, two-space indent, like PEFT's `json.dumps(indent=2, sort_keys=True)`.
    func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }
}
