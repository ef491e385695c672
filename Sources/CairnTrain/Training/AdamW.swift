import Foundation

/// AdamW with decoupled weight decay and bias correction, step for step as torch.optim.AdamW
/// (foreach=False) computes it in fp32:
///     p ← p·(1 − lr·wd);  m ← m + (1−β₁)(g − m);  v ← β₂v + (1−β₂)g²
///     p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)
public final class AdamW {
    public struct Hyperparameters: Equatable, Sendable, Codable {
        public var beta1: Double = 0.9
        public var beta2: Double = 0.999
        public var eps: Double = 1e-8
        public var weightDecay: Double = 0.0
        public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0) {
            self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        }
    }

    public let hyper: Hyperparameters
    /// Steps taken so far (t in the bias corrections).
    public private(set) var step = 0
    /// First and second moments, one pair per parameter, in parameter order.
    public let expAvg: [Tensor]
    public let expAvgSq: [Tensor]
    let parameters: [Tensor]

    public init(parameters: [Tensor], hyper: Hyperparameters) {
        self.parameters = parameters
        self.hyper = hyper
        expAvg = parameters.map { Tensor(shape: $0.shape) }
        expAvgSq = parameters.map { Tensor(shape: $0.shape) }
    }

    /// Restores the moments and the step count (from a checkpoint).
    public func restore(step: Int, expAvg m: [Tensor], expAvgSq v: [Tensor]) throws {
        guard m.count == expAvg.count, v.count == expAvgSq.count,
              zip(m, expAvg).allSatisfy({ $0.shape == $1.shape }), zip(v, expAvgSq).allSatisfy({ $0.shape == $1.shape }) else {
            throw ModelError("the optimizer state does not match the trainable parameters")
        }
        for (d, s) in zip(expAvg, m) { d.data.update(from: s.data, count: d.count) }
        for (d, s) in zip(expAvgSq, v) { d.data.update(from: s.data, count: d.count) }
        self.step = step
    }

    /// One update of every parameter from its gradient (same order as `parameters`).
    public func update(gradients: [Tensor], learningRate lr: Double) {
        precondition(gradients.count == parameters.count)
        step += 1
        // 1 − β is formed in double and rounded once, as torch does with its Python floats.
        let b2 = Float(hyper.beta2), c1 = Float(1 - hyper.beta1), c2 = Float(1 - hyper.beta2)
        let decay = Float(1 - lr * hyper.weightDecay)
        let bc1 = 1 - pow(hyper.beta1, Double(step)), bc2 = 1 - pow(hyper.beta2, Double(step))
        let stepSize = Float(lr / bc1)
        let bc2Sqrt = Float(bc2.squareRoot())
        let eps = Float(hyper.eps)
        for (i, p) in parameters.enumerated() {
            let g = gradients[i].data, m = expAvg[i].data, v = expAvgSq[i].data, w = p.data
            for j in 0..<p.count {
                if hyper.weightDecay != 0 { w[j] *= decay }
                m[j] += c1 * (g[j] - m[j])
                v[j] = v[j] * b2 + c2 * g[j] * g[j]
                let denom = v[j].squareRoot() / bc2Sqrt + eps
                w[j] -= stepSize * (m[j] / denom)
            }
        }
    }
}

/// Clips gradients in place to a total L2 norm of at most `maxNorm`, as
/// torch.nn.utils.clip_grad_norm_ does (coefficient maxNorm / (norm + 1e-6), capped at 1).
/// Returns the norm before clipping; a non-finite norm is returned without clipping.
@discardableResult
public func clipGradientNorm(_ gradients: [Tensor], maxNorm: Double) -> Double {
    var sum = 0.0
    for g in gradients { for i in 0..<g.count { sum += Double(g[i]) * Double(g[i]) } }
    let norm = sum.squareRoot()
    guard norm.isFinite else { return norm }
    let coef = maxNorm / (norm + 1e-6)
    if coef < 1 {
        let c = Float(coef)
        for g in gradients { for i in 0..<g.count { g[i] *= c } }
    }
    return norm
}
