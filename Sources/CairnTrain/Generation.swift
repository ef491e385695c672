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
        return try forward(appending: ids, caches: [cache], newTokens: [T])
    }

    /// Runs `newTokens[b]` tokens (ids holds them one sequence after another) on top of
    /// `caches[b]`, every sequence in one product per weight, and returns the logits (Σ newTokens, V)
    /// — or with `lastOnly` only each sequence's last ones (B, V).
    func forward(appending ids: [Int], caches: [KVCache], newTokens: [Int], lastOnly: Bool = false) throws -> Tensor {
        for (c, n) in zip(caches, newTokens) where c.length + n > c.capacity {
            throw ModelError("the KV cache holds \(c.capacity) positions; \(c.length + n) needed")
        }
        ensureRope(zip(caches, newTokens).map { $0.length + $1 }.max() ?? 0)
        var x = try embedTokens(ids)
        let layout = RowLayout(caches: caches, newTokens: newTokens)
        for (l, layer) in layers.enumerated() {
            _ = layerForward(layer, x: x, layout: layout, save: false, dropout: nil, index: l)
        }
        for (c, n) in zip(caches, newTokens) { c.length += n }
        let C = config.hiddenSize, V = config.vocabSize
        if lastOnly && newTokens.contains(where: { $0 != 1 }) {
            let last = Tensor(shape: [caches.count, C])
            var end = 0
            for (b, n) in newTokens.enumerated() { end += n; (last.data + b * C).update(from: x.data + (end - 1) * C, count: C) }
            x = last
        }
        let N = x.count / C
        let xf = Tensor(shape: [N, C])
        RMSNormOp.forward(out: xf.data, rstd: nil, inp: x.data, weight: finalNorm.data, N: N, C: C, eps: Float(config.rmsNormEps))
        let out = Tensor(shape: [N, V])
        LinearOp.forward(out: out.data, inp: xf.data, weight: lmHead.data, bias: nil, N: N, C: C, OC: V)
        return out
    }

    /// Continues `prompt` for up to `maxNewTokens` tokens with a KV cache, stopping after any of
    /// `stopTokens`. Returns the new tokens only (a stop token included when it was produced).
    /// (A batch of one: one row per product, each weight read once per token through sgemv.)
    public func generate(prompt: [Int], maxNewTokens: Int, sampling: SamplingOptions = SamplingOptions(),
                         stopTokens: Set<Int> = []) throws -> [Int] {
        guard !prompt.isEmpty else { throw ModelError("generation needs a non-empty prompt") }
        return try generate(prompts: [prompt], maxNewTokens: maxNewTokens, sampling: sampling, stopTokens: stopTokens)[0]
    }

    /// `generate` for several prompts at once, each continued as it would be alone. The prompts
    /// are run into a KV cache each (`prefill`); then every step runs the newest token of each
    /// unfinished sequence as one batch — one product per weight for all of them, where one
    /// sequence at a time reads every weight once per token — and a sequence leaves the batch
    /// when it produces a stop token or reaches `maxNewTokens`.
    public func generate(prompts: [[Int]], maxNewTokens: Int, sampling: SamplingOptions = SamplingOptions(),
                         stopTokens: Set<Int> = []) throws -> [[Int]] {
        guard !prompts.contains(where: \.isEmpty) else { throw ModelError("generation needs non-empty prompts") }
        guard maxNewTokens > 0 else { return prompts.map { _ in [] } }
        // Groups bound the memory of the caches and of the prompts' pass.
        var outs: [[Int]] = [], start = 0
        while start < prompts.count {
            var end = start + 1, tokens = prompts[start].count
            while end < prompts.count, end - start < Self.generationGroup, tokens + prompts[end].count <= Self.prefillTokens {
                tokens += prompts[end].count; end += 1
            }
            outs += try generateGroup(Array(prompts[start..<end]), maxNewTokens: maxNewTokens, sampling: sampling, stopTokens: stopTokens)
            start = end
        }
        return outs
    }

    /// At most this many sequences decode together, and their prompts' pass takes at most
    /// `prefillTokens` tokens (a longer prompt goes alone).
    static let generationGroup = 64, prefillTokens = 4096

    private func generateGroup(_ prompts: [[Int]], maxNewTokens: Int, sampling: SamplingOptions, stopTokens: Set<Int>) throws -> [[Int]] {
        let V = config.vocabSize
        var rngs = prompts.map { _ in RandomGenerator(seed: sampling.seed) }
        var outs = prompts.map { _ in [Int]() }
        let caches = prompts.map { KVCache(config: config, capacity: $0.count + maxNewTokens) }
        // The prompts in one pass (each sequence attends within its own cache), then one
        // batch per step of every sequence still generating, with its newest token.
        var active = Array(prompts.indices), next: [Int] = []
        var logits = try prefill(prompts, caches: caches)
        while !active.isEmpty {
            var stillActive: [Int] = [], stillNext: [Int] = []
            for (row, i) in active.enumerated() {
                let t = Self.sample(logits.data + row * V, V: V, options: sampling, rng: &rngs[i])
                outs[i].append(t)
                if !stopTokens.contains(t) && outs[i].count < maxNewTokens { stillActive.append(i); stillNext.append(t) }
            }
            (active, next) = (stillActive, stillNext)
            if active.isEmpty { break }
            logits = try forward(appending: next, caches: active.map { caches[$0] }, newTokens: active.map { _ in 1 })
        }
        return outs
    }

    /// The prompts' pass: each prompt into its own cache, the last position's logits (B, V).
    /// The prompts are split between one worker per core (even in tokens), each with
    /// single-threaded BLAS — as a training step is: on two cores that beats one pass whose
    /// products run on two OpenBLAS threads (1.19 s → 0.8 s for the gates' 24 prompts).
    func prefill(_ prompts: [[Int]], caches: [KVCache]) throws -> Tensor {
        let total = prompts.reduce(0) { $0 + $1.count }
        let workers = min(BLAS.maxThreads, prompts.count)
        guard workers > 1, !BLAS.isPinned else {
            return try forward(appending: prompts.flatMap { $0 }, caches: caches, newTokens: prompts.map(\.count), lastOnly: true)
        }
        // Contiguous groups of prompts, cut where the tokens reach each worker's share.
        var bounds = [0], done = 0
        for (i, p) in prompts.enumerated() where bounds.count < workers {
            done += p.count
            if done * workers >= total * bounds.count && i + 1 < prompts.count { bounds.append(i + 1) }
        }
        bounds.append(prompts.count)
        ensureRope(zip(caches, prompts).map { $0.length + $1.count }.max() ?? 0)
        let V = config.vocabSize, out = Tensor(shape: [prompts.count, V])
        try BLAS.workers(bounds.count - 1) { w in
            let r = bounds[w]..<bounds[w + 1]
            let l = try forward(appending: prompts[r].flatMap { $0 }, caches: Array(caches[r]), newTokens: prompts[r].map(\.count), lastOnly: true)
            (out.data + r.lowerBound * V).update(from: l.data, count: r.count * V)
        }
        return out
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
