import Foundation

extension ChatTemplate {
    /// The conversation rendered with `add_generation_prompt` false, and where each assistant turn's
    /// output lies in it (UTF-8 byte ranges), for assistant-only loss.
    ///
    /// - A template with `{% generation %}` blocks: the blocks' spans, exactly what transformers'
    ///   `apply_chat_template(return_assistant_tokens_mask=True)` marks and TRL's
    ///   `assistant_only_loss=True` trains on (TRL's training templates put each assistant turn's
    ///   end-of-turn token inside the block).
    /// - Otherwise, by prefixes: for each message `i` whose role is `assistant`, `P` is the rendering of
    ///   `messages[..<i]` with `add_generation_prompt` true and `F` the rendering of `messages[...i]`
    ///   without; the span is `F` minus `P`: the assistant's content and everything the template writes
    ///   after it for that turn (the end-of-turn token and separator: `42<|im_end|>\n` for ChatML,
    ///   ` 42</s>` for Mistral, `42<|eot_id|>` for Llama 3). `P` must be a prefix of `F` and `F` of the
    ///   full rendering (the template must render earlier turns the same whatever follows); otherwise
    ///   this throws `.spans` naming the message, rather than guess.
    public func assistantSpans(messages: [JinjaValue], specialTokens: [String: String] = [:], tools: [JinjaValue]? = nil,
                               documents: [JinjaValue]? = nil, extra: [String: JinjaValue] = [:]) throws -> ChatRendering {
        func render(_ msgs: [JinjaValue], _ prompt: Bool) throws -> ChatRendering {
            try renderWithGenerationSpans(messages: msgs, addGenerationPrompt: prompt, specialTokens: specialTokens,
                                          tools: tools, documents: documents, extra: extra)
        }
        let full = try render(messages, false)
        if hasGenerationBlocks { return full }
        let fullBytes = Array(full.text.utf8)
        var spans: [Range<Int>] = []
        for (i, message) in messages.enumerated() where message["role"] == .string("assistant") {
            let prefix: [UInt8], through: [UInt8]
            do {
                prefix = Array(try render(Array(messages[..<i]), true).text.utf8)
                through = Array(try render(Array(messages[...i]), false).text.utf8)
            } catch let error as ChatTemplateError {
                throw ChatTemplateError(.spans, line: error.line,
                                        "cannot find message \(i)'s span: rendering the conversation up to it fails (\(error.description))")
            }
            guard through.starts(with: prefix) else {
                throw ChatTemplateError(.spans, line: 0, "cannot find message \(i)'s span: the rendering of the messages before it with the generation prompt is not a prefix of the rendering through it (the template renders earlier turns differently as the conversation grows; use a template with {% generation %} blocks)")
            }
            guard fullBytes.starts(with: through) else {
                throw ChatTemplateError(.spans, line: 0, "cannot find message \(i)'s span: the rendering through it is not a prefix of the whole conversation's (the template renders this turn differently when more messages follow; use a template with {% generation %} blocks)")
            }
            spans.append(prefix.count..<through.count)
        }
        return ChatRendering(text: full.text, assistantSpans: spans, method: .prefixes)
    }
}
