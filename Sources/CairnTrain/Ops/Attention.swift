import Foundation

/// Scaled dot-product attention with grouped KV heads, a causal mask and a key padding mask.
///
/// Shapes (row-major): q and out are (B, Tq, H, D); k and v are (B, Tk, KV, D) with batch stride
/// `kvBatchStride` floats (a KV cache has room for more positions than it holds); query i of a
/// batch sits at position qOffset + i and sees keys j ≤ qOffset + i whose keyMask is 1. Query
/// head h reads KV head h / (H / KV). lse is (B, H, Tq): the log-sum-exp of each softmax row,
/// kept so that backward recomputes the probabilities instead of storing (T, T) per head; a head's
/// row of lse starts `lseStride` floats after the previous one (Tq unless the rows are a slice).
struct AttentionShape {
    let B: Int, Tq: Int, Tk: Int, qOffset: Int, H: Int, KV: Int, D: Int
    let kvBatchStride: Int
    let lseStride: Int
    var scale: Float { 1 / Float(D).squareRoot() }
    var group: Int { H / KV }

    init(B: Int, Tq: Int, Tk: Int, qOffset: Int = 0, H: Int, KV: Int, D: Int, kvBatchStride: Int? = nil, lseStride: Int? = nil) {
        self.B = B; self.Tq = Tq; self.Tk = Tk; self.qOffset = qOffset; self.H = H; self.KV = KV; self.D = D
        self.kvBatchStride = kvBatchStride ?? Tk * KV * D
        self.lseStride = lseStride ?? Tq
    }

    func allowed(_ b: Int, _ i: Int, _ j: Int, _ keyMask: [[Int]]?) -> Bool {
        j <= qOffset + i && (keyMask.map { $0[b][j] != 0 } ?? true)
    }
}

enum AttentionOp {
    /// Query rows per block. Causal attention only needs keys 0 ..< qOffset + i1 for the block
    /// [i0, i1), so blocks skip most of the masked upper triangle (about 3/8 of the work at
    /// T = 256) while staying large enough for BLAS.
    static let queryBlock = 64

    /// Per batch row: nil when every key is allowed, else 1 / 0 per key.
    private static func keyRows(_ keyMask: [[Int]]?, s: AttentionShape) -> [[Int]?] {
        (0..<s.B).map { b in
            guard let m = keyMask?[b], m.prefix(s.Tk).contains(0) else { return nil }
            return m
        }
    }

    /// Prepares one block's score rows (row i of the block at S + (i − i0)·ld, keys 0 ..< kmax)
    /// for the exp: keys past the causal limit and padded keys become −∞.
    @inline(__always)
    private static func maskRow(_ row: UnsafeMutablePointer<Float>, limit: Int, kmax: Int, keys: [Int]?) {
        if let keys { for j in 0..<limit where keys[j] == 0 { row[j] = -.infinity } }
        if limit < kmax { (row + limit).update(repeating: -.infinity, count: kmax - limit) }
    }

    /// Masked softmax of one score row in place (keys 0 ..< kmax); returns its log-sum-exp.
    /// A row with no allowed key becomes all zeros with lse = +∞ (its output is zero).
    @inline(__always)
    private static func softmaxRow(_ row: UnsafeMutablePointer<Float>, limit: Int, kmax: Int, keys: [Int]?) -> Float {
        maskRow(row, limit: limit, kmax: kmax, keys: keys)
        let m = VectorExp.max(row, count: limit)
        if m == -.infinity {
            row.update(repeating: 0, count: kmax)
            return .infinity
        }
        // Summed over the row's own keys only, so the result does not depend on the block's
        // width (a batch padded to another length gives bit-identical probabilities).
        let sum = VectorExp.expInPlace(row, count: limit, shift: m)
        if limit < kmax { (row + limit).update(repeating: 0, count: kmax - limit) }
        let inv = Float(1 / sum)
        for j in 0..<limit { row[j] *= inv }
        return m + Float(Foundation.log(sum))
    }

    /// out = softmax(q·kᵀ/√D + mask) · v.  (BLAS on causal row blocks, one (block, Tk) scratch;
    /// one query row — a generated token — in plain loops, where BLAS's cost per call outweighs
    /// the arithmetic)
    static func forward(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>?, q: UnsafePointer<Float>,
                        k: UnsafePointer<Float>, v: UnsafePointer<Float>, shape s: AttentionShape, keyMask: [[Int]]?) {
        if s.Tq == 1 { return forwardOneQuery(out: out, lse: lse, q: q, k: k, v: v, shape: s, keyMask: keyMask) }
        let bq = Swift.min(queryBlock, s.Tq)
        let S = UnsafeMutablePointer<Float>.allocate(capacity: bq * s.Tk)
        defer { S.deallocate() }
        let qStride = s.H * s.D, kvStride = s.KV * s.D
        let keys = keyRows(keyMask, s: s)
        for b in 0..<s.B {
            for h in 0..<s.H {
                let kh = k + b * s.kvBatchStride + (h / s.group) * s.D
                let vh = v + b * s.kvBatchStride + (h / s.group) * s.D
                for i0 in stride(from: 0, to: s.Tq, by: bq) {
                    let i1 = Swift.min(i0 + bq, s.Tq), rows = i1 - i0
                    let kmax = Swift.min(s.Tk, s.qOffset + i1)
                    let qh = q + b * s.Tq * qStride + i0 * qStride + h * s.D
                    BLAS.sgemm(transA: false, transB: true, m: rows, n: kmax, k: s.D, alpha: s.scale, a: qh, lda: qStride,
                               b: kh, ldb: kvStride, c: S, ldc: kmax)
                    for i in i0..<i1 {
                        let l = softmaxRow(S + (i - i0) * kmax, limit: Swift.min(s.Tk, s.qOffset + i + 1), kmax: kmax, keys: keys[b])
                        lse?[(b * s.H + h) * s.lseStride + i] = l
                    }
                    BLAS.sgemm(transA: false, transB: false, m: rows, n: s.D, k: kmax, a: S, lda: kmax, b: vh, ldb: kvStride,
                               c: out + b * s.Tq * qStride + i0 * qStride + h * s.D, ldc: qStride)
                }
            }
        }
    }

    /// `forward` for Tq = 1: per head, the scores of the allowed keys, their softmax (the same
    /// `softmaxRow`) and the probability-weighted sum of the values.
    private static func forwardOneQuery(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>?, q: UnsafePointer<Float>,
                                        k: UnsafePointer<Float>, v: UnsafePointer<Float>, shape s: AttentionShape, keyMask: [[Int]]?) {
        let limit = Swift.min(s.Tk, s.qOffset + 1)
        let P = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(limit, 1))
        defer { P.deallocate() }
        let qStride = s.H * s.D, kvStride = s.KV * s.D
        let keys = keyRows(keyMask, s: s)
        for b in 0..<s.B {
            for h in 0..<s.H {
                let qh = q + b * qStride + h * s.D, o = out + b * qStride + h * s.D
                let kh = k + b * s.kvBatchStride + (h / s.group) * s.D, vh = v + b * s.kvBatchStride + (h / s.group) * s.D
                for j in 0..<limit { P[j] = s.scale * dot(qh, kh + j * kvStride, s.D) }
                let l = softmaxRow(P, limit: limit, kmax: limit, keys: keys[b])  // not inside `lse?[…] =`: skipped when nil
                lse?[(b * s.H + h) * s.lseStride] = l
                o.update(repeating: 0, count: s.D)
                for j in 0..<limit where P[j] != 0 {
                    let p = P[j], vj = vh + j * kvStride
                    for d in 0..<s.D { o[d] += p * vj[d] }
                }
            }
        }
    }

    /// Σ a[i]·b[i] over 16 lanes at a time (lanes summed at the end), then the tail.
    @inline(__always)
    private static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        typealias V = SIMD16<Float>
        var acc = V(repeating: 0), i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 16 <= n {
            acc += ra.loadUnaligned(fromByteOffset: i * 4, as: V.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: V.self)
            i += 16
        }
        var sum = acc.sum()
        while i < n { sum += a[i] * b[i]; i += 1 }
        return sum
    }

    /// Naive reference of `forward` (double accumulation, no BLAS).
    static func forwardReference(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                 v: UnsafePointer<Float>, shape s: AttentionShape, keyMask: [[Int]]?) {
        let qStride = s.H * s.D, kvStride = s.KV * s.D
        for b in 0..<s.B {
            for h in 0..<s.H {
                let kvh = h / s.group
                for i in 0..<s.Tq {
                    var scores = [Double](repeating: -.infinity, count: s.Tk)
                    for j in 0..<s.Tk where s.allowed(b, i, j, keyMask) {
                        var dot = 0.0
                        for d in 0..<s.D {
                            dot += Double(q[b * s.Tq * qStride + i * qStride + h * s.D + d]) * Double(k[b * s.kvBatchStride + j * kvStride + kvh * s.D + d])
                        }
                        scores[j] = dot * Double(s.scale)
                    }
                    let m = scores.max()!
                    let o = out + b * s.Tq * qStride + i * qStride + h * s.D
                    if m == -.infinity { for d in 0..<s.D { o[d] = 0 }; continue }
                    let e = scores.map { $0 == -.infinity ? 0 : Foundation.exp($0 - m) }
                    let sum = e.reduce(0, +)
                    for d in 0..<s.D {
                        var acc = 0.0
                        for j in 0..<s.Tk where e[j] != 0 { acc += e[j] / sum * Double(v[b * s.kvBatchStride + j * kvStride + kvh * s.D + d]) }
                        o[d] = Float(acc)
                    }
                }
            }
        }
    }

    /// Accumulates dq, dk, dv from dout, recomputing the probabilities from q, k and lse.
    /// With P the probabilities and Dᵢ = Σ_d dOᵢ·Oᵢ: dV += Pᵀ·dO, dS = P ⊙ (dO·Vᵀ − Dᵢ),
    /// dQ += dS·K/√D, dK += dSᵀ·Q/√D.  (BLAS on the same causal row blocks as forward)
    static func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                         dout: UnsafePointer<Float>, out: UnsafePointer<Float>, lse: UnsafePointer<Float>,
                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         shape s: AttentionShape, keyMask: [[Int]]?) {
        let bq = Swift.min(queryBlock, s.Tq)
        let P = UnsafeMutablePointer<Float>.allocate(capacity: bq * s.Tk)
        let dP = UnsafeMutablePointer<Float>.allocate(capacity: bq * s.Tk)
        defer { P.deallocate(); dP.deallocate() }
        let qStride = s.H * s.D, kvStride = s.KV * s.D
        let keys = keyRows(keyMask, s: s)
        for b in 0..<s.B {
            for h in 0..<s.H {
                let kvOff = b * s.kvBatchStride + (h / s.group) * s.D
                let rowLSE = lse + (b * s.H + h) * s.lseStride
                for i0 in stride(from: 0, to: s.Tq, by: bq) {
                    let i1 = Swift.min(i0 + bq, s.Tq), rows = i1 - i0
                    let kmax = Swift.min(s.Tk, s.qOffset + i1)
                    let off = b * s.Tq * qStride + i0 * qStride + h * s.D
                    BLAS.sgemm(transA: false, transB: true, m: rows, n: kmax, k: s.D, alpha: s.scale, a: q + off, lda: qStride,
                               b: k + kvOff, ldb: kvStride, c: P, ldc: kmax)
                    for i in i0..<i1 {
                        let row = P + (i - i0) * kmax, l = rowLSE[i]
                        if !l.isFinite { row.update(repeating: 0, count: kmax); continue }
                        let limit = Swift.min(s.Tk, s.qOffset + i + 1)
                        maskRow(row, limit: limit, kmax: kmax, keys: keys[b])
                        VectorExp.expInPlace(row, count: limit, shift: l)
                        if limit < kmax { (row + limit).update(repeating: 0, count: kmax - limit) }
                    }
                    // dP = dO · Vᵀ
                    BLAS.sgemm(transA: false, transB: true, m: rows, n: kmax, k: s.D, a: dout + off, lda: qStride,
                               b: v + kvOff, ldb: kvStride, c: dP, ldc: kmax)
                    // dV += Pᵀ · dO
                    BLAS.sgemm(transA: true, transB: false, m: kmax, n: s.D, k: rows, a: P, lda: kmax, b: dout + off, ldb: qStride,
                               beta: 1, c: dv + kvOff, ldc: kvStride)
                    // dS = P ⊙ (dP − D), stored in dP
                    for i in 0..<rows {
                        var Di: Float = 0
                        let dOi = dout + off + i * qStride, Oi = out + off + i * qStride
                        for d in 0..<s.D { Di += dOi[d] * Oi[d] }
                        let p = P + i * kmax, g = dP + i * kmax
                        for j in 0..<kmax { g[j] = p[j] * (g[j] - Di) }
                    }
                    BLAS.sgemm(transA: false, transB: false, m: rows, n: s.D, k: kmax, alpha: s.scale, a: dP, lda: kmax,
                               b: k + kvOff, ldb: kvStride, beta: 1, c: dq + off, ldc: qStride)
                    BLAS.sgemm(transA: true, transB: false, m: kmax, n: s.D, k: rows, alpha: s.scale, a: dP, lda: kmax,
                               b: q + off, ldb: qStride, beta: 1, c: dk + kvOff, ldc: kvStride)
                }
            }
        }
    }

    /// Naive reference of `backward` (each query row in double, no BLAS, the probabilities
    /// recomputed from the scores): per query row i with allowed keys j, P = softmax(q·kᵀ/√D),
    /// dP_j = dOᵢ·v_j, Dᵢ = Σ_j P_j·dP_j, dS_j = P_j·(dP_j − Dᵢ); dq_i += Σ_j dS_j·k_j/√D,
    /// dk_j += dS_j·q_i/√D, dv_j += P_j·dOᵢ. A query with no allowed key gets no gradient.
    static func backwardReference(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                  dout: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                  shape s: AttentionShape, keyMask: [[Int]]?) {
        let qStride = s.H * s.D, kvStride = s.KV * s.D
        for b in 0..<s.B {
            for h in 0..<s.H {
                let kvh = h / s.group
                func qi(_ i: Int, _ d: Int) -> Int { b * s.Tq * qStride + i * qStride + h * s.D + d }
                func kj(_ j: Int, _ d: Int) -> Int { b * s.kvBatchStride + j * kvStride + kvh * s.D + d }
                for i in 0..<s.Tq {
                    let keys = (0..<s.Tk).filter { s.allowed(b, i, $0, keyMask) }
                    if keys.isEmpty { continue }
                    let scores = keys.map { j in (0..<s.D).reduce(0.0) { $0 + Double(q[qi(i, $1)]) * Double(k[kj(j, $1)]) } * Double(s.scale) }
                    let m = scores.max()!, e = scores.map { Foundation.exp($0 - m) }, sum = e.reduce(0, +)
                    let P = e.map { $0 / sum }
                    let dP = keys.map { j in (0..<s.D).reduce(0.0) { $0 + Double(dout[qi(i, $1)]) * Double(v[kj(j, $1)]) } }
                    let Di = zip(P, dP).reduce(0.0) { $0 + $1.0 * $1.1 }
                    var dqi = [Double](repeating: 0, count: s.D)
                    for (n, j) in keys.enumerated() {
                        let dS = P[n] * (dP[n] - Di) * Double(s.scale)
                        for d in 0..<s.D {
                            dqi[d] += dS * Double(k[kj(j, d)])
                            dk[kj(j, d)] += Float(dS * Double(q[qi(i, d)]))
                            dv[kj(j, d)] += Float(P[n] * Double(dout[qi(i, d)]))
                        }
                    }
                    for d in 0..<s.D { dq[qi(i, d)] += Float(dqi[d]) }
                }
            }
        }
    }

    // MARK: Padding-free rows

    /// Attention over rows that hold several sequences side by side (TRL's padding-free
    /// batches): q, k, v and out are (B, T, heads, D) and lse (B, H, T) as for a padded batch;
    /// `spans[b]` gives row b's sequences (start, length). Each sequence attends causally within
    /// itself, exactly as if it had a row of its own; positions after the last sequence (padding)
    /// get zero output.
    static func forward(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>?, q: UnsafePointer<Float>,
                        k: UnsafePointer<Float>, v: UnsafePointer<Float>, B: Int, T: Int, H: Int, KV: Int, D: Int,
                        spans: [[(start: Int, length: Int)]]) {
        for b in 0..<B {
            var end = 0
            for sp in spans[b] where sp.length > 0 {
                let (qo, ko) = ((b * T + sp.start) * H * D, (b * T + sp.start) * KV * D)
                forward(out: out + qo, lse: lse.map { $0 + b * H * T + sp.start }, q: q + qo, k: k + ko, v: v + ko,
                        shape: AttentionShape(B: 1, Tq: sp.length, Tk: sp.length, H: H, KV: KV, D: D, lseStride: T), keyMask: nil)
                end = sp.start + sp.length
            }
            if end < T { (out + (b * T + end) * H * D).update(repeating: 0, count: (T - end) * H * D) }
        }
    }

    /// Backward of the padding-free `forward`: each sequence's gradients from its own block.
    static func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                         dout: UnsafePointer<Float>, out: UnsafePointer<Float>, lse: UnsafePointer<Float>,
                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, B: Int, T: Int, H: Int, KV: Int, D: Int,
                         spans: [[(start: Int, length: Int)]]) {
        for b in 0..<B {
            for sp in spans[b] where sp.length > 0 {
                let (qo, ko) = ((b * T + sp.start) * H * D, (b * T + sp.start) * KV * D)
                backward(dq: dq + qo, dk: dk + ko, dv: dv + ko, dout: dout + qo, out: out + qo, lse: lse + b * H * T + sp.start,
                         q: q + qo, k: k + ko, v: v + ko,
                         shape: AttentionShape(B: 1, Tq: sp.length, Tk: sp.length, H: H, KV: KV, D: D, lseStride: T), keyMask: nil)
            }
        }
    }
}
