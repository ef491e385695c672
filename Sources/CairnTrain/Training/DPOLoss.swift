import Foundation

/// The DPO objective on summed completion log-probabilities, with TRL's loss types and metric
/// names. For example i: zᵢ = β·[(πc − πr) − (ρc − ρr)], π the policy's and ρ the reference's
/// log-probabilities of the chosen (c) and rejected (r) completions.
public struct DPOLoss: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable, Codable { case sigmoid, ipo, hinge, robust }

    public var kind: Kind
    public var beta: Double
    public var labelSmoothing: Double

    public init(kind: Kind = .sigmoid, beta: Double = 0.1, labelSmoothing: Double = 0) throws {
        guard beta > 0 else { throw ModelError("beta must be positive, not \(beta)") }
        guard (0..<0.5).contains(labelSmoothing) else { throw ModelError("label_smoothing must be in [0, 0.5), not \(labelSmoothing)") }
        if kind == .ipo || kind == .hinge, labelSmoothing != 0 {
            throw ModelError("label_smoothing applies to the sigmoid and robust losses only, not \(kind.rawValue)")
        }
        self.kind = kind; self.beta = beta; self.labelSmoothing = labelSmoothing
    }

    public struct Batch: Sendable {
        public var policyChosen: [Double]
        public var policyRejected: [Double]
        public var referenceChosen: [Double]
        public var referenceRejected: [Double]
        public init(policyChosen: [Double], policyRejected: [Double], referenceChosen: [Double], referenceRejected: [Double]) {
            self.policyChosen = policyChosen; self.policyRejected = policyRejected
            self.referenceChosen = referenceChosen; self.referenceRejected = referenceRejected
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
        var losses = [Double](), dz = [Double]()
        let ls = labelSmoothing
        for i in 0..<n {
            let logits = (b.policyChosen[i] - b.policyRejected[i]) - (b.referenceChosen[i] - b.referenceRejected[i])
            let z = beta * logits
            switch kind {
            case .sigmoid:
                losses.append(-Self.logSigmoid(z) * (1 - ls) - Self.logSigmoid(-z) * ls)
                dz.append(beta * (-(1 - ls) * (1 - Self.sigmoid(z)) + ls * Self.sigmoid(z)))
            case .robust:
                losses.append((-Self.logSigmoid(z) * (1 - ls) + Self.logSigmoid(-z) * ls) / (1 - 2 * ls))
                dz.append(beta * (-(1 - ls) * (1 - Self.sigmoid(z)) - ls * Self.sigmoid(z)) / (1 - 2 * ls))
            case .hinge:
                losses.append(max(0, 1 - z))
                dz.append(1 - z > 0 ? -beta : 0)
            case .ipo:
                let d = logits - 1 / (2 * beta)
                losses.append(d * d)
                dz.append(2 * d)
            }
        }
        let chosenRewards = (0..<n).map { beta * (b.policyChosen[$0] - b.referenceChosen[$0]) }
        let rejectedRewards = (0..<n).map { beta * (b.policyRejected[$0] - b.referenceRejected[$0]) }
        func mean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(xs.count) }
        let metrics: [String: Double] = [
            "loss": mean(losses),
            "rewards/chosen": mean(chosenRewards),
            "rewards/rejected": mean(rejectedRewards),
            "rewards/accuracies": mean(zip(chosenRewards, rejectedRewards).map { $0 > $1 ? 1 : 0 }),
            "rewards/margins": mean(zip(chosenRewards, rejectedRewards).map { $0 - $1 }),
            "logps/chosen": mean(b.policyChosen),
            "logps/rejected": mean(b.policyRejected),
        ]
        return Result(losses: losses, gradChosen: dz.map { $0 / Double(n) }, gradRejected: dz.map { -$0 / Double(n) }, metrics: metrics)
    }
}
