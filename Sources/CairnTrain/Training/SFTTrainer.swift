import Foundation

/// Training stopped: a non-finite loss or gradient, or bad settings. Names the step.
public struct TrainingError: Error, CustomStringConvertible, Sendable {
    public let step: Int?
    public let message: String
    public init(step: Int?, _ message: String) { self.step = step; self.message = message }
    public var description: String { step.map { "training stopped at step \($0): \(message)" } ?? message }
}

/// One logged line of metrics.jsonl.
public struct LoggedMetrics: Codable, Sendable, Equatable {
    public var step: Int
    public var epoch: Double
    public var values: [String: Double]
}

/// Next-token training on labelled examples: LoRA supervised fine-tuning (`.lora`, the base
/// frozen) or full-parameter training (`.full`, pretraining). AdamW, warmup then decay, gradient
/// accumulation normalised by the loss tokens of all accumulated micro-batches, norm clipping.
public final class SFTTrainer: ResumableTrainer {
    public let model: TransformerModel
    public let config: TrainingConfig
    public let train: [SFTExample]
    public let padID: Int
    public internal(set) var step = 0
    public internal(set) var history: [LoggedMetrics] = []
    let optimizer: AdamW
    let order: DataOrder
    let totalSteps: Int
    var dropoutRNG: RandomGenerator?

    /// `.lora` adds fresh LoRA factors (seeded) to `model` unless it has some, and trains them;
    /// `.full` trains every weight.
    public init(model: TransformerModel, train: [SFTExample], config: TrainingConfig, padID: Int, mode: Trainable = .lora) throws {
        guard !train.isEmpty else { throw TrainingError(step: nil, "no training examples") }
        guard config.batchSize > 0, config.gradientAccumulation > 0 else {
            throw TrainingError(step: nil, "batch_size and gradient_accumulation must be positive")
        }
        switch mode {
        case .lora:
            if model.loraSpec == nil { model.addLoRA(try config.loraSpec(), seed: config.seed) }
        case .full:
            guard model.loraSpec == nil else { throw TrainingError(step: nil, "full-parameter training of a model with a LoRA adapter: merge it first") }
        case .none:
            throw TrainingError(step: nil, "nothing to train")
        }
        model.setTrainable(mode)
        self.model = model; self.config = config; self.train = train; self.padID = padID
        optimizer = AdamW(parameters: model.trainableParameters().map(\.tensor), hyper: config.adamW)
        order = DataOrder(count: train.count, batchSize: config.batchSize, seed: config.seed)
        totalSteps = config.totalSteps(examples: train.count)
        dropoutRNG = mode == .lora ? config.dropoutGenerator : nil
    }

    /// The passes of optimizer step `step` (0-based): its micro-batches, each cut into passes of at
    /// most `TrainingPass.maxTokens` tokens, padded or padding-free as configured.
    public func microBatches(step: Int) -> [TrainingBatch] {
        passes(step: step) { [train[$0]] }.map(\.batch)
    }

    /// One optimizer step; returns its metrics (loss, learning_rate, grad_norm, tokens).
    @discardableResult
    public func trainStep() throws -> LoggedMetrics {
        let batches = microBatches(step: step)
        let tokens = batches.reduce(0) { $0 + $1.lossTokens }
        model.zeroGradients()
        var lossSum = 0.0
        for b in batches {
            let (s, _) = try model.forwardBackward(b, gradScale: tokens > 0 ? 1 / Float(tokens) : 0, rng: &dropoutRNG)
            lossSum += s
        }
        let loss = tokens > 0 ? lossSum / Double(tokens) : 0
        return try finishStep(["loss": loss, "tokens": Double(tokens)])
    }

    /// Mean loss per loss token over `examples` (no gradients, no dropout), on the training
    /// step's path: each batch's rows split between one worker per core, each on single-threaded
    /// BLAS. A row's sum never depends on the split, so the number is the same in every process
    /// (plain `logits` is not: the calibrated thread count of skinny products, BLAS.threads, can
    /// differ between processes, and it moved eval_loss in the 10th digit between two runs).
    public static func evaluate(model: TransformerModel, examples: [SFTExample], batchSize: Int, padID: Int) throws -> Double {
        var sum = 0.0, tokens = 0
        for start in stride(from: 0, to: examples.count, by: max(1, batchSize)) {
            let b = SFTDataset.batch(Array(examples[start..<min(examples.count, start + batchSize)]), padID: padID)
            sum += try model.rowLossSums(b).reduce(0, +)
            tokens += b.lossTokens
        }
        return tokens > 0 ? sum / Double(tokens) : 0
    }

    /// Naive reference of `evaluate`: each batch's logits, then their log-probabilities.
    static func evaluateReference(model: TransformerModel, examples: [SFTExample], batchSize: Int, padID: Int) throws -> Double {
        var sum = 0.0, tokens = 0
        for start in stride(from: 0, to: examples.count, by: max(1, batchSize)) {
            let b = SFTDataset.batch(Array(examples[start..<min(examples.count, start + batchSize)]), padID: padID)
            let logits = try model.logits(inputIDs: b.inputIDs, attentionMask: b.attentionMask)
            let lp = CrossEntropyOp.logProbs(logits: logits.data, targets: b.targets, V: model.config.vocabSize)
            sum -= lp.reduce(0, +)
            tokens += b.lossTokens
        }
        return tokens > 0 ? sum / Double(tokens) : 0
    }
}

extension SFTTrainer: OptimizedTrainer {}
