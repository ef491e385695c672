import CairnSystem
import Foundation

/// A byte-level BPE tokenizer read from a Hugging Face `tokenizer.json` (GPT-2, Qwen2, Llama-3, SmolLM and
/// the ones `TokenizerTrainer` makes), giving the same ids as HF `tokenizers`.
///
/// Encoding takes added tokens out of the text first (special ones from the raw text), applies the
/// normalizer (NFC when declared) to what is left, splits it into pre-tokens with the pre-tokenizer's
/// regex, and merges each pre-token's bytes by BPE. Decoding concatenates the bytes of the tokens and
/// reads them as UTF-8, with U+FFFD for invalid sequences, as HF does.
///
/// ```swift
/// let tok = try Tokenizer(directory: "models/qwen2-0.5b")
/// let ids = tok.encode(try tok.renderChat(messages, addGenerationPrompt: true))
/// ```
/// Safe to use from several threads.
public final class Tokenizer: @unchecked Sendable {
    let json: TokenizerJSON
    private let added: AddedVocabulary
    /// Decoder bytes of every id (nil for ids that are not used).
    private let bytesOfID: [[UInt8]?]
    private let tokenOfID: [String?]
    private let specialIDs: Set<Int>
    private let addedIDOfContent: [String: Int]
    /// The tokenizer.json this tokenizer was read from, written back by `write(to:)`.
    let jsonData: Data
    /// The tokenizer_config.json read alongside, if any, written back by `write(to:)`.
    var config: [String: Any]?

    /// The token names `eosTokenID`, `bosTokenID` and `padTokenID` refer to.
    var eosToken: String?, bosToken: String?, padToken: String?

    /// The chat templates by name as transformers loads them (see `chatTemplateSources`).
    var chatTemplateTexts: [String: String] = [:]
    /// The templates read from chat_template.jinja files, which `write(to:)` writes back.
    var chatTemplateFiles: [String: String]? = nil
    /// Parsed chat templates, by text.
    let chatTemplateCache = ChatTemplateCache()

    /// Reads `directory/tokenizer.json`, and `directory/tokenizer_config.json` when present for the
    /// names of the eos, bos and pad tokens, whether BOS/EOS are added and whether a chat template is declared.
    public convenience init(directory: String) throws {
        let path = (directory as NSString).appendingPathComponent("tokenizer.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError(file: path, "cannot read the file (does the directory hold a Hugging Face tokenizer?)")
        }
        try self.init(json: data, file: path)
        let configPath = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        if let configData = FileManager.default.contents(atPath: configPath) {
            guard let object = try? JSONSerialization.jsonObject(with: configData) as? [String: Any] else {
                throw TokenizerError(file: configPath, "not a JSON object")
            }
            try useConfig(object, file: configPath)
        }
        try readChatTemplateFiles(directory: directory)
    }

    /// The contents of a tokenizer.json and of its tokenizer_config.json (as `GGUFTokenizer` makes them),
    /// as `init(directory:)` reads them from files.
    public convenience init(json: Data, config: [String: Any]) throws {
        try self.init(json: json, config: config, file: "tokenizer.json", configFile: "tokenizer_config.json")
    }

    /// As `init(json:config:)`, with the names errors give the two.
    convenience init(json: Data, config: [String: Any], file: String, configFile: String) throws {
        try self.init(json: json, file: file)
        try useConfig(config, file: configFile)
    }

    /// Reads the contents of a tokenizer.json. No eos/bos/pad token is known (they live in
    /// tokenizer_config.json).
    public convenience init(json: Data) throws {
        try self.init(json: json, file: "tokenizer.json")
    }

    private func useConfig(_ object: [String: Any], file configPath: String) throws {
        config = object
        chatTemplateTexts = try Self.chatTemplates(inConfig: object, file: configPath)
        eosToken = try Self.tokenName(object["eos_token"], key: "eos_token", file: configPath)
        bosToken = try Self.tokenName(object["bos_token"], key: "bos_token", file: configPath)
        padToken = try Self.tokenName(object["pad_token"], key: "pad_token", file: configPath)
        for (key, name) in [("eos_token", eosToken), ("bos_token", bosToken), ("pad_token", padToken)] {
            if let name, id(of: name) == nil {
                throw TokenizerError(file: configPath, "\(key) \"\(name)\" is not a token of tokenizer.json")
            }
        }
        for key in ["add_bos_token", "add_eos_token"] {
            if let value = object[key], !(value is NSNull), TokenizerJSON.bool(value) == nil {
                throw TokenizerError(file: configPath, "\(key) is not a bool")
            }
        }
    }

    init(json data: Data, file: String, useBuiltinPatterns: Bool = true) throws {
        json = try TokenizerJSON(data: data, file: file, useBuiltinPatterns: useBuiltinPatterns)
        jsonData = data
        let nfc = json.normalizeNFC
        added = AddedVocabulary(json.addedTokens, normalize: { nfc ? $0.precomposedStringWithCanonicalMapping : $0 })
        var maxID = -1
        for (_, id) in json.model.vocab { maxID = max(maxID, id) }
        for t in json.addedTokens { maxID = max(maxID, t.id) }
        var bytes = [[UInt8]?](repeating: nil, count: maxID + 1)
        var tokens = [String?](repeating: nil, count: maxID + 1)
        for (token, id) in json.model.vocab {
            bytes[id] = ByteLevel.decoderBytes(of: token)
            tokens[id] = token
        }
        var special = Set<Int>(), addedIDs: [String: Int] = [:]
        for t in json.addedTokens {
            bytes[t.id] = ByteLevel.decoderBytes(of: t.content)
            tokens[t.id] = t.content
            addedIDs[t.content] = t.id
            if t.special { special.insert(t.id) }
        }
        bytesOfID = bytes
        tokenOfID = tokens
        specialIDs = special
        addedIDOfContent = addedIDs
    }

    // MARK: Encoding

    /// The ids of `text`, without BOS/EOS (HF's `add_special_tokens=False`). Added and special tokens
    /// written in the text (`<|im_start|>`) are matched first and become their own ids.
    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        ids.reserveCapacity(text.utf8.count / 3)
        for segment in added.splitRaw(text) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let raw):
                let normalized = json.normalizeNFC ? raw.precomposedStringWithCanonicalMapping : raw
                for inner in added.splitNormalized(normalized) {
                    switch inner {
                    case .token(let id): ids.append(id)
                    case .text(let piece): encodeText(piece, into: &ids)
                    }
                }
            }
        }
        return ids
    }

    /// The ids of `text` as HF's `encode(text, add_special_tokens=True)` gives them when
    /// `addSpecialTokens`: `encode(text)` with the tokens of `specialTokensAround` before and after.
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int] {
        guard addSpecialTokens else { return encode(text) }
        let around = specialTokensAround
        return around.prefix + encode(text) + around.suffix
    }

    /// The ids transformers' `PreTrainedTokenizerFast` adds around one text with `add_special_tokens=True`:
    /// when tokenizer_config.json has `add_bos_token` or `add_eos_token`, transformers 5 rebuilds the
    /// post-processor from them (BOS first when `add_bos_token` is true and `bos_token` names a token, EOS
    /// last likewise); otherwise tokenizer.json's `post_processor` decides (a TemplateProcessing `single`
    /// template, RobertaProcessing/BertProcessing cls and sep; nothing for ByteLevel or none).
    public var specialTokensAround: (prefix: [Int], suffix: [Int]) {
        if let config, config["add_bos_token"] != nil || config["add_eos_token"] != nil {
            let addBOS = config["add_bos_token"].flatMap(TokenizerJSON.bool) ?? false
            let addEOS = config["add_eos_token"].flatMap(TokenizerJSON.bool) ?? false
            return (addBOS ? bosTokenID.map { [$0] } ?? [] : [], addEOS ? eosTokenID.map { [$0] } ?? [] : [])
        }
        return (json.postProcessor.prefix, json.postProcessor.suffix)
    }

    /// Whether HF's `add_special_tokens=True` puts a token (the BOS, `<|begin_of_text|>` for Llama 3)
    /// before the text: true for Llama 3, false for GPT-2, Qwen2 and SmolLM.
    public var addsBOS: Bool { !specialTokensAround.prefix.isEmpty }
    /// Whether HF's `add_special_tokens=True` puts a token after the text.
    public var addsEOS: Bool { !specialTokensAround.suffix.isEmpty }

    /// The pre-tokens of normalized text without added tokens, as strings (for tests and debugging).
    func preTokens(_ text: String) -> [String] {
        let (bytes, ranges) = json.preTokenizer.pieces(of: text)
        return ranges.map { String(decoding: bytes[$0], as: UTF8.self) }
    }

    private func encodeText(_ text: String, into ids: inout [Int]) {
        let (bytes, ranges) = json.preTokenizer.pieces(of: text)
        for r in ranges { json.model.encode(bytes, r, into: &ids) }
    }

    // MARK: Decoding

    /// The text of `ids`: their bytes concatenated and read as UTF-8, invalid sequences as U+FFFD.
    /// Special tokens are written as their text unless `skipSpecialTokens`; unknown ids are skipped.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids where id >= 0 && id < bytesOfID.count {
            if skipSpecialTokens && specialIDs.contains(id) { continue }
            if let b = bytesOfID[id] { bytes.append(contentsOf: b) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Vocabulary

    /// The id of a token in its vocabulary spelling (`"Ġhello"`, `"<|im_end|>"`), or nil.
    public func id(of token: String) -> Int? {
        addedIDOfContent[token] ?? json.model.vocab[token]
    }

    /// The vocabulary spelling of an id, or nil when no token has it.
    public func token(of id: Int) -> String? {
        id >= 0 && id < tokenOfID.count ? tokenOfID[id] : nil
    }

    /// The number of ids: the largest id of the vocabulary and added tokens, plus one.
    public var vocabSize: Int { tokenOfID.count }

    /// Whether `id` is a special added token (skipped by `decode(_:skipSpecialTokens: true)`).
    public func isSpecial(_ id: Int) -> Bool { specialIDs.contains(id) }

    /// The id of `eos_token` from tokenizer_config.json (for trained tokenizers, `<|endoftext|>`).
    public var eosTokenID: Int? { eosToken.flatMap { id(of: $0) } }
    /// The id of `bos_token` from tokenizer_config.json, if it names one.
    public var bosTokenID: Int? { bosToken.flatMap { id(of: $0) } }
    /// The id of `pad_token` from tokenizer_config.json, if it names one.
    public var padTokenID: Int? { padToken.flatMap { id(of: $0) } }
    /// The id of `<|im_end|>`, which ends an assistant turn of the ChatML template, if the vocabulary has it.
    public var chatEndTokenID: Int? { id(of: "<|im_end|>") }
    /// Whether tokenizer_config.json (or a chat_template.jinja beside it) declares a non-empty chat
    /// template (always true for tokenizers Cairn writes).
    public var hasChatTemplate: Bool { chatTemplateTexts.values.contains { !$0.isEmpty } }

    // MARK: Chat

    /// The ChatML template Qwen2 uses (without its default system turn): what `applyChatTemplate`
    /// renders and what `write(to:)` declares, so transformers' `apply_chat_template` agrees.
    public static let chatMLTemplate =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

    /// `messages` in ChatML: `<|im_start|>role\ncontent<|im_end|>\n` per message, then
    /// `<|im_start|>assistant\n` when `addGenerationPrompt`.
    public func applyChatTemplate(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var out = ""
        for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        return out
    }

    // MARK: Writing

    /// Writes `directory/tokenizer.json` and `directory/tokenizer_config.json` (creating the directory),
    /// loadable by transformers' `AutoTokenizer` as a `PreTrainedTokenizerFast`. A tokenizer read from
    /// files is written back as read (with its chat_template.jinja files); otherwise the config names the eos/bos/pad tokens, lists the added
    /// tokens and declares the ChatML template.
    public func write(to directory: String) throws {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw TokenizerError(file: directory, "cannot create the directory (\(error.localizedDescription))")
        }
        let jsonPath = (directory as NSString).appendingPathComponent("tokenizer.json")
        let configPath = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        let configData: Data
        do {
            configData = try JSONSerialization.data(withJSONObject: config ?? generatedConfig(),
                                                    options: [.prettyPrinted, .sortedKeys])
        } catch {
            throw TokenizerError(file: configPath, "cannot encode the config (\(error.localizedDescription))")
        }
        var files = [(jsonPath, jsonData), (configPath, configData)]
        if let templateFiles = chatTemplateFiles {
            for (name, text) in templateFiles {
                let path = name == "default" ? (directory as NSString).appendingPathComponent("chat_template.jinja")
                    : (directory as NSString).appendingPathComponent("additional_chat_templates/\(name).jinja")
                if name != "default" {
                    try? fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                }
                files.append((path, Data(text.utf8)))
            }
        }
        for (path, data) in files {
            do {
                try AtomicFile.write(data, to: path)
            } catch {
                throw TokenizerError(file: path, "cannot write (\(error.localizedDescription))")
            }
        }
    }

    /// The tokenizer_config.json `write(to:)` writes: the one read, or `generatedConfig()`.
    var effectiveConfig: [String: Any] { config ?? generatedConfig() }

    func generatedConfig() -> [String: Any] {
        var decoderTokens: [String: Any] = [:]
        for t in json.addedTokens {
            decoderTokens[String(t.id)] = ["content": t.content, "lstrip": t.lstrip, "normalized": t.normalized,
                                           "rstrip": t.rstrip, "single_word": t.singleWord, "special": t.special]
        }
        return [
            "added_tokens_decoder": decoderTokens,
            "additional_special_tokens": json.addedTokens.filter { $0.special && ![eosToken, bosToken, padToken].contains($0.content) }
                .map(\.content),
            "bos_token": bosToken ?? NSNull(),
            "eos_token": eosToken ?? NSNull(),
            "pad_token": padToken ?? NSNull(),
            "chat_template": Self.chatMLTemplate,
            "clean_up_tokenization_spaces": false,
            "errors": "replace",
            "model_max_length": 131072,
            "split_special_tokens": false,
            "tokenizer_class": "PreTrainedTokenizerFast",
        ]
    }

    static func tokenName(_ value: Any?, key: String, file: String) throws -> String? {
        guard let value, !(value is NSNull) else { return nil }
        if let s = value as? String { return s }
        if let object = value as? [String: Any], let s = object["content"] as? String { return s }
        throw TokenizerError(file: file, "\(key) is neither a string nor an object with \"content\"")
    }
}
