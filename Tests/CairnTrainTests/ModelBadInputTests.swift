import CairnTestSupport
import Foundation
import Testing
@testable import CairnTrain

/// Issue 13 for the model's own files: a bad config.json, tokenizer.json, adapter_config.json or
/// `model logprobs` input is exit 2 with one line naming the file and the key (or line), no signal,
/// within 10 s.
@Suite("bad model, tokenizer, adapter and scoring input")
struct ModelBadInputTests {
    let cairn = cairnExecutable()

    /// A copy of the tiny model whose file `name` (a JSON object) is changed by `edit`.
    func edited(_ s: Scratch, _ model: String, _ name: String, as copy: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
        let dir = s.path + "/" + copy
        try FileManager.default.copyItem(atPath: model, toPath: dir)
        let path = dir + "/" + name
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        return dir
    }

    /// Runs cairn; expects exit 2 within 10 s and one line on stderr containing every string of `naming`.
    func expectRefused(_ args: [String], naming: [String], oneLine: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let start = Date()
        let r = try runProcess(cairn, args)
        let seconds = Date().timeIntervalSince(start)
        let err = r.err.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(r.status == 2, "exit \(r.status): \(r.err)", sourceLocation: sourceLocation)
        #expect(seconds < 10, "took \(seconds) s", sourceLocation: sourceLocation)
        #expect(!oneLine || !err.contains("\n"), "more than one line: \(err)", sourceLocation: sourceLocation)
        for s in naming { #expect(err.contains(s), "\(err) does not name \(s)", sourceLocation: sourceLocation) }
    }

    @Test func configSizesAreBoundedAndMatchTheWeights() throws {
        let s = Scratch()
        let model = try ModelCLITests().tinyModel(s)
        let cases: [(String, Any, [String])] = [
            ("num_hidden_layers", 1_000_000_000_000, ["num_hidden_layers", "1000000000000"]),
            ("num_hidden_layers", 3, ["num_hidden_layers", "2 layers"]),
            ("vocab_size", 1 << 30, ["vocab_size"]),
            ("vocab_size", 300, ["vocab_size", "embed_tokens"]),
            ("hidden_size", -32, ["hidden_size"]),
            ("intermediate_size", 128, ["intermediate_size", "gate_proj"]),
            ("num_attention_heads", 1 << 20, ["num_attention_heads"]),
            ("rms_norm_eps", -1, ["rms_norm_eps"]),
            ("rope_theta", 0, ["rope_theta"]),
            ("eos_token_id", 100_000, ["eos_token_id", "100000"]),
            ("bos_token_id", -1, ["bos_token_id"]),
            ("max_position_embeddings", 1, ["max_position_embeddings"]),
            ("max_position_embeddings", 1 << 40, ["max_position_embeddings"]),
        ]
        for (i, (key, value, naming)) in cases.enumerated() {
            let dir = try edited(s, model, "config.json", as: "m\(i)") { $0[key] = value }
            try expectRefused(["model", "logprobs", dir, "--text", "create task"], naming: ["m\(i)/config.json"] + naming)
        }
        // The library says the same.
        let bad = try edited(s, model, "config.json", as: "lib") { $0["num_hidden_layers"] = 1_000_000_000_000 }
        #expect(throws: ModelError.self) { try TransformerModel.load(directory: bad) }
    }

    @Test func tokenizerIDsAreBoundedAndUnique() throws {
        let s = Scratch()
        let model = try ModelCLITests().tinyModel(s)
        let huge = try edited(s, model, "tokenizer.json", as: "huge") { json in
            var added = json["added_tokens"] as? [[String: Any]] ?? []
            added.append(["id": 1 << 40, "content": "<huge>", "special": true])
            json["added_tokens"] = added
        }
        try expectRefused(["model", "logprobs", huge, "--text", "create task"], naming: ["huge/tokenizer.json", "1099511627776", "added_tokens["])
        let twice = try edited(s, model, "tokenizer.json", as: "twice") { json in
            var added = json["added_tokens"] as! [[String: Any]]
            added.append(["id": added[0]["id"]!, "content": "<again>", "special": true])
            json["added_tokens"] = added
        }
        let firstID = (try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: model + "/tokenizer.json"))) as! [String: Any])
        let id0 = ((firstID["added_tokens"] as! [[String: Any]])[0]["id"] as! Int)
        try expectRefused(["model", "logprobs", twice, "--text", "create task"], naming: ["twice/tokenizer.json", "id \(id0)", "<again>"])
        let vocabTwice = try edited(s, model, "tokenizer.json", as: "vocab-twice") { json in
            var m = json["model"] as! [String: Any]
            var vocab = m["vocab"] as! [String: Any]
            vocab["zzz-not-a-token"] = 5
            m["vocab"] = vocab
            json["model"] = m
        }
        try expectRefused(["model", "tokenize", vocabTwice, "--text", "x"], naming: ["vocab-twice/tokenizer.json", "model.vocab", "id 5"])
    }

    @Test func doraAdaptersAreRefused() throws {
        let s = Scratch()
        let model = try ModelCLITests().tinyModel(s)
        let m = try TransformerModel.load(directory: model)
        m.addLoRA(try LoRASpec(rank: 2, alpha: 4, targets: ["q_proj"]), seed: 1)
        try m.saveAdapter(to: s.path + "/adapter", baseModel: nil)
        let dora = try edited(s, s.path + "/adapter", "adapter_config.json", as: "dora") { $0["use_dora"] = true }
        try expectRefused(["model", "logprobs", model, "--adapter", dora, "--text", "create task"],
                          naming: ["dora/adapter_config.json", "use_dora", "DoRA"])
        #expect(throws: FormatError.self) { try PEFTAdapter.read(directory: dora) }
        // The other features that change what the weights mean, each named by its key.
        let others: [(String, String, Any)] = [("qalora", "use_qalora", true), ("lorabias", "lora_bias", true), ("bias", "bias", "all"),
                                               ("ranks", "rank_pattern", ["q_proj": 4]), ("alphas", "alpha_pattern", ["q_proj": 8.0])]
        for (dir, key, value) in others {
            let path = try edited(s, s.path + "/adapter", "adapter_config.json", as: dir) { $0[key] = value }
            try expectRefused(["model", "logprobs", model, "--adapter", path, "--text", "create task"], naming: ["\(dir)/adapter_config.json", key])
        }
        // PEFT's defaults for them are plain LoRA: the adapter as saved loads.
        #expect(try PEFTAdapter.read(directory: s.path + "/adapter").config.r == 2)
    }

    @Test func scoringInputIsBoundedAndNamed() throws {
        let s = Scratch()
        let model = try ModelCLITests().tinyModel(s)
        // One 10 MB line: refused by its size before it is parsed.
        let long = s.write("long.jsonl", "{\"text\": \"" + String(repeating: "a", count: 10_000_000) + "\"}\n")
        try expectRefused(["model", "logprobs", model, "--input", long], naming: ["long.jsonl", "line 1", "\(ScoringInput.maxLineBytes)"])
        // Under the byte limit but more tokens than max_position_embeddings (128).
        let many = s.write("many.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"" + String(repeating: "create task 7 ", count: 200) + "\"}\n")
        try expectRefused(["model", "logprobs", model, "--input", many], naming: ["many.jsonl", "line 2", "max_position_embeddings"])
        let empty = s.write("empty.jsonl", "")
        try expectRefused(["model", "logprobs", model, "--input", empty], naming: ["empty.jsonl", "empty"])
        let blank = s.write("blank.jsonl", "\n  \n")
        try expectRefused(["model", "logprobs", model, "--input", blank], naming: ["blank.jsonl", "no examples"])
        try expectRefused(["model", "generate", model, "--prompt", "create", "--max-tokens", "1000000000000"], naming: ["max_position_embeddings"], oneLine: false)  // usage: the message, then the usage line
    }

    /// A tokenizer with a token beyond the model's vocabulary: the ids it makes are refused naming where they came from.
    @Test func idsOutsideTheVocabularyNameTheirSource() throws {
        let s = Scratch()
        let model = try ModelCLITests().tinyModel(s)
        let vocab = try ModelConfig.load(path: model).vocabSize
        let grown = try edited(s, model, "tokenizer.json", as: "grown") { json in
            var added = json["added_tokens"] as! [[String: Any]]
            added.append(["id": vocab, "content": "<extra>", "special": true])
            json["added_tokens"] = added
        }
        let text = "create <extra> task"
        let tok = try Tokenizer(directory: grown)
        #expect(tok.encode(text).contains { $0 >= vocab }, "the text needs a token of the larger tokenizer")
        let input = s.write("in.jsonl", "{\"text\": \"ok\"}\n" + String(data: try JSONSerialization.data(withJSONObject: ["text": text]), encoding: .utf8)! + "\n")
        try expectRefused(["model", "logprobs", grown, "--input", input], naming: ["in.jsonl", "line 2", "<extra>", "outside the model's vocabulary", "config.json"])
        try expectRefused(["model", "logprobs", grown, "--text", text], naming: ["--text", "outside the model's vocabulary"])
        try expectRefused(["model", "generate", grown, "--prompt", text], naming: ["tokenizer.json", "outside the model's vocabulary", "config.json"])
    }
}
