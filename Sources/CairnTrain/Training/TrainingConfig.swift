/// The hyper-parameters of a training run, with the reference's sft_config / dpo_config names
/// (snake_case in YAML) and their defaults.
public struct TrainingConfig: Equatable, Sendable {
    public var epochs: Int = 3
    /// Stops after this many optimizer steps when set (overrides epochs).
    public var maxSteps: Int? = nil
    public var batchSize: Int = 4
    public var gradientAccumulation: Int = 4
    public var learningRate: Double = 2e-4
    public var warmupRatio: Double = 0.1
    /// Overrides warmupRatio when set.
    public var warmupSteps: Int? = nil
    public var lrSchedulerType: LearningRateSchedule.Kind = .linear
    public var weightDecay: Double = 0
    public var maxGradNorm: Double = 1.0
    public var adamBeta1: Double = 0.9
    public var adamBeta2: Double = 0.999
    public var adamEpsilon: Double = 1e-8
    public var seed: UInt64 = 42
    public var loggingSteps: Int = 10
    public var saveSteps: Int = 100
    public var saveTotalLimit: Int = 3
    /// Held-out data is measured every this many steps, when the stage has any (an eval file or
    /// eval_split); nil: at every checkpoint (save_steps). The end of training is always measured.
    public var evalSteps: Int? = nil
    public var maxSeqLength: Int = 2048
    public var loraR: Int = 16
    public var loraAlpha: Double = 32
    public var loraDropout: Double = 0.05
    public var targetModules: [String] = PEFTKey.attentionModules
    public var useRslora: Bool = false
    public var completionOnlyLoss: Bool = true
    /// TRL's padding-free batches: a micro-batch's examples side by side in one row, attention
    /// kept inside each example, no padding. Same losses and gradients as padded batches.
    public var paddingFree: Bool = false
    /// Holds out this fraction of the training file (a seeded choice) for evaluation when no
    /// evaluation file is given; 0 = none.
    public var evalSplit: Double = 0
    // DPO
    public var beta: Double = 0.1
    public var lossType: DPOLoss.Kind = .sigmoid
    public var labelSmoothing: Double = 0

    public init() {}

    public func loraSpec() throws -> LoRASpec {
        try LoRASpec(rank: loraR, alpha: loraAlpha, dropout: loraDropout, targets: targetModules, useRSLoRA: useRslora)
    }

    /// AdamW's settings.
    var adamW: AdamW.Hyperparameters {
        .init(beta1: adamBeta1, beta2: adamBeta2, eps: adamEpsilon, weightDecay: weightDecay)
    }

    /// The LoRA dropout masks' generator (seeded), nil without dropout.
    var dropoutGenerator: RandomGenerator? { loraDropout > 0 ? RandomGenerator(seed: seed).derived(0xD0) : nil }

    /// Optimizer steps for `examples` examples.
    public func totalSteps(examples: Int) -> Int {
        if let m = maxSteps { return m }
        let microBatches = (examples + batchSize - 1) / batchSize
        return max(1, (microBatches + gradientAccumulation - 1) / gradientAccumulation) * epochs
    }

    /// Splits `count` examples into (train, held-out) indices by `evalSplit`, with a seeded
    /// choice; the held-out part has ⌈split · count⌉ examples (at least one is left to train).
    public func evalSplitIndices(count: Int) -> (train: [Int], eval: [Int]) {
        guard evalSplit > 0, count > 1 else { return (Array(0..<count), []) }
        let held = min(count - 1, Int((evalSplit * Double(count)).rounded(.up)))
        let order = DataOrder(count: count, batchSize: 1, seed: seed ^ 0xE7A1).permutation(epoch: 0)
        return (order.dropFirst(held).sorted(), order.prefix(held).sorted())
    }

    public func schedule(totalSteps: Int) -> LearningRateSchedule {
        LearningRateSchedule(kind: lrSchedulerType, baseRate: learningRate,
                             warmupSteps: warmupSteps ?? LearningRateSchedule.warmupSteps(ratio: warmupRatio, totalSteps: totalSteps),
                             totalSteps: totalSteps)
    }
}
