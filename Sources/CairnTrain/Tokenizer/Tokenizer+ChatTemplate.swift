import Foundation

/// Parsed chat templates of a tokenizer, by template text (parsing once per text, from any thread).
final class ChatTemplateCache: @unchecked Sendable {
    private let lock = NSLock()
    private var templates: [String: ChatTemplate] = [:]

    func template(_ source: String) throws -> ChatTemplate {
        lock.lock()
        defer { lock.unlock() }
        if let t = templates[source] { return t }
        let t = try ChatTemplate(source)
        templates[source] = t
        return t
    }
}

/// The model's own chat template, rendered as transformers' `apply_chat_template` renders it.
extension Tokenizer {
    /// The chat templates declared, by name, as transformers loads them: tokenizer_config.json's
    /// `chat_template` (a string is named "default"; a list of `{name, template}` keeps its names),
    /// replaced altogether by `chat_template.jinja` ("default") and `additional_chat_templates/NAME.jinja`
    /// beside it when those files exist.
    public var chatTemplateSources: [String: String] { chatTemplateTexts }

    /// The template `apply_chat_template` uses without tools (the "default" one), parsed once; nil when
    /// the tokenizer declares none. Throws when the template is not valid Jinja, or when there are
    /// several named templates and none is "default" (transformers refuses that too).
    public var chatTemplate: ChatTemplate? {
        get throws { try chatTemplate(withTools: false) }
    }

    /// The template `apply_chat_template` picks: "tool_use" when tools are given and it exists, else
    /// "default".
    public func chatTemplate(withTools: Bool) throws -> ChatTemplate? {
        let texts = chatTemplateTexts
        if texts.isEmpty { return nil }
        let source: String
        if withTools, let t = texts["tool_use"] { source = t }
        else if let t = texts["default"] { source = t }
        else {
            throw TokenizerError(file: "tokenizer_config.json", "there are several chat templates (\(texts.keys.sorted().joined(separator: ", "))) and none is named \"default\"")
        }
        return try chatTemplateCache.template(source)
    }

    /// The variables transformers adds from the tokenizer's special tokens (`special_tokens_map`):
    /// `bos_token`, `eos_token`, `unk_token`, `sep_token`, `pad_token`, `cls_token` and `mask_token`
    /// from tokenizer_config.json, those that are set.
    public var specialTokensMap: [String: String] {
        var map: [String: String] = [:]
        for key in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] {
            if let name = try? Self.tokenName(config?[key], key: key, file: "") { map[key] = name }
        }
        return map
    }

    /// `messages` rendered with the model's chat template as transformers'
    /// `apply_chat_template(messages, tokenize=False, add_generation_prompt:)` renders them, or with
    /// ChatML (`applyChatTemplate`) when the tokenizer declares no template.
    public func renderChat(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        try conversationTemplate(withTools: false).render(messages: JinjaValue.messages(messages), addGenerationPrompt: addGenerationPrompt,
                                                          specialTokens: specialTokensMap)
    }

    /// The template conversations are rendered with: the model's own, or ChatML (`chatMLTemplate`)
    /// when the tokenizer declares none — the one place that fallback is decided.
    public func conversationTemplate(withTools: Bool = false) throws -> ChatTemplate {
        try chatTemplate(withTools: withTools) ?? chatTemplateCache.template(Self.chatMLTemplate)
    }

    /// As `renderChat(_:addGenerationPrompt:)` for messages with other keys (`tool_calls`, content
    /// parts), tools and extra template variables.
    public func renderChat(messages: [JinjaValue], addGenerationPrompt: Bool, tools: [JinjaValue]? = nil,
                           extra: [String: JinjaValue] = [:]) throws -> String {
        try conversationTemplate(withTools: tools != nil).render(messages: messages, addGenerationPrompt: addGenerationPrompt, specialTokens: specialTokensMap,
                                   tools: tools, extra: extra)
    }

    /// The ids of the conversation rendered by the model's template (without BOS/EOS added around
    /// it, as `apply_chat_template` tokenizes), and for each id whether it overlaps an assistant span
    /// of `ChatTemplate.assistantSpans` — transformers' `assistant_masks` for templates with
    /// `{% generation %}` blocks. `template` replaces the tokenizer's own (as TRL swaps in a training
    /// template with `{% generation %}` blocks). Throws when the spans cannot be derived.
    public func encodeChatWithAssistantMask(_ messages: [JinjaValue], tools: [JinjaValue]? = nil,
                                            extra: [String: JinjaValue] = [:],
                                            template given: ChatTemplate? = nil) throws -> (ids: [Int], assistantMask: [Bool]) {
        let template = try given ?? conversationTemplate(withTools: tools != nil)
        let rendering = try template.assistantSpans(messages: messages, specialTokens: specialTokensMap, tools: tools, extra: extra)
        let ids = encode(rendering.text)
        var mask: [Bool] = []
        mask.reserveCapacity(ids.count)
        var offset = 0, span = 0
        let spans = rendering.assistantSpans
        for id in ids {
            let length = token(of: id).map { ByteLevel.decoderBytes(of: $0).count } ?? 0
            let (start, end) = (offset, offset + length)
            offset = end
            while span < spans.count && start >= spans[span].upperBound { span += 1 }
            mask.append(span < spans.count && end > spans[span].lowerBound)
        }
        guard offset == rendering.text.utf8.count else {
            throw TokenizerError(file: "tokenizer.json", "the tokens of the rendered chat do not spell its text byte for byte (the normalizer changed it), so assistant spans cannot be mapped to tokens")
        }
        return (ids, mask)
    }

    /// tokenizer_config.json's `chat_template`: a string, or a list of `{name, template}`.
    static func chatTemplates(inConfig config: [String: Any], file: String) throws -> [String: String] {
        guard let value = config["chat_template"], !(value is NSNull) else { return [:] }
        if let s = value as? String { return ["default": s] }
        guard let list = value as? [Any] else { throw TokenizerError(file: file, "chat_template is neither a string nor a list") }
        var templates: [String: String] = [:]
        for (i, item) in list.enumerated() {
            guard let object = item as? [String: Any], let name = object["name"] as? String, let template = object["template"] as? String else {
                throw TokenizerError(file: file, "chat_template[\(i)] is not an object with string \"name\" and \"template\"")
            }
            templates[name] = template
        }
        return templates
    }

    /// `chat_template.jinja` and `additional_chat_templates/*.jinja`, which take priority over the
    /// config's templates in transformers.
    func readChatTemplateFiles(directory: String) throws {
        let fm = FileManager.default
        var templates: [String: String] = [:]
        let main = (directory as NSString).appendingPathComponent("chat_template.jinja")
        if fm.fileExists(atPath: main) {
            guard let text = try? String(contentsOfFile: main, encoding: .utf8) else { throw TokenizerError(file: main, "cannot read the file as UTF-8") }
            templates["default"] = text
        }
        let extraDir = (directory as NSString).appendingPathComponent("additional_chat_templates")
        for file in ((try? fm.contentsOfDirectory(atPath: extraDir)) ?? []).sorted() where file.hasSuffix(".jinja") {
            let path = (extraDir as NSString).appendingPathComponent(file)
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw TokenizerError(file: path, "cannot read the file as UTF-8") }
            templates[String(file.dropLast(6))] = text
        }
        if !templates.isEmpty {
            chatTemplateTexts = templates
            chatTemplateFiles = templates
        }
    }
}
