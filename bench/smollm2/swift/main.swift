// bench-smollm2: CairnTrain on SmolLM2-135M's shape with the task-api data, one measurement per
// process, one JSON line out (the sgemm peak of this machine measured in the same process).
// usage: bench-smollm2 --model DIR --what sft|dpo|generate|generate-batch [--data FILE] [--pack]
//                      [--batch 8] [--steps 4] [--tokens 40] [--prompts FILE]
import CairnTrain
import Foundation

BLAS.reexecWithPreferredCoreTypeIfNeeded()

func arg(_ name: String, _ d: String) -> String {
    let a = CommandLine.arguments
    if let i = a.firstIndex(of: "--" + name), i + 1 < a.count { return a[i + 1] }
    return d
}
func now() -> Double { Date().timeIntervalSince1970 }
func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

let dir = arg("model", ""), what = arg("what", "sft"), pack = CommandLine.arguments.contains("--pack")
let B = Int(arg("batch", "8"))!, steps = Int(arg("steps", "4"))!
let model = try TransformerModel.load(directory: dir)
let tok = try Tokenizer(directory: dir)
let pad = tok.padTokenID ?? tok.eosTokenID ?? 0
let c = model.config
let loadedMiB = Double(PeakMemory.residentBytes) / 1048576
var out: [String: Any] = ["loaded_rss_mib": loadedMiB, "impl": "cairn", "what": what, "packed": pack, "openblas_core": BLAS.coreName, "threads": BLAS.maxThreads]

// Model FLOPs of a LoRA step (frozen base: forward + input gradients, 2× the forward; LoRA's own
// products are under 1%): 2·(matmul params of the layers)·tokens per pass, attention scores and
// values 4·L·H·D per query per key it sees, the LM head 2·V·C per loss position per pass.
func loraStepFlops(_ lengths: [Int], lossPositions: Int) -> Double {
    let layerParams = Double(c.numLayers) * Double(c.hiddenSize * (c.numHeads + 2 * c.numKVHeads) * c.headDim
        + c.numHeads * c.headDim * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize)
    let tokens = Double(lengths.reduce(0, +))
    let attention = lengths.reduce(0.0) { $0 + 4 * Double(c.numLayers * c.numHeads * c.headDim) * Double($1 * ($1 + 1) / 2) }
    return 2 * (2 * layerParams * tokens + attention + 2 * Double(c.vocabSize * c.hiddenSize) * Double(lossPositions))
}

switch what {
case "sft":
    let data = try SFTDataset(file: arg("data", ""), tokenizer: tok, maxSeqLength: 512)
    var config = TrainingConfig()
    config.batchSize = B; config.gradientAccumulation = 1; config.learningRate = 1e-4; config.loraDropout = 0
    config.maxSteps = steps + 1; config.paddingFree = pack
    let trainer = try SFTTrainer(model: model, train: data.examples, config: config, padID: pad)
    var times: [Double] = [], flops: [Double] = [], padded: [Int] = [], real: [Int] = []
    for s in 0...steps {
        let passes = trainer.microBatches(step: s)
        let t0 = now()
        try trainer.trainStep()
        if s > 0 {
            times.append(now() - t0)
            flops.append(passes.reduce(0) { $0 + loraStepFlops($1.sequenceLengths, lossPositions: $1.lossTokens) })
            padded.append(passes.reduce(0) { $0 + $1.inputIDs.count * $1.inputIDs[0].count })
            real.append(passes.reduce(0) { $0 + $1.sequenceLengths.reduce(0, +) })
            out["passes"] = passes.count
        }
    }
    out["step_s"] = median(times); out["gflops"] = median(zip(flops, times).map { $0 / $1 / 1e9 })
    out["tokens"] = real.reduce(0, +) / real.count; out["positions"] = padded.reduce(0, +) / padded.count
case "dpo":
    let data = try PreferenceDataset(file: arg("data", ""), tokenizer: tok, maxSeqLength: 512)
    var config = TrainingConfig()
    config.batchSize = B; config.gradientAccumulation = 1; config.learningRate = 1e-4; config.loraDropout = 0
    config.loraR = 8; config.loraAlpha = 16; config.targetModules = ["q_proj", "v_proj"]; config.maxSteps = steps + 1
    let t0 = now()
    let trainer = try DPOTrainer(model: model, pairs: Array(data.pairs.prefix(B * (steps + 1))), config: config, padID: pad)
    out["reference_s"] = now() - t0
    var times: [Double] = []
    for s in 0...steps {
        let t0 = now()
        try trainer.trainStep()
        if s > 0 { times.append(now() - t0) }
    }
    out["step_s"] = median(times)
case "generate", "generate-batch":
    let n = Int(arg("tokens", "40"))!
    let lines = try String(contentsOfFile: arg("prompts", ""), encoding: .utf8).split(separator: "\n")
    let prompts: [[Int]] = try lines.map { line in
        let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        let msgs = (o["messages"] as! [[String: String]]).map { ChatMessage(role: $0["role"]!, content: $0["content"]!) }
        return tok.encode(try tok.renderChat(msgs, addGenerationPrompt: true))
    }
    let stops = Set([tok.eosTokenID, tok.chatEndTokenID].compactMap { $0 })
    if what == "generate" {
        // One prompt, exactly n new tokens (no stop), as transformers' generate with min_new_tokens.
        _ = try model.generate(prompt: prompts[0], maxNewTokens: 4)
        var times: [Double] = []
        for _ in 0..<steps { let t0 = now(); _ = try model.generate(prompt: prompts[0], maxNewTokens: n); times.append(now() - t0) }
        out["seconds"] = median(times); out["tokens_per_s"] = Double(n) / median(times)
    } else {
        let t0 = now()
        // --batched-only (for profiling the batch): no one-at-a-time pass.
        let one = CommandLine.arguments.contains("--batched-only") ? [] : try prompts.map { try model.generate(prompt: $0, maxNewTokens: n, stopTokens: stops) }
        let t1 = now()
        let batched = try model.generate(prompts: prompts, maxNewTokens: n, stopTokens: stops)
        let t2 = now()
        out["one_at_a_time_s"] = t1 - t0; out["batched_s"] = t2 - t1; out["identical"] = one == batched
        let t3 = now()
        for p in prompts { _ = try model.forward(appending: p, cache: KVCache(config: c, capacity: p.count)) }
        out["prefill_s"] = now() - t3; out["prompt_tokens"] = prompts.reduce(0) { $0 + $1.count }
        out["prompts"] = prompts.count; out["new_tokens"] = one.reduce(0) { $0 + $1.count }
    }
default: fatalError("--what sft|dpo|generate|generate-batch")
}

// Peak RSS of the work above, before the peak measurement's own 48 MiB.
out["work_peak_rss_mib"] = Double(PeakMemory.residentBytes) / 1048576

out["sgemm_peak_gflops"] = BLAS.sgemmPeakGFLOPS()
print(String(data: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), encoding: .utf8)!)
