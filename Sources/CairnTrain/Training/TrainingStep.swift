import Foundation

/// What SFTTrainer and DPOTrainer share: a model whose trainable tensors an AdamW updates, a
/// seeded data order cut into passes, a step counter, the metrics and the dropout generator.
/// Both build a step's batches with `passes(step:examples:)` and end it with `finishStep`.
protocol OptimizedTrainer: ResumableTrainer {
    var model: TransformerModel { get }
    var config: TrainingConfig { get }
    var padID: Int { get }
    var optimizer: AdamW { get }
    var order: DataOrder { get }
    var totalSteps: Int { get }
    var step: Int { get set }
    var history: [LoggedMetrics] { get set }
    var dropoutRNG: RandomGenerator? { get set }
}

extension OptimizedTrainer {
    public var isFinished: Bool { step >= totalSteps }
    public var stepsTotal: Int { totalSteps }

    public func record(evaluation values: [String: Double]) {
        guard !history.isEmpty else { return }
        history[history.count - 1].values.merge(values) { _, new in new }
    }

    /// The passes of optimizer step `step` (0-based): each of its `gradientAccumulation`
    /// micro-batches (item indices in the data order) cut into passes of at most
    /// `TrainingPass.maxTokens` tokens, each pass with its items and the batch of their
    /// `examples` (an SFT example; a pair's chosen and rejected), padded or padding-free as configured.
    func passes(step: Int, examples: (Int) -> [SFTExample]) -> [(items: [Int], batch: TrainingBatch)] {
        let firstMicro = step * config.gradientAccumulation
        return (0..<config.gradientAccumulation).flatMap { k in
            TrainingPass.split(order.microBatch(firstMicro + k)) { i in examples(i).reduce(0) { $0 + $1.ids.count } }.map { items in
                let e = items.flatMap(examples)
                return (items, config.paddingFree ? SFTDataset.paddingFreeBatch(e) : SFTDataset.batch(e, padID: padID))
            }
        }
    }

    /// The end of an optimizer step whose gradients are accumulated: checks the loss
    /// (`values["loss"]`), clips the gradient norm, takes the AdamW step at the schedule's rate,
    /// counts the step and logs `values` with learning_rate and grad_norm added.
    func finishStep(_ values: [String: Double]) throws -> LoggedMetrics {
        let lr = config.schedule(totalSteps: totalSteps).rate(at: step)
        let loss = values["loss"] ?? .nan
        guard loss.isFinite else { throw TrainingError(step: step + 1, "the loss is \(loss)") }
        let grads = model.namedGradients().map(\.tensor)
        let norm = clipGradientNorm(grads, maxNorm: config.maxGradNorm)
        guard norm.isFinite else { throw TrainingError(step: step + 1, "a gradient is not finite (norm \(norm))") }
        optimizer.update(gradients: grads, learningRate: lr)
        step += 1
        var logged = values
        logged["learning_rate"] = lr
        logged["grad_norm"] = norm
        let m = LoggedMetrics(step: step, epoch: order.epoch(ofMicroBatch: step * config.gradientAccumulation), values: logged)
        history.append(m)
        return m
    }
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
