import Foundation

/// What takes gradients.
public enum Trainable: Sendable { case none, lora, full }

/// A batch for training: token ids (B, T), an attention mask (1 = real token, 0 = padding;
/// nil = all real) and labels (B, T) with −100 where no loss is taken. Labels are not yet
/// shifted: position t is scored on predicting labels[t + 1], as in transformers.
public struct TrainingBatch: Sendable {
    public var inputIDs: [[Int]]
    public var attentionMask: [[Int]]?
    public var labels: [[Int]]

    public init(inputIDs: [[Int]], attentionMask: [[Int]]? = nil, labels: [[Int]]) {
        self.inputIDs = inputIDs; self.attentionMask = attentionMask; self.labels = labels
    }

    /// The next-token targets, (B·T): labels shifted left by one, −100 at each row's end.
    var targets: [Int] {
        labels.flatMap { row in (0..<row.count).map { $0 + 1 < row.count ? row[$0 + 1] : CrossEntropyOp.ignoreIndex } }
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
    private(set) var gradients = GradientBuffers(parameters: [])
    /// One more set per extra worker of a data-parallel step, made on first use.
    private var workerGradients: [GradientBuffers] = []
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
            for p in layer.projections where spec.targets.contains(String(p.name.split(separator: ".").last!)) {
                p.lora = LoRAFactors.initialised(inFeatures: p.inFeatures, outFeatures: p.outFeatures, spec: spec, rng: &rng)
            }
        }
        loraSpec = spec
    }

    /// Attaches given LoRA factors by PEFT key (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`).
    public func attachLoRA(_ spec: LoRASpec, weights: [String: Tensor]) throws {
        for layer in layers {
            for p in layer.projections where spec.targets.contains(String(p.name.split(separator: ".").last!)) {
                let keyA = "base_model.model.\(p.name).lora_A.weight", keyB = "base_model.model.\(p.name).lora_B.weight"
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
        layers.flatMap { $0.projections }.compactMap { p in p.lora.map { (p, $0) } }.flatMap { p, l in
            [("base_model.model.\(p.name).lora_A.weight", l.A), ("base_model.model.\(p.name).lora_B.weight", l.B)]
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

    /// What one layer's backward needs. Shapes with N = B·T rows.
    final class LayerActivations {
        let xIn: Tensor          // (N, C) residual stream entering the layer
        let h1: Tensor, rstd1: Tensor   // (N, C), (N)
        let q: Tensor, k: Tensor, v: Tensor  // (N, H·D), (N, KV·D) ×2, after RoPE
        let attn: Tensor, lse: Tensor   // (N, H·D), (B, H, T)
        let x2: Tensor           // (N, C) after the attention residual
        let h2: Tensor, rstd2: Tensor
        let gate: Tensor, up: Tensor, act: Tensor  // (N, I)
        var saved: [String: Projection.Saved] = [:]

        init(xIn: Tensor, h1: Tensor, rstd1: Tensor, q: Tensor, k: Tensor, v: Tensor, attn: Tensor, lse: Tensor,
             x2: Tensor, h2: Tensor, rstd2: Tensor, gate: Tensor, up: Tensor, act: Tensor) {
            self.xIn = xIn; self.h1 = h1; self.rstd1 = rstd1; self.q = q; self.k = k; self.v = v; self.attn = attn
            self.lse = lse; self.x2 = x2; self.h2 = h2; self.rstd2 = rstd2; self.gate = gate; self.up = up; self.act = act
        }
    }

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

    /// One decoder layer over x (N = B·T rows, in place). Returns the activations when `save`.
    /// With a KV cache (B = 1), the T new tokens sit after the cached ones; their keys and
    /// values are appended to the cache of layer `index` and attention reads the whole cache.
    func layerForward(_ layer: DecoderLayer, x: Tensor, B: Int, T: Int, mask: [[Int]]?, save: Bool,
                      dropout: DropoutStream?, cache: KVCache? = nil, index: Int = 0) -> LayerActivations {
        let c = config, N = B * T, C = c.hiddenSize, I = c.intermediateSize
        let H = c.numHeads, KV = c.numKVHeads, D = c.headDim
        let past = cache?.length ?? 0
        let positions = (0..<N).map { past + $0 % T }
        let xIn = save ? x.copy() : x
        let h1 = Tensor(shape: [N, C]), rstd1 = Tensor(shape: [N])
        RMSNormOp.forward(out: h1.data, rstd: rstd1.data, inp: x.data, weight: layer.inputNorm.data, N: N, C: C, eps: Float(c.rmsNormEps))
        let q = Tensor(shape: [N, H * D]), k = Tensor(shape: [N, KV * D]), v = Tensor(shape: [N, KV * D])
        var saved: [String: Projection.Saved] = [:]
        saved[layer.q.name] = layer.q.forward(h1.data, N: N, out: q.data, dropout: dropout)
        saved[layer.k.name] = layer.k.forward(h1.data, N: N, out: k.data, dropout: dropout)
        saved[layer.v.name] = layer.v.forward(h1.data, N: N, out: v.data, dropout: dropout)
        RoPEOp.forward(q.data, positions: positions, nh: H, D: D, table: rope)
        RoPEOp.forward(k.data, positions: positions, nh: KV, D: D, table: rope)
        let attn = Tensor(shape: [N, H * D]), lse = Tensor(shape: [B, H, T])
        if let cache = cache {
            let kc = cache.keys[index], vc = cache.values[index]
            (kc.data + past * KV * D).update(from: k.data, count: T * KV * D)
            (vc.data + past * KV * D).update(from: v.data, count: T * KV * D)
            AttentionOp.forward(out: attn.data, lse: nil, q: q.data, k: kc.data, v: vc.data,
                                shape: AttentionShape(B: 1, Tq: T, Tk: past + T, qOffset: past, H: H, KV: KV, D: D,
                                                      kvBatchStride: cache.capacity * KV * D), keyMask: nil)
        } else {
            AttentionOp.forward(out: attn.data, lse: lse.data, q: q.data, k: k.data, v: v.data,
                                shape: AttentionShape(B: B, Tq: T, Tk: T, H: H, KV: KV, D: D), keyMask: mask)
        }
        let o = Tensor(shape: [N, C])
        saved[layer.o.name] = layer.o.forward(attn.data, N: N, out: o.data, dropout: dropout)
        for i in 0..<x.count { x[i] += o[i] }
        let x2 = save ? x.copy() : x
        let h2 = Tensor(shape: [N, C]), rstd2 = Tensor(shape: [N])
        RMSNormOp.forward(out: h2.data, rstd: rstd2.data, inp: x.data, weight: layer.postNorm.data, N: N, C: C, eps: Float(c.rmsNormEps))
        let gate = Tensor(shape: [N, I]), up = Tensor(shape: [N, I]), act = Tensor(shape: [N, I])
        saved[layer.gate.name] = layer.gate.forward(h2.data, N: N, out: gate.data, dropout: dropout)
        saved[layer.up.name] = layer.up.forward(h2.data, N: N, out: up.data, dropout: dropout)
        SwiGLUOp.forward(out: act.data, gate: gate.data, up: up.data, count: N * I)
        let d = Tensor(shape: [N, C])
        saved[layer.down.name] = layer.down.forward(act.data, N: N, out: d.data, dropout: dropout)
        for i in 0..<x.count { x[i] += d[i] }
        let a = LayerActivations(xIn: xIn, h1: h1, rstd1: rstd1, q: q, k: k, v: v, attn: attn, lse: lse, x2: x2, h2: h2,
                                 rstd2: rstd2, gate: gate, up: up, act: act)
        a.saved = saved
        return a
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
        for layer in layers { _ = layerForward(layer, x: x, B: B, T: T, mask: attentionMask, save: false, dropout: nil) }
        let N = B * T, C = config.hiddenSize, V = config.vocabSize
        let xf = Tensor(shape: [N, C])
        RMSNormOp.forward(out: xf.data, rstd: nil, inp: x.data, weight: finalNorm.data, N: N, C: C, eps: Float(config.rmsNormEps))
        let out = Tensor(shape: [B, T, V])
        LinearOp.forward(out: out.data, inp: xf.data, weight: lmHead.data, bias: nil, N: N, C: C, OC: V)
        return out
    }

    // MARK: Training step

    /// Forward and backward over one batch. Gradients accumulate (+=) into the trainable
    /// tensors scaled by `gradScale` (default 1 / the batch's loss tokens, i.e. the mean loss;
    /// pass 1 / total tokens across micro-batches to accumulate). Returns the summed loss and
    /// the number of loss tokens. `rng` drives LoRA dropout (nil: no dropout) and is advanced.
    ///
    /// The rows are split between `BLAS.maxThreads` workers, each with single-threaded BLAS and
    /// its own gradient buffers, summed in worker order afterwards: on two cores this beats
    /// two-threaded BLAS on every layer, whose threads wait on each other between small products.
    /// Dropout masks are drawn per row, so the result does not depend on the split.
    ///
    /// `rowWeights` (one per batch row) multiplies each row's gradient: the gradient taken is
    /// that of Σ_rows weight · scale · (row's summed loss); DPO passes −∂L/∂logp per sequence.
    public func forwardBackward(_ batch: TrainingBatch, gradScale: Float? = nil, rowWeights: [Float]? = nil,
                                rng: inout RandomGenerator?) throws -> (lossSum: Double, tokens: Int) {
        let r = try forwardBackwardRows(batch, gradScale: gradScale, rowWeights: rowWeights, rng: &rng)
        return (r.rowLossSums.reduce(0, +), r.tokens)
    }

    /// As `forwardBackward`, with each row's summed loss (−Σ log p over its loss tokens).
    public func forwardBackwardRows(_ batch: TrainingBatch, gradScale: Float? = nil, rowWeights: [Float]? = nil,
                                    rng: inout RandomGenerator?) throws -> (rowLossSums: [Double], tokens: Int) {
        let (B, T) = try checkBatch(batch.inputIDs, batch.attentionMask)
        guard batch.labels.count == B, batch.labels.allSatisfy({ $0.count == T }) else {
            throw ModelError("labels must have the shape of the input ids (\(B) × \(T))")
        }
        for row in batch.inputIDs { for id in row where id < 0 || id >= config.vocabSize {
            throw ModelError("token id \(id) is outside the vocabulary (size \(config.vocabSize))")
        } }
        ensureRope(T)
        let tokens = batch.lossTokens
        let scale = gradScale ?? (tokens > 0 ? 1 / Float(tokens) : 0)
        if let w = rowWeights, w.count != B { throw ModelError("\(w.count) row weights for a batch of \(B) rows") }
        let dropout = rng.map { DropoutStream(base: $0, firstRow: 0) }
        if rng != nil { _ = rng!.next() }
        let workers = min(BLAS.maxThreads, B)
        if workers <= 1 {
            return (try shardForwardBackward(batch, T: T, firstRow: 0, scale: scale, rowWeights: rowWeights, dropout: dropout, grads: gradients), tokens)
        }
        while workerGradients.count < workers - 1 { workerGradients.append(GradientBuffers(parameters: gradients.parameters)) }
        for g in workerGradients { g.zero() }
        let bounds = (0...workers).map { $0 * B / workers }
        var sums = [[Double]](repeating: [], count: workers)
        var failure: Error?
        let lock = NSLock()
        BLAS.singleThreaded {
            sums.withUnsafeMutableBufferPointer { out in
                let out = out
                DispatchQueue.concurrentPerform(iterations: workers) { w in
                    let rows = bounds[w]..<bounds[w + 1]
                    let shard = TrainingBatch(inputIDs: Array(batch.inputIDs[rows]), attentionMask: batch.attentionMask.map { Array($0[rows]) },
                                              labels: Array(batch.labels[rows]))
                    do {
                        out[w] = try shardForwardBackward(shard, T: T, firstRow: rows.lowerBound * T, scale: scale,
                                                          rowWeights: rowWeights.map { Array($0[rows]) },
                                                          dropout: dropout, grads: w == 0 ? gradients : workerGradients[w - 1])
                    } catch { lock.lock(); failure = failure ?? error; lock.unlock() }
                }
            }
        }
        if let e = failure { throw e }
        for g in workerGradients.prefix(workers - 1) { gradients.add(g) }
        return (sums.flatMap { $0 }, tokens)
    }

    /// One shard's forward: what the LM head and the backward need.
    final class ShardPass {
        let batch: TrainingBatch
        let B: Int, T: Int
        let ids: [Int]
        let x: Tensor                  // (N, C) final residual stream
        let acts: [LayerActivations]
        let xf: Tensor, rstdF: Tensor  // final norm output and its rstd
        /// Positions that carry a loss, their normed states (M, C) and targets.
        let active: [Int]
        let xa: Tensor
        let activeTargets: [Int]

        init(batch: TrainingBatch, B: Int, T: Int, ids: [Int], x: Tensor, acts: [LayerActivations], xf: Tensor, rstdF: Tensor,
             active: [Int], xa: Tensor, activeTargets: [Int]) {
            self.batch = batch; self.B = B; self.T = T; self.ids = ids; self.x = x; self.acts = acts; self.xf = xf
            self.rstdF = rstdF; self.active = active; self.xa = xa; self.activeTargets = activeTargets
        }
    }

    /// Forward over some rows of a batch, keeping the activations.
    func shardForward(_ batch: TrainingBatch, T: Int, firstRow: Int, dropout: DropoutStream?) throws -> ShardPass {
        let B = batch.inputIDs.count
        let ids = batch.inputIDs.flatMap { $0 }
        let targets = batch.targets
        let N = B * T, C = config.hiddenSize
        let x = try embedTokens(ids)
        let rowDropout = dropout.map { DropoutStream(base: $0.base, firstRow: firstRow) }
        var acts: [LayerActivations] = []
        for layer in layers { acts.append(layerForward(layer, x: x, B: B, T: T, mask: batch.attentionMask, save: true, dropout: rowDropout)) }
        let xf = Tensor(shape: [N, C]), rstdF = Tensor(shape: [N])
        RMSNormOp.forward(out: xf.data, rstd: rstdF.data, inp: x.data, weight: finalNorm.data, N: N, C: C, eps: Float(config.rmsNormEps))
        // Only positions that carry a loss go through the LM head (a masked prompt's logits are never needed).
        let active = (0..<N).filter { targets[$0] != CrossEntropyOp.ignoreIndex }
        let xa = Tensor(shape: [max(active.count, 1), C])
        for (i, n) in active.enumerated() { (xa.data + i * C).update(from: xf.data + n * C, count: C) }
        return ShardPass(batch: batch, B: B, T: T, ids: ids, x: x, acts: acts, xf: xf, rstdF: rstdF, active: active, xa: xa,
                         activeTargets: active.map { targets[$0] })
    }

    /// LM head and cross-entropy over the loss positions, chunked so that the (M, V) logits never
    /// exist at once. Returns each row's summed loss; with `grads`, also backpropagates
    /// (scale · row weight) into the LM head and returns ∂/∂(loss positions' states), (M, C).
    func lmHeadPass(_ p: ShardPass, scale: Float, rowWeights: [Float]?, grads: GradientBuffers?) -> (rowLoss: [Double], dxa: Tensor?) {
        let C = config.hiddenSize, V = config.vocabSize, M = p.active.count
        let chunk = max(1, min(max(M, 1), (1 << 22) / V))
        let logits = Tensor(shape: [chunk, V])
        let dxa = grads.map { _ in Tensor(shape: [max(M, 1), C]) }
        let lmGrad = grads?.of(lmHead)
        var rowLoss = [Double](repeating: 0, count: p.B)
        p.activeTargets.withUnsafeBufferPointer { tp in
            var r0 = 0
            while r0 < M {
                // A chunk never spans two batch rows: losses and weights are per row.
                let b = p.active[r0] / p.T
                var rows = 1
                while rows < chunk, r0 + rows < M, p.active[r0 + rows] / p.T == b { rows += 1 }
                LinearOp.forward(out: logits.data, inp: p.xa.data + r0 * C, weight: lmHead.data, bias: nil, N: rows, C: C, OC: V)
                rowLoss[b] += CrossEntropyOp.forwardBackward(logits: logits.data, targets: tp.baseAddress! + r0, N: rows, V: V,
                                                             dlogits: dxa == nil ? nil : logits.data, gradScale: scale * (rowWeights?[b] ?? 1))
                if let d = dxa {
                    LinearOp.backward(dinp: d.data + r0 * C, dweight: lmGrad?.data, dbias: nil, dout: logits.data,
                                      inp: p.xa.data + r0 * C, weight: lmHead.data, N: rows, C: C, OC: V)
                }
                r0 += rows
            }
        }
        return (rowLoss, dxa)
    }

    /// The rest of the backward, from ∂/∂(loss positions' states) down to the embeddings.
    func shardBackward(_ p: ShardPass, dxa: Tensor, grads: GradientBuffers) {
        let C = config.hiddenSize, N = p.B * p.T
        let dxf = Tensor(shape: [N, C])
        for (i, n) in p.active.enumerated() { (dxf.data + n * C).update(from: dxa.data + i * C, count: C) }
        let dx = Tensor(shape: [N, C])
        RMSNormOp.backward(dinp: dx.data, dweight: grads.of(finalNorm)?.data, dout: dxf.data, inp: p.x.data, weight: finalNorm.data,
                           rstd: p.rstdF.data, N: N, C: C)
        for (layer, a) in zip(layers, p.acts).reversed() {
            layerBackward(layer, a, dx: dx, B: p.B, T: p.T, mask: p.batch.attentionMask, grads: grads)
        }
        if let eg = grads.of(embed) {
            for (n, id) in p.ids.enumerated() {
                let g = eg.data + id * C, d = dx.data + n * C
                for c in 0..<C { g[c] += d[c] }
            }
        }
    }

    /// Forward and backward over some rows of a batch into one gradient set.
    func shardForwardBackward(_ batch: TrainingBatch, T: Int, firstRow: Int, scale: Float, rowWeights: [Float]? = nil,
                              dropout: DropoutStream?, grads: GradientBuffers) throws -> [Double] {
        let p = try shardForward(batch, T: T, firstRow: firstRow, dropout: dropout)
        let (rowLoss, dxa) = lmHeadPass(p, scale: scale, rowWeights: rowWeights, grads: grads)
        shardBackward(p, dxa: dxa!, grads: grads)
        return rowLoss
    }

    /// Each row's summed loss (−Σ log p over its loss tokens), no gradients: the same workers and
    /// arithmetic as a training step, so a policy and its reference agree to the bit.
    public func rowLossSums(_ batch: TrainingBatch) throws -> [Double] {
        var none: RandomGenerator? = nil
        let saved = (gradients, workerGradients)
        gradients = GradientBuffers(parameters: [])
        workerGradients = []
        defer { (gradients, workerGradients) = saved }
        return try forwardBackward(batch, rng: &none) { rows in [Float](repeating: 0, count: rows.count) }
    }

    /// Forward, then `weights(rowLossSums)` chooses each row's gradient weight, then backward —
    /// one forward where a caller needs the losses before it can weigh them (DPO). Same
    /// workers and determinism as `forwardBackward`. Returns the rows' summed losses.
    public func forwardBackward(_ batch: TrainingBatch, gradScale: Float = 1, rng: inout RandomGenerator?,
                                weights: ([Double]) throws -> [Float]) throws -> [Double] {
        let (B, T) = try checkBatch(batch.inputIDs, batch.attentionMask)
        guard batch.labels.count == B, batch.labels.allSatisfy({ $0.count == T }) else {
            throw ModelError("labels must have the shape of the input ids (\(B) × \(T))")
        }
        ensureRope(T)
        let dropout = rng.map { DropoutStream(base: $0, firstRow: 0) }
        if rng != nil { _ = rng!.next() }
        let workers = max(1, min(BLAS.maxThreads, B))
        while workerGradients.count < workers - 1 { workerGradients.append(GradientBuffers(parameters: gradients.parameters)) }
        for g in workerGradients { g.zero() }
        let bounds = (0...workers).map { $0 * B / workers }
        var passes = [ShardPass?](repeating: nil, count: workers)
        var losses = [[Double]](repeating: [], count: workers)
        var failure: Error?
        let lock = NSLock()
        func parallel(_ body: (Int) throws -> Void) {
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                do { try body(w) } catch { lock.lock(); failure = failure ?? error; lock.unlock() }
            }
        }
        try BLAS.singleThreaded {
            passes.withUnsafeMutableBufferPointer { ps in
                losses.withUnsafeMutableBufferPointer { ls in
                    let (ps, ls) = (ps, ls)
                    parallel { w in
                        let rows = bounds[w]..<bounds[w + 1]
                        let shard = TrainingBatch(inputIDs: Array(batch.inputIDs[rows]), attentionMask: batch.attentionMask.map { Array($0[rows]) },
                                                  labels: Array(batch.labels[rows]))
                        let p = try shardForward(shard, T: T, firstRow: rows.lowerBound * T, dropout: dropout)
                        ps[w] = p
                        ls[w] = lmHeadPass(p, scale: 0, rowWeights: nil, grads: nil).rowLoss
                    }
                }
            }
            if let e = failure { throw e }
            let rowLoss = losses.flatMap { $0 }
            let w = try weights(rowLoss)
            guard w.count == B else { throw ModelError("\(w.count) row weights for a batch of \(B) rows") }
            parallel { k in
                let p = passes[k]!
                let g = k == 0 ? gradients : workerGradients[k - 1]
                let (_, dxa) = lmHeadPass(p, scale: gradScale, rowWeights: Array(w[bounds[k]..<bounds[k + 1]]), grads: g)
                shardBackward(p, dxa: dxa!, grads: g)
            }
            if let e = failure { throw e }
        }
        for g in workerGradients.prefix(workers - 1) { gradients.add(g) }
        return losses.flatMap { $0 }
    }

    /// Backward through one layer: dx (N, C) holds ∂loss/∂(layer output) and becomes
    /// ∂loss/∂(layer input).
    func layerBackward(_ layer: DecoderLayer, _ a: LayerActivations, dx: Tensor, B: Int, T: Int, mask: [[Int]]?, grads: GradientBuffers) {
        let c = config, N = B * T, C = c.hiddenSize, I = c.intermediateSize
        let H = c.numHeads, KV = c.numKVHeads, D = c.headDim
        // MLP: x_out = x2 + down(silu(gate(h2)) ⊙ up(h2)), h2 = norm(x2)
        let dact = Tensor(shape: [N, I])
        layer.down.backward(dout: dx.data, x: a.act.data, N: N, dx: dact.data, saved: a.saved[layer.down.name], grads: grads)
        let dgate = Tensor(shape: [N, I]), dup = Tensor(shape: [N, I])
        SwiGLUOp.backward(dgate: dgate.data, dup: dup.data, dout: dact.data, gate: a.gate.data, up: a.up.data, count: N * I)
        let dh2 = Tensor(shape: [N, C])
        layer.gate.backward(dout: dgate.data, x: a.h2.data, N: N, dx: dh2.data, saved: a.saved[layer.gate.name], grads: grads)
        layer.up.backward(dout: dup.data, x: a.h2.data, N: N, dx: dh2.data, saved: a.saved[layer.up.name], grads: grads)
        RMSNormOp.backward(dinp: dx.data, dweight: grads.of(layer.postNorm)?.data, dout: dh2.data, inp: a.x2.data,
                           weight: layer.postNorm.data, rstd: a.rstd2.data, N: N, C: C)
        // Attention: x2 = xIn + o(attn(rope(q(h1)), rope(k(h1)), v(h1))), h1 = norm(xIn)
        let dattn = Tensor(shape: [N, H * D])
        layer.o.backward(dout: dx.data, x: a.attn.data, N: N, dx: dattn.data, saved: a.saved[layer.o.name], grads: grads)
        let dq = Tensor(shape: [N, H * D]), dk = Tensor(shape: [N, KV * D]), dv = Tensor(shape: [N, KV * D])
        AttentionOp.backward(dq: dq.data, dk: dk.data, dv: dv.data, dout: dattn.data, out: a.attn.data, lse: a.lse.data,
                             q: a.q.data, k: a.k.data, v: a.v.data, shape: AttentionShape(B: B, Tq: T, Tk: T, H: H, KV: KV, D: D),
                             keyMask: mask)
        let positions = (0..<N).map { $0 % T }
        RoPEOp.backward(dq.data, positions: positions, nh: H, D: D, table: rope)
        RoPEOp.backward(dk.data, positions: positions, nh: KV, D: D, table: rope)
        let dh1 = Tensor(shape: [N, C])
        layer.q.backward(dout: dq.data, x: a.h1.data, N: N, dx: dh1.data, saved: a.saved[layer.q.name], grads: grads)
        layer.k.backward(dout: dk.data, x: a.h1.data, N: N, dx: dh1.data, saved: a.saved[layer.k.name], grads: grads)
        layer.v.backward(dout: dv.data, x: a.h1.data, N: N, dx: dh1.data, saved: a.saved[layer.v.name], grads: grads)
        RMSNormOp.backward(dinp: dx.data, dweight: grads.of(layer.inputNorm)?.data, dout: dh1.data, inp: a.xIn.data,
                           weight: layer.inputNorm.data, rstd: a.rstd1.data, N: N, C: C)
    }
}
