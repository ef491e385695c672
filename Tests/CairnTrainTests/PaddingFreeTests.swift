import Foundation
import Testing
@testable import CairnTrain

/// tinyBatch's two examples without their padding, side by side in one row (TRL's padding-free batch).
let tinyExamples = [SFTExample(ids: tinyBatch.inputIDs[0], labels: tinyBatch.labels[0], line: 1),
                    SFTExample(ids: Array(tinyBatch.inputIDs[1].prefix(5)), labels: Array(tinyBatch.labels[1].prefix(5)), line: 2),
                    SFTExample(ids: [4, 8, 2], labels: [-100, 8, 2], line: 3)]

@Suite("Padding-free batches: the same losses and gradients as padded ones")
struct PaddingFreeTests {
    func loraModel() throws -> TransformerModel {
        let m = try tinyModel(.qwen2, tied: true, kv: 2)
        m.addLoRA(try LoRASpec(rank: 2, alpha: 4, targets: LoRASpec.allTargets), seed: 9)
        var g = RandomGenerator(seed: 4)
        for (name, t) in m.loraWeights() where name.contains("lora_B") { for i in 0..<t.count { t[i] = 0.3 * g.normal() } }
        return m
    }

    /// Per-sequence losses and (weighted) gradients of the packed row equal the padded batch's,
    /// for LoRA and full-parameter training, on one worker and split between two.
    @Test(arguments: [Trainable.lora, .full], [1, 2])
    func packedEqualsPadded(mode: Trainable, threads: Int) throws {
        let m = try loraModel()
        if mode == .full { try m.mergeLoRA() }
        m.setTrainable(mode)
        let padded = SFTDataset.batch(tinyExamples, padID: 0), packed = SFTDataset.paddingFreeBatch(tinyExamples)
        #expect(packed.inputIDs.count == 1 && packed.inputIDs[0].count == 16 && packed.sequenceLengths == [8, 5, 3])
        #expect(packed.lossTokens == padded.lossTokens)
        let weights: [Float] = [0.7, -1.3, 2.0]
        var none: RandomGenerator? = nil
        func run(_ b: TrainingBatch) throws -> ([Double], [Tensor]) {
            m.zeroGradients()
            let r = try BLAS.withThreads(threads) { try m.forwardBackwardRows(b, gradScale: 0.25, rowWeights: weights, rng: &none) }
            return (r.rowLossSums, m.namedGradients().map { $0.tensor.copy() })
        }
        let (lossA, gradA) = try run(padded), (lossB, gradB) = try run(packed)
        #expect(lossA.count == 3 && lossB.count == 3)
        for (a, b) in zip(lossA, lossB) { #expect(abs(a - b) < 1e-5 * max(1, abs(a)), "loss \(a) vs \(b)") }
        for (a, b) in zip(gradA, gradB) {
            var scale: Float = 1e-3
            for i in 0..<a.count { scale = max(scale, abs(a[i])) }
            #expect(a.maxAbsDifference(b) < 1e-5 * scale)
        }
        // Forward-only sequence losses (DPO's reference) agree too.
        let ref = try m.rowLossSums(packed)
        for (a, b) in zip(lossA, ref) { #expect(abs(a - b) < 1e-5 * max(1, abs(a))) }
    }

    /// Two sequences in one row must not see each other: changing the first one's tokens leaves
    /// the second one's loss exactly as it was.
    @Test func sequencesDoNotSeeEachOther() throws {
        let m = try loraModel()
        var other = tinyExamples
        other[0].ids = other[0].ids.map { ($0 + 5) % 23 }
        let a = try m.rowLossSums(SFTDataset.paddingFreeBatch(tinyExamples)), b = try m.rowLossSums(SFTDataset.paddingFreeBatch(other))
        #expect(a[0] != b[0])
        #expect(a[1] == b[1] && a[2] == b[2])
    }

    @Test func malformedPaddingFreeBatchIsAnError() throws {
        let m = try loraModel()
        var none: RandomGenerator? = nil
        let bad = TrainingBatch(inputIDs: [[1, 2, 3]], labels: [[1, 2, 3]], sequences: [[2, 2]])
        #expect(throws: ModelError.self) { try m.forwardBackward(bad, rng: &none) }
        let empty = TrainingBatch(inputIDs: [[1, 2, 3]], labels: [[1, 2, 3]], sequences: [[3, 0]])
        #expect(throws: ModelError.self) { try m.forwardBackward(empty, rng: &none) }
    }

    /// SFT with `padding_free` follows the padded run's losses step for step.
    @Test func sftTrainerPaddingFreeFollowsPadded() throws {
        var config = TrainingConfig()
        config.batchSize = 2; config.gradientAccumulation = 2; config.maxSteps = 3; config.loraDropout = 0
        config.learningRate = 1e-2; config.loraR = 2; config.loraAlpha = 4
        func losses(_ paddingFree: Bool) throws -> [Double] {
            var c = config
            c.paddingFree = paddingFree
            let t = try SFTTrainer(model: try tinyModel(.llama, tied: false, kv: 4), train: tinyExamples + tinyExamples.reversed(),
                                   config: c, padID: 0)
            return try (0..<3).map { _ in try t.trainStep().values["loss"]! }
        }
        let (a, b) = (try losses(false), try losses(true))
        for (x, y) in zip(a, b) { #expect(abs(x - y) < 1e-5 * max(1, abs(x)), "\(a) vs \(b)") }
    }
}

@Suite("Batched generation")
struct BatchedGenerationTests {
    /// Prompts of different lengths, stop tokens and a token budget: each continuation equals
    /// what `generate` gives for that prompt alone, greedy and sampled.
    @Test func batchEqualsOneAtATime() throws {
        let m = try tinyModel(.llama, tied: false, kv: 4)
        m.addLoRA(try LoRASpec(rank: 2, alpha: 4, targets: ["q_proj", "v_proj"]), seed: 1)
        let prompts = [[3, 7, 1], [5], [9, 9, 2, 14, 6, 1, 3], [2, 2], [11, 4, 8, 17]]
        let alone = try prompts.map { try m.generate(prompt: $0, maxNewTokens: 7) }
        let stop = alone[0][2]
        for sampling in [SamplingOptions(), SamplingOptions(temperature: 1, topP: 0.9, seed: 3)] {
            for stops in [Set<Int>(), [stop]] {
                let one = try prompts.map { try m.generate(prompt: $0, maxNewTokens: 7, sampling: sampling, stopTokens: stops) }
                #expect(try m.generate(prompts: prompts, maxNewTokens: 7, sampling: sampling, stopTokens: stops) == one)
            }
        }
        #expect(try m.generate(prompts: prompts, maxNewTokens: 0).allSatisfy(\.isEmpty))
        #expect(throws: ModelError.self) { try m.generate(prompts: [[1], []], maxNewTokens: 3) }
    }
}

@Suite("Activation arena")
struct ActivationArenaTests {
    /// Steps through the arena give bit-for-bit the heap path's loss and gradients, and from the
    /// second step of a shape on take nothing from the heap (a bigger shape grows the block once).
    @Test func arenaStepsEqualHeapStepsAndStopAllocating() throws {
        let m = try tinyModel(.qwen2, tied: true, kv: 2)
        m.addLoRA(try LoRASpec(rank: 2, alpha: 4, dropout: 0.2, targets: LoRASpec.allTargets), seed: 9)
        m.setTrainable(.lora)
        let arena = ActivationArena()
        let shard = TransformerModel.Shard(batch: tinyBatch, firstSequence: 0, firstToken: 0)
        func step(_ a: ActivationArena?, _ s: TransformerModel.Shard = shard) throws -> ([Double], [[Float]]) {
            m.zeroGradients()
            let loss = try m.shardForwardBackward(s, scale: 0.1, dropout: DropoutStream(base: RandomGenerator(seed: 5), firstRow: 0),
                                                  grads: m.gradients, arena: a)
            return (loss, m.namedGradients().map { $0.tensor.toArray() })
        }
        let heap = try step(nil)
        let first = try step(arena)
        #expect(arena.heapTensors > 0 && arena.capacity == 0)  // the first step sized the block
        let second = try step(arena)
        #expect(arena.heapTensors == 0 && arena.capacity > 0)
        #expect(first.0 == heap.0 && second.0 == heap.0 && first.1 == heap.1 && second.1 == heap.1)
        // A longer batch needs a bigger block: heap once, then none again.
        let longer = TransformerModel.Shard(batch: SFTDataset.paddingFreeBatch(tinyExamples + tinyExamples), firstSequence: 0, firstToken: 0)
        _ = try step(arena, longer)
        #expect(arena.heapTensors > 0)
        let again = try step(arena, longer)
        #expect(arena.heapTensors == 0)
        #expect(again.0 == (try step(nil, longer)).0)
    }
}

@Suite("Passes: a micro-batch cut to bound activation memory")
struct TrainingPassTests {
    @Test func splitKeepsOrderBoundAndBalance() {
        let m = TrainingPass.maxTokens
        // Under the bound: one pass.
        #expect(TrainingPass.split([10, 20, 30]) { $0 } == [[10, 20, 30]])
        // 8 items of 74 tokens (592, SmolLM2's batch): two even passes, not 512 + 80.
        let eight = Array(repeating: 74, count: 8)
        #expect(TrainingPass.split(eight) { $0 } == [Array(repeating: 74, count: 4), Array(repeating: 74, count: 4)])
        // Every pass under the bound unless an item alone is longer; order kept.
        let items = [m / 2, m / 3, m + 5, 7, m / 2, m / 2, 1, 2, 3]
        let passes = TrainingPass.split(items) { $0 }
        #expect(passes.flatMap { $0 } == items)
        for p in passes { #expect(p.reduce(0, +) <= m || p.count == 1) }
        #expect(passes.contains([m + 5]))
        #expect(TrainingPass.split([Int]()) { $0 }.isEmpty)
    }
}

@Suite("Shards of a padding-free batch")
struct PaddingFreeShardTests {
    /// Workers get whole sequences, in order, as even in tokens as the lengths allow (a shard
    /// of 3 sequences beside one of 1 left a core idle for half the step).
    @Test func shardsSplitOnSequenceBoundariesEvenly() throws {
        let m = try tinyModel(.llama, tied: false, kv: 4)
        func split(_ lengths: [Int], _ workers: Int) -> [[Int]] {
            let ex = lengths.enumerated().map { SFTExample(ids: Array(repeating: 1, count: $1), labels: Array(repeating: 1, count: $1), line: $0) }
            return m.shards(SFTDataset.paddingFreeBatch(ex), maxWorkers: workers).map { $0.batch.sequences![0] }
        }
        #expect(split([74, 74, 74, 74], 2) == [[74, 74], [74, 74]])
        #expect(split([60, 90, 70, 80], 2) == [[60, 90], [70, 80]])
        #expect(split([200, 10, 10, 10], 2) == [[200], [10, 10, 10]])
        #expect(split([5, 5, 5], 4) == [[5], [5], [5]])
        #expect(split([9, 8, 7, 6, 5, 4], 3).flatMap { $0 } == [9, 8, 7, 6, 5, 4])
        let shards = m.shards(SFTDataset.paddingFreeBatch(tinyExamples), maxWorkers: 2)
        #expect(shards.map(\.firstSequence) == [0, 1] && shards.map(\.firstToken) == [0, 8])
    }
}
