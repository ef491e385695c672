extension GGUFModel {
    /// llama.cpp's `general.file_type` (`LlamaFileType`) of a whole-model type.
    static func fileType(_ type: GGMLType) -> UInt32 {
        switch type {
        case .f16: return 1
        case .q8_0: return 7
        case .bf16: return 32
        default: return 0
        }
    }

    /// The type a tensor is stored as in an export of `type`, as llama.cpp's converter chooses: 1-D
    /// tensors (norms, biases) stay F32; a row that is not a whole number of blocks falls back to F16.
    static func storageType(shape: [Int], requested type: GGMLType) -> GGMLType {
        if shape.count < 2 || type == .f32 { return .f32 }
        if let row = shape.last, row % type.blockSize != 0 { return .f16 }
        return type
    }

    /// The metadata `convert_hf_to_gguf.py` writes for a Llama or Qwen2 model, in its order:
    /// general.*, the architecture's hyper-parameters, the file type, then the tokenizer's keys.
    static func metadata(for config: ModelConfig, type: GGMLType, name: String,
                         tokenizer: [(key: String, value: GGUFValue)], file: String) -> GGUFMetadata {
        let a = config.architecture.modelType
        var m = GGUFMetadata(file: file)
        m["general.architecture"] = .string(a)
        m["general.type"] = .string("model")
        m["general.name"] = .string(name)
        m["general.size_label"] = .string(sizeLabel(parameters: config.parameterCount))
        m["\(a).block_count"] = .uint32(UInt32(config.numLayers))
        m["\(a).context_length"] = .uint32(UInt32(config.maxPositionEmbeddings))
        m["\(a).embedding_length"] = .uint32(UInt32(config.hiddenSize))
        m["\(a).feed_forward_length"] = .uint32(UInt32(config.intermediateSize))
        m["\(a).attention.head_count"] = .uint32(UInt32(config.numHeads))
        m["\(a).attention.head_count_kv"] = .uint32(UInt32(config.numKVHeads))
        m["\(a).rope.freq_base"] = .float32(Float(config.ropeTheta))
        m["\(a).attention.layer_norm_rms_epsilon"] = .float32(Float(config.rmsNormEps))
        m["\(a).attention.key_length"] = .uint32(UInt32(config.headDim))
        m["\(a).attention.value_length"] = .uint32(UInt32(config.headDim))
        m["general.file_type"] = .uint32(fileType(type))
        if config.architecture == .llama {
            m["\(a).vocab_size"] = .uint32(UInt32(config.vocabSize))
            m["\(a).rope.dimension_count"] = .uint32(UInt32(config.headDim))
        }
        m["general.quantization_version"] = .uint32(2)
        for (k, v) in tokenizer { m[k] = v }
        return m
    }

    /// Writes `model` (with the tokenizer's `tokenizer.ggml.*` keys and chat template) as a GGUF file
    /// that llama.cpp loads: tensors under llama.cpp's names, Llama's Q/K rows permuted, matrices in
    /// `type` (f32, f16, bf16 or q8_0), norms and biases in F32.
    public static func export(_ model: TransformerModel, tokenizer: Tokenizer, type: GGMLType, name: String, to path: String) throws {
        guard GGMLType.writable.contains(type) || type == .bf16 else {
            throw FormatError(file: path, "cannot export as \(type) (Cairn writes f32, f16, bf16 and q8_0)")
        }
        let config = model.config
        guard model.loraSpec == nil else {
            throw FormatError(file: path, "the model has a LoRA adapter attached; merge it first (`cairn merge`)")
        }
        let tokenizerKeys = try GGUFTokenizer.metadata(for: tokenizer)
        let meta = metadata(for: config, type: type, name: name, tokenizer: tokenizerKeys, file: path)
        var entries: [GGUFWriter.Entry] = []
        for (hf, tensor) in model.namedParameters().sorted(by: { exportOrder($0.name) < exportOrder($1.name) }) {
            guard let gguf = ggufName(hf) else { throw FormatError(file: path, tensor: hf, "has no GGUF name") }
            var t = tensor
            if config.architecture == .llama, gguf.hasPrefix("blk.") {
                if gguf.contains(".attn_q.") { t = permute(t, heads: config.numHeads) }
                if gguf.contains(".attn_k.") { t = permute(t, heads: config.numKVHeads) }
            }
            entries.append(GGUFWriter.Entry(name: gguf, tensor: t, type: storageType(shape: t.shape, requested: type)))
        }
        try GGUFWriter.write(metadata: meta, tensors: entries, to: path)
    }

    /// The converter's order: the transformers names sorted as the safetensors file lists them
    /// (lm_head, embed_tokens, the layers, norm), layers by number, within a layer by name.
    private static func exportOrder(_ hf: String) -> (Int, Int, String) {
        if hf.hasPrefix("lm_head") { return (0, 0, hf) }
        if hf.hasPrefix("model.embed_tokens") { return (1, 0, hf) }
        let parts = hf.split(separator: ".", maxSplits: 3)
        if parts.count == 4, parts[1] == "layers", let layer = Int(parts[2]) { return (2, layer, String(parts[3])) }
        return (3, 0, hf)
    }

    /// gguf-py's `size_label` for a dense model: parameters in K, M, B or T with two significant
    /// digits at least (`135M`, `1.5B`, `952K`).
    static func sizeLabel(parameters n: Int) -> String {
        let (scaled, suffix): (Double, String) = n > 1_000_000_000_000 ? (Double(n) * 1e-12, "T")
            : n > 1_000_000_000 ? (Double(n) * 1e-9, "B") : n > 1_000_000 ? (Double(n) * 1e-6, "M") : (Double(n) * 1e-3, "K")
        let digits = String(Int(scaled.rounded(.toNearestOrEven))).drop { $0 == "0" }.count
        return String(format: "%.\(max(2 - digits, 0))f", scaled) + suffix
    }
}
