import Foundation

/// DPO with a fresh LoRA on a (merged) model: the reference is the same model with the adapter
/// disabled, its log-probabilities computed once per example. Each optimizer step scores the
/// chosen and rejected completions of its pairs, evaluates the DPO loss and backpropagates
/// ∂loss/∂logp per sequence through the policy.
public final class DPOTrainer: ResumableTrainer {
    public let model: TransformerModel
    public let config: TrainingConfig
    public let pairs: [PreferenceExample]
    public let padID: Int
    public let loss: DPOLoss
    public internal(set) var step = 0
    public internal(set) var history: [LoggedMetrics] = []
    /// Reference (chosen, rejected) summed completion log-probabilities, per pair.
    public let referenceLogps: [(chosen: Double, rejected: Double)]
    let optimizer: AdamW
    let order: DataOrder
    let totalSteps: Int
    var dropoutRNG: RandomGenerator?

    public init(model: TransformerModel, pairs: [PreferenceExample], config: TrainingConfig, padID: Int) throws {
        guard !pairs.isEmpty else { throw TrainingError(step: nil, "no preference pairs") }
        loss = try DPOLoss(kind: config.lossType, beta: config.beta, labelSmoothing: config.labelSmoothing)
        if model.loraSpec == nil { model.addLoRA(try config.loraSpec(), seed: config.seed) }
        model.setTrainable(.lora)
        self.model = model; self.config = config; self.pairs = pairs; self.padID = padID
        referenceLogps = try model.withAdapterDisabled {
            try DPOTrainer.sequenceLogps(model: model, examples: pairs.flatMap { [$0.chosen, $0.rejected] }, batchSize: config.batchSize * 2, padID: padID)
        }.chunked2()
        optimizer = AdamW(parameters: model.trainableParameters().map(\.tensor), hyper: config.adamW)
        order = DataOrder(count: pairs.count, batchSize: config.batchSize, seed: config.seed)
        totalSteps = config.totalSteps(examples: pairs.count)
        dropoutRNG = config.dropoutGenerator
    }

    /// Summed completion log-probabilities of each example (no gradients), computed as a
    /// training step computes them.
    public static func sequenceLogps(model: TransformerModel, examples: [SFTExample], batchSize: Int, padID: Int) throws -> [Double] {
        var out: [Double] = []
        for start in stride(from: 0, to: examples.count, by: max(1, batchSize)) {
            let b = SFTDataset.batch(Array(examples[start..<min(examples.count, start + batchSize)]), padID: padID)
            out += try model.rowLossSums(b).map { -$0 }
        }
        return out
    }

    /// One optimizer step over `gradientAccumulation` micro-batches of pairs; returns TRL's metrics.
    @discardableResult
    public func trainStep() throws -> LoggedMetrics {
        let stepPasses = passes(step: step) { [pairs[$0].chosen, pairs[$0].rejected] }
        let nPairs = stepPasses.reduce(0) { $0 + $1.items.count }
        model.zeroGradients()
        var sums: [String: Double] = [:]
        for (indices, batch) in stepPasses {
            // One forward: the policy's log-probabilities set each sequence's gradient weight.
            // The step's loss is the mean over all its pairs: this pass's mean × its share.
            let share = Double(indices.count) / Double(nPairs)
            _ = try model.forwardBackward(batch, gradScale: 1, rng: &dropoutRNG) { rowLoss in
                let policy = rowLoss.map { -$0 }
                let r = self.loss.evaluate(DPOLoss.Batch(
                    policyChosen: stride(from: 0, to: policy.count, by: 2).map { policy[$0] },
                    policyRejected: stride(from: 1, to: policy.count, by: 2).map { policy[$0] },
                    referenceChosen: indices.map { self.referenceLogps[$0].chosen }, referenceRejected: indices.map { self.referenceLogps[$0].rejected },
                    chosenTokens: indices.map { self.pairs[$0].chosen.lossTokens }, rejectedTokens: indices.map { self.pairs[$0].rejected.lossTokens }))
                for (k, v) in r.metrics { sums[k, default: 0] += v * share }
                // d(mean loss)/d(logp) per sequence; the model's rows give −logp, hence the sign.
                var weights = [Float]()
                for i in 0..<indices.count { weights += [Float(-r.gradChosen[i] * share), Float(-r.gradRejected[i] * share)] }
                return weights
            }
        }
        return try finishStep(sums)
    }

    /// Held-out preference accuracy (the implicit reward of the chosen completion above the
    /// rejected one; a tie counts half, so the untrained policy scores 0.5), mean reward margin,
    /// and the mean sigmoid DPO loss −log σ(margin) (whatever loss_type trained: one scale for
    /// every run).
    public static func evaluate(model: TransformerModel, pairs: [PreferenceExample], beta: Double, padID: Int) throws
        -> (accuracy: Double, margin: Double, loss: Double) {
        // On the training step's path (rowLossSums): the same numbers in every process (SFTTrainer.evaluate says why).
        let examples = pairs.flatMap { [$0.chosen, $0.rejected] }
        let policy = try sequenceLogps(model: model, examples: examples, batchSize: 16, padID: padID)
        let reference = try model.withAdapterDisabled { try sequenceLogps(model: model, examples: examples, batchSize: 16, padID: padID) }
        var correct = 0, margin = 0.0, loss = 0.0
        for i in 0..<pairs.count {
            let c = beta * (policy[2 * i] - reference[2 * i]), r = beta * (policy[2 * i + 1] - reference[2 * i + 1])
            correct += c > r ? 2 : c == r ? 1 : 0
            margin += c - r
            loss -= DPOLoss.logSigmoid(c - r)
        }
        let n = Double(pairs.count)
        return (Double(correct) / (2 * n), margin / n, loss / n)
    }
}

extension Array where Element == Double {
    /// [a, b, c, d] → [(a, b), (c, d)].
    func chunked2() -> [(chosen: Double, rejected: Double)] {
        stride(from: 0, to: count - 1, by: 2).map { (self[$0], self[$0 + 1]) }
    }
}

extension DPOTrainer: OptimizedTrainer {}
