import Foundation
import Testing
@testable import CairnTrain

/// Random tensor with entries uniform in [-1, 1).
func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var g = RandomGenerator(seed: seed)
    let t = Tensor(shape: shape)
    for i in 0..<t.count { t[i] = g.uniform(-scale, scale) }
    return t
}

/// Σ w·out in double: the scalar whose gradient w.r.t. out is w.
func weightedSum(_ out: Tensor, _ w: Tensor) -> Double {
    var s = 0.0
    for i in 0..<out.count { s += Double(out[i]) * Double(w[i]) }
    return s
}

/// Central finite differences of `loss` w.r.t. a few entries of `x`, against `analytic`.
func expectFiniteDifferences(_ x: Tensor, analytic: Tensor, samples: Int = 12, eps: Float = 1e-2, seed: UInt64 = 5,
                             _ what: String, sourceLocation: SourceLocation = #_sourceLocation, loss: () -> Double) {
    var g = RandomGenerator(seed: seed)
    for _ in 0..<samples {
        let i = Int(g.next() % UInt64(x.count))
        let saved = x[i]
        x[i] = saved + eps; let lp = loss()
        x[i] = saved - eps; let lm = loss()
        x[i] = saved
        let numeric = (lp - lm) / Double(2 * eps)
        let a = Double(analytic[i])
        let ok = abs(numeric - a) <= 2e-3 + 2e-2 * max(abs(numeric), abs(a))
        #expect(ok, "\(what)[\(i)]: analytic \(a), numeric \(numeric)", sourceLocation: sourceLocation)
    }
}

@Suite("Ops: BLAS paths against naive references, backward against finite differences")
struct OpGradientTests {
    @Test func linearMatchesReferenceAndFiniteDifferences() {
        let N = 5, C = 7, OC = 40
        let x = randomTensor([N, C], seed: 1), w = randomTensor([OC, C], seed: 2), b = randomTensor([OC], seed: 3)
        let out = Tensor(shape: [N, OC]), ref = Tensor(shape: [N, OC])
        LinearOp.forward(out: out.data, inp: x.data, weight: w.data, bias: b.data, N: N, C: C, OC: OC)
        LinearOp.forwardReference(out: ref.data, inp: x.data, weight: w.data, bias: b.data, N: N, C: C, OC: OC)
        #expect(out.maxAbsDifference(ref) < 1e-5)
        let dout = randomTensor([N, OC], seed: 4)
        let dx = Tensor(shape: [N, C]), dw = Tensor(shape: [OC, C]), db = Tensor(shape: [OC])
        let dxR = Tensor(shape: [N, C]), dwR = Tensor(shape: [OC, C]), dbR = Tensor(shape: [OC])
        LinearOp.backward(dinp: dx.data, dweight: dw.data, dbias: db.data, dout: dout.data, inp: x.data, weight: w.data, N: N, C: C, OC: OC)
        LinearOp.backwardReference(dinp: dxR.data, dweight: dwR.data, dbias: dbR.data, dout: dout.data, inp: x.data, weight: w.data, N: N, C: C, OC: OC)
        #expect(dx.maxAbsDifference(dxR) < 1e-4 && dw.maxAbsDifference(dwR) < 1e-4 && db.maxAbsDifference(dbR) < 1e-4)
        let loss = { () -> Double in
            let o = Tensor(shape: [N, OC])
            LinearOp.forward(out: o.data, inp: x.data, weight: w.data, bias: b.data, N: N, C: C, OC: OC)
            return weightedSum(o, dout)
        }
        expectFiniteDifferences(x, analytic: dx, "dx", loss: loss)
        expectFiniteDifferences(w, analytic: dw, "dw", loss: loss)
        expectFiniteDifferences(b, analytic: db, "db", loss: loss)
    }

    /// One row (a generated token) takes sgemv instead of sgemm: same result, also when accumulating
    /// (a LoRA branch adds into the base projection's output) and on a shape big enough for threads.
    @Test func linearOneRowMatchesReference() {
        for (C, OC) in [(7, 40), (576, 1536)] {
            let x = randomTensor([1, C], seed: 21), w = randomTensor([OC, C], seed: 22), b = randomTensor([OC], seed: 23)
            let out = Tensor(shape: [1, OC]), ref = Tensor(shape: [1, OC])
            LinearOp.forward(out: out.data, inp: x.data, weight: w.data, bias: b.data, N: 1, C: C, OC: OC)
            LinearOp.forwardReference(out: ref.data, inp: x.data, weight: w.data, bias: b.data, N: 1, C: C, OC: OC)
            #expect(out.maxAbsDifference(ref) < 1e-4)
            let acc = randomTensor([1, OC], seed: 24), expected = Tensor(shape: [1, OC])
            LinearOp.forwardReference(out: expected.data, inp: x.data, weight: w.data, bias: nil, N: 1, C: C, OC: OC)
            for i in 0..<OC { expected[i] += acc[i] }
            LinearOp.forward(out: acc.data, inp: x.data, weight: w.data, bias: nil, N: 1, C: C, OC: OC, accumulate: true)
            #expect(acc.maxAbsDifference(expected) < 1e-4)
        }
    }

    /// A few rows against a wide weight (a decode step of several sequences) take the split
    /// between workers: same result as the reference, with and without accumulating, bias added.
    @Test func linearFewRowsMatchesReference() {
        let N = 5, C = 9, OC = 3 * LinearOp.splitBlock + 7
        let x = randomTensor([N, C], seed: 31), w = randomTensor([OC, C], seed: 32), b = randomTensor([OC], seed: 33)
        let out = Tensor(shape: [N, OC]), ref = Tensor(shape: [N, OC])
        LinearOp.forward(out: out.data, inp: x.data, weight: w.data, bias: b.data, N: N, C: C, OC: OC)
        LinearOp.forwardReference(out: ref.data, inp: x.data, weight: w.data, bias: b.data, N: N, C: C, OC: OC)
        #expect(out.maxAbsDifference(ref) < 1e-4)
        let acc = randomTensor([N, OC], seed: 34), expected = Tensor(shape: [N, OC])
        LinearOp.forwardReference(out: expected.data, inp: x.data, weight: w.data, bias: nil, N: N, C: C, OC: OC)
        for i in 0..<expected.count { expected[i] += acc[i] }
        LinearOp.forward(out: acc.data, inp: x.data, weight: w.data, bias: nil, N: N, C: C, OC: OC, accumulate: true)
        #expect(acc.maxAbsDifference(expected) < 1e-4)
    }

    @Test func rmsnormBackward() {
        let N = 4, C = 16
        let x = randomTensor([N, C], seed: 10), w = randomTensor([C], seed: 11), dout = randomTensor([N, C], seed: 12)
        let out = Tensor(shape: [N, C]), rstd = Tensor(shape: [N])
        RMSNormOp.forward(out: out.data, rstd: rstd.data, inp: x.data, weight: w.data, N: N, C: C, eps: 1e-5)
        let dx = Tensor(shape: [N, C]), dw = Tensor(shape: [C])
        RMSNormOp.backward(dinp: dx.data, dweight: dw.data, dout: dout.data, inp: x.data, weight: w.data, rstd: rstd.data, N: N, C: C)
        let loss = { () -> Double in
            let o = Tensor(shape: [N, C])
            RMSNormOp.forward(out: o.data, rstd: nil, inp: x.data, weight: w.data, N: N, C: C, eps: 1e-5)
            return weightedSum(o, dout)
        }
        expectFiniteDifferences(x, analytic: dx, eps: 1e-3, "dx", loss: loss)
        expectFiniteDifferences(w, analytic: dw, "dw", loss: loss)
    }

    @Test func ropeBackwardIsTheTransposeOfForward() {
        let rows = 6, nh = 3, D = 8
        let table = RoPETable(headDim: D, theta: 10000, positions: 16)
        let positions = [0, 1, 2, 5, 9, 15]
        let x = randomTensor([rows, nh * D], seed: 20), dout = randomTensor([rows, nh * D], seed: 21)
        let dx = dout.copy()
        RoPEOp.backward(dx.data, positions: positions, nh: nh, D: D, table: table)
        expectFiniteDifferences(x, analytic: dx, "dx") {
            let y = x.copy()
            RoPEOp.forward(y.data, positions: positions, nh: nh, D: D, table: table)
            return weightedSum(y, dout)
        }
        // Position 0 is the identity; rotations keep norms.
        let y = x.copy()
        RoPEOp.forward(y.data, positions: positions, nh: nh, D: D, table: table)
        for i in 0..<(nh * D) { #expect(y[i] == x[i]) }
        #expect(abs(weightedSum(y, y) - weightedSum(x, x)) < 1e-3)
    }

    /// The 16-lane SwiGLU against the scalar reference on Foundation.exp (a tail of 7 included).
    @Test func swigluMatchesReference() {
        let n = 16 * 5 + 7
        let g = randomTensor([n], seed: 33, scale: 12), u = randomTensor([n], seed: 34), dout = randomTensor([n], seed: 35)
        let o = Tensor(shape: [n]), oRef = Tensor(shape: [n])
        let dg = Tensor(shape: [n]), du = Tensor(shape: [n]), dgRef = Tensor(shape: [n]), duRef = Tensor(shape: [n])
        SwiGLUOp.forward(out: o.data, gate: g.data, up: u.data, count: n)
        SwiGLUOp.forwardReference(out: oRef.data, gate: g.data, up: u.data, count: n)
        SwiGLUOp.backward(dgate: dg.data, dup: du.data, dout: dout.data, gate: g.data, up: u.data, count: n)
        SwiGLUOp.backwardReference(dgate: dgRef.data, dup: duRef.data, dout: dout.data, gate: g.data, up: u.data, count: n)
        for i in 0..<n {
            #expect(abs(o[i] - oRef[i]) <= 1e-6 * max(1, abs(oRef[i])))
            #expect(abs(dg[i] - dgRef[i]) <= 1e-6 * max(1, abs(dgRef[i])))
            #expect(abs(du[i] - duRef[i]) <= 1e-6 * max(1, abs(duRef[i])))
        }
    }

    @Test func swigluBackward() {
        let n = 30
        let g = randomTensor([n], seed: 30, scale: 3), u = randomTensor([n], seed: 31), dout = randomTensor([n], seed: 32)
        let dg = Tensor(shape: [n]), du = Tensor(shape: [n])
        SwiGLUOp.backward(dgate: dg.data, dup: du.data, dout: dout.data, gate: g.data, up: u.data, count: n)
        let loss = { () -> Double in
            let o = Tensor(shape: [n])
            SwiGLUOp.forward(out: o.data, gate: g.data, up: u.data, count: n)
            return weightedSum(o, dout)
        }
        expectFiniteDifferences(g, analytic: dg, eps: 1e-3, "dgate", loss: loss)
        expectFiniteDifferences(u, analytic: du, eps: 1e-3, "dup", loss: loss)
    }

    /// T = 7 is one query block; T = 150 is three causal blocks of AttentionOp.queryBlock with a
    /// short last one, and row lengths that are not multiples of the 16 exp lanes.
    @Test(arguments: [(4, 4, 7), (4, 2, 7), (4, 1, 7), (2, 1, 150)])
    func attentionMatchesReferenceAndFiniteDifferences(H: Int, KV: Int, T: Int) {
        let B = 2, D = 4, valid = T * 4 / 7
        let s = AttentionShape(B: B, Tq: T, Tk: T, H: H, KV: KV, D: D)
        let mask = [Array(repeating: 1, count: T), Array(repeating: 1, count: valid) + Array(repeating: 0, count: T - valid)]
        let q = randomTensor([B * T, H * D], seed: 40), k = randomTensor([B * T, KV * D], seed: 41), v = randomTensor([B * T, KV * D], seed: 42)
        let out = Tensor(shape: [B * T, H * D]), ref = Tensor(shape: [B * T, H * D]), lse = Tensor(shape: [B, H, T])
        AttentionOp.forward(out: out.data, lse: lse.data, q: q.data, k: k.data, v: v.data, shape: s, keyMask: mask)
        AttentionOp.forwardReference(out: ref.data, q: q.data, k: k.data, v: v.data, shape: s, keyMask: mask)
        #expect(out.maxAbsDifference(ref) < 1e-5)
        let dout = randomTensor([B * T, H * D], seed: 43)
        let dq = Tensor(shape: q.shape), dk = Tensor(shape: k.shape), dv = Tensor(shape: v.shape)
        AttentionOp.backward(dq: dq.data, dk: dk.data, dv: dv.data, dout: dout.data, out: out.data, lse: lse.data,
                             q: q.data, k: k.data, v: v.data, shape: s, keyMask: mask)
        let loss = { () -> Double in
            let o = Tensor(shape: [B * T, H * D])
            AttentionOp.forwardReference(out: o.data, q: q.data, k: k.data, v: v.data, shape: s, keyMask: mask)
            return weightedSum(o, dout)
        }
        expectFiniteDifferences(q, analytic: dq, samples: 20, eps: 1e-3, "dq", loss: loss)
        expectFiniteDifferences(k, analytic: dk, samples: 20, eps: 1e-3, "dk", loss: loss)
        expectFiniteDifferences(v, analytic: dv, samples: 20, eps: 1e-3, "dv", loss: loss)
        // Padded keys get no gradient, and a query never sees a later key.
        for t in valid..<T { for c in 0..<(KV * D) { #expect(dk[(T + t) * KV * D + c] == 0 && dv[(T + t) * KV * D + c] == 0) } }
    }

    /// The BLAS backward against its naive reference: one query block (T = 7) and three causal
    /// blocks with a short last one (T = 150); grouped heads; a batch row whose first key and last
    /// keys are padded (query 0 sees no key: no gradient); queries after a KV cache's offset.
    @Test(arguments: [(4, 4, 7, 0), (4, 2, 7, 0), (4, 1, 7, 0), (2, 1, 150, 0), (4, 2, 3, 5)])
    func attentionBackwardMatchesReference(H: Int, KV: Int, Tq: Int, qOffset: Int) {
        let B = 2, D = 6, Tk = Tq + qOffset, valid = Tk * 4 / 7
        let s = AttentionShape(B: B, Tq: Tq, Tk: Tk, qOffset: qOffset, H: H, KV: KV, D: D)
        let mask = [Array(repeating: 1, count: Tk), [0] + Array(repeating: 1, count: valid - 1) + Array(repeating: 0, count: Tk - valid)]
        let q = randomTensor([B * Tq, H * D], seed: 90), k = randomTensor([B * Tk, KV * D], seed: 91), v = randomTensor([B * Tk, KV * D], seed: 92)
        let dout = randomTensor([B * Tq, H * D], seed: 93)
        let out = Tensor(shape: q.shape), lse = Tensor(shape: [B, H, Tq])
        AttentionOp.forward(out: out.data, lse: lse.data, q: q.data, k: k.data, v: v.data, shape: s, keyMask: mask)
        // Both accumulate into gradients that already hold something.
        let dq = randomTensor(q.shape, seed: 94), dk = randomTensor(k.shape, seed: 95), dv = randomTensor(v.shape, seed: 96)
        let dqR = dq.copy(), dkR = dk.copy(), dvR = dv.copy()
        AttentionOp.backward(dq: dq.data, dk: dk.data, dv: dv.data, dout: dout.data, out: out.data, lse: lse.data,
                             q: q.data, k: k.data, v: v.data, shape: s, keyMask: mask)
        AttentionOp.backwardReference(dq: dqR.data, dk: dkR.data, dv: dvR.data, dout: dout.data,
                                      q: q.data, k: k.data, v: v.data, shape: s, keyMask: mask)
        #expect(dq.maxAbsDifference(dqR) < 1e-4, "dq")
        #expect(dk.maxAbsDifference(dkR) < 1e-4, "dk")
        #expect(dv.maxAbsDifference(dvR) < 1e-4, "dv")
    }

    @Test func attentionWithAKVCacheOffsetMatchesTheFullComputation() {
        // The last 2 queries against 6 cached keys equal the last 2 rows of the full causal pass.
        let T = 6, H = 2, KV = 1, D = 4
        let q = randomTensor([T, H * D], seed: 50), k = randomTensor([T, KV * D], seed: 51), v = randomTensor([T, KV * D], seed: 52)
        let full = Tensor(shape: [T, H * D])
        AttentionOp.forward(out: full.data, lse: nil, q: q.data, k: k.data, v: v.data, shape: AttentionShape(B: 1, Tq: T, Tk: T, H: H, KV: KV, D: D), keyMask: nil)
        let tail = Tensor(shape: [2, H * D])
        AttentionOp.forward(out: tail.data, lse: nil, q: q.data + 4 * H * D, k: k.data, v: v.data,
                            shape: AttentionShape(B: 1, Tq: 2, Tk: T, qOffset: 4, H: H, KV: KV, D: D), keyMask: nil)
        for i in 0..<(2 * H * D) { #expect(abs(tail[i] - full[4 * H * D + i]) < 1e-6) }
    }

    /// A generated token (Tq = 1) takes the plain-loop path: against the naive reference, with a
    /// KV cache's batch stride, grouped heads, D = 64 (whole SIMD lanes) and D = 6 (a tail), a key mask.
    @Test func attentionOneQueryMatchesReference() {
        for (D, mask) in [(64, nil), (6, [[1, 0, 1, 1, 1, 1, 0, 0]])] as [(Int, [[Int]]?)] {
            let Tk = 6, cap = 8, H = 4, KV = 2
            let q = randomTensor([1, H * D], seed: 70), k = randomTensor([cap, KV * D], seed: 71), v = randomTensor([cap, KV * D], seed: 72)
            let s = AttentionShape(B: 1, Tq: 1, Tk: Tk, qOffset: Tk - 1, H: H, KV: KV, D: D, kvBatchStride: cap * KV * D)
            let out = Tensor(shape: [1, H * D]), ref = Tensor(shape: [1, H * D])
            AttentionOp.forward(out: out.data, lse: nil, q: q.data, k: k.data, v: v.data, shape: s, keyMask: mask)
            AttentionOp.forwardReference(out: ref.data, q: q.data, k: k.data, v: v.data, shape: s, keyMask: mask)
            #expect(out.maxAbsDifference(ref) < 1e-5, "D \(D)")
        }
    }

    /// Padding-free rows: sequences side by side in one row give what each gives in a row of its
    /// own — outputs, lse and all three gradients — and padding after them gets zero output; the
    /// gradients are also those of the naive backward reference.
    @Test func attentionOverSequencesSideBySideMatchesSeparateRows() {
        let lengths = [5, 70, 3], T = 80, H = 4, KV = 2, D = 8
        let q = randomTensor([T, H * D], seed: 80), k = randomTensor([T, KV * D], seed: 81), v = randomTensor([T, KV * D], seed: 82)
        let dout = randomTensor([T, H * D], seed: 83)
        var spans: [(start: Int, length: Int)] = [], start = 0
        for l in lengths { spans.append((start, l)); start += l }
        let out = Tensor(shape: [T, H * D]), lse = Tensor(shape: [H, T])
        AttentionOp.forward(out: out.data, lse: lse.data, q: q.data, k: k.data, v: v.data, B: 1, T: T, H: H, KV: KV, D: D, spans: [spans])
        let dq = Tensor(shape: [T, H * D]), dk = Tensor(shape: [T, KV * D]), dv = Tensor(shape: [T, KV * D])
        AttentionOp.backward(dq: dq.data, dk: dk.data, dv: dv.data, dout: dout.data, out: out.data, lse: lse.data, q: q.data, k: k.data,
                             v: v.data, B: 1, T: T, H: H, KV: KV, D: D, spans: [spans])
        for (s0, L) in spans {
            let sh = AttentionShape(B: 1, Tq: L, Tk: L, H: H, KV: KV, D: D)
            let o = Tensor(shape: [L, H * D]), l = Tensor(shape: [H, L])
            let (qo, ko) = (s0 * H * D, s0 * KV * D)
            AttentionOp.forward(out: o.data, lse: l.data, q: q.data + qo, k: k.data + ko, v: v.data + ko, shape: sh, keyMask: nil)
            let gq = Tensor(shape: [L, H * D]), gk = Tensor(shape: [L, KV * D]), gv = Tensor(shape: [L, KV * D])
            AttentionOp.backward(dq: gq.data, dk: gk.data, dv: gv.data, dout: dout.data + qo, out: o.data, lse: l.data, q: q.data + qo,
                                 k: k.data + ko, v: v.data + ko, shape: sh, keyMask: nil)
            for i in 0..<(L * H * D) { #expect(out[qo + i] == o[i] && dq[qo + i] == gq[i]) }
            for i in 0..<(L * KV * D) { #expect(dk[ko + i] == gk[i] && dv[ko + i] == gv[i]) }
            for h in 0..<H { for i in 0..<L { #expect(lse[h * T + s0 + i] == l[h * L + i]) } }
        }
        for i in (start * H * D)..<(T * H * D) { #expect(out[i] == 0) }
        // And the gradients are the naive reference's, run on each sequence alone.
        let dqR = Tensor(shape: dq.shape), dkR = Tensor(shape: dk.shape), dvR = Tensor(shape: dv.shape)
        for (s0, L) in spans {
            let (qo, ko) = (s0 * H * D, s0 * KV * D)
            AttentionOp.backwardReference(dq: dqR.data + qo, dk: dkR.data + ko, dv: dvR.data + ko, dout: dout.data + qo,
                                          q: q.data + qo, k: k.data + ko, v: v.data + ko,
                                          shape: AttentionShape(B: 1, Tq: L, Tk: L, H: H, KV: KV, D: D), keyMask: nil)
        }
        #expect(dq.maxAbsDifference(dqR) < 1e-4 && dk.maxAbsDifference(dkR) < 1e-4 && dv.maxAbsDifference(dvR) < 1e-4)
    }

    @Test func crossEntropyGradientAndIgnoredRows() {
        let N = 3, V = 11
        let logits = randomTensor([N, V], seed: 60, scale: 3)
        let targets = [4, CrossEntropyOp.ignoreIndex, 10]
        let d = Tensor(shape: [N, V])
        let total = targets.withUnsafeBufferPointer {
            CrossEntropyOp.forwardBackward(logits: logits.data, targets: $0.baseAddress!, N: N, V: V, dlogits: d.data, gradScale: 0.5)
        }
        let lp = CrossEntropyOp.logProbs(logits: logits.data, targets: targets, V: V)
        #expect(abs(total + lp[0] + lp[2]) < 1e-9)
        for j in 0..<V { #expect(d[V + j] == 0) }
        let dd = Tensor(shape: [N, V]); for i in 0..<dd.count { dd[i] = d[i] }
        expectFiniteDifferences(logits, analytic: dd, eps: 1e-3, "dlogits") {
            0.5 * targets.withUnsafeBufferPointer {
                CrossEntropyOp.forwardBackward(logits: logits.data, targets: $0.baseAddress!, N: N, V: V, dlogits: nil, gradScale: 0)
            }
        }
    }
}
