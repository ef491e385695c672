import Foundation

/// Converting between a GGUF file's tokenizer metadata (`tokenizer.ggml.*` and `tokenizer.chat_template`,
/// as llama.cpp's convert_hf_to_gguf.py writes them) and Hugging Face tokenizer files.
///
/// GGUF → HF (`huggingFaceFiles(from:)`): the tokenizer.json is the one the model family ships, not a
/// generic one: the pre-tokenizer that `tokenizer.ggml.pre` names is written as that family's original
/// `pre_tokenizer` (and normalizer), so HF `tokenizers`, transformers and Cairn's `Tokenizer` give the ids
/// the original model's tokenizer gives. transformers' own GGUF conversion differs there: it has no
/// Digits step for SmolLM ("smollm") and no NFC for Qwen2 ("qwen2").
///
/// HF → GGUF (`metadata(for:)`): the keys convert_hf_to_gguf.py's `_set_vocab_gpt2` writes for a
/// byte-level BPE tokenizer, with the pre name recognised from the pre-tokenizer rather than from
/// llama.cpp's hash table of released models.
///
/// ```swift
/// let (json, config) = try GGUFTokenizer.huggingFaceFiles(from: GGUFFile(path: path).metadata)
/// let tokenizer = try Tokenizer(json: json, config: config)
/// try tokenizer.write(to: "out/tokenizer")          // tokenizer.json + tokenizer_config.json
/// let keys = try GGUFTokenizer.metadata(for: tokenizer)
/// ```
public enum GGUFTokenizer {
    /// The `tokenizer.ggml.pre` values Cairn converts, and the original HF pipeline each stands for.
    enum PreTokenizerKind: CaseIterable {
        /// GPT-2: `ByteLevel(add_prefix_space false, use_regex true)`.
        case gpt2
        /// Llama 3: `Split(Llama-3 regex, Isolated)` + `ByteLevel(use_regex false)`, `ignore_merges` true.
        case llama3
        /// Qwen2: NFC normalizer, `Split(Qwen2 regex, Isolated)` + `ByteLevel(use_regex false)`.
        case qwen2
        /// SmolLM (StarCoder's tokenizer): `Digits(individual_digits true)` + `ByteLevel(use_regex true)`.
        case smollm

        /// The names read as this pre-tokenizer; the first is what convert_hf_to_gguf.py writes, the others
        /// are llama.cpp's aliases (`llama-vocab.cpp`) and "gpt2". "default", which a file gets when its
        /// converter did not know the pre-tokenizer, is read as GPT-2's, as transformers reads it
        /// (llama.cpp's own "default" split differs: punctuation runs and 3-digit groups first).
        var names: [String] {
            switch self {
            case .gpt2: return ["gpt-2", "gpt2", "default"]
            case .llama3: return ["llama-bpe", "llama3", "llama-v3"]
            case .qwen2: return ["qwen2"]
            case .smollm: return ["smollm"]
            }
        }

        init?(name: String) {
            guard let kind = Self.allCases.first(where: { $0.names.contains(name) }) else { return nil }
            self = kind
        }

        /// llama.cpp's `add_bos` when the file has no `tokenizer.ggml.add_bos_token` (true for Llama 3).
        var addsBOSByDefault: Bool { self == .llama3 }

        static let byteLevelDecoder: [String: Any] = [
            "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true,
        ]

        static func byteLevel(useRegex: Bool) -> [String: Any] {
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": useRegex]
        }

        static func split(_ pattern: String) -> [String: Any] {
            ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false]
        }

        /// The family's `normalizer` (NSNull for none).
        var normalizer: Any { self == .qwen2 ? ["type": "NFC"] as [String: Any] : NSNull() }

        var preTokenizer: [String: Any] {
            switch self {
            case .gpt2:
                return Self.byteLevel(useRegex: true)
            case .llama3:
                return ["type": "Sequence", "pretokenizers": [Self.split(SplitPattern.llama3Source), Self.byteLevel(useRegex: false)]]
            case .qwen2:
                return ["type": "Sequence", "pretokenizers": [Self.split(SplitPattern.qwen2Source), Self.byteLevel(useRegex: false)]]
            case .smollm:
                return ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true],
                                                              Self.byteLevel(useRegex: true)]]
            }
        }

        /// The family's ByteLevel post-processor (it changes offsets only, never ids).
        var byteLevelPostProcessor: [String: Any] {
            self == .qwen2
                ? ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false]
                : ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true]
        }

        var ignoresMerges: Bool { self == .llama3 }

        /// The kind whose original pipeline `steps` is, or nil.
        init?(steps: [PreTokenizer.Step]) {
            switch steps.count {
            case 1:
                guard case .byteLevel(false, true) = steps[0] else { return nil }
                self = .gpt2
            case 2:
                switch (steps[0], steps[1]) {
                case (.split(let pattern), .byteLevel(false, false)):
                    switch pattern.source {
                    case SplitPattern.gpt2Source: self = .gpt2
                    case SplitPattern.llama3Source: self = .llama3
                    case SplitPattern.qwen2Source: self = .qwen2
                    default: return nil
                    }
                case (.digits(true), .byteLevel(false, true)):
                    self = .smollm
                default:
                    return nil
                }
            default:
                return nil
            }
        }
    }

    /// GGUF token types (gguf-py's `TokenType`).
    enum TokenType: Int {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// The special-token id keys llama.cpp reads, and the tokenizer_config.json names they become.
    static let specialTokenKeys: [(gguf: String, config: String)] = [
        ("tokenizer.ggml.bos_token_id", "bos_token"),
        ("tokenizer.ggml.eos_token_id", "eos_token"),
        ("tokenizer.ggml.unknown_token_id", "unk_token"),
        ("tokenizer.ggml.seperator_token_id", "sep_token"),  // sic: llama.cpp's spelling
        ("tokenizer.ggml.padding_token_id", "pad_token"),
        ("tokenizer.ggml.mask_token_id", "mask_token"),
    ]

    /// tokenizer.json (Data) and tokenizer_config.json (a JSON object) from tokenizer.ggml.* and
    /// tokenizer.chat_template.
    ///
    /// - tokens become `model.vocab` (spelled in the byte-level alphabet, as transformers respells any
    ///   that is not), `merges` the model's merges (as `["a", "b"]` pairs);
    /// - token types 3 (control) and 4 (user-defined) become `added_tokens`, control ones special
    ///   (neither normalized, as llama.cpp matches them in the raw text); type 5 (unused, `[PADn]`) tokens
    ///   stay in the vocabulary so that ids and the vocabulary size are the GGUF's;
    /// - bos/eos/unk/sep/pad/mask ids name the config's `*_token`s;
    /// - `tokenizer.ggml.add_bos_token` (llama.cpp's default for the pre when absent: true for Llama 3)
    ///   and `add_eos_token` become a TemplateProcessing post-processor and `add_bos_token`/`add_eos_token`
    ///   in the config, as Llama 3 ships them;
    /// - `tokenizer.ggml.pre` becomes the original model's pre-tokenizer (see `PreTokenizerKind`).
    ///
    /// Throws `FormatError` naming the key: a `tokenizer.ggml.model` other than "gpt2" (SentencePiece
    /// "llama", WordPiece "bert", …), an unknown or missing pre, missing tokens or merges, a merge naming
    /// a token not in the vocabulary, a token_type array of another length, an id out of range.
    public static func huggingFaceFiles(from metadata: GGUFMetadata) throws -> (tokenizerJSON: Data, tokenizerConfig: [String: Any]) {
        let file = metadata.file
        let modelKey = "tokenizer.ggml.model"
        let model = try metadata.string(modelKey)
        guard model == "gpt2" else {
            throw FormatError(file: file, key: modelKey, "is \"\(model)\"; Cairn converts byte-level BPE tokenizers (\"gpt2\") only")
        }
        let preKey = "tokenizer.ggml.pre"
        let preName = try metadata.string(preKey)
        guard let pre = PreTokenizerKind(name: preName) else {
            let known = PreTokenizerKind.allCases.flatMap(\.names).map { "\"\($0)\"" }.joined(separator: ", ")
            throw FormatError(file: file, key: preKey, "is \"\(preName)\", which Cairn does not convert (it knows \(known))")
        }

        let tokensKey = "tokenizer.ggml.tokens"
        let tokens = try metadata.strings(tokensKey)
        guard !tokens.isEmpty else { throw FormatError(file: file, key: tokensKey, "is empty") }
        let typesKey = "tokenizer.ggml.token_type"
        let types = try metadata.optionalInts(typesKey) ?? Array(repeating: TokenType.normal.rawValue, count: tokens.count)
        guard types.count == tokens.count else {
            throw FormatError(file: file, key: typesKey, "has \(types.count) entries but \(tokensKey) has \(tokens.count)")
        }

        // The vocabulary: plain tokens first, so that an added token whose spelling collides with one keeps
        // only its added-token entry.
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(tokens.count)
        var added: [[String: Any]] = []
        var addedDecoder: [String: Any] = [:]
        for (id, (token, type)) in zip(tokens, types).enumerated() where !isAdded(type) {
            let spelling = byteLevelSpelling(token)
            if let other = vocab[spelling] {
                throw FormatError(file: file, key: tokensKey, "[\(id)] \"\(token)\" repeats token \(other)")
            }
            vocab[spelling] = id
        }
        for (id, (token, type)) in zip(tokens, types).enumerated() where isAdded(type) {
            let spelling = byteLevelSpelling(token)
            if vocab[spelling] == nil { vocab[spelling] = id }
            let special = type == TokenType.control.rawValue
            let entry: [String: Any] = ["id": id, "content": token, "single_word": false, "lstrip": false,
                                        "rstrip": false, "normalized": false, "special": special]
            added.append(entry)
            addedDecoder[String(id)] = ["content": token, "single_word": false, "lstrip": false, "rstrip": false,
                                        "normalized": false, "special": special]
        }

        let mergesKey = "tokenizer.ggml.merges"
        var merges: [[String]] = []
        let mergeStrings = try metadata.strings(mergesKey)
        merges.reserveCapacity(mergeStrings.count)
        for (i, merge) in mergeStrings.enumerated() {
            // llama.cpp splits at the first space after the first character.
            let scalars = Array(merge.unicodeScalars)
            guard let space = scalars.indices.dropFirst().first(where: { scalars[$0] == " " }) else {
                throw FormatError(file: file, key: mergesKey, "[\(i)] \"\(merge)\" is not two tokens separated by a space")
            }
            let left = String(String.UnicodeScalarView(scalars[..<space]))
            let right = String(String.UnicodeScalarView(scalars[(space + 1)...]))
            for part in [left, right, left + right] where vocab[part] == nil {
                throw FormatError(file: file, key: mergesKey, "[\(i)] \"\(merge)\" needs \"\(part)\", which is not in \(tokensKey)")
            }
            merges.append([left, right])
        }

        // Special tokens.
        var config: [String: Any] = [:]
        var names: [String: String] = [:], ids: [String: Int] = [:]
        for (key, name) in specialTokenKeys {
            guard let id = try metadata.optionalInt(key) else { continue }
            guard id >= 0 && id < tokens.count else {
                throw FormatError(file: file, key: key, "is \(id), past the \(tokens.count) tokens of \(tokensKey)")
            }
            names[name] = tokens[id]
            ids[name] = id
        }
        for name in ["bos_token", "eos_token", "unk_token", "pad_token"] { config[name] = names[name] ?? NSNull() }
        for name in ["sep_token", "mask_token"] where names[name] != nil { config[name] = names[name] }

        // BOS/EOS: a TemplateProcessing after the ByteLevel post-processor, as Llama 3's tokenizer.json has.
        let addBOSKey = "tokenizer.ggml.add_bos_token", addEOSKey = "tokenizer.ggml.add_eos_token"
        let addBOS = try metadata.optionalBool(addBOSKey) ?? pre.addsBOSByDefault
        let addEOS = try metadata.optionalBool(addEOSKey) ?? false
        var templateTokens: [String: Any] = [:]
        for (add, name, key) in [(addBOS, "bos_token", addBOSKey), (addEOS, "eos_token", addEOSKey)] where add {
            guard let token = names[name], let id = ids[name] else {
                let idKey = name == "bos_token" ? "tokenizer.ggml.bos_token_id" : "tokenizer.ggml.eos_token_id"
                throw FormatError(file: file, key: key, "is true, but the file has no \(idKey)")
            }
            templateTokens[token] = ["id": token, "ids": [id], "tokens": [token]] as [String: Any]
        }
        let bos = addBOS ? names["bos_token"] : nil, eos = addEOS ? names["eos_token"] : nil
        func template(_ sequence: String, typeID: Int) -> [[String: Any]] {
            var part: [[String: Any]] = []
            if let bos { part.append(["SpecialToken": ["id": bos, "type_id": typeID]]) }
            part.append(["Sequence": ["id": sequence, "type_id": typeID]])
            if let eos { part.append(["SpecialToken": ["id": eos, "type_id": typeID]]) }
            return part
        }
        let postProcessor: [String: Any]
        if bos != nil || eos != nil {
            let templateProcessing: [String: Any] = [
                "type": "TemplateProcessing", "single": template("A", typeID: 0),
                "pair": template("A", typeID: 0) + template("B", typeID: 1), "special_tokens": templateTokens,
            ]
            postProcessor = ["type": "Sequence", "processors": [pre.byteLevelPostProcessor, templateProcessing]]
        } else {
            postProcessor = pre.byteLevelPostProcessor
        }

        let json: [String: Any] = [
            "version": "1.0",
            "truncation": NSNull(),
            "padding": NSNull(),
            "added_tokens": added,
            "normalizer": pre.normalizer,
            "pre_tokenizer": pre.preTokenizer,
            "post_processor": postProcessor,
            "decoder": PreTokenizerKind.byteLevelDecoder,
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false,
                "ignore_merges": pre.ignoresMerges, "vocab": vocab, "merges": merges,
            ] as [String: Any],
        ]
        let data: Data
        do {
            data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes])
        } catch {
            throw FormatError(file: file, "cannot encode tokenizer.json (\(error.localizedDescription))")
        }

        config["add_bos_token"] = addBOS
        config["add_eos_token"] = addEOS
        config["add_prefix_space"] = false
        config["added_tokens_decoder"] = addedDecoder
        // Decoding joins the tokens' bytes, as Cairn does (transformers 5 ignores a true here
        // for BPE, with a warning; Llama 3's own config says true).
        config["clean_up_tokenization_spaces"] = false
        config["model_max_length"] = try contextLength(metadata) ?? 131072
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        if let chatTemplate = try metadata.optionalString("tokenizer.chat_template") {
            config["chat_template"] = chatTemplate
        }
        return (data, config)
    }

    /// `{arch}.context_length`, when the metadata has it.
    private static func contextLength(_ metadata: GGUFMetadata) throws -> Int? {
        guard let arch = try metadata.optionalString("general.architecture") else { return nil }
        return try metadata.optionalInt("\(arch).context_length")
    }

    private static func isAdded(_ type: Int) -> Bool {
        type == TokenType.control.rawValue || type == TokenType.userDefined.rawValue
    }

    /// The vocabulary spelling of a GGUF token: itself when every scalar is in the byte-level alphabet,
    /// otherwise its UTF-8 bytes spelled in that alphabet (as transformers' GGUF conversion does).
    static func byteLevelSpelling(_ token: String) -> String {
        ByteLevel.decode(token) != nil ? token : ByteLevel.encode(token.utf8)
    }
}

extension Tokenizer {
    /// The tokenizer a GGUF file's metadata describes: `GGUFTokenizer.huggingFaceFiles(from:)` read as
    /// `init(json:config:)` reads them. `write(to:)` writes those files.
    public convenience init(gguf metadata: GGUFMetadata) throws {
        let (json, config) = try GGUFTokenizer.huggingFaceFiles(from: metadata)
        try self.init(json: json, config: config, file: metadata.file + " (tokenizer.json from its metadata)",
                      configFile: metadata.file + " (tokenizer_config.json from its metadata)")
    }
}
