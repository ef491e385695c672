import Foundation

/// A training step: forward and backward over a batch, split into row shards run by one worker
/// per core, gradients summed.
extension TransformerModel {
    // MARK: Training step

    /// Forward and backward over one batch. Gradients accumulate (+=) into the trainable
    /// tensors scaled by `gradScale` (default 1 / the batch's loss tokens, i.e. the mean loss;
    /// pass 1 / total tokens across micro-batches to accumulate). Returns the summed loss and
    /// the number of loss tokens. `rng` drives LoRA dropout (nil: no dropout) and is advanced.
    ///
    /// The rows (or a padding-free batch's sequences) are split between `BLAS.maxThreads` workers,
    /// each with single-threaded BLAS and its own gradient buffers, summed in worker order
    /// afterwards: on two cores this beats two-threaded BLAS on every layer, whose threads wait
    /// on each other between small products. Dropout masks are drawn per position, so the result
    /// does not depend on the split.
    ///
    /// `rowWeights` (one per sequence: per row of a padded batch) multiplies each sequence's
    /// gradient: the gradient taken is that of Σ weight · scale · (sequence's summed loss); DPO
    /// passes −∂L/∂logp per sequence.
    public func forwardBackward(_ batch: TrainingBatch, gradScale: Float? = nil, rowWeights: [Float]? = nil,
                                rng: inout RandomGenerator?) throws -> (lossSum: Double, tokens: Int) {
        let r = try forwardBackwardRows(batch, gradScale: gradScale, rowWeights: rowWeights, rng: &rng)
        return (r.rowLossSums.reduce(0, +), r.tokens)
    }

    /// As `forwardBackward`, with each sequence's summed loss (−Σ log p over its loss tokens):
    /// one per row of a padded batch, one per packed sequence of a padding-free one.
    public func forwardBackwardRows(_ batch: TrainingBatch, gradScale: Float? = nil, rowWeights: [Float]? = nil,
                                    rng: inout RandomGenerator?) throws -> (rowLossSums: [Double], tokens: Int) {
        try checkTrainingBatch(batch)
        let tokens = batch.lossTokens
        let scale = gradScale ?? (tokens > 0 ? 1 / Float(tokens) : 0)
        if let w = rowWeights, w.count != batch.sequenceCount {
            throw ModelError("\(w.count) row weights for a batch of \(batch.sequenceCount) sequences")
        }
        let dropout = rng.map { DropoutStream(base: $0, firstRow: 0) }
        if rng != nil { _ = rng!.next() }
        let sums = try perShard(shards(batch)) { w, shard, grads in
            let weights = rowWeights.map { Array($0[shard.firstSequence..<(shard.firstSequence + shard.batch.sequenceCount)]) }
            return try shardForwardBackward(shard, scale: scale, rowWeights: weights, dropout: dropout, grads: grads, arena: arenas[w])
        }
        return (sums.flatMap { $0 }, tokens)
    }

    /// Checks a training batch's shape: labels like the ids, ids in the vocabulary, packed
    /// sequences non-empty and inside their row. Makes the RoPE table long enough.
    func checkTrainingBatch(_ batch: TrainingBatch) throws {
        let (B, T) = try checkBatch(batch.inputIDs, batch.attentionMask)
        guard batch.labels.count == B, batch.labels.allSatisfy({ $0.count == T }) else {
            throw ModelError("labels must have the shape of the input ids (\(B) × \(T))")
        }
        for row in batch.inputIDs { for id in row where id < 0 || id >= config.vocabSize {
            throw ModelError("token id \(id) is outside the vocabulary (size \(config.vocabSize))")
        } }
        if let seqs = batch.sequences {
            guard seqs.count == B, batch.attentionMask == nil,
                  seqs.allSatisfy({ $0.allSatisfy { $0 > 0 } && $0.reduce(0, +) <= T }) else {
                throw ModelError("a padding-free batch needs one list of positive sequence lengths per row, each summing to at most the row's length (\(T)), and no attention mask")
            }
        }
        ensureRope(T)
    }

    /// One worker's part of a batch: whole rows of a padded batch, or a run of whole sequences of a
    /// padding-free one (one row, split where the tokens balance). `firstToken` numbers its first
    /// position in the batch (dropout masks are drawn per position).
    struct Shard {
        let batch: TrainingBatch
        let firstSequence: Int
        let firstToken: Int
    }

    /// The batch cut into at most `maxWorkers` shards, in order.
    func shards(_ batch: TrainingBatch, maxWorkers: Int = BLAS.maxThreads) -> [Shard] {
        let B = batch.inputIDs.count, T = batch.inputIDs[0].count
        guard batch.sequences != nil else {
            let workers = max(1, min(maxWorkers, B))
            return (0..<workers).map { w in
                let rows = (w * B / workers)..<((w + 1) * B / workers)
                return Shard(batch: TrainingBatch(inputIDs: Array(batch.inputIDs[rows]), attentionMask: batch.attentionMask.map { Array($0[rows]) },
                                                  labels: Array(batch.labels[rows])),
                             firstSequence: rows.lowerBound, firstToken: rows.lowerBound * T)
            }
        }
        // Every sequence with where it starts in the batch.
        var seqs: [(row: Int, start: Int, length: Int)] = []
        for (b, row) in batch.spans.enumerated() { for sp in row { seqs.append((b, sp.start, sp.length)) } }
        let total = seqs.reduce(0) { $0 + $1.length }, workers = max(1, min(maxWorkers, seqs.count))
        var out: [Shard] = [], i = 0, done = 0
        for w in 0..<workers {
            let first = i, firstToken = done
            // Take sequences while the next one's middle is within this shard's share of the tokens,
            // leaving one per later shard.
            repeat { done += seqs[i].length; i += 1 } while i < seqs.count - (workers - 1 - w)
                && (w == workers - 1 || done + seqs[i].length / 2 <= total * (w + 1) / workers)
            let part = seqs[first..<i]
            out.append(Shard(batch: TrainingBatch(inputIDs: [part.flatMap { batch.inputIDs[$0.row][$0.start..<($0.start + $0.length)] }],
                                                  labels: [part.flatMap { batch.labels[$0.row][$0.start..<($0.start + $0.length)] }],
                                                  sequences: [part.map(\.length)]),
                             firstSequence: first, firstToken: firstToken))
        }
        return out
    }

    /// Runs `body(worker, shard, gradients)` for every shard at once, one worker per shard with
    /// single-threaded BLAS and its own gradient set (worker 0's is the model's), then sums the
    /// gradient sets in worker order. Rethrows the first error.
    func perShard<R>(_ parts: [Shard], _ body: (Int, Shard, GradientBuffers) throws -> R) throws -> [R] {
        while workerGradients.count < parts.count - 1 { workerGradients.append(GradientBuffers(parameters: gradients.parameters)) }
        while arenas.count < parts.count { arenas.append(ActivationArena()) }
        for g in workerGradients.prefix(parts.count - 1) { g.zero() }
        if parts.count == 1 { return [try body(0, parts[0], gradients)] }
        var results = [R?](repeating: nil, count: parts.count)
        try results.withUnsafeMutableBufferPointer { out in
            let out = out
            try BLAS.workers(parts.count) { w in out[w] = try body(w, parts[w], w == 0 ? gradients : workerGradients[w - 1]) }
        }
        for g in workerGradients.prefix(parts.count - 1) { gradients.add(g) }
        return results.map { $0! }
    }

    /// One shard's forward: what the LM head and the backward need.
    final class ShardPass {
        let layout: RowLayout
        let ids: [Int]
        let x: Tensor                  // (N, C) final residual stream
        let acts: [LayerActivations]
        let xf: Tensor, rstdF: Tensor  // final norm output and its rstd
        /// Positions that carry a loss, their normed states (M, C), targets and sequences.
        let active: [Int]
        let xa: Tensor
        let activeTargets: [Int]
        let activeSequences: [Int]
        let sequenceCount: Int
        /// Where its activations live (and the backward's).
        let arena: ActivationArena?

        init(layout: RowLayout, ids: [Int], x: Tensor, acts: [LayerActivations], xf: Tensor, rstdF: Tensor,
             active: [Int], xa: Tensor, activeTargets: [Int], activeSequences: [Int], sequenceCount: Int, arena: ActivationArena?) {
            self.layout = layout; self.ids = ids; self.x = x; self.acts = acts; self.xf = xf; self.rstdF = rstdF
            self.active = active; self.xa = xa; self.activeTargets = activeTargets; self.activeSequences = activeSequences
            self.sequenceCount = sequenceCount; self.arena = arena
        }
    }

    /// Forward over one shard of a batch, keeping the activations (in `arena`, reset first) —
    /// or with `keep: false` (scoring only: no backward will follow) only the last layer's output,
    /// each layer's buffers released for the next.
    func shardForward(_ shard: Shard, dropout: DropoutStream?, arena: ActivationArena? = nil, keep: Bool = true) throws -> ShardPass {
        arena?.reset()
        let batch = shard.batch, layout = RowLayout(batch: batch)
        let ids = batch.inputIDs.flatMap { $0 }
        let targets = batch.targets, sequenceOf = batch.sequenceOfPosition
        let N = layout.B * layout.T, C = config.hiddenSize
        let x = try embedTokens(ids)
        let rowDropout = dropout.map { DropoutStream(base: $0.base, firstRow: shard.firstToken) }
        var acts: [LayerActivations] = []
        let scratch = LayerScratch(N: N, config: config, arena: arena)
        for layer in layers {
            let mark = arena?.mark()
            let a = layerForward(layer, x: x, layout: layout, save: keep, dropout: rowDropout, arena: arena, scratch: scratch)
            if keep { acts.append(a) } else if let m = mark { arena?.release(to: m) }
        }
        let xf = arena.take([N, C]), rstdF = arena.take([N])
        RMSNormOp.forward(out: xf.data, rstd: rstdF.data, inp: x.data, weight: finalNorm.data, N: N, C: C, eps: Float(config.rmsNormEps))
        // Only positions that carry a loss go through the LM head (a masked prompt's logits are never needed).
        let active = (0..<N).filter { targets[$0] != CrossEntropyOp.ignoreIndex }
        let xa = arena.take([max(active.count, 1), C])
        for (i, n) in active.enumerated() { (xa.data + i * C).update(from: xf.data + n * C, count: C) }
        return ShardPass(layout: layout, ids: ids, x: x, acts: acts, xf: xf, rstdF: rstdF, active: active, xa: xa,
                         activeTargets: active.map { targets[$0] }, activeSequences: active.map { sequenceOf[$0] },
                         sequenceCount: batch.sequenceCount, arena: arena)
    }

    /// LM head and cross-entropy over the loss positions, chunked so that the (M, V) logits never
    /// exist at once. Returns each sequence's summed loss; with `grads`, also backpropagates
    /// (scale · sequence weight) into the LM head and returns ∂/∂(loss positions' states), (M, C).
    func lmHeadPass(_ p: ShardPass, scale: Float, rowWeights: [Float]?, grads: GradientBuffers?) -> (rowLoss: [Double], dxa: Tensor?) {
        let C = config.hiddenSize, V = config.vocabSize, M = p.active.count
        let chunk = max(1, min(max(M, 1), (1 << 22) / V))
        let logits = p.arena.take([chunk, V])
        let dxa = grads.map { _ in p.arena.takeZeroed([max(M, 1), C]) }
        let lmGrad = grads?.of(lmHead)
        var rowLoss = [Double](repeating: 0, count: p.sequenceCount)
        p.activeTargets.withUnsafeBufferPointer { tp in
            var r0 = 0
            while r0 < M {
                // One product for the whole chunk (a sequence has few loss positions: a product
                // per sequence would be too thin to run well); losses and weights per sequence.
                let rows = min(chunk, M - r0)
                LinearOp.forward(out: logits.data, inp: p.xa.data + r0 * C, weight: lmHead.data, bias: nil, N: rows, C: C, OC: V)
                var i = 0
                while i < rows {
                    let b = p.activeSequences[r0 + i]
                    var j = i + 1
                    while j < rows, p.activeSequences[r0 + j] == b { j += 1 }
                    rowLoss[b] += CrossEntropyOp.forwardBackward(logits: logits.data + i * V, targets: tp.baseAddress! + r0 + i, N: j - i, V: V,
                                                                 dlogits: dxa == nil ? nil : logits.data + i * V,
                                                                 gradScale: scale * (rowWeights?[b] ?? 1))
                    i = j
                }
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
        let C = config.hiddenSize, N = p.layout.B * p.layout.T
        let dxf = p.arena.takeZeroed([N, C])
        for (i, n) in p.active.enumerated() { (dxf.data + n * C).update(from: dxa.data + i * C, count: C) }
        let dx = p.arena.takeZeroed([N, C])
        RMSNormOp.backward(dinp: dx.data, dweight: grads.of(finalNorm)?.data, dout: dxf.data, inp: p.x.data, weight: finalNorm.data,
                           rstd: p.rstdF.data, N: N, C: C)
        for (layer, a) in zip(layers, p.acts).reversed() {
            layerBackward(layer, a, dx: dx, layout: p.layout, grads: grads, arena: p.arena)
        }
        if let eg = grads.of(embed) {
            for (n, id) in p.ids.enumerated() {
                let g = eg.data + id * C, d = dx.data + n * C
                for c in 0..<C { g[c] += d[c] }
            }
        }
    }

    /// Forward and backward over one shard into one gradient set; each sequence's summed loss.
    func shardForwardBackward(_ shard: Shard, scale: Float, rowWeights: [Float]? = nil,
                              dropout: DropoutStream?, grads: GradientBuffers, arena: ActivationArena? = nil) throws -> [Double] {
        let p = try shardForward(shard, dropout: dropout, arena: arena)
        let (rowLoss, dxa) = lmHeadPass(p, scale: scale, rowWeights: rowWeights, grads: grads)
        shardBackward(p, dxa: dxa!, grads: grads)
        return rowLoss
    }

    /// Each sequence's summed loss (−Σ log p over its loss tokens), forward only: the same workers
    /// and arithmetic as a training step's forward, so a policy and its reference agree to the bit.
    public func rowLossSums(_ batch: TrainingBatch) throws -> [Double] {
        try checkTrainingBatch(batch)
        let saved = (gradients, workerGradients)
        gradients = GradientBuffers(parameters: [])
        workerGradients = []
        defer { (gradients, workerGradients) = saved }
        return try perShard(shards(batch)) { w, shard, _ in
            lmHeadPass(try shardForward(shard, dropout: nil, arena: arenas[w], keep: false), scale: 0, rowWeights: nil, grads: nil).rowLoss
        }.flatMap { $0 }
    }

    /// Forward, then `weights(sequenceLossSums)` chooses each sequence's gradient weight, then
    /// backward — one forward where a caller needs the losses before it can weigh them (DPO).
    /// Same workers and determinism as `forwardBackward`. Returns the sequences' summed losses.
    public func forwardBackward(_ batch: TrainingBatch, gradScale: Float = 1, rng: inout RandomGenerator?,
                                weights: ([Double]) throws -> [Float]) throws -> [Double] {
        try checkTrainingBatch(batch)
        let dropout = rng.map { DropoutStream(base: $0, firstRow: 0) }
        if rng != nil { _ = rng!.next() }
        let parts = shards(batch)
        let saved = (gradients, workerGradients)
        gradients = GradientBuffers(parameters: [])
        workerGradients = []
        let passes = try perShard(parts) { w, shard, _ in
            let p = try shardForward(shard, dropout: dropout, arena: arenas[w])
            return (p, lmHeadPass(p, scale: 0, rowWeights: nil, grads: nil).rowLoss)
        }
        (gradients, workerGradients) = saved
        let rowLoss = passes.flatMap { $0.1 }
        let w = try weights(rowLoss)
        guard w.count == rowLoss.count else { throw ModelError("\(w.count) row weights for a batch of \(rowLoss.count) sequences") }
        _ = try perShard(parts) { k, shard, g in
            let p = passes[k].0
            let (_, dxa) = lmHeadPass(p, scale: gradScale, rowWeights: Array(w[shard.firstSequence..<(shard.firstSequence + p.sequenceCount)]), grads: g)
            shardBackward(p, dxa: dxa!, grads: g)
        }
        return rowLoss
    }
}
