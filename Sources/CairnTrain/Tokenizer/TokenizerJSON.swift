import Foundation

/// Reading the parts of a Hugging Face tokenizer.json that Cairn implements. Every unsupported or
/// malformed key is an error that names it.
struct TokenizerJSON {
    var model: BPEModel
    var addedTokens: [AddedToken]
    /// The normalizers in order (only NFC is supported).
    var normalizeNFC: Bool
    var preTokenizer: PreTokenizer
    /// What the `post_processor` adds around a single text (HF's `add_special_tokens=True`).
    var postProcessor: PostProcessor

    let file: String

    /// The special tokens a `post_processor` puts before and after a single sequence: the `single`
    /// template of TemplateProcessing, the cls/sep of RobertaProcessing and BertProcessing, nothing for
    /// ByteLevel, and those of every processor of a Sequence in order.
    struct PostProcessor {
        var prefix: [Int] = []
        var suffix: [Int] = []
    }

    init(data: Data, file: String, useBuiltinPatterns: Bool = true) throws {
        self.file = file
        let root = try Self.rootObject(data, file: file)
        let vocab: [String: Int]
        (model, vocab) = try Self.parseModel(root, file: file)
        addedTokens = try Self.parseAddedTokens(root, file: file)
        try Self.checkIDs(vocab: vocab, added: addedTokens, file: file)

        normalizeNFC = false
        if let normalizer = root["normalizer"], !(normalizer is NSNull) {
            normalizeNFC = try Self.parseNormalizer(normalizer, key: "normalizer", file: file)
        }

        guard let pre = root["pre_tokenizer"], !(pre is NSNull) else {
            throw TokenizerError(file: file, "\"pre_tokenizer\" is null; Cairn reads byte-level BPE, which needs a ByteLevel pre-tokenizer")
        }
        var steps: [PreTokenizer.Step] = []
        try Self.parsePreTokenizer(pre, key: "pre_tokenizer", file: file, builtin: useBuiltinPatterns, into: &steps)
        guard let last = steps.last, case .byteLevel = last else {
            throw TokenizerError(file: file, "pre_tokenizer does not end in ByteLevel; Cairn reads byte-level BPE only")
        }
        if steps.dropLast().contains(where: { if case .byteLevel = $0 { return true } else { return false } }) {
            throw TokenizerError(file: file, "pre_tokenizer has ByteLevel before its last step, which Cairn does not support")
        }
        preTokenizer = PreTokenizer(steps: steps)

        var post = PostProcessor()
        if let processor = root["post_processor"], !(processor is NSNull) {
            try Self.parsePostProcessor(processor, key: "post_processor", file: file, into: &post)
        }
        postProcessor = post

        if let decoder = root["decoder"], !(decoder is NSNull) {
            let type = (decoder as? [String: Any])?["type"] as? String ?? "?"
            guard type == "ByteLevel" else {
                throw TokenizerError(file: file, "decoder.type \"\(type)\" is not supported (only ByteLevel)")
            }
        }
    }

    /// The file's top-level JSON object.
    private static func rootObject(_ data: Data, file: String) throws -> [String: Any] {
        do {
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw TokenizerError(file: file, "the top level is not a JSON object")
            }
            return object
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw TokenizerError(file: file, "not valid JSON (\(error.localizedDescription))")
        }
    }

    /// `model`: a byte-level BPE's vocabulary and merges, with the options Cairn refuses checked.
    private static func parseModel(_ root: [String: Any], file: String) throws -> (BPEModel, vocab: [String: Int]) {
        guard let modelValue = root["model"] else { throw TokenizerError(file: file, "missing key \"model\"") }
        guard let model = modelValue as? [String: Any] else {
            throw TokenizerError(file: file, "\"model\" is not an object")
        }
        let type = model["type"] as? String ?? "BPE"
        guard type == "BPE" else {
            throw TokenizerError(file: file, "model.type \"\(type)\" is not supported (Cairn reads byte-level BPE only)")
        }
        guard let vocabObject = model["vocab"] as? [String: Any] else {
            throw TokenizerError(file: file, "missing or malformed key \"model.vocab\" (an object of token: id)")
        }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(vocabObject.count)
        for (token, value) in vocabObject {
            guard let id = int(value), id >= 0 else {
                throw TokenizerError(file: file, "model.vocab[\"\(token)\"] is not a non-negative integer id")
            }
            vocab[token] = id
        }
        let merges = try parseMerges(model["merges"], file: file)
        if let dropout = model["dropout"], !(dropout is NSNull), let p = double(dropout), p > 0 {
            throw TokenizerError(file: file, "model.dropout \(p) is not supported (BPE dropout is for training only)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[key] as? String, !value.isEmpty {
                throw TokenizerError(file: file, "model.\(key) \"\(value)\" is not supported by byte-level BPE")
            }
        }
        let ignoreMerges = bool(model["ignore_merges"]) ?? false
        return (try BPEModel(vocab: vocab, merges: merges, ignoreMerges: ignoreMerges, file: file), vocab)
    }

    /// `model.merges`, each "a b" or ["a", "b"].
    private static func parseMerges(_ value: Any?, file: String) throws -> [(String, String)] {
        guard let mergesArray = value as? [Any] else {
            throw TokenizerError(file: file, "missing or malformed key \"model.merges\" (a list)")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergesArray.count)
        for (i, m) in mergesArray.enumerated() {
            if let s = m as? String {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerError(file: file, "model.merges[\(i)] \"\(s)\" is not two tokens separated by one space")
                }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = m as? [Any], pair.count == 2, let a = pair[0] as? String, let b = pair[1] as? String {
                merges.append((a, b))
            } else {
                throw TokenizerError(file: file, "model.merges[\(i)] is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        return merges
    }

    /// `added_tokens` (absent or null: none).
    private static func parseAddedTokens(_ root: [String: Any], file: String) throws -> [AddedToken] {
        var added: [AddedToken] = []
        guard let list = root["added_tokens"], !(list is NSNull) else { return added }
        guard let objects = list as? [[String: Any]] else {
            throw TokenizerError(file: file, "\"added_tokens\" is not a list of objects")
        }
        for (i, t) in objects.enumerated() {
            guard let id = int(t["id"]), let content = t["content"] as? String else {
                throw TokenizerError(file: file, "added_tokens[\(i)] lacks \"id\" or \"content\"")
            }
            let special = bool(t["special"]) ?? false
            added.append(AddedToken(id: id, content: content, special: special,
                                    singleWord: bool(t["single_word"]) ?? false,
                                    lstrip: bool(t["lstrip"]) ?? false, rstrip: bool(t["rstrip"]) ?? false,
                                    normalized: bool(t["normalized"]) ?? !special))
        }
        return added
    }

    /// Whether the normalizer is NFC (true) or does nothing (false); anything else throws.
    private static func parseNormalizer(_ value: Any, key: String, file: String) throws -> Bool {
        guard let object = value as? [String: Any], let type = object["type"] as? String else {
            throw TokenizerError(file: file, "\(key) has no \"type\"")
        }
        switch type {
        case "NFC":
            return true
        case "Sequence":
            guard let list = object["normalizers"] as? [Any] else {
                throw TokenizerError(file: file, "\(key).normalizers is missing")
            }
            var nfc = false
            for (i, n) in list.enumerated() where try parseNormalizer(n, key: "\(key).normalizers[\(i)]", file: file) {
                nfc = true
            }
            return nfc
        default:
            throw TokenizerError(file: file, "\(key).type \"\(type)\" is not supported (only NFC, or a Sequence of NFC)")
        }
    }

    private static func parsePreTokenizer(_ value: Any, key: String, file: String, builtin: Bool,
                                          into steps: inout [PreTokenizer.Step]) throws {
        guard let object = value as? [String: Any], let type = object["type"] as? String else {
            throw TokenizerError(file: file, "\(key) has no \"type\"")
        }
        switch type {
        case "ByteLevel":
            steps.append(.byteLevel(addPrefixSpace: bool(object["add_prefix_space"]) ?? true,
                                    useRegex: bool(object["use_regex"]) ?? true))
        case "Split":
            guard let pattern = object["pattern"] as? [String: Any], let source = pattern["Regex"] as? String else {
                throw TokenizerError(file: file, "\(key).pattern is not {\"Regex\": …} (a String pattern is not supported)")
            }
            let behavior = object["behavior"] as? String ?? "?"
            guard behavior == "Isolated" else {
                throw TokenizerError(file: file, "\(key).behavior \"\(behavior)\" is not supported (only Isolated)")
            }
            guard !(bool(object["invert"]) ?? false) else {
                throw TokenizerError(file: file, "\(key).invert true is not supported")
            }
            do {
                steps.append(.split(try SplitPattern.compile(source, useBuiltin: builtin)))
            } catch {
                throw TokenizerError(file: file, "\(key).pattern.Regex cannot be compiled: \(error)")
            }
        case "Digits":
            steps.append(.digits(individualDigits: bool(object["individual_digits"]) ?? false))
        case "Sequence":
            guard let list = object["pretokenizers"] as? [Any] else {
                throw TokenizerError(file: file, "\(key).pretokenizers is missing")
            }
            for (i, p) in list.enumerated() {
                try parsePreTokenizer(p, key: "\(key).pretokenizers[\(i)]", file: file, builtin: builtin, into: &steps)
            }
        default:
            throw TokenizerError(file: file, "\(key).type \"\(type)\" is not supported (only ByteLevel, Split, Digits and Sequence)")
        }
    }

    private static func parsePostProcessor(_ value: Any, key: String, file: String, into post: inout PostProcessor) throws {
        guard let object = value as? [String: Any], let type = object["type"] as? String else {
            throw TokenizerError(file: file, "\(key) has no \"type\"")
        }
        switch type {
        case "ByteLevel":
            break
        case "TemplateProcessing":
            guard let single = object["single"] as? [[String: Any]] else {
                throw TokenizerError(file: file, "\(key).single is not a list of pieces")
            }
            let specials = object["special_tokens"] as? [String: Any] ?? [:]
            var seenSequence = false
            for (i, piece) in single.enumerated() {
                if piece["Sequence"] != nil {
                    seenSequence = true
                    continue
                }
                guard let token = piece["SpecialToken"] as? [String: Any], let name = token["id"] as? String else {
                    throw TokenizerError(file: file, "\(key).single[\(i)] is neither a Sequence nor a SpecialToken")
                }
                guard let entry = specials[name] as? [String: Any], let ids = entry["ids"] as? [Any],
                      case let intIDs = ids.compactMap(int), intIDs.count == ids.count else {
                    throw TokenizerError(file: file, "\(key).special_tokens has no ids for \"\(name)\"")
                }
                if seenSequence { post.suffix += intIDs } else { post.prefix += intIDs }
            }
        case "RobertaProcessing", "BertProcessing":
            for (field, before) in [("cls", true), ("sep", false)] {
                guard let pair = object[field] as? [Any], pair.count == 2, pair[0] is String, let id = int(pair[1]) else {
                    throw TokenizerError(file: file, "\(key).\(field) is not [token, id]")
                }
                if before { post.prefix.append(id) } else { post.suffix.append(id) }
            }
        case "Sequence":
            guard let list = object["processors"] as? [Any] else {
                throw TokenizerError(file: file, "\(key).processors is missing")
            }
            for (i, p) in list.enumerated() {
                try parsePostProcessor(p, key: "\(key).processors[\(i)]", file: file, into: &post)
            }
        default:
            throw TokenizerError(file: file, "\(key).type \"\(type)\" is not supported "
                                 + "(only ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing and Sequence)")
        }
    }

    /// Every id names one token and fits a dense numbering: below the count of vocabulary and added
    /// tokens (an added token may repeat its vocabulary entry's id), so a table by id stays the size of the file.
    private static func checkIDs(vocab: [String: Int], added: [AddedToken], file: String) throws {
        let limit = vocab.count + added.count
        var tokenOfID: [Int: String] = [:]
        tokenOfID.reserveCapacity(vocab.count)
        for (token, id) in vocab.sorted(by: { $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key) }) {
            guard id < limit else {
                throw TokenizerError(file: file, "model.vocab[\"\(token)\"] has id \(id), beyond the \(limit) tokens the file defines")
            }
            if let other = tokenOfID[id] {
                throw TokenizerError(file: file, "model.vocab: id \(id) is given to both \"\(other)\" and \"\(token)\"")
            }
            tokenOfID[id] = token
        }
        var addedIndexOfID: [Int: Int] = [:]
        for (i, t) in added.enumerated() {
            guard t.id >= 0 && t.id < limit else {
                throw TokenizerError(file: file, "added_tokens[\(i)] (\"\(t.content)\") has id \(t.id), outside 0..<\(limit) (the tokens the file defines)")
            }
            if let j = addedIndexOfID[t.id] {
                throw TokenizerError(file: file, "added_tokens[\(i)] (\"\(t.content)\") has id \(t.id), already the id of added_tokens[\(j)] (\"\(added[j].content)\")")
            }
            addedIndexOfID[t.id] = i
        }
    }

    static func int(_ value: Any?) -> Int? {
        if let i = value as? Int { return i }
        if let n = value as? NSNumber { return n.intValue }
        return nil
    }

    static func double(_ value: Any?) -> Double? {
        if let d = value as? Double { return d }
        if let n = value as? NSNumber { return n.doubleValue }
        return nil
    }

    static func bool(_ value: Any?) -> Bool? {
        if let b = value as? Bool { return b }
        if let n = value as? NSNumber { return n.boolValue }
        return nil
    }
}
