import Foundation

/// Linear layers: out = inp · weightᵀ + bias.
/// inp is (N, C), weight is (OC, C) as PyTorch stores it, bias is (OC), out is (N, OC).
enum LinearOp {
    /// out (N, OC) = inp (N, C) · weight (OC, C)ᵀ + bias (OC).  (BLAS)
    static func forward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                        bias: UnsafePointer<Float>?, N: Int, C: Int, OC: Int, accumulate: Bool = false) {
        if N == 1 {  // one token (generation): weight · inp, reading the weight once
            BLAS.sgemv(transA: false, m: OC, n: C, a: weight, lda: C, x: inp, beta: accumulate ? 1 : 0, y: out)
        } else if N <= splitRows && OC >= 2 * splitBlock && BLAS.maxThreads > 1 && !BLAS.isPinned {
            forwardFewRows(out: out, inp: inp, weight: weight, N: N, C: C, OC: OC, accumulate: accumulate)
        } else {
            BLAS.sgemm(transA: false, transB: true, m: N, n: OC, k: C, a: inp, lda: C, b: weight, ldb: C,
                       beta: accumulate ? 1 : 0, c: out, ldc: OC)
        }
        if let b = bias {
            for n in 0..<N { let row = out + n * OC; for o in 0..<OC { row[o] += b[o] } }
        }
    }

    /// A few rows (a decode step of several sequences) against a wide weight: one sgemm copies the
    /// whole weight into panels and OpenBLAS's threads wait on each other, so the output features
    /// are split between one worker per core instead, each running single-threaded products over
    /// blocks of `splitBlock` features (24 rows × SmolLM2's LM head: 24 ms → 11 ms).
    static let splitRows = 32, splitBlock = 256

    private static func forwardFewRows(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                       N: Int, C: Int, OC: Int, accumulate: Bool) {
        let blocks = (OC + splitBlock - 1) / splitBlock, workers = min(BLAS.maxThreads, blocks)
        BLAS.workers(workers) { w in
            for b in stride(from: w * blocks / workers, to: (w + 1) * blocks / workers, by: 1) {
                let o0 = b * splitBlock, n = min(splitBlock, OC - o0)
                BLAS.sgemm(transA: false, transB: true, m: N, n: n, k: C, a: inp, lda: C, b: weight + o0 * C, ldb: C,
                           beta: accumulate ? 1 : 0, c: out + o0, ldc: OC)
            }
        }
    }

    /// Naive reference of `forward`.
    static func forwardReference(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                 bias: UnsafePointer<Float>?, N: Int, C: Int, OC: Int) {
        for n in 0..<N {
            for o in 0..<OC {
                var s: Double = bias.map { Double($0[o]) } ?? 0
                for c in 0..<C { s += Double(inp[n * C + c]) * Double(weight[o * C + c]) }
                out[n * OC + o] = Float(s)
            }
        }
    }

    /// Accumulates dinp (N, C) += dout · weight, dweight (OC, C) += doutᵀ · inp, dbias (OC) += Σₙ dout.
    /// Any of the three may be nil (not needed).  (BLAS)
    static func backward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
                         dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, N: Int, C: Int, OC: Int) {
        if let dx = dinp {
            BLAS.sgemm(transA: false, transB: false, m: N, n: C, k: OC, a: dout, lda: OC, b: weight, ldb: C, beta: 1, c: dx, ldc: C)
        }
        if let dw = dweight {
            BLAS.sgemm(transA: true, transB: false, m: OC, n: C, k: N, a: dout, lda: OC, b: inp, ldb: C, beta: 1, c: dw, ldc: C)
        }
        if let db = dbias {
            for n in 0..<N { let row = dout + n * OC; for o in 0..<OC { db[o] += row[o] } }
        }
    }

    /// Naive reference of `backward`.
    static func backwardReference(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?, dbias: UnsafeMutablePointer<Float>?,
                                  dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, N: Int, C: Int, OC: Int) {
        for n in 0..<N {
            for o in 0..<OC {
                let g = dout[n * OC + o]
                dbias?[o] += g
                for c in 0..<C {
                    dinp?[n * C + c] += g * weight[o * C + c]
                    dweight?[o * C + c] += g * inp[n * C + c]
                }
            }
        }
    }
}
