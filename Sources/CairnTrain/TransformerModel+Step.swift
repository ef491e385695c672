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
}
