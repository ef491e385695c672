// bench-train-model: forward+backward tokens/s of CairnTrain for one config, and the sgemm
// peak of this machine measured in the same process. Prints one JSON line.
// usage: bench-train-model --size 10m|100m --mode full|lora [--batch B] [--seq T] [--steps N]
import CairnTrain
import Foundation

BLAS.reexecWithPreferredCoreTypeIfNeeded()

func arg(_ name: String, _ d: String) -> String {
    let a = CommandLine.arguments
    if let i = a.firstIndex(of: "--" + name), i + 1 < a.count { return a[i + 1] }
    return d
}

// --skinny: LoRA-shaped and one-token products, Cairn's thread choice against 1 and all threads.
if CommandLine.arguments.contains("--skinny") {
    func time(_ body: () -> Void) -> Double {
        var best = Double.infinity
        for _ in 0..<30 { let t0 = Date(); body(); best = min(best, Date().timeIntervalSince(t0)) }
        return best * 1e6
    }
    var rows: [String] = []
    for (m, n, k) in [(1024, 8, 1024), (1024, 16, 1024), (8, 1024, 1024), (1, 896, 4864), (1, 4096, 4096), (256, 16, 256)] {
        let a = Tensor(shape: [m * k]), b = Tensor(shape: [k * n]), c = Tensor(shape: [m * n])
        for i in 0..<a.count { a[i] = Float(i % 13) * 0.01 }
        for i in 0..<b.count { b[i] = Float(i % 7) * 0.01 }
        let run = { BLAS.sgemm(transA: false, transB: false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: c, ldc: n) }
        run()  // first use: calibrates the shape
        let chosen = time(run)
        let one = BLAS.singleThreaded { time(run) }
        let all = BLAS.withThreads(BLAS.maxThreads) { time(run) }
        rows.append("{\"m\":\(m),\"n\":\(n),\"k\":\(k),\"cairn_us\":\(chosen),\"one_thread_us\":\(one),\"all_threads_us\":\(all),\"cairn_threads\":\(BLAS.calibratedThreads(m: m, n: n, k: k) ?? 0)}")
    }
    print("[" + rows.joined(separator: ",") + "]")
    exit(0)
}

let size = arg("size", "10m"), mode = arg("mode", "full")
let B = Int(arg("batch", "4"))!, T = Int(arg("seq", "256"))!, steps = Int(arg("steps", "5"))!
let config: ModelConfig
switch size {
case "10m": config = ModelConfig(architecture: .llama, vocabSize: 8192, hiddenSize: 256, intermediateSize: 768, numLayers: 6,
                                 numHeads: 8, rmsNormEps: 1e-5, maxPositionEmbeddings: 1024)
case "100m": config = ModelConfig(architecture: .llama, vocabSize: 16384, hiddenSize: 768, intermediateSize: 2048, numLayers: 12,
                                  numHeads: 12, rmsNormEps: 1e-5, tieWordEmbeddings: true, maxPositionEmbeddings: 1024)
default: fatalError("--size 10m or 100m")
}
let model = try TransformerModel.randomlyInitialised(config: config, seed: 1)
if mode == "lora" {
    model.addLoRA(try LoRASpec(rank: 16, alpha: 32, targets: ["q_proj", "k_proj", "v_proj", "o_proj"]), seed: 2)
    model.setTrainable(.lora)
} else {
    model.setTrainable(.full)
}
var rng = RandomGenerator(seed: 3)
let ids = (0..<B).map { _ in (0..<T).map { _ in Int(rng.next() % UInt64(config.vocabSize)) } }
let batch = TrainingBatch(inputIDs: ids, attentionMask: nil, labels: ids)
var none: RandomGenerator? = nil

func now() -> Double { Date().timeIntervalSince1970 }
_ = try model.forwardBackward(batch, rng: &none)  // warm-up
var times: [Double] = []
for _ in 0..<steps {
    let t0 = now()
    _ = try model.forwardBackward(batch, rng: &none)
    times.append(now() - t0)
}
times.sort()
let median = times[times.count / 2]

// Model FLOPs per token (PaLM's accounting): N = matmul parameters (everything but the embedding
// lookup; the LM head counts), forward 2N + 4·L·T·(H·D) for attention scores and values;
// full training is 3× the forward; LoRA (frozen base) skips the weight gradients: 2× the forward.
let tokens = Double(B * T)
let C = config.hiddenSize, V = config.vocabSize
let N = Double(config.parameterCount - (config.tieWordEmbeddings ? 0 : V * C))
let forwardPerToken = 2 * N + 4 * Double(config.numLayers * T * config.numHeads * config.headDim)
let modelFlops = (mode == "lora" ? 2 : 3) * forwardPerToken * tokens

let peak = BLAS.sgemmPeakGFLOPS()
print("{\"impl\":\"cairn\",\"size\":\"\(size)\",\"mode\":\"\(mode)\",\"params\":\(config.parameterCount),\"batch\":\(B),\"seq\":\(T),\"steps\":\(steps),"
      + "\"step_s\":\(median),\"tokens_per_s\":\(tokens / median),\"gflops\":\(modelFlops / median / 1e9),\"sgemm_peak_gflops\":\(peak),"
      + "\"openblas_core\":\"\(BLAS.coreName)\",\"threads\":\(BLAS.maxThreads)}")
