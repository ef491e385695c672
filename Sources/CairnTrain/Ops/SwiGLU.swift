import Foundation

/// The gated MLP activation: out = silu(gate) ⊙ up, silu(g) = g·σ(g). All (N, I).
enum SwiGLUOp {
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }

    static func forward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { let g = gate[i]; out[i] = g * sigmoid(g) * up[i] }
    }

    /// dgate = dout·up·σ(g)(1 + g(1 − σ(g))), dup = dout·silu(g). Written, not accumulated.
    static func backward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = gate[i], s = sigmoid(g)
            dup[i] = dout[i] * g * s
            dgate[i] = dout[i] * up[i] * s * (1 + g * (1 - s))
        }
    }
}
