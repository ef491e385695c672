/// How a Llama or Qwen2 model is laid out in GGUF, as llama.cpp's `convert_hf_to_gguf.py` writes it:
/// the metadata keys of the architecture, the tensor names, and the row permutation of Llama's Q and
/// K projections (llama.cpp rotates adjacent pairs where transformers rotates the two halves).
public enum GGUFModel {
    /// transformers' name suffixes ⇄ llama.cpp's, inside `model.layers.N.` ⇄ `blk.N.`.
    static let layerNames: [(hf: String, gguf: String)] = [
        ("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"), ("post_attention_layernorm", "ffn_norm"),
        ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down"),
    ]
    static let globalNames: [(hf: String, gguf: String)] = [
        ("model.embed_tokens", "token_embd"), ("model.norm", "output_norm"), ("lm_head", "output"),
    ]

    /// The GGUF name of a transformers tensor name (`model.layers.3.mlp.up_proj.weight` →
    /// `blk.3.ffn_up.weight`), or nil for a name GGUF has no place for.
    public static func ggufName(_ hf: String) -> String? {
        let (stem, suffix) = splitSuffix(hf)
        if let g = globalNames.first(where: { $0.hf == stem }) { return g.gguf + suffix }
        let parts = stem.split(separator: ".", maxSplits: 3).map(String.init)
        guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]),
              let n = layerNames.first(where: { $0.hf == parts[3] }) else { return nil }
        return "blk.\(layer).\(n.gguf)\(suffix)"
    }

    /// The transformers name of a GGUF tensor name, or nil.
    public static func huggingFaceName(_ gguf: String) -> String? {
        let (stem, suffix) = splitSuffix(gguf)
        if let g = globalNames.first(where: { $0.gguf == stem }) { return g.hf + suffix }
        let parts = stem.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]),
              let n = layerNames.first(where: { $0.gguf == parts[2] }) else { return nil }
        return "model.layers.\(layer).\(n.hf)\(suffix)"
    }

    private static func splitSuffix(_ name: String) -> (String, String) {
        for s in [".weight", ".bias"] where name.hasSuffix(s) { return (String(name.dropLast(s.count)), s) }
        return (name, "")
    }

    // MARK: Config

    /// The model config from a GGUF's metadata (`general.architecture` and its keys) and tensors.
    /// Unsupported architectures and settings (rope scaling, per-layer head counts, partial rotary
    /// dimensions) are errors naming the key.
    public static func config(of file: GGUFFile) throws -> ModelConfig {
        let m = file.metadata
        let archName = try m.string("general.architecture")
        let arch: ModelConfig.Architecture
        switch archName {
        case "llama": arch = .llama
        case "qwen2": arch = .qwen2
        default:
            throw FormatError(file: file.path, key: "general.architecture",
                              "is \"\(archName)\"; Cairn imports llama (Llama 2/3, SmolLM2, TinyLlama, Mistral) and qwen2")
        }
        let a = archName
        for key in ["\(a).attention.head_count", "\(a).attention.head_count_kv", "\(a).feed_forward_length"] {
            if let v = m[key], v.array != nil {
                throw FormatError(file: file.path, key: key, "differs per layer (\(v.summary)); Cairn supports one value for every layer")
            }
        }
        if let type = try m.optionalString("\(a).rope.scaling.type"), type != "none" {
            throw FormatError(file: file.path, key: "\(a).rope.scaling.type", "is \"\(type)\"; Cairn supports default rope only")
        }
        if let factor = try m.optionalDouble("\(a).rope.scaling.factor"), factor != 1 {
            throw FormatError(file: file.path, key: "\(a).rope.scaling.factor", "is \(factor); Cairn supports default rope only")
        }
        let hidden = try m.int("\(a).embedding_length")
        let heads = try m.int("\(a).attention.head_count")
        guard heads > 0, hidden > 0 else {
            throw FormatError(file: file.path, key: "\(a).attention.head_count", "must be positive (embedding_length \(hidden), head_count \(heads))")
        }
        let kvHeads = try m.optionalInt("\(a).attention.head_count_kv") ?? heads
        let headDim = try m.optionalInt("\(a).attention.key_length") ?? hidden / heads
        if let valueLength = try m.optionalInt("\(a).attention.value_length"), valueLength != headDim {
            throw FormatError(file: file.path, key: "\(a).attention.value_length", "is \(valueLength) but key_length is \(headDim); Cairn needs them equal")
        }
        if let ropeDims = try m.optionalInt("\(a).rope.dimension_count"), ropeDims != headDim {
            throw FormatError(file: file.path, key: "\(a).rope.dimension_count", "is \(ropeDims) but the head dimension is \(headDim); partial rotary embeddings are not supported")
        }
        guard let embed = file.info("token_embd.weight") else {
            throw FormatError(file: file.path, tensor: "token_embd.weight", "is missing")
        }
        let vocab = try m.optionalInt("\(a).vocab_size") ?? embed.shape[0]
        let bias = file.info("blk.0.attn_q.bias") != nil
        if arch == .qwen2 && !bias {
            throw FormatError(file: file.path, tensor: "blk.0.attn_q.bias", "is missing (qwen2 has q, k and v biases)")
        }
        let eos = try m.optionalInt("tokenizer.ggml.eos_token_id")
        let config = ModelConfig(
            architecture: arch, vocabSize: vocab, hiddenSize: hidden, intermediateSize: try m.int("\(a).feed_forward_length"),
            numLayers: try m.int("\(a).block_count"), numHeads: heads, numKVHeads: kvHeads, headDim: headDim,
            rmsNormEps: try m.optionalDouble("\(a).attention.layer_norm_rms_epsilon") ?? 1e-6,
            ropeTheta: try m.optionalDouble("\(a).rope.freq_base") ?? 10000,
            tieWordEmbeddings: file.info("output.weight") == nil,
            attentionBias: arch == .llama && bias, mlpBias: file.info("blk.0.ffn_up.bias") != nil,
            maxPositionEmbeddings: try m.optionalInt("\(a).context_length") ?? 2048,
            bosTokenID: try m.optionalInt("tokenizer.ggml.bos_token_id"), eosTokenIDs: eos.map { [$0] } ?? [],
            padTokenID: try m.optionalInt("tokenizer.ggml.padding_token_id"))
        guard heads % kvHeads == 0, headDim % 2 == 0, config.numLayers > 0, config.intermediateSize > 0 else {
            throw FormatError(file: file.path, key: "\(a).attention.head_count_kv",
                              "gives \(heads) heads over \(kvHeads) KV heads with head dimension \(headDim): not a valid attention layout")
        }
        return config
    }

    // MARK: Weights

    /// The model in a GGUF file, every tensor dequantised to fp32 and Q/K rows un-permuted for
    /// Llama. A tensor the model does not use (`rope_freqs.weight`, …) is an error naming it.
    public static func load(_ file: GGUFFile) throws -> TransformerModel {
        let config = try config(of: file)
        var used = Set<String>()
        let model = try TransformerModel(config: config) { hf, shape in
            guard let name = ggufName(hf), let info = file.info(name) else {
                throw FormatError(file: file.path, tensor: ggufName(hf) ?? hf, "is missing (the metadata implies it: \(hf), shape \(shape))")
            }
            guard info.shape == shape else {
                throw FormatError(file: file.path, tensor: name, "has shape \(info.shape) (\(info.type)) but the metadata implies \(shape)")
            }
            used.insert(name)
            let t = try file.tensor(name)
            guard config.architecture == .llama else { return t }
            if name.hasPrefix("blk."), name.contains(".attn_q.") { return unpermute(t, heads: config.numHeads) }
            if name.hasPrefix("blk."), name.contains(".attn_k.") { return unpermute(t, heads: config.numKVHeads) }
            return t
        }
        if let extra = file.tensors.first(where: { !used.contains($0.name) }) {
            let why = extra.name == "rope_freqs.weight" ? "holds rope scaling factors, which Cairn does not support"
                                                         : "is not a tensor of a \(config.architecture.modelType) model as Cairn reads it"
            throw FormatError(file: file.path, tensor: extra.name, why)
        }
        return model
    }

    /// llama.cpp's Q/K row order from transformers': within each head of `d` rows, GGUF row 2i + j is
    /// transformers row j·d/2 + i (j ∈ {0, 1}, i < d/2). `t` is (heads·d, …) — a weight or a bias.
    public static func permute(_ t: Tensor, heads: Int) -> Tensor { reorderRows(t, heads: heads, toGGUF: true) }

    /// The inverse of `permute`.
    public static func unpermute(_ t: Tensor, heads: Int) -> Tensor { reorderRows(t, heads: heads, toGGUF: false) }

    private static func reorderRows(_ t: Tensor, heads: Int, toGGUF: Bool) -> Tensor {
        let rows = t.shape[0], cols = t.count / max(rows, 1)
        let d = rows / heads, half = d / 2
        let out = Tensor(shape: t.shape)
        for h in 0..<heads {
            for j in 0..<2 {
                for i in 0..<half {
                    let hfRow = h * d + j * half + i, ggufRow = h * d + 2 * i + j
                    let (src, dst) = toGGUF ? (hfRow, ggufRow) : (ggufRow, hfRow)
                    (out.data + dst * cols).update(from: t.data + src * cols, count: cols)
                }
            }
        }
        return out
    }
}
