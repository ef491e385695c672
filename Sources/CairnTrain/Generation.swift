import Foundation

/// Keys and values of every layer for the tokens seen so far (batch of one).
/// keys[l] and values[l] are (capacity, KV·D).
public final class KVCache {
    public let capacity: Int
    public internal(set) var length = 0
    let keys: [Tensor]
    let values: [Tensor]

    public init(config: ModelConfig, capacity: Int) {
        self.capacity = capacity
        let width = config.numKVHeads * config.headDim
        keys = (0..<config.numLayers).map { _ in Tensor(shape: [capacity, width]) }
        values = (0..<config.numLayers).map { _ in Tensor(shape: [capacity, width]) }
    }
}

/// How to pick the next token.
public struct SamplingOptions: Sendable {
    /// 0: greedy (argmax).
    public var temperature: Float = 0
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches topP.
    public var topP: Float = 1
    public var seed: UInt64 = 0
    public init(temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature; self.topP = topP; self.seed = seed
    }
}

extension TransformerModel {
    /// Runs the new tokens through the model on top of the cache and returns their logits (T, V).
    public func forward(appending ids: [Int], cache: KVCache) throws -> Tensor {
        let T = ids.count
        guard T > 0 else { throw ModelError("nothing to run: no tokens") }
        guard cache.length + T <= cache.capacity else {
            throw ModelError("the KV cache holds \(cache.capacity) positions; \(cache.length + T) needed")
        }
        return try forward(appending: ids, caches: [cache])
    }

    /// Runs row b's T new tokens (ids is (B·T)) on top of `caches[b]`, every row in one product
    /// per weight, and returns their logits (B·T, V).
    func forward(appending ids: [Int], caches: [KVCache]) throws -> Tensor {
        let N = ids.count, T = N / caches.count
        ensureRope(caches.map(\.length).max()! + T)
        let x = try embedTokens(ids)
        let layout = RowLayout(caches: caches, T: T)
        for (l, layer) in layers.enumerated() {
            _ = layerForward(layer, x: x, layout: layout, save: false, dropout: nil, index: l)
        }
        for c in caches { c.length += T }
        let C = config.hiddenSize, V = config.vocabSize
        let xf = Tensor(shape: [N, C])
        RMSNormOp.forward(out: xf.data, rstd: nil, inp: x.data, weight: finalNorm.data, N: N, C: C, eps: Float(config.rmsNormEps))
        let out = Tensor(shape: [N, V])
        LinearOp.forward(out: out.data, inp: xf.data, weight: lmHead.data, bias: nil, N: N, C: C, OC: V)
        return out
    }

    /// Continues `prompt` for up to `maxNewTokens` tokens with a KV cache, stopping after any of
    /// `stopTokens`. Returns the new tokens only (a stop token included when it was produced).
    public func generate(prompt: [Int], maxNewTokens: Int, sampling: SamplingOptions = SamplingOptions(),
                         stopTokens: Set<Int> = []) throws -> [Int] {
        guard !prompt.isEmpty else { throw ModelError("generation needs a non-empty prompt") }
        let cache = KVCache(config: config, capacity: prompt.count + maxNewTokens)
        var rng = RandomGenerator(seed: sampling.seed)
        var logits = try forward(appending: prompt, cache: cache)
        var row = prompt.count - 1
        var out: [Int] = []
        while out.count < maxNewTokens {
            let next = Self.sample(logits.data + row * config.vocabSize, V: config.vocabSize, options: sampling, rng: &rng)
            out.append(next)
            if stopTokens.contains(next) || out.count == maxNewTokens { break }
            logits = try forward(appending: [next], cache: cache)
            row = 0
        }
        return out
    }

    /// `generate` for several prompts at once, each continued as `generate` would continue it
    /// alone. Each prompt is run alone into its own KV cache; then every step runs the newest
    /// token of each unfinished sequence as one batch — one product per weight for all of them,
    /// where one sequence at a time reads every weight once per token — and a sequence leaves
    /// the batch when it produces a stop token or reaches `maxNewTokens`.
    public func generate(prompts: [[Int]], maxNewTokens: Int, sampling: SamplingOptions = SamplingOptions(),
                         stopTokens: Set<Int> = []) throws -> [[Int]] {
        guard !prompts.contains(where: \.isEmpty) else { throw ModelError("generation needs non-empty prompts") }
        let V = config.vocabSize
        var rngs = prompts.map { _ in RandomGenerator(seed: sampling.seed) }
        var outs = prompts.map { _ in [Int]() }
        let caches = prompts.map { KVCache(config: config, capacity: $0.count + maxNewTokens) }
        var active: [Int] = []  // sequences still generating, with their newest token
        var next: [Int] = []
        for (i, p) in prompts.enumerated() where maxNewTokens > 0 {
            let logits = try forward(appending: p, cache: caches[i])
            let t = Self.sample(logits.data + (p.count - 1) * V, V: V, options: sampling, rng: &rngs[i])
            outs[i].append(t)
            if !stopTokens.contains(t) && maxNewTokens > 1 { active.append(i); next.append(t) }
        }
        while !active.isEmpty {
            let logits = try forward(appending: next, caches: active.map { caches[$0] })
            var stillActive: [Int] = [], stillNext: [Int] = []
            for (row, i) in active.enumerated() {
                let t = Self.sample(logits.data + row * V, V: V, options: sampling, rng: &rngs[i])
                outs[i].append(t)
                if !stopTokens.contains(t) && outs[i].count < maxNewTokens { stillActive.append(i); stillNext.append(t) }
            }
            (active, next) = (stillActive, stillNext)
        }
        return outs
    }

    static func sample(_ logits: UnsafePointer<Float>, V: Int, options: SamplingOptions, rng: inout RandomGenerator) -> Int {
        if options.temperature <= 0 {
            var best = 0
            for j in 1..<V where logits[j] > logits[best] { best = j }
            return best
        }
        var m = -Float.infinity
        for j in 0..<V { m = max(m, logits[j]) }
        var probs = (0..<V).map { (j: $0, p: Double(Foundation.exp((logits[$0] - m) / options.temperature))) }
        let z = probs.reduce(0) { $0 + $1.p }
        probs.sort { $0.p > $1.p || ($0.p == $1.p && $0.j < $1.j) }
        var kept = 0, mass = 0.0
        while kept < V { mass += probs[kept].p / z; kept += 1; if mass >= Double(options.topP) { break } }
        let u = Double(rng.uniform()) * mass
        var acc = 0.0
        for i in 0..<kept { acc += probs[i].p / z; if u < acc { return probs[i].j } }
        return probs[kept - 1].j
    }
}

extension TransformerModel {
    /// log p(ids[t] | ids[..<t]) for t ≥ 1 from logits (1, T, V); entry 0 is 0 (nothing predicts it).
    public static func tokenLogProbs(logits: Tensor, ids: [Int], vocabSize V: Int) -> [Double] {
        // Row t predicts ids[t + 1]; shifted so that entry t is the log-prob of ids[t].
        let lp = CrossEntropyOp.logProbs(logits: logits.data, targets: Array(ids.dropFirst()) + [CrossEntropyOp.ignoreIndex], V: V)
        return [0] + Array(lp.dropLast())
    }
}
