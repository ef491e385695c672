import Foundation

/// The gated MLP activation: out = silu(gate) ⊙ up, silu(g) = g·σ(g). All (N, I).
/// 16 lanes at a time with VectorExp; `forwardReference` / `backwardReference` are the naive
/// scalar versions on Foundation.exp beside them.
enum SwiGLUOp {
    typealias V = SIMD16<Float>
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
    @inline(__always) static func sigmoid(_ x: V) -> V { 1 / (1 + VectorExp.exp(-x)) }

    @inline(__always) private static func load(_ p: UnsafePointer<Float>, _ i: Int) -> V {
        UnsafeRawPointer(p + i).loadUnaligned(as: V.self)
    }
    @inline(__always) private static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
        UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: V.self)
    }

    static func forward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count {
            let g = load(gate, i)
            store(g * sigmoid(g) * load(up, i), out, i)
            i += 16
        }
        while i < count { let g = gate[i]; out[i] = g * sigmoid(V(repeating: g))[0] * up[i]; i += 1 }
    }

    /// dgate = dout·up·σ(g)(1 + g(1 − σ(g))), dup = dout·silu(g). Written, not accumulated.
    static func backward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                         gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        var i = 0
        while i + 16 <= count {
            let g = load(gate, i), s = sigmoid(g), d = load(dout, i)
            store(d * g * s, dup, i)
            store(d * load(up, i) * s * (1 + g * (1 - s)), dgate, i)
            i += 16
        }
        while i < count {
            let g = gate[i], s = sigmoid(V(repeating: g))[0]
            dup[i] = dout[i] * g * s
            dgate[i] = dout[i] * up[i] * s * (1 + g * (1 - s))
            i += 1
        }
    }

    static func forwardReference(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { let g = gate[i]; out[i] = g * sigmoid(g) * up[i] }
    }

    static func backwardReference(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                  gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = gate[i], s = sigmoid(g)
            dup[i] = dout[i] * g * s
            dgate[i] = dout[i] * up[i] * s * (1 + g * (1 - s))
        }
    }
}
