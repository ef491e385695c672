import Foundation
import Testing
@testable import CairnTrain

/// Cairn's Jinja interpreter against transformers' `apply_chat_template` (jinja2 3.1.6 in transformers'
/// sandboxed environment): fixtures made by Fixtures/chat_templates/make_fixtures.py.
@Suite("ChatTemplate")
struct ChatTemplateTests {
    static func load(_ name: String) throws -> JinjaValue {
        try JinjaValue(jsonData: Data(contentsOf: URL(fileURLWithPath: fixturePath("chat_templates/" + name))))
    }

    static let models: JinjaValue = try! load("models.json")
    static let constructs: JinjaValue = try! load("constructs.json")
    static let modelNames = ["smollm2", "qwen2_5", "qwen2_5_training", "llama3_1", "llama3_training", "mistral_v0_1", "mistral_v0_3"]

    static func template(_ model: String) throws -> ChatTemplate {
        try ChatTemplate(String(contentsOfFile: fixturePath("chat_templates/\(model).jinja"), encoding: .utf8))
    }

    static func specialTokens(_ model: String) -> [String: String] {
        (models["special_tokens"]?[model]?.objectValue ?? []).reduce(into: [:]) { $0[$1.key] = $1.value.stringValue }
    }

    static func conversation(_ name: String) -> (messages: [JinjaValue], tools: [JinjaValue]?) {
        let c = models["conversations"]![name]!
        return (c["messages"]!.arrayValue!, c["tools"]?.arrayValue)
    }

    static func spans(_ v: JinjaValue?) -> [Range<Int>]? {
        v?.arrayValue?.map { pair in pair.arrayValue![0].intValue!..<pair.arrayValue![1].intValue! }
    }

    /// The outcome transformers had: the text, or the exception.
    static func expectOutcome(_ result: Result<ChatRendering, Error>, _ c: JinjaValue, _ label: String) {
        if let expected = c["expected"]?.stringValue {
            switch result {
            case .success(let r):
                #expect(r.text == expected, "\(label)")
                if let spans = spans(c["generation_spans"]) { #expect(r.assistantSpans == spans, "\(label): generation spans") }
            case .failure(let e):
                Issue.record("\(label): expected \(expected.debugDescription), got \(e)")
            }
            return
        }
        let message = c["error"]!.stringValue!, type = c["error_type"]!.stringValue!
        guard case .failure(let error) = result else {
            Issue.record("\(label): expected \(type) \(message.debugDescription), rendered \((try? result.get().text)?.debugDescription ?? "")")
            return
        }
        guard let e = error as? ChatTemplateError else { Issue.record("\(label): \(error)"); return }
        if c["cairn"]?.stringValue == "unsupported" { return }
        switch type {
        case "TemplateError": #expect(e.kind == .raised && e.message == message, "\(label): \(e)")
        case "TemplateSyntaxError", "TemplateAssertionError", "SyntaxError": #expect(e.kind == .syntax, "\(label): \(e)")
        default: #expect(e.kind == .runtime, "\(label): \(type) \(message) but \(e)")
        }
    }

    // MARK: Model templates

    @Test(arguments: modelNames)
    func modelTemplateRendersAsTransformers(model: String) throws {
        let template = try Self.template(model)
        #expect(template.unsupportedConstructs.isEmpty)
        #expect(template.hasGenerationBlocks == model.hasSuffix("_training"))
        var count = 0
        for c in Self.models["cases"]!.arrayValue! where c["model"]?.stringValue == model {
            let (messages, tools) = Self.conversation(c["conversation"]!.stringValue!)
            let agp = c["add_generation_prompt"] == .bool(true)
            let result = Result {
                try template.renderWithGenerationSpans(messages: messages, addGenerationPrompt: agp,
                                                       specialTokens: Self.specialTokens(model), tools: tools)
            }
            Self.expectOutcome(result, c, "\(model)/\(c["conversation"]!.stringValue!)/agp=\(agp)")
            count += 1
        }
        #expect(count >= 12)
    }

    /// The spans cover each assistant message's content and what the template writes after it for
    /// that turn, found by prefixes (templates without `{% generation %}`), as make_fixtures.py finds
    /// them with transformers; a template that re-renders earlier turns differently is refused.
    @Test func prefixSpansCoverEachAssistantTurn() throws {
        let ends = ["smollm2": ("", "<|im_end|>\n", false), "qwen2_5": ("", "<|im_end|>\n", false), "llama3_1": ("", "<|eot_id|>", true),
                    "mistral_v0_1": ("", "</s>", false), "mistral_v0_3": (" ", "</s>", true)]
        for s in Self.models["spans"]!.arrayValue! {
            let model = s["model"]!.stringValue!, name = s["conversation"]!.stringValue!
            let (messages, tools) = Self.conversation(name)
            let template = try Self.template(model)
            let result = Result { try template.assistantSpans(messages: messages, specialTokens: Self.specialTokens(model), tools: tools) }
            guard let expected = Self.spans(s["prefix_spans"]) else {
                #expect((result.failureError as? ChatTemplateError)?.kind == .spans, "\(model)/\(name) must refuse")
                continue
            }
            let r = try result.get()
            #expect(r.method == .prefixes && r.assistantSpans == expected, "\(model)/\(name)")
            let (before, after, trims) = ends[model]!
            let assistants = messages.filter { $0["role"] == "assistant" }
            #expect(assistants.count == r.assistantTexts.count)
            for (m, text) in zip(assistants, r.assistantTexts) where m["tool_calls"] == nil {
                var content = m["content"]!.stringValue!
                if trims { content = content.trimmingCharacters(in: .whitespacesAndNewlines) }
                #expect(text == before + content + after, "\(model)/\(name): \(text.debugDescription)")
            }
        }
    }

    /// With `{% generation %}` (TRL's training templates) the spans are the blocks: the assistant's
    /// content and its end-of-turn token.
    @Test func generationSpansAreTheBlocks() throws {
        for (model, wrap) in [("qwen2_5_training", { (c: String) in "\n" + c + "<|im_end|>\n" }),
                              ("llama3_training", { (c: String) in c.trimmingCharacters(in: .whitespacesAndNewlines) + "<|eot_id|>" })] {
            let template = try Self.template(model)
            for name in ["multi", "system", "unicode", "jinja_text", "whitespace"] {
                let (messages, _) = Self.conversation(name)
                let r = try template.assistantSpans(messages: messages, specialTokens: Self.specialTokens(model))
                let contents = messages.filter { $0["role"] == "assistant" }.map { $0["content"]!.stringValue! }
                #expect(r.method == .generationBlocks && r.assistantTexts == contents.map(wrap), "\(model)/\(name)")
            }
        }
    }

    // MARK: SmolLM2 tokens

    static func smollm2Tokenizer() throws -> Tokenizer {
        try Tokenizer(gguf: GGUFFile(path: SmolLM2Tests.gguf).metadata)
    }

    /// The GGUF's own template through `Tokenizer.renderChat`, tokenized, gives transformers' ids.
    @Test func smollm2TokensMatchTransformers() throws {
        let tok = try Self.smollm2Tokenizer()
        #expect(try tok.chatTemplate?.source == String(contentsOfFile: fixturePath("chat_templates/smollm2.jinja"), encoding: .utf8))
        #expect(tok.specialTokensMap == Self.specialTokens("smollm2"))
        for c in Self.models["cases"]!.arrayValue! where c["model"]?.stringValue == "smollm2" {
            let (messages, _) = Self.conversation(c["conversation"]!.stringValue!)
            let chat = messages.map { ChatMessage(role: $0["role"]!.stringValue!, content: $0["content"]!.stringValue!) }
            let agp = c["add_generation_prompt"] == .bool(true)
            let text = try tok.renderChat(chat, addGenerationPrompt: agp)
            #expect(text == c["expected"]!.stringValue!)
            #expect(tok.encode(text) == c["ids"]!.arrayValue!.map { $0.intValue! }, "\(c["conversation"]!)")
        }
    }

    /// transformers' `assistant_masks` (return_assistant_tokens_mask) with TRL's Qwen2.5 training
    /// template and SmolLM2's tokenizer, token for token.
    @Test func assistantMaskMatchesTransformers() throws {
        let tok = try Self.smollm2Tokenizer()
        let template = try Self.template("qwen2_5_training")
        for m in Self.models["masks"]!.arrayValue! {
            let (messages, tools) = Self.conversation(m["conversation"]!.stringValue!)
            let (ids, mask) = try tok.encodeChatWithAssistantMask(messages, tools: tools, template: template)
            #expect(ids == m["ids"]!.arrayValue!.map { $0.intValue! }, "\(m["conversation"]!)")
            #expect(mask == m["assistant_masks"]!.arrayValue!.map { $0.intValue! == 1 }, "\(m["conversation"]!)")
        }
    }

    // MARK: Constructs

    /// One small template per construct, rendered by jinja2 in transformers' environment.
    @Test func constructsRenderAsJinja2() throws {
        var checked = 0
        for c in Self.constructs.arrayValue! {
            let name = c["name"]!.stringValue!
            var special: [String: String] = [:]
            for (k, v) in c["special_tokens"]?.objectValue ?? [] { special[k] = v.stringValue }
            let extra = (c["extra"]?.objectValue ?? []).reduce(into: [String: JinjaValue]()) { $0[$1.key] = $1.value }
            let result = Result {
                try ChatTemplate(c["template"]!.stringValue!).renderWithGenerationSpans(
                    messages: c["messages"]?.arrayValue ?? [], addGenerationPrompt: c["add_generation_prompt"] == .bool(true),
                    specialTokens: special, tools: c["tools"]?.arrayValue, documents: c["documents"]?.arrayValue, extra: extra)
            }
            if c["cairn"]?.stringValue == "unsupported" {
                #expect((result.failureError as? ChatTemplateError)?.kind == .unsupported, "\(name): Cairn refuses it")
            } else {
                Self.expectOutcome(result, c, name)
            }
            checked += 1
        }
        #expect(checked > 150)
    }

    // MARK: Errors

    @Test func unsupportedConstructsNameTheirLine() throws {
        let template = try ChatTemplate("{{ bos_token }}\n{% for m in messages %}\n{% include 'other.jinja' %}\n{{ m|groupby('x') }}{% endfor %}")
        #expect(template.unsupportedConstructs == [.init(line: 3, description: "the 'include' tag"), .init(line: 4, description: "the 'groupby' filter")])
        let e = try #require(Result { try template.render(messages: [["role": "user", "content": "hi"]]) }.failureError as? ChatTemplateError)
        #expect(e.kind == .unsupported && e.line == 3)
        #expect(e.description == "chat template line 3: unsupported by Cairn's chat template interpreter: the 'include' tag")
        let f = try #require(Result { try ChatTemplate("x\n{{ d.items }}").render(messages: [], extra: ["d": [:]]) }.failureError as? ChatTemplateError)
        #expect(f.kind == .unsupported && f.line == 2 && f.message.contains("dict.items"))
    }

    @Test func syntaxErrorsNameTheirLine() throws {
        for (source, line, words) in [("a\n\n{{ 1 + }}", 3, "unexpected"), ("{% if x %}\n{% for y in z %}\n", 2, "endfor"),
                                      ("x\n{% do y %}", 2, "unknown tag 'do'"), ("{{ 'a'|nosuch }}", 1, "No filter named 'nosuch'"),
                                      ("{% for x in y %}{% endfor %}\n{% break %}", 2, "outside loop")] {
            let e = try #require(Result { try ChatTemplate(source) }.failureError as? ChatTemplateError, "\(source.debugDescription)")
            #expect(e.kind == .syntax && e.line == line && e.message.contains(words), "\(source.debugDescription): \(e)")
        }
    }

    @Test func raiseExceptionSurfacesItsMessage() throws {
        let template = try Self.template("mistral_v0_1")
        let messages: [JinjaValue] = [["role": "user", "content": "a"], ["role": "user", "content": "b"]]
        let e = try #require(Result { try template.render(messages: messages, specialTokens: Self.specialTokens("mistral_v0_1")) }.failureError as? ChatTemplateError)
        #expect(e.kind == .raised && e.message == "Conversation roles must alternate user/assistant/user/assistant/...")
        #expect(e.line == 1 && e.description.hasSuffix("raise_exception: Conversation roles must alternate user/assistant/user/assistant/..."))
    }

    @Test func runtimeErrorsNameTheirLine() throws {
        let e = try #require(Result { try ChatTemplate("ok\n{{ messages[0].nope.deeper }}").render(messages: [["role": "user"]]) }.failureError as? ChatTemplateError)
        #expect(e.kind == .runtime && e.line == 2 && e.message == "UndefinedError: 'dict object' has no attribute 'nope'")
    }

    /// Runaway recursion and absurd nesting are errors (Python raises RecursionError), not crashes.
    @Test func recursionAndNestingAreBounded() throws {
        let countdown = "{% macro r(n) %}{% if n > 0 %}{{ n % 10 }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(depth) }}"
        #expect(try ChatTemplate(countdown).render(messages: [], extra: ["depth": 50]).count == 50)
        let deep = try #require(Result { try ChatTemplate(countdown).render(messages: [], extra: ["depth": 100_000]) }.failureError as? ChatTemplateError)
        #expect(deep.kind == .runtime && deep.message.contains("RecursionError"))
        let parens = String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500)
        #expect((Result { try ChatTemplate("{{ \(parens) }}") }.failureError as? ChatTemplateError)?.kind == .syntax)
        let blocks = String(repeating: "{% if true %}", count: 500) + String(repeating: "{% endif %}", count: 500)
        #expect((Result { try ChatTemplate(blocks) }.failureError as? ChatTemplateError)?.kind == .syntax)
        let nest = "{% set ns = namespace(v=[]) %}{% for i in range(1000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v }}"
        #expect((Result { try ChatTemplate(nest).render(messages: []) }.failureError as? ChatTemplateError)?.kind == .runtime)
        let json = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect((Result { try JinjaValue(json: json) }.failureError as? ChatTemplateError)?.kind == .input)
    }

    // MARK: Values and globals

    @Test func jsonKeepsKeyOrderAndNumberKinds() throws {
        let v = try JinjaValue(json: #"{"z": 1, "a": [1.0, 2e3, -3, true, null, "é\u00e9\ud83d\ude00"], "m": {}}"#)
        #expect(v == .object([("z", 1), ("a", [1.0, 2000.0, -3, true, nil, "éé😀"]), ("m", .object([]))]))
        let out = try ChatTemplate("{{ x|tojson }}|{% for k in x %}{{ k }}{% endfor %}").render(messages: [], extra: ["x": v])
        #expect(out == #"{"z": 1, "a": [1.0, 2000.0, -3, true, null, "éé😀"], "m": {}}|zam"#)
        #expect(JinjaValue.messages([ChatMessage(role: "user", content: "hi")]) == [["role": "user", "content": "hi"]])
        let object = try JSONSerialization.jsonObject(with: Data(#"{"b": true, "i": 3, "z": 0, "d": 1.5, "s": "x", "n": null, "a": [false, 1]}"#.utf8))
        #expect(try JinjaValue(foundation: object) == .object([("a", [false, 1]), ("b", true), ("d", 1.5), ("i", 3), ("n", nil), ("s", "x"), ("z", 0)]))
    }

    @Test func strftimeNowFormatsTheTime() throws {
        let noon = Date(timeIntervalSince1970: 1_721_995_200)  // 2024-07-26 12:00 UTC
        let r = try ChatTemplate("{{ strftime_now('%Y %b') }}").renderWithGenerationSpans(messages: [], now: noon)
        #expect(r.text == "2024 Jul")
    }

    // MARK: Tokenizer

    static func writeTokenizer(config: [String: Any], files: [String: String] = [:]) throws -> String {
        let dir = NSTemporaryDirectory() + "cairn-chat-template-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/additional_chat_templates", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixturePath("tokenizer/qwen2.json"), toPath: dir + "/tokenizer.json")
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        return dir
    }

    @Test func tokenizerPicksItsTemplateAsTransformersLoadsIt() throws {
        let llama = try String(contentsOfFile: fixturePath("chat_templates/llama3_1.jinja"), encoding: .utf8)
        let chat = [ChatMessage(role: "user", content: "hi")]
        let base: [String: Any] = ["eos_token": "<|im_end|>", "bos_token": "<|endoftext|>"]
        // A string template, with the config's special tokens as variables.
        var config = base
        config["chat_template"] = "{{ bos_token }}[{{ messages[0].content }}]{{ eos_token }}{{ unk_token is defined }}"
        let plain = try Tokenizer(directory: try Self.writeTokenizer(config: config))
        #expect(try plain.renderChat(chat, addGenerationPrompt: false) == "<|endoftext|>[hi]<|im_end|>False")
        // A list of named templates: "default", or "tool_use" when tools are given.
        config["chat_template"] = [["name": "tool_use", "template": "T{{ tools|length }}"], ["name": "default", "template": llama]]
        let named = try Tokenizer(directory: try Self.writeTokenizer(config: config))
        #expect(try named.chatTemplate?.source == llama)
        #expect(try named.renderChat(messages: JinjaValue.messages(chat), addGenerationPrompt: false, tools: [[:]]) == "T1")
        // chat_template.jinja beside it replaces the config's templates, and write(to:) keeps it.
        let dir = try Self.writeTokenizer(config: config, files: ["chat_template.jinja": "file:{{ messages|length }}"])
        let fromFile = try Tokenizer(directory: dir)
        #expect(try fromFile.renderChat(chat, addGenerationPrompt: true) == "file:1")
        let copy = NSTemporaryDirectory() + "cairn-chat-template-\(UUID().uuidString)"
        try fromFile.write(to: copy)
        #expect(try Tokenizer(directory: copy).renderChat(chat, addGenerationPrompt: true) == "file:1")
        // No template: ChatML, as applyChatTemplate renders it.
        let none = try Tokenizer(directory: try Self.writeTokenizer(config: base))
        #expect(!none.hasChatTemplate)
        #expect(try none.renderChat(chat, addGenerationPrompt: true) == none.applyChatTemplate(chat, addGenerationPrompt: true))
        // Several templates and no "default": refused, as transformers does.
        config["chat_template"] = [["name": "a", "template": "x"]]
        #expect(throws: TokenizerError.self) { try Tokenizer(directory: try Self.writeTokenizer(config: config)).renderChat(chat, addGenerationPrompt: false) }
    }

    // MARK: Corpus

    /// Every template of TRL's and llama.cpp's collections (make_fixtures.py --corpus OUT.json), when
    /// CAIRN_CHAT_TEMPLATE_CORPUS names the file.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CAIRN_CHAT_TEMPLATE_CORPUS"] != nil))
    func corpusRendersAsTransformers() throws {
        let path = ProcessInfo.processInfo.environment["CAIRN_CHAT_TEMPLATE_CORPUS"]!
        let cases = try JinjaValue(jsonData: Data(contentsOf: URL(fileURLWithPath: path))).arrayValue!
        for c in cases {
            let special = (c["special_tokens"]?.objectValue ?? []).reduce(into: [String: String]()) { $0[$1.key] = $1.value.stringValue }
            let result = Result {
                try ChatTemplate(c["template"]!.stringValue!).renderWithGenerationSpans(
                    messages: c["messages"]!.arrayValue!, addGenerationPrompt: c["add_generation_prompt"] == .bool(true),
                    specialTokens: special, tools: c["tools"]?.arrayValue)
            }
            Self.expectOutcome(result, c, c["name"]!.stringValue!)
        }
    }
}

extension Result where Failure == Error {
    var failureError: Error? { if case .failure(let e) = self { return e } else { return nil } }
}
