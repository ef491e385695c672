import Foundation

/// One decoder layer, forward beside backward: the activations the backward needs, the forward
/// over the residual stream and the backward through it.
extension TransformerModel {
    /// How a layer's N rows are laid out: each position's RoPE position, and which keys each
    /// query sees — a causal padded batch of B rows of T (`keyMask`), sequences side by side in a
    /// row (`spans`, padding-free), or `newTokens[b]` tokens continuing `caches[b]`, one
    /// sequence after another (generation).
    struct RowLayout {
        let B: Int, T: Int, N: Int
        let positions: [Int]
        var keyMask: [[Int]]? = nil
        var spans: [[(start: Int, length: Int)]]? = nil
        var caches: [KVCache]? = nil
        var newTokens: [Int] = []

        /// A training or scoring batch: padded rows, or padding-free ones when it has `sequences`.
        init(batch: TrainingBatch) {
            B = batch.inputIDs.count; T = batch.inputIDs.first?.count ?? 0; N = B * T
            positions = batch.positions
            if batch.sequences != nil { spans = batch.spans } else { keyMask = batch.attentionMask }
        }

        /// `newTokens[b]` new tokens continuing `caches[b]`, one sequence after another.
        init(caches: [KVCache], newTokens: [Int]) {
            B = caches.count; T = newTokens.max() ?? 0; N = newTokens.reduce(0, +); self.caches = caches; self.newTokens = newTokens
            positions = zip(caches, newTokens).flatMap { c, n in (0..<n).map { c.length + $0 } }
        }

        init(B: Int, T: Int, keyMask: [[Int]]?) {
            self.B = B; self.T = T; N = B * T; self.keyMask = keyMask
            positions = (0..<(B * T)).map { $0 % T }
        }
    }

    /// What one layer's backward needs. Shapes with N = B·T rows. The two norms' outputs, the
    /// attention output and the SwiGLU product are not kept: the backward recomputes them (bit
    /// for bit, about 2% of a step's work) from what is, which saves 40% of a step's activation
    /// memory.
    final class LayerActivations {
        let xIn: Tensor, rstd1: Tensor  // (N, C) residual stream entering the layer, (N)
        let q: Tensor, k: Tensor, v: Tensor  // (N, H·D), (N, KV·D) ×2, after RoPE
        let lse: Tensor                 // (B, H, T)
        let x2: Tensor, rstd2: Tensor   // (N, C) after the attention residual, (N)
        let gate: Tensor, up: Tensor    // (N, I)
        var saved: [String: Projection.Saved] = [:]

        init(xIn: Tensor, rstd1: Tensor, q: Tensor, k: Tensor, v: Tensor, lse: Tensor,
             x2: Tensor, rstd2: Tensor, gate: Tensor, up: Tensor) {
            self.xIn = xIn; self.rstd1 = rstd1; self.q = q; self.k = k; self.v = v
            self.lse = lse; self.x2 = x2; self.rstd2 = rstd2; self.gate = gate; self.up = up
        }
    }

    /// A layer's forward buffers that die inside it — a norm's output (N, C), the attention
    /// output (N, H·D), the SwiGLU product (N, I), a projection's output (N, C) — made once per
    /// pass and reused by every layer.
    struct LayerScratch {
        let h: Tensor, attn: Tensor, act: Tensor, o: Tensor
        init(N: Int, config c: ModelConfig, arena: ActivationArena?) {
            h = arena.take([N, c.hiddenSize]); attn = arena.take([N, c.numHeads * c.headDim])
            act = arena.take([N, c.intermediateSize]); o = arena.take([N, c.hiddenSize])
        }
    }

    /// Attention of a training or scoring pass (padded rows or padding-free sequences): the
    /// forward's and, recomputing it, the backward's.
    func passAttention(out: Tensor, lse: Tensor?, q: Tensor, k: Tensor, v: Tensor, layout: RowLayout) {
        let c = config, H = c.numHeads, KV = c.numKVHeads, D = c.headDim
        if let spans = layout.spans {
            AttentionOp.forward(out: out.data, lse: lse?.data, q: q.data, k: k.data, v: v.data, B: layout.B, T: layout.T, H: H, KV: KV, D: D,
                                spans: spans)
        } else {
            AttentionOp.forward(out: out.data, lse: lse?.data, q: q.data, k: k.data, v: v.data,
                                shape: AttentionShape(B: layout.B, Tq: layout.T, Tk: layout.T, H: H, KV: KV, D: D), keyMask: layout.keyMask)
        }
    }

    /// One decoder layer over x (N = B·T rows, in place). Returns the activations when `save`.
    /// With KV caches, row b's T new tokens sit after the ones cached in `caches[b]`; their keys
    /// and values are appended to its layer `index` and attention reads the whole cache.
    func layerForward(_ layer: DecoderLayer, x: Tensor, layout: RowLayout, save: Bool,
                      dropout: DropoutStream?, index: Int = 0, arena: ActivationArena? = nil,
                      scratch: LayerScratch? = nil) -> LayerActivations {
        let c = config, B = layout.B, T = layout.T, N = layout.N, C = c.hiddenSize, I = c.intermediateSize
        let H = c.numHeads, KV = c.numKVHeads, D = c.headDim
        let positions = layout.positions
        let xIn = save ? arena.copy(x) : x
        let sc = scratch ?? LayerScratch(N: N, config: c, arena: arena)
        let h1 = sc.h, rstd1 = arena.take([N])
        RMSNormOp.forward(out: h1.data, rstd: rstd1.data, inp: x.data, weight: layer.inputNorm.data, N: N, C: C, eps: Float(c.rmsNormEps))
        let q = arena.take([N, H * D]), k = arena.take([N, KV * D]), v = arena.take([N, KV * D])
        var saved: [String: Projection.Saved] = [:]
        saved[layer.q.name] = layer.q.forward(h1.data, N: N, out: q.data, dropout: dropout, arena: arena)
        saved[layer.k.name] = layer.k.forward(h1.data, N: N, out: k.data, dropout: dropout, arena: arena)
        saved[layer.v.name] = layer.v.forward(h1.data, N: N, out: v.data, dropout: dropout, arena: arena)
        RoPEOp.forward(q.data, positions: positions, nh: H, D: D, table: rope)
        RoPEOp.forward(k.data, positions: positions, nh: KV, D: D, table: rope)
        let attn = sc.attn, lse = arena.take([B, H, T])
        if let caches = layout.caches {
            var row = 0
            for (cache, n) in zip(caches, layout.newTokens) {
                let past = cache.length, kc = cache.keys[index], vc = cache.values[index]
                (kc.data + past * KV * D).update(from: k.data + row * KV * D, count: n * KV * D)
                (vc.data + past * KV * D).update(from: v.data + row * KV * D, count: n * KV * D)
                AttentionOp.forward(out: attn.data + row * H * D, lse: nil, q: q.data + row * H * D, k: kc.data, v: vc.data,
                                    shape: AttentionShape(B: 1, Tq: n, Tk: past + n, qOffset: past, H: H, KV: KV, D: D,
                                                          kvBatchStride: cache.capacity * KV * D), keyMask: nil)
                row += n
            }
        } else {
            passAttention(out: attn, lse: lse, q: q, k: k, v: v, layout: layout)
        }
        let o = sc.o
        saved[layer.o.name] = layer.o.forward(attn.data, N: N, out: o.data, dropout: dropout, arena: arena)
        for i in 0..<x.count { x[i] += o[i] }
        let x2 = save ? arena.copy(x) : x
        let h2 = sc.h, rstd2 = arena.take([N])  // h1 is spent
        RMSNormOp.forward(out: h2.data, rstd: rstd2.data, inp: x.data, weight: layer.postNorm.data, N: N, C: C, eps: Float(c.rmsNormEps))
        let gate = arena.take([N, I]), up = arena.take([N, I]), act = sc.act
        saved[layer.gate.name] = layer.gate.forward(h2.data, N: N, out: gate.data, dropout: dropout, arena: arena)
        saved[layer.up.name] = layer.up.forward(h2.data, N: N, out: up.data, dropout: dropout, arena: arena)
        SwiGLUOp.forward(out: act.data, gate: gate.data, up: up.data, count: N * I)
        let d = o  // o is spent: its memory takes the MLP's output
        saved[layer.down.name] = layer.down.forward(act.data, N: N, out: d.data, dropout: dropout, arena: arena)
        for i in 0..<x.count { x[i] += d[i] }
        let a = LayerActivations(xIn: xIn, rstd1: rstd1, q: q, k: k, v: v, lse: lse, x2: x2, rstd2: rstd2, gate: gate, up: up)
        a.saved = saved
        return a
    }

    /// Backward through one layer: dx (N, C) holds ∂loss/∂(layer output) and becomes
    /// ∂loss/∂(layer input).
    func layerBackward(_ layer: DecoderLayer, _ a: LayerActivations, dx: Tensor, layout: RowLayout, grads: GradientBuffers, arena: ActivationArena? = nil) {
        let c = config, B = layout.B, T = layout.T, N = layout.N, C = c.hiddenSize, I = c.intermediateSize
        let H = c.numHeads, KV = c.numKVHeads, D = c.headDim
        let scratch = arena?.mark()
        defer { if let m = scratch { arena?.release(to: m) } }  // the next layer reuses this one's scratch
        // MLP: x_out = x2 + down(silu(gate(h2)) ⊙ up(h2)), h2 = norm(x2); h2 and the product recomputed.
        let eps = Float(c.rmsNormEps)
        let h2 = arena.take([N, C]), act = arena.take([N, I])
        RMSNormOp.forward(out: h2.data, rstd: nil, inp: a.x2.data, weight: layer.postNorm.data, N: N, C: C, eps: eps)
        SwiGLUOp.forward(out: act.data, gate: a.gate.data, up: a.up.data, count: N * I)
        let dact = arena.takeZeroed([N, I])
        layer.down.backward(dout: dx.data, x: act.data, N: N, dx: dact.data, saved: a.saved[layer.down.name], grads: grads, arena: arena)
        let dgate = arena.takeZeroed([N, I]), dup = arena.takeZeroed([N, I])
        SwiGLUOp.backward(dgate: dgate.data, dup: dup.data, dout: dact.data, gate: a.gate.data, up: a.up.data, count: N * I)
        let dh2 = arena.takeZeroed([N, C])
        layer.gate.backward(dout: dgate.data, x: h2.data, N: N, dx: dh2.data, saved: a.saved[layer.gate.name], grads: grads, arena: arena)
        layer.up.backward(dout: dup.data, x: h2.data, N: N, dx: dh2.data, saved: a.saved[layer.up.name], grads: grads, arena: arena)
        RMSNormOp.backward(dinp: dx.data, dweight: grads.of(layer.postNorm)?.data, dout: dh2.data, inp: a.x2.data,
                           weight: layer.postNorm.data, rstd: a.rstd2.data, N: N, C: C)
        // Attention: x2 = xIn + o(attn(rope(q(h1)), rope(k(h1)), v(h1))), h1 = norm(xIn)
        let attn = arena.take([N, H * D])  // recomputed
        passAttention(out: attn, lse: nil, q: a.q, k: a.k, v: a.v, layout: layout)
        let dattn = arena.takeZeroed([N, H * D])
        layer.o.backward(dout: dx.data, x: attn.data, N: N, dx: dattn.data, saved: a.saved[layer.o.name], grads: grads, arena: arena)
        let dq = arena.takeZeroed([N, H * D]), dk = arena.takeZeroed([N, KV * D]), dv = arena.takeZeroed([N, KV * D])
        if let spans = layout.spans {
            AttentionOp.backward(dq: dq.data, dk: dk.data, dv: dv.data, dout: dattn.data, out: attn.data, lse: a.lse.data,
                                 q: a.q.data, k: a.k.data, v: a.v.data, B: B, T: T, H: H, KV: KV, D: D, spans: spans)
        } else {
            AttentionOp.backward(dq: dq.data, dk: dk.data, dv: dv.data, dout: dattn.data, out: attn.data, lse: a.lse.data,
                                 q: a.q.data, k: a.k.data, v: a.v.data, shape: AttentionShape(B: B, Tq: T, Tk: T, H: H, KV: KV, D: D),
                                 keyMask: layout.keyMask)
        }
        RoPEOp.backward(dq.data, positions: layout.positions, nh: H, D: D, table: rope)
        RoPEOp.backward(dk.data, positions: layout.positions, nh: KV, D: D, table: rope)
        let h1 = h2  // spent: it takes norm(xIn), recomputed
        RMSNormOp.forward(out: h1.data, rstd: nil, inp: a.xIn.data, weight: layer.inputNorm.data, N: N, C: C, eps: eps)
        let dh1 = arena.takeZeroed([N, C])
        layer.q.backward(dout: dq.data, x: h1.data, N: N, dx: dh1.data, saved: a.saved[layer.q.name], grads: grads, arena: arena)
        layer.k.backward(dout: dk.data, x: h1.data, N: N, dx: dh1.data, saved: a.saved[layer.k.name], grads: grads, arena: arena)
        layer.v.backward(dout: dv.data, x: h1.data, N: N, dx: dh1.data, saved: a.saved[layer.v.name], grads: grads, arena: arena)
        RMSNormOp.backward(dinp: dx.data, dweight: grads.of(layer.inputNorm)?.data, dout: dh1.data, inp: a.xIn.data,
                           weight: layer.inputNorm.data, rstd: a.rstd1.data, N: N, C: C)
    }
}
