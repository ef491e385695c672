import CairnTestSupport
import Foundation
import Testing
@testable import CairnTrain

/// The Qwen2.5 and Llama 3.1 conversations of Fixtures/chat_templates/models.json rendered by Cairn
/// and tokenized with each family's own vocabulary give transformers' ids (Fixtures/chat_templates/
/// make_ids.py). The vocabularies are llama.cpp's vocab-only GGUFs, fetched by scripts/fetch-vocab.sh.
@Suite("Chat templates: token ids with each model's own vocabulary", .serialized)
struct ChatTemplateIDsTests {
    static let vocab: String = {
        let r = try! TestProcess.run("/bin/bash", [TestProcess.repositoryRoot + "/scripts/fetch-vocab.sh"])
        precondition(r.status == 0, "scripts/fetch-vocab.sh failed: \(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    @Test(arguments: [("qwen2_5", "ggml-vocab-qwen2.gguf"), ("llama3_1", "ggml-vocab-llama-bpe.gguf")])
    func renderedConversationsGiveTransformersIDs(model: String, file: String) throws {
        let tok = try Tokenizer(gguf: try GGUFFile(path: Self.vocab + "/" + file).metadata)
        let template = try ChatTemplateTests.template(model)
        let cases = try ChatTemplateTests.load("ids.json")["cases"]!.arrayValue!.filter { $0["model"]?.stringValue == model }
        #expect(cases.count >= 10)
        for c in cases {
            let name = c["conversation"]!.stringValue!
            let (messages, tools) = ChatTemplateTests.conversation(name)
            let agp = c["add_generation_prompt"] == .bool(true)
            let text = try template.render(messages: messages, addGenerationPrompt: agp, specialTokens: ChatTemplateTests.specialTokens(model), tools: tools)
            let ids = c["ids"]!.arrayValue!.map { $0.intValue! }
            #expect(tok.encode(text) == ids, "\(model)/\(name)/agp=\(agp)")
        }
    }
}
