import Foundation

/// The checks that make a bad config.json an error naming the key instead of a crash: every size
/// positive and under `Limits`, numbers finite, token ids inside the vocabulary, and (when the
/// weights are at hand) every size the same as the safetensors header's shapes, all before anything
/// is allocated.
extension ModelConfig {
    /// The largest sizes Cairn accepts: far above any Llama or Qwen2 (Llama 3.1 405B: 126 layers,
    /// hidden 16384, intermediate 53248, vocab 128256; Qwen2.5-1M: 1 010 000 positions), far below
    /// what makes an allocation's size overflow.
    public enum Limits {
        public static let vocabSize = 1 << 24
        public static let hiddenSize = 1 << 16
        public static let intermediateSize = 1 << 20
        public static let numLayers = 4096
        public static let numHeads = 4096
        public static let headDim = 4096
        public static let maxPositionEmbeddings = 1 << 24
    }

    /// Throws a `ModelError` naming `file` and the key of the first size, number or token id that
    /// cannot be right.
    func validate(file: String) throws {
        func bounded(_ key: String, _ value: Int, _ limit: Int, atLeast low: Int = 1) throws {
            guard value >= low && value <= limit else {
                throw ModelError("\(file): key \"\(key)\" is \(value); it must be between \(low) and \(limit)")
            }
        }
        try bounded("vocab_size", vocabSize, Limits.vocabSize)
        try bounded("hidden_size", hiddenSize, Limits.hiddenSize)
        try bounded("intermediate_size", intermediateSize, Limits.intermediateSize)
        try bounded("num_hidden_layers", numLayers, Limits.numLayers)
        try bounded("num_attention_heads", numHeads, Limits.numHeads)
        try bounded("num_key_value_heads", numKVHeads, numHeads)
        try bounded("head_dim", headDim, Limits.headDim)
        try bounded("max_position_embeddings", maxPositionEmbeddings, Limits.maxPositionEmbeddings, atLeast: 2)
        guard numHeads % numKVHeads == 0 else {
            throw ModelError("\(file): num_attention_heads (\(numHeads)) must be a multiple of num_key_value_heads (\(numKVHeads))")
        }
        guard headDim % 2 == 0 else { throw ModelError("\(file): head_dim (\(headDim)) must be even for rotary embeddings") }
        guard rmsNormEps.isFinite && rmsNormEps > 0 else {
            throw ModelError("\(file): key \"rms_norm_eps\" is \(rmsNormEps); it must be a finite number > 0")
        }
        guard ropeTheta.isFinite && ropeTheta > 0 else {
            throw ModelError("\(file): key \"rope_theta\" is \(ropeTheta); it must be a finite number > 0")
        }
        for (key, ids) in [("eos_token_id", eosTokenIDs), ("bos_token_id", bosTokenID.map { [$0] } ?? []),
                           ("pad_token_id", padTokenID.map { [$0] } ?? [])] {
            if let bad = ids.first(where: { $0 < 0 || $0 >= vocabSize }) {
                throw ModelError("\(file): key \"\(key)\" is \(bad), outside the vocabulary (vocab_size \(vocabSize))")
            }
        }
    }

    /// Throws a `ModelError` naming `file` and the keys when the config's sizes are not the shapes
    /// of the weights in `archive` (read from the safetensors headers; no tensor is loaded):
    /// embed_tokens (vocab_size, hidden_size), q_proj (num_attention_heads·head_dim, hidden_size),
    /// k_proj (num_key_value_heads·head_dim, hidden_size), gate_proj (intermediate_size, hidden_size),
    /// and exactly num_hidden_layers layers.
    func check(against archive: SafeTensorsArchive, file: String) throws {
        let weights = archive.path
        func expect(_ name: String, _ shape: [Int], keys: String) throws {
            guard let found = archive.shape(name) else {
                throw ModelError("\(weights): the weights have no tensor '\(name)' that \(file) implies")
            }
            guard found == shape else {
                throw ModelError("\(file): \(keys) give '\(name)' the shape \(shape), but the weights in \(weights) have \(found)")
            }
        }
        let C = hiddenSize
        try expect("model.embed_tokens.weight", [vocabSize, C], keys: "vocab_size and hidden_size")
        var layersInWeights = 0
        for name in archive.names where name.hasPrefix("model.layers.") {
            if let l = Int(name.dropFirst("model.layers.".count).prefix(while: \.isNumber)) { layersInWeights = max(layersInWeights, l + 1) }
        }
        guard layersInWeights == numLayers else {
            throw ModelError("\(file): key \"num_hidden_layers\" is \(numLayers), but the weights in \(weights) have \(layersInWeights) layers")
        }
        try expect("model.layers.0.self_attn.q_proj.weight", [numHeads * headDim, C], keys: "num_attention_heads, head_dim and hidden_size")
        try expect("model.layers.0.self_attn.k_proj.weight", [numKVHeads * headDim, C], keys: "num_key_value_heads, head_dim and hidden_size")
        try expect("model.layers.0.mlp.gate_proj.weight", [intermediateSize, C], keys: "intermediate_size and hidden_size")
    }

    /// Throws a `ModelError` naming `source` when an id of `ids` is not a row of the embedding:
    /// the tokenizer made an id the model's vocabulary (vocab_size in `configFile`) does not have.
    public func checkTokenIDs(_ ids: [Int], source: String, configFile: String, token: (Int) -> String? = { _ in nil }) throws {
        if let bad = ids.first(where: { $0 < 0 || $0 >= vocabSize }) {
            let name = token(bad).map { " (\($0.debugDescription))" } ?? ""
            throw ModelError("\(source): token id \(bad)\(name) is outside the model's vocabulary (vocab_size \(vocabSize) in \(configFile))")
        }
    }
}
