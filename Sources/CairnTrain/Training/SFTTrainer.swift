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

/// The data order: every epoch a seeded permutation of the examples, cut into micro-batches,
/// grouped into optimizer steps of `gradientAccumulation` micro-batches.
struct DataOrder {
    let count: Int
    let batchSize: Int
    let seed: UInt64

    func permutation(epoch: Int) -> [Int] {
        var g = RandomGenerator(seed: seed).derived(UInt64(epoch) &+ 0x5EED)
        var p = Array(0..<count)
        if count > 1 { for i in stride(from: count - 1, to: 0, by: -1) { p.swapAt(i, Int(g.next() % UInt64(i + 1))) } }
        return p
    }

    var microBatchesPerEpoch: Int { (count + batchSize - 1) / batchSize }

    /// The example indices of global micro-batch `k` (epochs follow each other).
    func microBatch(_ k: Int) -> [Int] {
        let epoch = k / microBatchesPerEpoch, j = k % microBatchesPerEpoch
        return Array(permutation(epoch: epoch)[(j * batchSize)..<min(count, (j + 1) * batchSize)])
    }

    func epoch(ofMicroBatch k: Int) -> Double { Double(k) / Double(microBatchesPerEpoch) }
}

/// How much one forward and backward takes at once. A pass keeps every layer's activations for
/// its backward (about 0.6 MB per token on SmolLM2-135M), so a micro-batch with more tokens runs
/// as several passes whose gradients add up — the same step, up to fp32 summation order (losses
/// are normalised by the loss tokens of the whole step, and a DPO pair's loss is its own).
public enum TrainingPass {
    public static let maxTokens = 512

    /// `items` in order, in as few passes as keep each under `maxTokens` (an item longer than
    /// that goes alone), the passes as even in tokens as the order allows: two passes of 300
    /// tokens use the cores better than one of 512 and one of 88.
    static func split<T>(_ items: [T], tokens: (T) -> Int) -> [[T]] {
        let sizes = items.map(tokens), total = sizes.reduce(0, +)
        guard total > maxTokens, items.count > 1 else { return items.isEmpty ? [] : [items] }
        var passes = (total + maxTokens - 1) / maxTokens
        while true {
            // Cut at each share of the total; retry with one pass more while a pass is too long.
            var out: [[T]] = [], current: [T] = [], n = 0, done = 0
            for (item, t) in zip(items, sizes) {
                if !current.isEmpty && (n + t > maxTokens || done + t / 2 > total * (out.count + 1) / passes) {
                    out.append(current); current = []; n = 0
                }
                current.append(item); n += t; done += t
            }
            out.append(current)
            if out.count <= passes || passes >= items.count { return out }
            passes += 1
        }
    }
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
        optimizer = AdamW(parameters: model.trainableParameters().map(\.tensor),
                          hyper: .init(beta1: config.adamBeta1, beta2: config.adamBeta2, eps: config.adamEpsilon, weightDecay: config.weightDecay))
        order = DataOrder(count: train.count, batchSize: config.batchSize, seed: config.seed)
        totalSteps = config.totalSteps(examples: train.count)
        dropoutRNG = mode == .lora && config.loraDropout > 0 ? RandomGenerator(seed: config.seed).derived(0xD0) : nil
    }

    public var isFinished: Bool { step >= totalSteps }
    public var stepsTotal: Int { totalSteps }

    /// The passes of optimizer step `step` (0-based): its micro-batches, each cut into passes of at
    /// most `TrainingPass.maxTokens` tokens, padded or padding-free as configured.
    public func microBatches(step: Int) -> [TrainingBatch] {
        let firstMicro = step * config.gradientAccumulation
        return (0..<config.gradientAccumulation).flatMap { k in
            TrainingPass.split(order.microBatch(firstMicro + k).map { train[$0] }, tokens: { $0.ids.count }).map { examples in
                config.paddingFree ? SFTDataset.paddingFreeBatch(examples) : SFTDataset.batch(examples, padID: padID)
            }
        }
    }

    /// One optimizer step; returns its metrics (loss, learning_rate, grad_norm, tokens).
    @discardableResult
    public func trainStep() throws -> LoggedMetrics {
        let schedule = config.schedule(totalSteps: totalSteps)
        let lr = schedule.rate(at: step)
        let batches = microBatches(step: step)
        let tokens = batches.reduce(0) { $0 + $1.lossTokens }
        model.zeroGradients()
        var lossSum = 0.0
        for b in batches {
            let (s, _) = try model.forwardBackward(b, gradScale: tokens > 0 ? 1 / Float(tokens) : 0, rng: &dropoutRNG)
            lossSum += s
        }
        let loss = tokens > 0 ? lossSum / Double(tokens) : 0
        guard loss.isFinite else { throw TrainingError(step: step + 1, "the loss is \(loss)") }
        let grads = model.namedGradients().map(\.tensor)
        let norm = clipGradientNorm(grads, maxNorm: config.maxGradNorm)
        guard norm.isFinite else { throw TrainingError(step: step + 1, "a gradient is not finite (norm \(norm))") }
        optimizer.update(gradients: grads, learningRate: lr)
        step += 1
        let m = LoggedMetrics(step: step, epoch: order.epoch(ofMicroBatch: step * config.gradientAccumulation),
                              values: ["loss": loss, "learning_rate": lr, "grad_norm": norm, "tokens": Double(tokens)])
        history.append(m)
        return m
    }

    /// Mean loss per loss token over `examples` (no gradients, no dropout).
    public static func evaluate(model: TransformerModel, examples: [SFTExample], batchSize: Int, padID: Int) throws -> Double {
        var sum = 0.0, tokens = 0
        for start in stride(from: 0, to: examples.count, by: batchSize) {
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
