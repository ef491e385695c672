import Foundation

/// The DPO objective on summed completion log-probabilities, as TRL 1.16.0 computes it
/// (`DPOTrainer._compute_loss`), with its metric names. With π the policy's and ρ the
/// reference's log-probabilities of the chosen (c) and rejected (r) completions,
/// cl = πc − ρc, rl = πr − ρr, Δ = cl − rl:
/// - sigmoid: −log σ(βΔ) (TRL 1.16 does not apply label_smoothing here; older TRL did)
/// - robust: (−(1−ls)·log σ(βΔ) + ls·log σ(−βΔ)) / (1 − 2ls)
/// - hinge: max(0, 1 − βΔ)
/// - ipo: (cl/nc − rl/nr − 1/(2β))², n the completion token counts
/// Rewards are β·cl and β·rl; an accuracy counts β·cl > β·rl.
public struct DPOLoss: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable, Codable { case sigmoid, ipo, hinge, robust }

    public var kind: Kind
    public var beta: Double
    public var labelSmoothing: Double

    public init(kind: Kind = .sigmoid, beta: Double = 0.1, labelSmoothing: Double = 0) throws {
        guard beta > 0 else { throw ModelError("beta must be positive, not \(beta)") }
        guard (0..<0.5).contains(labelSmoothing) else { throw ModelError("label_smoothing must be in [0, 0.5), not \(labelSmoothing)") }
        if kind == .ipo || kind == .hinge, labelSmoothing != 0 {
            throw ModelError("label_smoothing applies to the robust loss only (TRL 1.16 ignores it for sigmoid), not \(kind.rawValue)")
        }
        self.kind = kind; self.beta = beta; self.labelSmoothing = labelSmoothing
    }

    public struct Batch: Sendable {
        public var policyChosen: [Double]
        public var policyRejected: [Double]
        public var referenceChosen: [Double]
        public var referenceRejected: [Double]
        /// Completion token counts (the IPO loss divides each log-ratio by its own).
        public var chosenTokens: [Int]
        public var rejectedTokens: [Int]
        public init(policyChosen: [Double], policyRejected: [Double], referenceChosen: [Double], referenceRejected: [Double],
                    chosenTokens: [Int]? = nil, rejectedTokens: [Int]? = nil) {
            self.policyChosen = policyChosen; self.policyRejected = policyRejected
            self.referenceChosen = referenceChosen; self.referenceRejected = referenceRejected
            self.chosenTokens = chosenTokens ?? Array(repeating: 1, count: policyChosen.count)
            self.rejectedTokens = rejectedTokens ?? Array(repeating: 1, count: policyChosen.count)
        }
    }

    public struct Result: Sendable {
        /// Per example.
        public let losses: [Double]
        /// ∂(mean loss)/∂πc and ∂(mean loss)/∂πr, per example.
        public let gradChosen: [Double]
        public let gradRejected: [Double]
        /// TRL's logged metrics, batch means: loss, rewards/chosen, rewards/rejected,
        /// rewards/accuracies, rewards/margins, logps/chosen, logps/rejected.
        public let metrics: [String: Double]
        public var loss: Double { metrics["loss"]! }
    }

    @inline(__always) static func logSigmoid(_ x: Double) -> Double { x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)) }
    @inline(__always) static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    public func evaluate(_ b: Batch) -> Result {
        let n = b.policyChosen.count
        precondition(n > 0 && [b.policyRejected.count, b.referenceChosen.count, b.referenceRejected.count].allSatisfy { $0 == n })
        var losses = [Double](), gc = [Double](), gr = [Double]()
        let ls = labelSmoothing
        for i in 0..<n {
            let cl = b.policyChosen[i] - b.referenceChosen[i], rl = b.policyRejected[i] - b.referenceRejected[i]
            let z = beta * (cl - rl)
            var dDelta: Double  // ∂loss/∂Δ; ∂Δ/∂πc = 1, ∂Δ/∂πr = −1
            switch kind {
            case .sigmoid:
                losses.append(-Self.logSigmoid(z))
                dDelta = -beta * (1 - Self.sigmoid(z))
            case .robust:
                losses.append((-Self.logSigmoid(z) * (1 - ls) + Self.logSigmoid(-z) * ls) / (1 - 2 * ls))
                dDelta = beta * (-(1 - ls) * (1 - Self.sigmoid(z)) - ls * Self.sigmoid(z)) / (1 - 2 * ls)
            case .hinge:
                losses.append(max(0, 1 - z))
                dDelta = 1 - z > 0 ? -beta : 0
            case .ipo:
                let nc = Double(max(b.chosenTokens[i], 1)), nr = Double(max(b.rejectedTokens[i], 1))
                let d = cl / nc - rl / nr - 1 / (2 * beta)
                losses.append(d * d)
                gc.append(2 * d / nc / Double(n)); gr.append(-2 * d / nr / Double(n))
                continue
            }
            gc.append(dDelta / Double(n)); gr.append(-dDelta / Double(n))
        }
        let chosenRewards = (0..<n).map { beta * (b.policyChosen[$0] - b.referenceChosen[$0]) }
        let rejectedRewards = (0..<n).map { beta * (b.policyRejected[$0] - b.referenceRejected[$0]) }
        func mean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(xs.count) }
        let metrics: [String: Double] = [
            "loss": mean(losses),
            "rewards/chosen": mean(chosenRewards),
            "rewards/rejected": mean(rejectedRewards),
            // TRL averages the accuracies in float32.
            "rewards/accuracies": Double(Float(zip(chosenRewards, rejectedRewards).filter { $0 > $1 }.count) / Float(n)),
            "rewards/margins": mean(zip(chosenRewards, rejectedRewards).map { $0 - $1 }),
            "logps/chosen": mean(b.policyChosen),
            "logps/rejected": mean(b.policyRejected),
        ]
        return Result(losses: losses, gradChosen: gc, gradRejected: gr, metrics: metrics)
    }
}
