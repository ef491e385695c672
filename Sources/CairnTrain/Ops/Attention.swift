import Foundation

/// Scaled dot-product attention with grouped KV heads, a causal mask and a key padding mask.
///
/// Shapes (row-major): q and out are (B, Tq, H, D); k and v are (B, Tk, KV, D) with batch stride
/// `kvBatchStride` floats (a KV cache has room for more positions than it holds); query i of a
/// batch sits at position qOffset + i and sees keys j ≤ qOffset + i whose keyMask is 1. Query
/// head h reads KV head h / (H / KV). lse is (B, H, Tq): the log-sum-exp of each softmax row,
/// kept so that backward recomputes the probabilities instead of storing (T, T) per head.
struct AttentionShape {
    let B: Int, Tq: Int, Tk: Int, qOffset: Int, H: Int, KV: Int, D: Int
    let kvBatchStride: Int
    var scale: Float { 1 / Float(D).squareRoot() }
    var group: Int { H / KV }

    init(B: Int, Tq: Int, Tk: Int, qOffset: Int = 0, H: Int, KV: Int, D: Int, kvBatchStride: Int? = nil) {
        self.B = B; self.Tq = Tq; self.Tk = Tk; self.qOffset = qOffset; self.H = H; self.KV = KV; self.D = D
        self.kvBatchStride = kvBatchStride ?? Tk * KV * D
    }

    func allowed(_ b: Int, _ i: Int, _ j: Int, _ keyMask: [[Int]]?) -> Bool {
        j <= qOffset + i && (keyMask.map { $0[b][j] != 0 } ?? true)
    }
}

enum AttentionOp {
    /// Masked, row-wise softmax of the scores in place; returns nothing, writes lse per row.
    /// A row with no allowed key becomes all zeros with lse = +∞ (its output is zero).
    private static func softmaxRows(_ S: UnsafeMutablePointer<Float>, b: Int, s: AttentionShape, keyMask: [[Int]]?,
                                    lse: UnsafeMutablePointer<Float>?) {
        for i in 0..<s.Tq {
            let row = S + i * s.Tk
            var m = -Float.infinity
            for j in 0..<s.Tk where s.allowed(b, i, j, keyMask) { m = max(m, row[j]) }
            if m == -.infinity {
                for j in 0..<s.Tk { row[j] = 0 }
                lse?[i] = .infinity
                continue
            }
            var sum: Float = 0
            for j in 0..<s.Tk {
                if s.allowed(b, i, j, keyMask) { let e = Foundation.exp(row[j] - m); row[j] = e; sum += e } else { row[j] = 0 }
            }
            let inv = 1 / sum
            for j in 0..<s.Tk { row[j] *= inv }
            lse?[i] = m + Foundation.log(sum)
        }
    }

    /// out = softmax(q·kᵀ/√D + mask) · v.  (BLAS, one (Tq, Tk) scratch at a time)
    static func forward(out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>?, q: UnsafePointer<Float>,
                        k: UnsafePointer<Float>, v: UnsafePointer<Float>, shape s: AttentionShape, keyMask: [[Int]]?) {
        let S = UnsafeMutablePointer<Float>.allocate(capacity: s.Tq * s.Tk)
        defer { S.deallocate() }
        let qStride = s.H * s.D, kvStride = s.KV * s.D
        for b in 0..<s.B {
            for h in 0..<s.H {
                let qh = q + b * s.Tq * qStride + h * s.D
                let kh = k + b * s.kvBatchStride + (h / s.group) * s.D
                let vh = v + b * s.kvBatchStride + (h / s.group) * s.D
                BLAS.sgemm(transA: false, transB: true, m: s.Tq, n: s.Tk, k: s.D, alpha: s.scale, a: qh, lda: qStride,
                           b: kh, ldb: kvStride, c: S, ldc: s.Tk)
                softmaxRows(S, b: b, s: s, keyMask: keyMask, lse: lse.map { $0 + (b * s.H + h) * s.Tq })
                BLAS.sgemm(transA: false, transB: false, m: s.Tq, n: s.D, k: s.Tk, a: S, lda: s.Tk, b: vh, ldb: kvStride,
                           c: out + b * s.Tq * qStride + h * s.D, ldc: qStride)
            }
        }
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
    /// dQ += dS·K/√D, dK += dSᵀ·Q/√D.  (BLAS)
    static func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                         dout: UnsafePointer<Float>, out: UnsafePointer<Float>, lse: UnsafePointer<Float>,
                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         shape s: AttentionShape, keyMask: [[Int]]?) {
        let P = UnsafeMutablePointer<Float>.allocate(capacity: s.Tq * s.Tk)
        let dP = UnsafeMutablePointer<Float>.allocate(capacity: s.Tq * s.Tk)
        defer { P.deallocate(); dP.deallocate() }
        let qStride = s.H * s.D, kvStride = s.KV * s.D
        for b in 0..<s.B {
            for h in 0..<s.H {
                let off = b * s.Tq * qStride + h * s.D
                let kvOff = b * s.kvBatchStride + (h / s.group) * s.D
                let rowLSE = lse + (b * s.H + h) * s.Tq
                BLAS.sgemm(transA: false, transB: true, m: s.Tq, n: s.Tk, k: s.D, alpha: s.scale, a: q + off, lda: qStride,
                           b: k + kvOff, ldb: kvStride, c: P, ldc: s.Tk)
                for i in 0..<s.Tq {
                    let row = P + i * s.Tk, l = rowLSE[i]
                    for j in 0..<s.Tk { row[j] = s.allowed(b, i, j, keyMask) && l.isFinite ? Foundation.exp(row[j] - l) : 0 }
                }
                // dP = dO · Vᵀ
                BLAS.sgemm(transA: false, transB: true, m: s.Tq, n: s.Tk, k: s.D, a: dout + off, lda: qStride,
                           b: v + kvOff, ldb: kvStride, c: dP, ldc: s.Tk)
                // dV += Pᵀ · dO
                BLAS.sgemm(transA: true, transB: false, m: s.Tk, n: s.D, k: s.Tq, a: P, lda: s.Tk, b: dout + off, ldb: qStride,
                           beta: 1, c: dv + kvOff, ldc: kvStride)
                // dS = P ⊙ (dP − D), stored in dP
                for i in 0..<s.Tq {
                    var Di: Float = 0
                    let dOi = dout + off + i * qStride, Oi = out + off + i * qStride
                    for d in 0..<s.D { Di += dOi[d] * Oi[d] }
                    let p = P + i * s.Tk, g = dP + i * s.Tk
                    for j in 0..<s.Tk { g[j] = p[j] * (g[j] - Di) }
                }
                BLAS.sgemm(transA: false, transB: false, m: s.Tq, n: s.D, k: s.Tk, alpha: s.scale, a: dP, lda: s.Tk,
                           b: k + kvOff, ldb: kvStride, beta: 1, c: dq + off, ldc: qStride)
                BLAS.sgemm(transA: true, transB: false, m: s.Tk, n: s.D, k: s.Tq, alpha: s.scale, a: dP, lda: s.Tk,
                           b: q + off, ldb: qStride, beta: 1, c: dk + kvOff, ldc: kvStride)
            }
        }
    }
}
