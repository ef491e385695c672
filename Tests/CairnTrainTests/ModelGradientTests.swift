import Foundation
import Testing
@testable import CairnTrain

/// A tiny model with weights large enough that every path matters.
func tinyModel(_ arch: ModelConfig.Architecture, tied: Bool, kv: Int, seed: UInt64 = 7) throws -> TransformerModel {
    let config = ModelConfig(architecture: arch, vocabSize: 23, hiddenSize: 16, intermediateSize: 24, numLayers: 2,
                             numHeads: 4, numKVHeads: kv, rmsNormEps: 1e-5, ropeTheta: 10000, tieWordEmbeddings: tied,
                             attentionBias: arch == .llama)
    var rng = RandomGenerator(seed: seed)
    return try TransformerModel(config: config) { name, shape in
        let t = Tensor(shape: shape)
        for i in 0..<t.count { t[i] = name.hasSuffix("norm.weight") ? 1 + 0.1 * rng.normal() : 0.3 * rng.normal() }
        return t
    }
}

let tinyBatch = TrainingBatch(
    inputIDs: [[3, 7, 1, 22, 9, 4, 4, 15], [5, 6, 2, 11, 19, 0, 0, 0]],
    attentionMask: [[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0, 0]],
    labels: [[-100, -100, 1, 22, 9, 4, 4, 15], [-100, 6, 2, 11, 19, -100, -100, -100]])

func meanLoss(_ m: TransformerModel, _ batch: TrainingBatch) throws -> Double {
    var none: RandomGenerator? = nil
    let saved = m.trainable
    m.setTrainable(.none)
    defer { m.setTrainable(saved) }
    let (sum, n) = try m.forwardBackward(batch, rng: &none)
    return sum / Double(n)
}

@Suite("Whole-model gradients against finite differences")
struct ModelGradientTests {
    @Test(arguments: [(ModelConfig.Architecture.llama, false, 4), (.qwen2, true, 2)])
    func fullParameterGradients(arch: ModelConfig.Architecture, tied: Bool, kv: Int) throws {
        let m = try tinyModel(arch, tied: tied, kv: kv)
        m.setTrainable(.full)
        var none: RandomGenerator? = nil
        _ = try m.forwardBackward(tinyBatch, rng: &none)
        let grads = Dictionary(uniqueKeysWithValues: m.namedGradients().map { ($0.name, $0.tensor.copy()) })
        let params = Dictionary(uniqueKeysWithValues: m.namedParameters().map { ($0.name, $0.tensor) })
        #expect(Set(grads.keys) == Set(params.keys))
        for name in ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.bias",
                     "model.layers.0.self_attn.v_proj.weight", "model.layers.1.self_attn.o_proj.weight", "model.layers.0.mlp.gate_proj.weight",
                     "model.layers.1.mlp.down_proj.weight", "model.layers.0.input_layernorm.weight",
                     "model.layers.1.post_attention_layernorm.weight", "model.norm.weight", "lm_head.weight"] {
            guard let p = params[name], let g = grads[name] else { continue }  // tied: no lm_head; llama here has biases
            expectFiniteDifferences(p, analytic: g, samples: 6, eps: 1e-2, name) { (try? meanLoss(m, tinyBatch)) ?? .nan }
        }
    }

    @Test func loraGradientsOnlyAndFiniteDifferences() throws {
        let m = try tinyModel(.qwen2, tied: true, kv: 2)
        m.addLoRA(try LoRASpec(rank: 4, alpha: 8, targets: LoRASpec.allTargets, useRSLoRA: true), seed: 3)
        // B starts at zero (no effect); give it values so that A's gradient is not zero.
        var g = RandomGenerator(seed: 99)
        for (name, t) in m.loraWeights() where name.contains("lora_B") { for i in 0..<t.count { t[i] = 0.3 * g.normal() } }
        m.setTrainable(.lora)
        var none: RandomGenerator? = nil
        _ = try m.forwardBackward(tinyBatch, rng: &none)
        let grads = Dictionary(uniqueKeysWithValues: m.namedGradients().map { ($0.name, $0.tensor.copy()) })
        #expect(grads.count == 2 * 7 * 2)
        let weights = Dictionary(uniqueKeysWithValues: m.loraWeights().map { ($0.name, $0.tensor) })
        for name in ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight",
                     "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight", "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight",
                     "base_model.model.model.layers.1.self_attn.o_proj.lora_A.weight"] {
            expectFiniteDifferences(weights[name]!, analytic: grads[name]!, samples: 6, eps: 1e-2, name) { (try? meanLoss(m, tinyBatch)) ?? .nan }
        }
        // The base stays frozen: no gradient tensors exist for it.
        #expect(m.gradients.of(m.layers[0].q.weight) == nil && m.gradients.of(m.embed) == nil)
    }

    @Test func accumulatedGradientsEqualTheFullBatchGradient() throws {
        let m = try tinyModel(.llama, tied: false, kv: 4)
        m.setTrainable(.full)
        var none: RandomGenerator? = nil
        _ = try m.forwardBackward(tinyBatch, rng: &none)
        let full = m.namedGradients().map { $0.tensor.copy() }
        m.zeroGradients()
        let total = Float(tinyBatch.lossTokens)
        for row in 0..<2 {
            let half = TrainingBatch(inputIDs: [tinyBatch.inputIDs[row]], attentionMask: [tinyBatch.attentionMask![row]], labels: [tinyBatch.labels[row]])
            _ = try m.forwardBackward(half, gradScale: 1 / total, rng: &none)
        }
        for (a, b) in zip(full, m.namedGradients().map(\.tensor)) { #expect(a.maxAbsDifference(b) < 1e-5) }
    }

    @Test func paddingDoesNotChangeTheRealTokens() throws {
        // Row 1 of the batch, alone and unpadded, gives the same logits on its real tokens.
        let m = try tinyModel(.qwen2, tied: true, kv: 2)
        let padded = try m.logits(inputIDs: tinyBatch.inputIDs, attentionMask: tinyBatch.attentionMask)
        let alone = try m.logits(inputIDs: [Array(tinyBatch.inputIDs[1].prefix(5))])
        let V = 23
        for t in 0..<5 { for j in 0..<V { #expect(abs(padded[(8 + t) * V + j] - alone[t * V + j]) < 1e-5) } }
    }
}

@Suite("Generation with a KV cache")
struct GenerationTests {
    @Test func cachedLogitsEqualTheFullForward() throws {
        let m = try tinyModel(.qwen2, tied: true, kv: 2)
        m.addLoRA(try LoRASpec(rank: 2, alpha: 4, targets: ["q_proj", "v_proj"]), seed: 1)
        let ids = [3, 7, 1, 22, 9, 4, 4, 15]
        let full = try m.logits(inputIDs: [ids])
        let cache = KVCache(config: m.config, capacity: 16)
        let first = try m.forward(appending: Array(ids.prefix(5)), cache: cache)
        var rows = first.toArray()
        for id in ids.dropFirst(5) { rows += try m.forward(appending: [id], cache: cache).toArray() }
        #expect(rows.count == full.count)
        for i in 0..<rows.count { #expect(abs(rows[i] - full[i]) < 1e-5) }
        #expect(throws: ModelError.self) { try m.forward(appending: Array(repeating: 1, count: 9), cache: cache) }
    }

    @Test func greedyGenerationMatchesARecomputingLoopAndStops() throws {
        let m = try tinyModel(.llama, tied: false, kv: 4)
        let prompt = [3, 7, 1]
        let out = try m.generate(prompt: prompt, maxNewTokens: 6)
        var seq = prompt
        for _ in 0..<6 {
            let l = try m.logits(inputIDs: [seq])
            let last = Array(l.toArray()[((seq.count - 1) * 23)..<(seq.count * 23)])
            seq.append(last.indices.max { last[$0] < last[$1] }!)
        }
        #expect(out == Array(seq.dropFirst(3)))
        let stopped = try m.generate(prompt: prompt, maxNewTokens: 6, stopTokens: [out[1]])
        #expect(stopped == Array(out.prefix(out.firstIndex(of: out[1])! + 1)))
        // Sampling is reproducible from its seed.
        let s = SamplingOptions(temperature: 1.0, topP: 0.9, seed: 42)
        #expect(try m.generate(prompt: prompt, maxNewTokens: 6, sampling: s) == m.generate(prompt: prompt, maxNewTokens: 6, sampling: s))
    }
}

@Suite("Data-parallel steps")
struct DataParallelTests {
    /// The split step (one worker per core) gives the gradients of one pass over the whole batch,
    /// dropout included: masks are drawn per row.
    @Test func splitStepEqualsOneWorkerWithDropout() throws {
        let m = try tinyModel(.qwen2, tied: true, kv: 2)
        m.addLoRA(try LoRASpec(rank: 4, alpha: 8, dropout: 0.3, targets: LoRASpec.allTargets), seed: 3)
        var g = RandomGenerator(seed: 5)
        for (name, t) in m.loraWeights() where name.contains("lora_B") { for i in 0..<t.count { t[i] = 0.3 * g.normal() } }
        m.setTrainable(.lora)
        var rng: RandomGenerator? = RandomGenerator(seed: 77)
        let (sum, n) = try m.forwardBackward(tinyBatch, rng: &rng)
        let split = m.namedGradients().map { $0.tensor.copy() }
        m.zeroGradients()
        let one = try m.shardForwardBackward(.init(batch: tinyBatch, firstSequence: 0, firstToken: 0), scale: 1 / Float(n),
                                             dropout: DropoutStream(base: RandomGenerator(seed: 77), firstRow: 0), grads: m.gradients)
        // Equal up to fp32 rounding: GEMMs over other row counts may sum in another order on some
        // OpenBLAS kernels (Haswell: 4e-8 relative on the loss, 1.1e-6 on a gradient); a dropout
        // mask drawn for the wrong row changes them by orders of magnitude more.
        #expect(abs(one.reduce(0, +) - sum) < 1e-6 * max(1, abs(sum)))
        for (a, b) in zip(split, m.namedGradients().map(\.tensor)) { #expect(a.maxAbsDifference(b) < 1e-5) }
        // Dropout is on: another seed gives another loss.
        var other: RandomGenerator? = RandomGenerator(seed: 78)
        #expect(try m.forwardBackward(tinyBatch, rng: &other).lossSum != sum)
        #expect(rng != RandomGenerator(seed: 77))  // the step advanced the generator
    }
}

@Suite("Per-row losses and weights (what DPO needs)")
struct RowWeightTests {
    @Test func rowLossesAndWeightedGradients() throws {
        let m = try tinyModel(.llama, tied: false, kv: 4)
        m.addLoRA(try LoRASpec(rank: 2, alpha: 4, targets: LoRASpec.allTargets), seed: 9)
        var g = RandomGenerator(seed: 4)
        for (name, t) in m.loraWeights() where name.contains("lora_B") { for i in 0..<t.count { t[i] = 0.3 * g.normal() } }
        // Row losses equal −Σ log p over each row's targets, from the logits.
        let logits = try m.logits(inputIDs: tinyBatch.inputIDs, attentionMask: tinyBatch.attentionMask)
        let targets = tinyBatch.targets
        let lp = CrossEntropyOp.logProbs(logits: logits.data, targets: targets, V: 23)
        m.setTrainable(.lora)
        var none: RandomGenerator? = nil
        let weights: [Float] = [0.7, -1.3]
        let r = try m.forwardBackwardRows(tinyBatch, gradScale: 1, rowWeights: weights, rng: &none)
        for b in 0..<2 { #expect(abs(r.rowLossSums[b] + lp[(b * 8)..<(b * 8 + 8)].reduce(0, +)) < 1e-4) }
        let grads = Dictionary(uniqueKeysWithValues: m.namedGradients().map { ($0.name, $0.tensor.copy()) })
        let weightsByName = Dictionary(uniqueKeysWithValues: m.loraWeights().map { ($0.name, $0.tensor) })
        let objective = { () -> Double in
            let saved = m.trainable
            m.setTrainable(.none)
            defer { m.setTrainable(saved) }
            var n: RandomGenerator? = nil
            let rows = (try? m.forwardBackwardRows(tinyBatch, gradScale: 1, rng: &n).rowLossSums) ?? [.nan, .nan]
            return Double(weights[0]) * rows[0] + Double(weights[1]) * rows[1]
        }
        for name in ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"] {
            expectFiniteDifferences(weightsByName[name]!, analytic: grads[name]!, samples: 6, eps: 1e-2, name, loss: objective)
        }
    }
}
