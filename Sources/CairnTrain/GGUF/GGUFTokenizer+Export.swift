import Foundation

extension GGUFTokenizer {
    /// The tokenizer.ggml.* keys and tokenizer.chat_template for exporting `tokenizer` to GGUF, as
    /// llama.cpp's convert_hf_to_gguf.py (`_set_vocab_gpt2`: `get_vocab_base` and gguf-py's
    /// `SpecialVocab`) writes them for the directory `tokenizer.write(to:)` writes:
    ///
    /// - `tokenizer.ggml.model` "gpt2" and `tokenizer.ggml.pre` named from the pre-tokenizer ("gpt-2",
    ///   "llama-bpe", "qwen2" or "smollm"; convert_hf_to_gguf.py finds the same names by hashing the ids
    ///   of a test text, which only works for released models);
    /// - `tokens` (every id below `max(vocabularySize, tokenizer.vocabSize)`: vocabulary spelling, added
    ///   tokens as their text, `[PADn]` for ids without a token) and `token_type` (int32: 1 normal,
    ///   3 control for special added tokens and ones that look special like `<|x|>`, 4 user-defined for
    ///   other added tokens, 5 unused for `[PADn]`, also when the vocabulary itself has `[PADn]` at id n,
    ///   as one converted from a GGUF does);
    /// - `merges` as "a b" strings (a space inside a token written as U+0120, as gguf-py does);
    /// - uint32 ids of the config's bos/eos/unk/sep/pad/mask tokens that are added tokens, bools
    ///   `add_bos_token`/`add_eos_token`/`add_sep_token` from the post-processor's template and the
    ///   config's flags (`SpecialVocab`'s rules), and the chat template.
    ///
    /// `vocabularySize` is the model's vocabulary (its embedding rows, config.json's `vocab_size`) when it
    /// is larger than the tokenizer's. What convert_hf_to_gguf.py reads from config.json (special ids
    /// missing from tokenizer_config.json) is not written. Throws `FormatError` for a pre-tokenizer
    /// llama.cpp has no name for, naming `pre_tokenizer`.
    public static func metadata(for tokenizer: Tokenizer, vocabularySize: Int? = nil) throws -> [(key: String, value: GGUFValue)] {
        let file = tokenizer.json.file
        let steps = tokenizer.json.preTokenizer.steps
        guard let pre = PreTokenizerKind(steps: steps) else {
            throw FormatError(file: file, key: "pre_tokenizer", "is \(describe(steps)), which no tokenizer.ggml.pre "
                              + "that Cairn writes stands for (GPT-2 ByteLevel; Split with the Llama-3 or Qwen2 regex + "
                              + "ByteLevel without regex; Digits(individual_digits) + ByteLevel)")
        }
        if let vocabularySize, vocabularySize < tokenizer.vocabSize {
            throw FormatError(file: file, "vocabulary size \(vocabularySize) is below the tokenizer's \(tokenizer.vocabSize) ids")
        }
        let count = max(vocabularySize ?? 0, tokenizer.vocabSize)

        let (tokens, types) = vocabBase(tokenizer, count: count)
        let root = try JSONSerialization.jsonObject(with: tokenizer.jsonData) as? [String: Any] ?? [:]
        let merges = mergeValues((root["model"] as? [String: Any])?["merges"])

        var entries: [(key: String, value: GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre.names[0])),
            ("tokenizer.ggml.tokens", .array(.string, tokens)),
            ("tokenizer.ggml.token_type", .array(.int32, types)),
        ]
        if !merges.isEmpty { entries.append(("tokenizer.ggml.merges", .array(.string, merges))) }
        let special = specialVocab(tokenizer, config: tokenizer.effectiveConfig, postProcessor: root["post_processor"])
        for (type, id) in special.ids { entries.append(("tokenizer.ggml.\(type)", .uint32(UInt32(id)))) }
        for (type, add) in special.add { entries.append(("tokenizer.ggml.add_\(type)_token", .bool(add))) }
        entries += chatTemplate(tokenizer.effectiveConfig["chat_template"])
        return entries
    }

    /// convert_hf_to_gguf.py's `get_vocab_base`: every id's text and token type, `count` ids (ids
    /// past the tokenizer's are `[PADn]`, unused).
    private static func vocabBase(_ tokenizer: Tokenizer, count: Int) -> (tokens: [GGUFValue], types: [GGUFValue]) {
        var addedByID: [Int: AddedToken] = [:]
        for t in tokenizer.json.addedTokens { addedByID[t.id] = t }
        var tokens: [GGUFValue] = [], types: [GGUFValue] = []
        tokens.reserveCapacity(count)
        types.reserveCapacity(count)
        for id in 0..<count {
            var text: String, type: TokenType
            if let t = addedByID[id] {
                text = t.content
                if t.special || looksSpecial(text) {
                    type = .control
                } else {
                    text = text.replacingOccurrences(of: "\u{2581}", with: " ")
                    type = .userDefined
                }
            } else if let token = tokenizer.token(of: id) {
                text = token
                type = token == "[PAD\(id)]" ? .unused : .normal
            } else {
                text = "[PAD\(id)]"
                type = .unused
            }
            tokens.append(.string(text))
            types.append(.int32(Int32(type.rawValue)))
        }
        return (tokens, types)
    }

    /// tokenizer.json's `model.merges` as `tokenizer.ggml.merges` strings ("a b"; a pair's spaces spelled Ġ).
    private static func mergeValues(_ value: Any?) -> [GGUFValue] {
        var merges: [GGUFValue] = []
        for m in value as? [Any] ?? [] {
            if let s = m as? String {
                merges.append(.string(s))
            } else if let pair = m as? [String], pair.count == 2 {
                let spelled = pair.map { $0.replacingOccurrences(of: " ", with: "\u{120}") }
                merges.append(.string(spelled[0] + " " + spelled[1]))
            }
        }
        return merges
    }

    /// convert_hf_to_gguf.py's `does_token_look_special`.
    static func looksSpecial(_ token: String) -> Bool {
        ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(token)
            || (token.hasPrefix("<|") && token.hasSuffix("|>"))
            || (token.hasPrefix("<\u{FF5C}") && token.hasSuffix("\u{FF5C}>"))
            || (token.hasPrefix("<unused") && token.hasSuffix(">"))
    }

    /// gguf-py's `SpecialVocab._try_load_from_tokenizer_json` for a tokenizer.json and tokenizer_config.json:
    /// the special token ids (keyed by the GGUF key's last part, in the order it writes them) and the
    /// add_*_token flags it has a writer for (bos, eos, sep). Longer than this project's functions
    /// are: it follows gguf-py's function branch for branch, in one piece, so that it reads against it.
    private static func specialVocab(_ tokenizer: Tokenizer, config: [String: Any], postProcessor: Any?)
        -> (ids: [(String, Int)], add: [(String, Bool)]) {
        func name(_ value: Any?) -> String? {
            if let s = value as? String { return s }
            return (value as? [String: Any])?["content"] as? String
        }
        var tokenNames: [String: String] = [:]
        for type in ["bos", "eos", "unk", "sep", "pad", "cls", "mask"] { tokenNames[type] = name(config["\(type)_token"]) }
        if tokenNames["bos"] == nil, let cls = tokenNames["cls"] { tokenNames["bos"] = cls }
        if tokenNames["eos"] == nil, let sep = tokenNames["sep"] { tokenNames["eos"] = sep }
        var types = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]
        var add: [(String, Bool)] = []
        func setAdd(_ type: String, _ value: Bool) {
            if let i = add.firstIndex(where: { $0.0 == type }) { add[i].1 = value } else { add.append((type, value)) }
        }
        func specialTokenID(_ piece: Any?) -> String? {
            ((piece as? [String: Any])?["SpecialToken"] as? [String: Any])?["id"] as? String
        }
        func sequenceID(_ piece: Any?) -> String? {
            ((piece as? [String: Any])?["Sequence"] as? [String: Any])?["id"] as? String
        }
        if let post = postProcessor as? [String: Any] {
            for processor in post["processors"] as? [[String: Any]] ?? [post] {
                switch processor["type"] as? String {
                case "RobertaProcessing":
                    for type in ["bos", "eos", "sep"] { setAdd(type, true) }
                    if tokenNames["cls"] == nil { tokenNames["cls"] = (processor["cls"] as? [Any])?.first as? String ?? tokenNames["bos"] }
                    if tokenNames["sep"] == nil { tokenNames["sep"] = (processor["sep"] as? [Any])?.first as? String ?? tokenNames["eos"] }
                case "TemplateProcessing":
                    let single = processor["single"] as? [Any] ?? []
                    var pair = processor["pair"] as? [Any] ?? []
                    var first: String?, last: String?
                    if single.count > 1 {
                        first = specialTokenID(single.first)
                        if let first { setAdd("bos", first == tokenNames["bos"] || first == tokenNames["cls"]) }
                        last = specialTokenID(single.last)
                        if let last {
                            if let eos = tokenNames["eos"], last != eos {
                                // The trailing token replaces eos; the old eos becomes eot (or eom).
                                let extra = types.contains("eot") ? "eom" : "eot"
                                if !types.contains(extra) {
                                    types.append(extra)
                                    tokenNames[extra] = eos
                                }
                            }
                            tokenNames["eos"] = last
                            setAdd("eos", true)
                        }
                    }
                    if !pair.isEmpty {
                        let start = first != nil && specialTokenID(pair.first) == first ? 1 : 0
                        let stop = last != nil && specialTokenID(pair.last) == last ? pair.count - 1 : pair.count
                        pair = start < stop ? Array(pair[start..<stop]) : []
                        if let a = sequenceID(pair.first), let b = sequenceID(pair.last), a == "A", b == "B", pair.count > 2 {
                            let middle = Array(pair[1..<(pair.count - 1)])
                            var addSep = false
                            let separators = [tokenNames["sep"], tokenNames["eos"]]
                            if let entry = specialTokenID(middle[0]), separators.contains(entry), last == nil { addSep = true }
                            if middle.count == 2, let entry = specialTokenID(middle[1]), separators.contains(entry) { addSep = true }
                            setAdd("sep", addSep)
                            if addSep && tokenNames["sep"] == nil { tokenNames["sep"] = tokenNames["eos"] }
                        }
                    }
                default:
                    break
                }
            }
        }
        var ids: [(String, Int)] = []
        let keyOfType = ["bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id", "sep": "seperator_token_id",
                         "pad": "padding_token_id", "mask": "mask_token_id", "eot": "eot_token_id", "eom": "eom_token_id"]
        for type in types {
            if let flag = config["add_\(type)_token"], !(flag is NSNull), let value = TokenizerJSON.bool(flag) {
                setAdd(type, value)
            }
            // Only added tokens count, and gguf-py writes no cls id.
            guard let tokenName = tokenNames[type], let key = keyOfType[type],
                  let id = tokenizer.json.addedTokens.first(where: { $0.content == tokenName })?.id else { continue }
            ids.append((key, id))
        }
        return (ids, add.filter { ["bos", "eos", "sep"].contains($0.0) })
    }

    /// gguf-py's `GGUFWriter.add_chat_template`: a string, or a list of {name, template} written as
    /// `tokenizer.chat_template.NAME` for every name but "default", `tokenizer.chat_templates` listing
    /// them, and the "default" one as `tokenizer.chat_template`.
    private static func chatTemplate(_ value: Any?) -> [(key: String, value: GGUFValue)] {
        if let template = value as? String { return [("tokenizer.chat_template", .string(template))] }
        guard let list = value as? [[String: Any]] else { return [] }
        var entries: [(key: String, value: GGUFValue)] = []
        var names: [String] = []
        var defaultTemplate: String?
        for choice in list {
            let raw = choice["name"] as? String ?? ""
            let name = String(raw.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
            guard !name.isEmpty, let template = choice["template"] as? String else { continue }
            if name == "default" {
                defaultTemplate = template
            } else if !names.contains(name) {
                names.append(name)
                entries.append(("tokenizer.chat_template.\(name)", .string(template)))
            }
        }
        if !names.isEmpty { entries.append(("tokenizer.chat_templates", .array(.string, names.map { .string($0) }))) }
        if let defaultTemplate { entries.append(("tokenizer.chat_template", .string(defaultTemplate))) }
        return entries
    }

    private static func describe(_ steps: [PreTokenizer.Step]) -> String {
        let parts = steps.map { step -> String in
            switch step {
            case .split(let pattern): return "Split(\(pattern.source))"
            case .digits(let individual): return "Digits(individual_digits \(individual))"
            case .byteLevel(let prefix, let regex): return "ByteLevel(add_prefix_space \(prefix), use_regex \(regex))"
            }
        }
        return parts.joined(separator: " + ")
    }
}
