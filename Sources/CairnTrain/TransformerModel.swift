import Foundation

/// What takes gradients.
public enum Trainable: Sendable { case none, lora, full }

/// A batch for training: token ids (B, T), an attention mask (1 = real token, 0 = padding;
/// nil = all real) and labels (B, T) with −100 where no loss is taken. Labels are not yet
/// shifted: position t is scored on predicting labels[t + 1], as in transformers.
///
/// A row holds one sequence, or with `sequences` several side by side (TRL's padding-free
/// batches): `sequences[b]` lists the lengths of row b's sequences in order, summing to at most T
/// (the rest is padding). Positions restart at each sequence, attention stays inside it, and no
/// loss is taken across a boundary, so each sequence is scored as if it had a row of its own.
/// Losses and row weights are per sequence, in row order.
public struct TrainingBatch: Sendable {
    public var inputIDs: [[Int]]
    public var attentionMask: [[Int]]?
    public var labels: [[Int]]
    public var sequences: [[Int]]?

    public init(inputIDs: [[Int]], attentionMask: [[Int]]? = nil, labels: [[Int]], sequences: [[Int]]? = nil) {
        self.inputIDs = inputIDs; self.attentionMask = attentionMask; self.labels = labels; self.sequences = sequences
    }

    /// Each row's sequences (start, length), padding excluded: one per row without `sequences`.
    var spans: [[(start: Int, length: Int)]] {
        guard let seqs = sequences else {
            return inputIDs.indices.map { b in [(0, attentionMask.map { $0[b].reduce(0, +) } ?? inputIDs[b].count)] }
        }
        return seqs.map { lengths in
            var start = 0
            return lengths.map { l in defer { start += l }; return (start, l) }
        }
    }

    /// The length of every sequence, in row order.
    public var sequenceLengths: [Int] { spans.flatMap { $0.map(\.length) } }

    /// The number of sequences (losses and row weights come one per sequence).
    public var sequenceCount: Int { sequences.map { $0.reduce(0) { $0 + $1.count } } ?? inputIDs.count }

    /// The next-token targets, (B·T): labels shifted left by one, −100 at each sequence's end.
    var targets: [Int] {
        guard sequences != nil else {
            return labels.flatMap { row in (0..<row.count).map { $0 + 1 < row.count ? row[$0 + 1] : CrossEntropyOp.ignoreIndex } }
        }
        var out = [Int](repeating: CrossEntropyOp.ignoreIndex, count: inputIDs.count * (inputIDs.first?.count ?? 0))
        let T = inputIDs.first?.count ?? 0
        for (b, row) in spans.enumerated() {
            for s in row where s.length > 1 {
                for t in s.start..<(s.start + s.length - 1) { out[b * T + t] = labels[b][t + 1] }
            }
        }
        return out
    }

    /// Each position's sequence index (B·T); padding takes the index of its row's last sequence.
    var sequenceOfPosition: [Int] {
        let T = inputIDs.first?.count ?? 0
        var out = [Int](), k = 0
        for row in spans {
            var r = [Int](repeating: k + max(row.count, 1) - 1, count: T)
            for s in row { for t in s.start..<(s.start + s.length) { r[t] = k }; k += 1 }
            if row.isEmpty { k += 1 }
            out += r
        }
        return out
    }

    /// Each position's RoPE position (B·T): its index within its sequence.
    var positions: [Int] {
        let T = inputIDs.first?.count ?? 0
        guard sequences != nil else { return (0..<(inputIDs.count * T)).map { $0 % T } }
        var out = [Int]()
        for row in spans {
            var r = Array(0..<T)
            for s in row { for t in s.start..<(s.start + s.length) { r[t] = t - s.start } }
            out += r
        }
        return out
    }

    /// Number of positions that carry a loss.
    public var lossTokens: Int { targets.filter { $0 != CrossEntropyOp.ignoreIndex }.count }
}

/// A Llama / Qwen2 decoder in fp32 on OpenBLAS: forward for training and inference, backward
/// for every weight (full-parameter) or for LoRA factors only.
public final class TransformerModel {
    public let config: ModelConfig
    let embed: Tensor              // (V, C)
    let layers: [DecoderLayer]
    let finalNorm: Tensor          // (C)
    /// (V, C); the same tensor as `embed` when tied.
    let lmHead: Tensor
    private(set) var rope: RoPETable
    /// The gradients of the trainable parameters (worker 0's, and the sum after a step).
    var gradients = GradientBuffers(parameters: [])
    /// One more set per extra worker of a data-parallel step, made on first use.
    var workerGradients: [GradientBuffers] = []
    /// Each worker's activations of a training step (worker w uses arenas[w]).
    var arenas: [ActivationArena] = []
    /// The trainable parameters under their names (transformers' or PEFT's).
    private var trainableNames: [(name: String, tensor: Tensor)] = []
    public private(set) var trainable: Trainable = .none
    public private(set) var loraSpec: LoRASpec?

    final class DecoderLayer {
        let inputNorm: Tensor
        let q, k, v, o: Projection
        let postNorm: Tensor
        let gate, up, down: Projection
        var projections: [Projection] { [q, k, v, o, gate, up, down] }

        init(inputNorm: Tensor, q: Projection, k: Projection, v: Projection, o: Projection, postNorm: Tensor,
             gate: Projection, up: Projection, down: Projection) {
            self.inputNorm = inputNorm; self.q = q; self.k = k; self.v = v; self.o = o
            self.postNorm = postNorm; self.gate = gate; self.up = up; self.down = down
        }
    }

    /// Builds the model from named tensors (transformers' names), checking every shape.
    /// `tensor(name, shape)` returns the tensor or throws an error naming it.
    public init(config: ModelConfig, tensor: (String, [Int]) throws -> Tensor) throws {
        self.config = config
        let C = config.hiddenSize, V = config.vocabSize, I = config.intermediateSize
        let q = config.numHeads * config.headDim, kv = config.numKVHeads * config.headDim
        embed = try tensor("model.embed_tokens.weight", [V, C])
        var stream: UInt64 = 0
        func proj(_ name: String, _ out: Int, _ inp: Int, bias: Bool) throws -> Projection {
            stream += 1
            return Projection(name: name, weight: try tensor(name + ".weight", [out, inp]), bias: bias ? try tensor(name + ".bias", [out]) : nil,
                              stream: stream)
        }
        layers = try (0..<config.numLayers).map { l in
            let p = "model.layers.\(l)"
            return DecoderLayer(
                inputNorm: try tensor("\(p).input_layernorm.weight", [C]),
                q: try proj("\(p).self_attn.q_proj", q, C, bias: config.qkvBias),
                k: try proj("\(p).self_attn.k_proj", kv, C, bias: config.qkvBias),
                v: try proj("\(p).self_attn.v_proj", kv, C, bias: config.qkvBias),
                o: try proj("\(p).self_attn.o_proj", C, q, bias: config.oBias),
                postNorm: try tensor("\(p).post_attention_layernorm.weight", [C]),
                gate: try proj("\(p).mlp.gate_proj", I, C, bias: config.mlpBias),
                up: try proj("\(p).mlp.up_proj", I, C, bias: config.mlpBias),
                down: try proj("\(p).mlp.down_proj", C, I, bias: config.mlpBias))
        }
        finalNorm = try tensor("model.norm.weight", [C])
        lmHead = config.tieWordEmbeddings ? embed : try tensor("lm_head.weight", [V, C])
        rope = RoPETable(headDim: config.headDim, theta: config.ropeTheta, positions: min(config.maxPositionEmbeddings, 4096))
    }

    /// A freshly initialised model as transformers initialises one: weights normal(0, 0.02),
    /// norms one, biases zero.
    public static func randomlyInitialised(config: ModelConfig, seed: UInt64) throws -> TransformerModel {
        var rng = RandomGenerator(seed: seed)
        return try TransformerModel(config: config) { name, shape in
            let t = Tensor(shape: shape)
            if name.hasSuffix("norm.weight") {
                for i in 0..<t.count { t[i] = 1 }
            } else if !name.hasSuffix(".bias") {
                for i in 0..<t.count { t[i] = 0.02 * rng.normal() }
            }
            return t
        }
    }

    /// Every weight under its transformers name (lm_head omitted when tied), in a fixed order.
    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        var out: [(String, Tensor)] = [("model.embed_tokens.weight", embed)]
        for (l, layer) in layers.enumerated() {
            out.append(("model.layers.\(l).input_layernorm.weight", layer.inputNorm))
            for p in layer.projections {
                out.append((p.name + ".weight", p.weight))
                if let b = p.bias { out.append((p.name + ".bias", b)) }
            }
            out.append(("model.layers.\(l).post_attention_layernorm.weight", layer.postNorm))
        }
        out.append(("model.norm.weight", finalNorm))
        if !config.tieWordEmbeddings { out.append(("lm_head.weight", lmHead)) }
        return out.sorted { $0.0 < $1.0 }
    }

    // MARK: LoRA and what trains

    /// Adds freshly initialised LoRA factors (A kaiming-uniform, B zero) to the target projections.
    public func addLoRA(_ spec: LoRASpec, seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        for layer in layers {
            for p in layer.projections where spec.targets.contains(p.module) {
                p.lora = LoRAFactors.initialised(inFeatures: p.inFeatures, outFeatures: p.outFeatures, spec: spec, rng: &rng)
            }
        }
        loraSpec = spec
    }

    /// Attaches given LoRA factors by PEFT key (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`).
    public func attachLoRA(_ spec: LoRASpec, weights: [String: Tensor]) throws {
        for (l, layer) in layers.enumerated() {
            for p in layer.projections where spec.targets.contains(p.module) {
                let keyA = PEFTKey.name(layer: l, module: p.module, matrix: "lora_A")
                let keyB = PEFTKey.name(layer: l, module: p.module, matrix: "lora_B")
                guard let A = weights[keyA] else { throw ModelError("adapter has no tensor '\(keyA)'") }
                guard let B = weights[keyB] else { throw ModelError("adapter has no tensor '\(keyB)'") }
                guard A.shape == [spec.rank, p.inFeatures] else {
                    throw ModelError("adapter tensor '\(keyA)' has shape \(A.shape), expected \([spec.rank, p.inFeatures])")
                }
                guard B.shape == [p.outFeatures, spec.rank] else {
                    throw ModelError("adapter tensor '\(keyB)' has shape \(B.shape), expected \([p.outFeatures, spec.rank])")
                }
                p.lora = LoRAFactors(A: A, B: B, scaling: Float(spec.scaling), dropout: Float(spec.dropout))
            }
        }
        loraSpec = spec
    }

    /// Folds every LoRA branch into its base weight, W += scaling · B·A (computed in double),
    /// and removes the adapter. Refuses (changing nothing) when a merged weight would not be finite.
    public func mergeLoRA() throws {
        var merged: [(Projection, Tensor)] = []
        for p in layers.flatMap(\.projections) {
            guard let l = p.lora else { continue }
            let r = l.A.shape[0], out = Tensor(shape: p.weight.shape)
            for o in 0..<p.outFeatures {
                for i in 0..<p.inFeatures {
                    var s = 0.0
                    for k in 0..<r { s += Double(l.B[o * r + k]) * Double(l.A[k * p.inFeatures + i]) }
                    let w = Double(p.weight[o * p.inFeatures + i]) + Double(l.scaling) * s
                    guard w.isFinite else { throw ModelError("merging the adapter into \(p.name).weight gives a non-finite value at [\(o), \(i)]; nothing was merged") }
                    out[o * p.inFeatures + i] = Float(w)
                }
            }
            merged.append((p, out))
        }
        for (p, w) in merged { p.weight.data.update(from: w.data, count: w.count); p.lora = nil }
        loraSpec = nil
        setTrainable(.none)
    }

    /// Runs `body` with every LoRA branch switched off: the base model alone (DPO's reference).
    public func withAdapterDisabled<T>(_ body: () throws -> T) rethrows -> T {
        let projections = layers.flatMap(\.projections)
        for p in projections { p.loraEnabled = false }
        defer { for p in projections { p.loraEnabled = true } }
        return try body()
    }

    /// The LoRA factors under PEFT's key names.
    public func loraWeights() -> [(name: String, tensor: Tensor)] {
        layers.enumerated().flatMap { l, layer in
            layer.projections.compactMap { p in p.lora.map { (p.module, $0) } }.flatMap { module, f in
                [(PEFTKey.name(layer: l, module: module, matrix: "lora_A"), f.A), (PEFTKey.name(layer: l, module: module, matrix: "lora_B"), f.B)]
            }
        }.sorted { $0.0 < $1.0 }
    }

    /// Chooses what takes gradients and allocates (zeroed) gradient tensors for it.
    public func setTrainable(_ mode: Trainable) {
        trainable = mode
        switch mode {
        case .none: trainableNames = []
        case .lora: trainableNames = loraWeights()
        case .full: trainableNames = namedParameters()
        }
        gradients = GradientBuffers(parameters: trainableNames.map(\.tensor))
        workerGradients = []
    }

    /// Every gradient under the name of its parameter: transformers' names (full) or PEFT's (LoRA).
    public func namedGradients() -> [(name: String, tensor: Tensor)] {
        trainableNames.map { ($0.name, gradients.of($0.tensor)!) }
    }

    /// The trainable parameters under their names, in the order of `namedGradients()`.
    public func trainableParameters() -> [(name: String, tensor: Tensor)] { trainableNames }

    public func zeroGradients() { gradients.zero() }

    // MARK: Forward

    func ensureRope(_ positions: Int) {
        if positions > rope.positions {
            rope = RoPETable(headDim: config.headDim, theta: config.ropeTheta, positions: max(positions, 2 * rope.positions))
        }
    }

    /// Embeds the ids into the residual stream x (N, C).
    func embedTokens(_ ids: [Int]) throws -> Tensor {
        let C = config.hiddenSize
        let x = Tensor(shape: [ids.count, C])
        for (n, id) in ids.enumerated() {
            guard id >= 0 && id < config.vocabSize else { throw ModelError("token id \(id) is outside the vocabulary (size \(config.vocabSize))") }
            (x.data + n * C).update(from: embed.data + id * C, count: C)
        }
        return x
    }

    func checkBatch(_ ids: [[Int]], _ mask: [[Int]]?) throws -> (B: Int, T: Int) {
        guard let T = ids.first?.count, T > 0, ids.allSatisfy({ $0.count == T }) else {
            throw ModelError("a batch needs rows of one non-zero length")
        }
        if let m = mask, m.count != ids.count || m.contains(where: { $0.count != T }) {
            throw ModelError("the attention mask must have the shape of the input ids (\(ids.count) × \(T))")
        }
        return (ids.count, T)
    }

    /// Logits (B, T, V) for a batch, no gradients.
    public func logits(inputIDs: [[Int]], attentionMask: [[Int]]? = nil) throws -> Tensor {
        let (B, T) = try checkBatch(inputIDs, attentionMask)
        ensureRope(T)
        let x = try embedTokens(inputIDs.flatMap { $0 })
        let layout = RowLayout(B: B, T: T, keyMask: attentionMask)
        for layer in layers { _ = layerForward(layer, x: x, layout: layout, save: false, dropout: nil) }
        let N = B * T, C = config.hiddenSize, V = config.vocabSize
        let xf = Tensor(shape: [N, C])
        RMSNormOp.forward(out: xf.data, rstd: nil, inp: x.data, weight: finalNorm.data, N: N, C: C, eps: Float(config.rmsNormEps))
        let out = Tensor(shape: [B, T, V])
        LinearOp.forward(out: out.data, inp: xf.data, weight: lmHead.data, bias: nil, N: N, C: C, OC: V)
        return out
    }

}
