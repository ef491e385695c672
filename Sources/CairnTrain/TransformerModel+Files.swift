import CairnSystem
import Foundation

/// Reading and writing models and adapters in Hugging Face's formats.
extension TransformerModel {
    /// Loads DIR/config.json and the weights (model.safetensors or a sharded index). Tensors
    /// are checked against the config's shapes; F32 weights are used in place from the map. The
    /// config's sizes are checked against the safetensors headers before anything is allocated.
    public static func load(directory: String) throws -> TransformerModel {
        try loadWithStoredType(directory: directory).model
    }

    /// The model and the type its weights are stored in (the first tensor's; F32 when none
    /// says), from the one opening of the weights.
    public static func loadWithStoredType(directory: String) throws -> (model: TransformerModel, storedType: DType) {
        let config = try ModelConfig.load(path: directory)
        let archive = try SafeTensorsArchive(path: directory)
        try config.check(against: archive, file: (directory as NSString).appendingPathComponent("config.json"))
        let model = try TransformerModel(config: config) { name, shape in
            guard archive.shape(name) != nil else {
                throw ModelError("\(directory): the weights have no tensor '\(name)' that config.json implies")
            }
            return try archive.tensor(name, expectedShape: shape)
        }
        return (model, archive.names.first.flatMap { archive.dtype($0) } ?? .f32)
    }

    /// Writes config.json and model.safetensors (in `dtype`) into `directory`.
    public func save(to directory: String, dtype: DType = .f32) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var json = config.jsonObject()
        json["torch_dtype"] = dtype == .f32 ? "float32" : dtype == .f16 ? "float16" : "bfloat16"
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: directory + "/config.json")
        try SafeTensorsWriter.write(namedParameters(), to: directory + "/model.safetensors", dtype: dtype)
    }

    /// Loads a PEFT LoRA adapter directory onto this model.
    public func loadAdapter(directory: String) throws {
        let adapter = try PEFTAdapter.read(directory: directory)
        let c = adapter.config
        // PEFTAdapter.read accepts what PEFT writes (a regex or "all-linear" in target_modules);
        // Cairn attaches LoRA to named projections only, so say which file and key to change.
        let configPath = (directory as NSString).appendingPathComponent(PEFTAdapter.configFile)
        for t in c.targetModules where !LoRASpec.allTargets.contains(t) {
            throw FormatError(file: configPath, key: "target_modules",
                              "'\(t)' is not one of \(LoRASpec.allTargets.joined(separator: ", ")) (Cairn loads adapters whose target_modules name projections, not a pattern)")
        }
        guard (0..<1).contains(c.loraDropout) else {
            throw FormatError(file: configPath, key: "lora_dropout", "is \(c.loraDropout); it must be in [0, 1)")
        }
        let spec = try LoRASpec(rank: c.r, alpha: c.loraAlpha, dropout: c.loraDropout, targets: c.targetModules, useRSLoRA: c.useRslora)
        try attachLoRA(spec, weights: adapter.weights)
    }

    /// Writes the LoRA factors as a PEFT adapter (adapter_config.json + adapter_model.safetensors).
    public func saveAdapter(to directory: String, baseModel: String?) throws {
        guard let spec = loraSpec else { throw ModelError("this model has no LoRA adapter to save") }
        let config = LoRAAdapterConfig(r: spec.rank, loraAlpha: spec.alpha, loraDropout: spec.dropout,
                                       targetModules: spec.targets, useRslora: spec.useRSLoRA, baseModelNameOrPath: baseModel)
        try PEFTAdapter(config: config, weights: Dictionary(uniqueKeysWithValues: loraWeights().map { ($0.name, $0.tensor) }))
            .write(to: directory)
    }
}
