import Foundation

/// A Hugging Face chat template (Jinja), parsed once and rendered exactly as transformers'
/// `apply_chat_template(..., tokenize=False)` renders it.
///
/// transformers renders with jinja2's `ImmutableSandboxedEnvironment(trim_blocks=True,
/// lstrip_blocks=True)` plus `loopcontrols` and its `{% generation %}` tag, the globals
/// `raise_exception`, `strftime_now`, `namespace`, `dict`, and a `tojson` filter that is
/// `json.dumps(ensure_ascii=False)`. Cairn implements that language: whitespace control, Python's
/// semantics for values, operators, string methods and `str()` of numbers and containers, jinja2's
/// `Undefined`, the sandbox's refusal of mutating methods. A construct it does not implement is an
/// error naming its line (`unsupportedConstructs` lists them when the template is parsed), never an
/// approximation.
///
/// ```swift
/// let template = try ChatTemplate(source)
/// let text = try template.render(messages: JinjaValue.messages(chat), addGenerationPrompt: true,
///                                specialTokens: ["bos_token": "<s>", "eos_token": "</s>"])
/// ```
public struct ChatTemplate: Sendable {
    /// A valid Jinja construct this template uses that Cairn cannot render.
    public struct Construct: Sendable, Equatable {
        public var line: Int
        public var description: String
    }

    /// The template text.
    public let source: String
    /// Whether the template marks assistant output with `{% generation %}` blocks.
    public let hasGenerationBlocks: Bool
    /// Constructs Cairn cannot render; rendering fails with `.unsupported` if it reaches one.
    public let unsupportedConstructs: [Construct]
    private let program: Program

    /// The parsed statements (immutable after parsing, shared by copies of the template).
    private final class Program: @unchecked Sendable {
        let body: [Stmt]
        init(_ body: [Stmt]) { self.body = body }
    }

    /// Parses `source`; a template jinja2 would reject throws `ChatTemplateError` (kind `.syntax`)
    /// naming the line.
    public init(_ source: String) throws {
        self.source = source
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
        program = Program(try parser.parseTemplate())
        hasGenerationBlocks = parser.hasGeneration
        unsupportedConstructs = parser.unsupported.map { Construct(line: $0.line, description: $0.what) }
    }

    /// Renders the conversation with the variables transformers passes: `messages` (keys whose value
    /// is null dropped; `reasoning_content`/`thinking`/`reasoning` aliased to each other as
    /// transformers does), `tools` and `documents` (none when nil), `add_generation_prompt`, the
    /// tokenizer's special tokens (`bos_token`, `eos_token`, `unk_token`, `sep_token`, `pad_token`,
    /// `cls_token`, `mask_token`, as strings) and `extra` (which overrides special tokens).
    public func render(messages: [JinjaValue], addGenerationPrompt: Bool = false, specialTokens: [String: String] = [:],
                       tools: [JinjaValue]? = nil, documents: [JinjaValue]? = nil, extra: [String: JinjaValue] = [:]) throws -> String {
        try renderWithGenerationSpans(messages: messages, addGenerationPrompt: addGenerationPrompt, specialTokens: specialTokens,
                                      tools: tools, documents: documents, extra: extra).text
    }

    /// Renders as `render` does and returns the UTF-8 ranges of the text each `{% generation %}` block
    /// rendered, measured as transformers' AssistantTracker measures them (`return_assistant_tokens_mask`).
    public func renderWithGenerationSpans(messages: [JinjaValue], addGenerationPrompt: Bool = false,
                                          specialTokens: [String: String] = [:], tools: [JinjaValue]? = nil,
                                          documents: [JinjaValue]? = nil, extra: [String: JinjaValue] = [:],
                                          now: Date? = nil) throws -> ChatRendering {
        var variables: [String: Value] = [:]
        for (k, v) in specialTokens { variables[k] = .string(v) }
        for (k, v) in extra {
            if ["messages", "tools", "documents", "add_generation_prompt"].contains(k) {
                throw ChatTemplateError(.input, line: 0, "'\(k)' cannot be passed as an extra variable (transformers sets it)")
            }
            variables[k] = Self.value(v)
        }
        variables["messages"] = .list(try messages.enumerated().map { try Self.normalizedMessage($1, index: $0) })
        variables["tools"] = tools.map { Value.list($0.map(Self.value)) } ?? Value.none
        variables["documents"] = documents.map { Value.list($0.map(Self.value)) } ?? Value.none
        variables["add_generation_prompt"] = .bool(addGenerationPrompt)
        let interpreter = JinjaInterpreter()
        if let now { interpreter.now = { now } }
        let text = try interpreter.render(program.body, variables: variables)
        return ChatRendering(text: text, assistantSpans: interpreter.generationSpans, method: .generationBlocks)
    }

    /// A message as transformers hands it to the template: null values dropped, reasoning aliased.
    static func normalizedMessage(_ message: JinjaValue, index: Int) throws -> Value {
        guard case .object(let pairs) = message else {
            throw ChatTemplateError(.input, line: 0, "message \(index) is not an object (transformers requires dicts)")
        }
        var d = PyDict()
        let kept = pairs.filter { $0.value != .null }
        let reasoningKeys = ["reasoning_content", "thinking", "reasoning"]
        let reasoning = reasoningKeys.lazy.compactMap { key in kept.last(where: { $0.key == key })?.value }.first
        if let reasoning { d.setString("thinking", value(reasoning)) }
        for (k, v) in kept { d.setString(k, value(v)) }
        if let reasoning { d.setString("reasoning_content", value(reasoning)) }
        return .dict(d)
    }

    static func value(_ v: JinjaValue) -> Value {
        switch v {
        case .null: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .float(d)
        case .string(let s): return .string(s)
        case .array(let items): return .list(items.map(value))
        case .object(let pairs): return .dict(PyDict(strings: pairs.map { ($0.key, value($0.value)) }))
        }
    }
}

/// A rendered conversation and the UTF-8 byte ranges of its assistant output.
public struct ChatRendering: Sendable, Equatable {
    /// How the spans were found.
    public enum Method: String, Sendable {
        /// The template's `{% generation %}` blocks, as transformers' `return_assistant_tokens_mask`.
        case generationBlocks
        /// Differences of renderings of growing prefixes of the conversation (see `assistantSpans`).
        case prefixes
    }

    /// The rendered text (`add_generation_prompt` false).
    public var text: String
    /// UTF-8 byte ranges of `text`, in order.
    public var assistantSpans: [Range<Int>]
    public var method: Method

    /// The text of each span.
    public var assistantTexts: [String] {
        let bytes = Array(text.utf8)
        return assistantSpans.map { String(decoding: bytes[$0], as: UTF8.self) }
    }
}
