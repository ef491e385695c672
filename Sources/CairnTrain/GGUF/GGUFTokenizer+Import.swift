import Foundation

/// A GGUF's tokenizer as Hugging Face files: tokenizer.json and tokenizer_config.json from the
/// metadata (`GGUFTokenizer+Export` writes the metadata from a tokenizer).
extension GGUFTokenizer {
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
        let pre = try preTokenizerKind(metadata)
        let tokensKey = "tokenizer.ggml.tokens"
        let tokens = try metadata.strings(tokensKey)
        guard !tokens.isEmpty else { throw FormatError(file: file, key: tokensKey, "is empty") }
        let typesKey = "tokenizer.ggml.token_type"
        let types = try metadata.optionalInts(typesKey) ?? Array(repeating: TokenType.normal.rawValue, count: tokens.count)
        guard types.count == tokens.count else {
            throw FormatError(file: file, key: typesKey, "has \(types.count) entries but \(tokensKey) has \(tokens.count)")
        }

        let (vocab, added, addedDecoder) = try vocabulary(tokens: tokens, types: types, file: file, key: tokensKey)
        let merges = try self.merges(metadata, vocab: vocab, tokensKey: tokensKey)

        var config: [String: Any] = [:]
        let (names, ids) = try specialTokens(metadata, tokens: tokens, tokensKey: tokensKey)
        for name in ["bos_token", "eos_token", "unk_token", "pad_token"] { config[name] = names[name] ?? NSNull() }
        for name in ["sep_token", "mask_token"] where names[name] != nil { config[name] = names[name] }

        let addBOSKey = "tokenizer.ggml.add_bos_token", addEOSKey = "tokenizer.ggml.add_eos_token"
        let addBOS = try metadata.optionalBool(addBOSKey) ?? pre.addsBOSByDefault
        let addEOS = try metadata.optionalBool(addEOSKey) ?? false
        let postProcessor = try self.postProcessor(pre, addBOS: addBOS, addEOS: addEOS, names: names, ids: ids, file: file)

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

    /// A byte-level BPE's pre-tokenizer from `tokenizer.ggml.pre`; any other model is refused.
    private static func preTokenizerKind(_ metadata: GGUFMetadata) throws -> PreTokenizerKind {
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
        return pre
    }

    /// The special tokens the metadata names (`bos_token` …), their spellings and ids.
    private static func specialTokens(_ metadata: GGUFMetadata, tokens: [String], tokensKey: String) throws
        -> (names: [String: String], ids: [String: Int]) {
        var names: [String: String] = [:], ids: [String: Int] = [:]
        for (key, name) in specialTokenKeys {
            guard let id = try metadata.optionalInt(key) else { continue }
            guard id >= 0 && id < tokens.count else {
                throw FormatError(file: metadata.file, key: key, "is \(id), past the \(tokens.count) tokens of \(tokensKey)")
            }
            names[name] = tokens[id]
            ids[name] = id
        }
        return (names, ids)
    }

    /// The vocabulary of tokenizer.json (plain tokens first, so that an added token whose spelling
    /// collides with one keeps only its added-token entry), its added_tokens, and the config's
    /// added_tokens_decoder.
    private static func vocabulary(tokens: [String], types: [Int], file: String, key tokensKey: String) throws
        -> (vocab: [String: Int], added: [[String: Any]], addedDecoder: [String: Any]) {
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
        return (vocab, added, addedDecoder)
    }

    /// `tokenizer.ggml.merges` as tokenizer.json's [left, right] pairs, each part and its merge in `vocab`.
    private static func merges(_ metadata: GGUFMetadata, vocab: [String: Int], tokensKey: String) throws -> [[String]] {
        let file = metadata.file, mergesKey = "tokenizer.ggml.merges"
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
        return merges
    }

    /// The post-processor: the pre's ByteLevel one, followed (when BOS or EOS is added) by a
    /// TemplateProcessing, as Llama 3's tokenizer.json has. `names` and `ids` are the special tokens'.
    private static func postProcessor(_ pre: PreTokenizerKind, addBOS: Bool, addEOS: Bool, names: [String: String], ids: [String: Int],
                                      file: String) throws -> [String: Any] {
        let addBOSKey = "tokenizer.ggml.add_bos_token", addEOSKey = "tokenizer.ggml.add_eos_token"
        var templateTokens: [String: Any] = [:]
        for (add, name, key) in [(addBOS, "bos_token", addBOSKey), (addEOS, "eos_token", addEOSKey)] where add {
            guard let token = names[name], let id = ids[name] else {
                let idKey = name == "bos_token" ? "tokenizer.ggml.bos_token_id" : "tokenizer.ggml.eos_token_id"
                throw FormatError(file: file, key: key, "is true, but the file has no \(idKey)")
            }
            templateTokens[token] = ["id": token, "ids": [id], "tokens": [token]] as [String: Any]
        }
        let bos = addBOS ? names["bos_token"] : nil, eos = addEOS ? names["eos_token"] : nil
        guard bos != nil || eos != nil else { return pre.byteLevelPostProcessor }
        func template(_ sequence: String, typeID: Int) -> [[String: Any]] {
            var part: [[String: Any]] = []
            if let bos { part.append(["SpecialToken": ["id": bos, "type_id": typeID]]) }
            part.append(["Sequence": ["id": sequence, "type_id": typeID]])
            if let eos { part.append(["SpecialToken": ["id": eos, "type_id": typeID]]) }
            return part
        }
        let templateProcessing: [String: Any] = [
            "type": "TemplateProcessing", "single": template("A", typeID: 0),
            "pair": template("A", typeID: 0) + template("B", typeID: 1), "special_tokens": templateTokens,
        ]
        return ["type": "Sequence", "processors": [pre.byteLevelPostProcessor, templateProcessing]]
    }

    /// `{arch}.context_length`, when the metadata has it.
    private static func contextLength(_ metadata: GGUFMetadata) throws -> Int? {
        guard let arch = try metadata.optionalString("general.architecture") else { return nil }
        return try metadata.optionalInt("\(arch).context_length")
    }

    private static func isAdded(_ type: Int) -> Bool {
        type == TokenType.control.rawValue || type == TokenType.userDefined.rawValue
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
