// bench-train: one LoRA SFT or DPO optimizer step of CairnTrain's trainers (SFTTrainer,
// DPOTrainer), median step time after one warm-up step. Prints one JSON line.
// usage: bench-train --size 10m|100m --kind sft|dpo [--steps N] [--dropout 0]
// SFT: 4 sequences of 256 random tokens, the first 64 masked (−100). DPO: 4 pairs, a 64-token
// prompt + 192-token chosen / rejected completions (8 sequences of 256 per step); DPOTrainer's
// init computes the reference log-probs once, timed separately (ref_s), like TRL's
// precompute_ref_log_probs.
import CairnTrain
import Foundation

BLAS.reexecWithPreferredCoreTypeIfNeeded()

func arg(_ name: String, _ d: String) -> String {
    let a = CommandLine.arguments
    if let i = a.firstIndex(of: "--" + name), i + 1 < a.count { return a[i + 1] }
    return d
}

let size = arg("size", "10m"), kind = arg("kind", "sft")
let steps = Int(arg("steps", "3"))!, dropout = Double(arg("dropout", "0"))!
let B = 4, T = 256, P = 64
let config: ModelConfig
switch size {
case "10m": config = ModelConfig(architecture: .llama, vocabSize: 8192, hiddenSize: 256, intermediateSize: 768, numLayers: 6,
                                 numHeads: 8, rmsNormEps: 1e-5, maxPositionEmbeddings: 1024)
case "100m": config = ModelConfig(architecture: .llama, vocabSize: 16384, hiddenSize: 768, intermediateSize: 2048, numLayers: 12,
                                  numHeads: 12, rmsNormEps: 1e-5, tieWordEmbeddings: true, maxPositionEmbeddings: 1024)
default: fatalError("--size 10m or 100m")
}
let model = try TransformerModel.randomlyInitialised(config: config, seed: 1)

var tc = TrainingConfig()
tc.maxSteps = 1_000_000
tc.batchSize = B
tc.gradientAccumulation = 1
tc.learningRate = 1e-4
tc.warmupRatio = 0
tc.lrSchedulerType = .constant
tc.maxGradNorm = 1.0
tc.loraR = 16
tc.loraAlpha = 32
tc.loraDropout = dropout
tc.targetModules = ["q_proj", "k_proj", "v_proj", "o_proj"]
tc.maxSeqLength = T
tc.seed = 2
tc.beta = 0.1

var rng = RandomGenerator(seed: 3)
func randomIDs(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % UInt64(config.vocabSize)) } }
// SFTExample's and PreferenceExample's memberwise inits are internal, so the benchmark gets one
// instance of each through the public JSONL loaders (a throwaway tokenizer and one-line files)
// and overwrites their public fields with the random token ids.
let tmp = NSTemporaryDirectory() + "bench-train-\(getpid())"
try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: tmp) }
try "hello world, a small corpus for a throwaway tokenizer.\n".write(toFile: tmp + "/corpus.txt", atomically: true, encoding: .utf8)
let tokenizer = try TokenizerTrainer.train(corpusFiles: [tmp + "/corpus.txt"], vocabSize: 300)
try "{\"prompt\": \"hello\", \"completion\": \" world\"}\n".write(toFile: tmp + "/sft.jsonl", atomically: true, encoding: .utf8)
try "{\"prompt\": \"hello\", \"chosen\": \" world\", \"rejected\": \" small\"}\n".write(toFile: tmp + "/dpo.jsonl", atomically: true, encoding: .utf8)
let templateSFT = try SFTDataset(file: tmp + "/sft.jsonl", tokenizer: tokenizer, maxSeqLength: 64).examples[0]
let templatePair = try PreferenceDataset(file: tmp + "/dpo.jsonl", tokenizer: tokenizer, maxSeqLength: 64).pairs[0]
func example(prompt: [Int], completion: [Int], line: Int) -> SFTExample {
    var e = templateSFT
    e.ids = prompt + completion
    e.labels = Array(repeating: -100, count: prompt.count) + completion
    e.line = line
    return e
}

func now() -> Double { Date().timeIntervalSince1970 }
let step: () throws -> Void
var refSeconds = 0.0
let tokensPerStep: Int
if kind == "sft" {
    let train = (0..<B).map { i in example(prompt: randomIDs(P), completion: randomIDs(T - P), line: i + 1) }
    let trainer = try SFTTrainer(model: model, train: train, config: tc, padID: 0)
    step = { _ = try trainer.trainStep() }
    tokensPerStep = B * T
} else if kind == "dpo" {
    let pairs = (0..<B).map { i -> PreferenceExample in
        let prompt = randomIDs(P)
        var pair = templatePair
        pair.chosen = example(prompt: prompt, completion: randomIDs(T - P), line: i + 1)
        pair.rejected = example(prompt: prompt, completion: randomIDs(T - P), line: i + 1)
        pair.line = i + 1
        return pair
    }
    let t0 = now()
    let trainer = try DPOTrainer(model: model, pairs: pairs, config: tc, padID: 0)  // reference log-probs, once
    refSeconds = now() - t0
    step = { _ = try trainer.trainStep() }
    tokensPerStep = 2 * B * T
} else {
    fatalError("--kind sft or dpo")
}

try step()  // warm-up
var times: [Double] = []
for _ in 0..<steps {
    let t0 = now()
    try step()
    times.append(now() - t0)
}
times.sort()
let median = times[times.count / 2]
print("{\"impl\":\"cairn\",\"size\":\"\(size)\",\"kind\":\"\(kind)\",\"params\":\(config.parameterCount),\"steps\":\(steps),"
      + "\"step_s\":\(median),\"tokens_per_s\":\(Double(tokensPerStep) / median),\"ref_s\":\(refSeconds),"
      + "\"openblas_core\":\"\(BLAS.coreName)\",\"threads\":\(BLAS.maxThreads)}")
