import Foundation

/// RMSNorm as in Llama/Qwen2: out = inp / sqrt(mean(inp²) + eps) ⊙ weight.
/// inp and out are (N, C), weight is (C), rstd is (N) = 1 / sqrt(mean(inp²) + eps), saved for backward.
enum RMSNormOp {
    static func forward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>?, inp: UnsafePointer<Float>,
                        weight: UnsafePointer<Float>, N: Int, C: Int, eps: Float) {
        for n in 0..<N {
            let x = inp + n * C, y = out + n * C
            var ss: Float = 0
            for c in 0..<C { ss += x[c] * x[c] }
            let r = 1 / (ss / Float(C) + eps).squareRoot()
            rstd?[n] = r
            for c in 0..<C { y[c] = weight[c] * (x[c] * r) }
        }
    }

    /// dinp (N, C) += ∂/∂inp; dweight (C) += Σₙ dout ⊙ inp ⊙ rstd (nil when frozen).
    /// With g = weight ⊙ dout: dinp = rstd·g − rstd³/C · inp · Σ_c(g·inp).
    static func backward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                         inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, rstd: UnsafePointer<Float>, N: Int, C: Int) {
        for n in 0..<N {
            let x = inp + n * C, dy = dout + n * C, dx = dinp + n * C
            let r = rstd[n]
            var dot: Float = 0
            for c in 0..<C { dot += weight[c] * dy[c] * x[c] }
            let k = r * r * r * dot / Float(C)
            for c in 0..<C { dx[c] += r * weight[c] * dy[c] - k * x[c] }
            if let dw = dweight { for c in 0..<C { dw[c] += dy[c] * x[c] * r } }
        }
    }
}
