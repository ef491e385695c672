/// PEFT's weight names for a LoRA adapter on a Llama/Qwen2 model, as `save_pretrained` writes them
/// (the adapter name removed): `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`,
/// `base_model.model.model.layers.0.mlp.down_proj.lora_B.weight`.
public enum PEFTKey {
    /// The four attention projections (under `self_attn`), in order; LoRA's default targets.
    public static let attentionModules = ["q_proj", "k_proj", "v_proj", "o_proj"]
    /// The seven linear layers of a decoder block, attention first (the MLP's under `mlp`). The
    /// one list of the module names: LoRA targets, adapter keys and adapter configs use it.
    public static let modules = attentionModules + ["gate_proj", "up_proj", "down_proj"]
    static let matrices: Set<String> = ["lora_A", "lora_B"]
    static let prefix = "base_model.model.model.layers."

    /// The key of one matrix ("lora_A" or "lora_B") of one module in one layer.
    public static func name(layer: Int, module: String, matrix: String) -> String {
        precondition(modules.contains(module), "unknown module '\(module)'")
        precondition(matrices.contains(matrix), "matrix must be lora_A or lora_B, not '\(matrix)'")
        let block = attentionModules.contains(module) ? "self_attn" : "mlp"
        return "\(prefix)\(layer).\(block).\(module).\(matrix).weight"
    }

    /// The inverse of `name`; nil for anything else (another block, another module, bias keys,
    /// keys with an adapter name left in).
    public static func parse(_ key: String) -> (layer: Int, module: String, matrix: String)? {
        guard key.hasPrefix(prefix) else { return nil }
        let parts = key.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[4] == "weight",
              let layer = Int(parts[0]), layer >= 0, String(layer) == parts[0] else { return nil }
        let module = String(parts[2]), matrix = String(parts[3])
        guard modules.contains(module), matrices.contains(matrix),
              parts[1] == (attentionModules.contains(module) ? "self_attn" : "mlp") else { return nil }
        return (layer, module, matrix)
    }
}
