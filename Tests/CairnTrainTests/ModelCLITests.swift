import CairnTestSupport
import Foundation
import Testing
@testable import CairnTrain

/// Runs a program to completion and returns (status, stdout, stderr).
@discardableResult
func runProcess(_ exe: String, _ args: [String], env: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    let r = try TestProcess.run(exe, args, env: env)
    return (r.status, r.stdout, r.stderr)
}

/// The cairn executable: the release build when `make test` made one (CAIRN_RELEASE_BIN), else
/// the debug build beside the tests.
func cairnExecutable(release: Bool = false) -> String { TestProcess.cairn(release: release) }

final class Scratch {
    let path = NSTemporaryDirectory() + "cairn-model-cli-\(UUID().uuidString.prefix(8))"
    init() { try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func write(_ name: String, _ text: String) -> String {
        let p = path + "/" + name
        try! text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
}

@Suite("cairn model and cairn tokenizer")
struct ModelCLITests {
    let cairn = cairnExecutable()

    /// A tokenizer trained on a small corpus and a tiny Llama made from it.
    func tinyModel(_ s: Scratch) throws -> String {
        let lines = (0..<400).map { "{\"action\": \"create\", \"title\": \"task \($0)\", \"priority\": \"\(["low", "high"][$0 % 2])\"}" }
        let corpus = s.write("corpus.txt", lines.joined(separator: "\n"))
        let t = try runProcess(cairn, ["tokenizer", "train", "--corpus", corpus, "--vocab-size", "320", "--out", s.path + "/tok"])
        #expect(t.status == 0, "\(t.err)")
        let cfg = s.write("llama.json", #"{"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 128}"#)
        let r = try runProcess(cairn, ["model", "init", "--arch", "llama", "--config", cfg, "--tokenizer", s.path + "/tok", "--out", s.path + "/model", "--seed", "3"])
        #expect(r.status == 0, "\(r.err)")
        return s.path + "/model"
    }

    @Test func initTokenizeLogprobsAndGenerate() throws {
        let s = Scratch()
        let model = try tinyModel(s)
        // The model directory is Hugging Face's layout, readable by Cairn's own loaders.
        let loaded = try TransformerModel.load(directory: model)
        let tok = try Tokenizer(directory: model)
        #expect(loaded.config.vocabSize == tok.vocabSize)
        #expect(loaded.config.eosTokenIDs == [tok.eosTokenID!])

        let text = #"{"action": "create", "title": "task 7"}"#
        let ids = try runProcess(cairn, ["model", "tokenize", model, "--text", text, "--json"])
        #expect(ids.status == 0)
        let parsed = try JSONSerialization.jsonObject(with: Data(ids.out.utf8)) as! [String: Any]
        #expect(parsed["ids"] as! [Int] == tok.encode(text))

        let lp = try runProcess(cairn, ["model", "logprobs", model, "--text", text, "--json"])
        #expect(lp.status == 0, "\(lp.err)")
        let lines = try JSONSerialization.jsonObject(with: Data(lp.out.utf8)) as! [[String: Any]]
        let values = (lines[0]["logprobs"] as! [Any]).compactMap { $0 as? Double }
        #expect(values.count == tok.encode(text).count - 1)
        #expect(values.allSatisfy { $0 < 0 })
        #expect(abs(values.reduce(0, +) - (lines[0]["sum"] as! Double)) < 1e-9)
        // The same numbers as the library's forward pass.
        let logits = try loaded.logits(inputIDs: [tok.encode(text)])
        let lib = TransformerModel.tokenLogProbs(logits: logits, ids: tok.encode(text), vocabSize: loaded.config.vocabSize)
        #expect(abs(lib.dropFirst().reduce(0, +) - (lines[0]["sum"] as! Double)) < 1e-4)

        let jsonl = s.write("in.jsonl", "{\"prompt\": \"create\", \"completion\": \" task 1\"}\n{\"text\": \"list tasks\"}\n")
        let batch = try runProcess(cairn, ["model", "logprobs", model, "--input", jsonl, "--json"])
        #expect(batch.status == 0)
        #expect((try JSONSerialization.jsonObject(with: Data(batch.out.utf8)) as! [Any]).count == 2)

        let g1 = try runProcess(cairn, ["model", "generate", model, "--prompt", "create", "--max-tokens", "8", "--json"])
        let g2 = try runProcess(cairn, ["model", "generate", model, "--prompt", "create", "--max-tokens", "8", "--json"])
        #expect(g1.status == 0 && g1.out == g2.out, "\(g1.err)")
        let gen = try JSONSerialization.jsonObject(with: Data(g1.out.utf8)) as! [String: Any]
        let genIDs = gen["ids"] as! [Int]
        #expect(genIDs.count <= 8 && !genIDs.isEmpty)
        #expect(try loaded.generate(prompt: tok.encode("create"), maxNewTokens: 8, stopTokens: Set([tok.eosTokenID!, tok.chatEndTokenID!])) == genIDs)
        let sampled = try runProcess(cairn, ["model", "generate", model, "--prompt", "create", "--temperature", "0.8", "--top-p", "0.9", "--seed", "4"])
        #expect(sampled.status == 0)
    }

    @Test func modelsAndAdaptersFromTheStore() throws {
        let s = Scratch()
        let model = try tinyModel(s)
        let store = s.path + "/store"
        #expect(try runProcess(cairn, ["init", "--store", store]).status == 0)
        let add = try runProcess(cairn, ["add", model, "--kind", "base-model", "--store", store])
        let id = add.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(id.hasPrefix("sha256:"))
        // An adapter written by the library, stored, then applied by reference.
        let m = try TransformerModel.load(directory: model)
        m.addLoRA(try LoRASpec(rank: 2, alpha: 4, targets: ["q_proj", "v_proj"]), seed: 1)
        for (name, t) in m.loraWeights() where name.contains("lora_B") { for i in 0..<t.count { t[i] = 0.5 } }
        try m.saveAdapter(to: s.path + "/adapter", baseModel: id)
        let aid = try runProcess(cairn, ["add", s.path + "/adapter", "--kind", "adapter", "--store", store]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let base = try runProcess(cairn, ["model", "logprobs", String(id.dropFirst(7).prefix(10)), "--text", "create task", "--json", "--store", store])
        let tuned = try runProcess(cairn, ["model", "logprobs", String(id.dropFirst(7).prefix(10)), "--adapter", aid, "--text", "create task", "--json", "--store", store])
        #expect(base.status == 0 && tuned.status == 0, "\(base.err) \(tuned.err)")
        let sumBase = (try JSONSerialization.jsonObject(with: Data(base.out.utf8)) as! [[String: Any]])[0]["sum"] as! Double
        let sumTuned = (try JSONSerialization.jsonObject(with: Data(tuned.out.utf8)) as! [[String: Any]])[0]["sum"] as! Double
        #expect(sumBase != sumTuned)
    }

    @Test func badInputIsExitTwoWithTheFileAndKey() throws {
        let s = Scratch()
        let model = try tinyModel(s)
        let noKey = s.write("bad.json", #"{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}"#)
        let r1 = try runProcess(cairn, ["model", "init", "--arch", "llama", "--config", noKey, "--tokenizer", s.path + "/tok", "--out", s.path + "/x"])
        #expect(r1.status == 2 && r1.err.contains("intermediate_size") && r1.err.contains("bad.json"))
        let r2 = try runProcess(cairn, ["model", "init", "--arch", "gpt2", "--config", noKey, "--tokenizer", s.path + "/tok", "--out", s.path + "/x"])
        #expect(r2.status == 2)
        let jsonl = s.write("in.jsonl", "{\"text\": \"ok\"}\n{\"prompt\": \"no completion\"}\n")
        let r3 = try runProcess(cairn, ["model", "logprobs", model, "--input", jsonl])
        #expect(r3.status == 2 && r3.err.contains("line 2") && r3.err.contains("completion"))
        #expect(try runProcess(cairn, ["model", "logprobs", model]).status == 2)
        #expect(try runProcess(cairn, ["model", "generate", s.path + "/nowhere", "--prompt", "x", "--store", s.path + "/nostore"]).status == 2)
        #expect(try runProcess(cairn, ["model", "generate", model, "--prompt", "x", "--top-p", "0"]).status == 2)
        #expect(try runProcess(cairn, ["model", "frobnicate"]).status == 2)
        let tiny = try runProcess(cairn, ["tokenizer", "train", "--corpus", s.path + "/corpus.txt", "--vocab-size", "10", "--out", s.path + "/t2"])
        #expect(tiny.status == 2 && tiny.err.contains("256"))
        // A config whose architecture is not supported names it.
        let arch = s.write("arch.json", #"{"architectures": ["MistralForCausalLM"], "vocab_size": 10, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2}"#)
        #expect(throws: ModelError.self) { try ModelConfig.load(path: arch) }
    }

    /// Qwen2.5-0.5B's shapes (494 M parameters, 1.98 GB in fp32), made with `model init`: a
    /// forward (generation) runs with peak RSS under 1.5× the weights.
    @Test func qwen05BShapesRunWithinOneAndAHalfTimesTheWeights() throws {
        let s = Scratch()
        let release = cairnExecutable(release: true)
        let corpus = s.write("c.txt", (0..<200).map { "create task \($0) with priority high" }.joined(separator: "\n"))
        #expect(try runProcess(release, ["tokenizer", "train", "--corpus", corpus, "--vocab-size", "300", "--out", s.path + "/tok"]).status == 0)
        let cfg = s.write("q.json", #"{"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": true, "vocab_size": 151936, "max_position_embeddings": 32768}"#)
        let made = try runProcess(release, ["model", "init", "--arch", "qwen2", "--config", cfg, "--tokenizer", s.path + "/tok", "--out", s.path + "/m", "--seed", "1"])
        #expect(made.status == 0, "\(made.err)")
        let weights = try FileManager.default.attributesOfItem(atPath: s.path + "/m/model.safetensors")[.size] as! Int
        #expect(weights > 1_900_000_000)
        let r = try runProcess(release, ["model", "logprobs", s.path + "/m", "--text", "create task 7 with priority high", "--json"],
                               env: ["CAIRN_REPORT_PEAK_RSS": "1"])
        #expect(r.status == 0, "\(r.err)")
        let line = r.err.split(separator: "\n").first { $0.hasPrefix("peak RSS: ") }
        let rss = Int(line?.split(separator: " ")[2] ?? "") ?? Int.max
        #expect(Double(rss) < 1.5 * Double(weights), "peak RSS \(rss) bytes for \(weights) bytes of weights")
    }
}
