import Foundation
import Testing
@testable import CairnTrain

/// GGUF tokenizer metadata ↔ Hugging Face tokenizer files, against HF `tokenizers` with the original
/// tokenizer.json and against llama.cpp's convert_hf_to_gguf.py (fixtures made by
/// Fixtures/gguf/tokenizer/make_fixtures.py).
@Suite("GGUFTokenizer")
struct GGUFTokenizerTests {
    static let names = ["gpt2", "llama3", "qwen2", "smollm"]
    static let fixtures: URL = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/gguf/tokenizer")

    struct Expected: Decodable {
        struct PerTokenizer: Decodable {
            var pre: String
            var ids: [[Int]]
            var corpus_ids: [Int]
            var ids_with_special_tokens: [[Int]]
        }
        var lines: [String]
        var tokenizers: [String: PerTokenizer]
    }

    static let expected: Expected = {
        let data = try! Data(contentsOf: fixtures.appendingPathComponent("expected.json"))
        return try! JSONDecoder().decode(Expected.self, from: data)
    }()

    /// The tokenizer metadata of NAME's GGUF, as llama.cpp's converter wrote it.
    static func metadata(_ name: String) throws -> GGUFMetadata {
        try GGUFMetadataJSON.read(fixtures.appendingPathComponent("\(name).metadata.json"), file: "\(name).gguf")
    }

    static func converted(_ name: String) throws -> Tokenizer { try Tokenizer(gguf: try metadata(name)) }

    static func corpus() -> String { expected.lines.joined(separator: "\n") + "\n" }

    static func config(_ name: String) throws -> [String: Any] { try GGUFTokenizer.huggingFaceFiles(from: try metadata(name)).tokenizerConfig }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try GGUFTokenizer.huggingFaceFiles(from: try metadata(name)).tokenizerJSON
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    // MARK: GGUF → Hugging Face

    @Test(arguments: names)
    func convertedTokenizerGivesTheOriginalIds(name: String) throws {
        let expected = try #require(Self.expected.tokenizers[name])
        let tokenizer = try Self.converted(name)
        #expect(Self.expected.lines.count > 50)
        for (line, ids) in zip(Self.expected.lines, expected.ids) {
            #expect(tokenizer.encode(line) == ids, "\(name): \(line.debugDescription)")
        }
        #expect(tokenizer.encode(Self.corpus()) == expected.corpus_ids)
        for (line, ids) in zip(Self.expected.lines, expected.ids_with_special_tokens) {
            #expect(tokenizer.encode(line, addSpecialTokens: true) == ids, "\(name): \(line.debugDescription)")
        }
        #expect(tokenizer.addsBOS == (name == "llama3"))
        #expect(!tokenizer.addsEOS)

        // Written as files and read back, as the CLI does.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-gguf-tok-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try tokenizer.write(to: dir)
        let reread = try Tokenizer(directory: dir)
        for (line, ids) in zip(Self.expected.lines, expected.ids_with_special_tokens) {
            #expect(reread.encode(line, addSpecialTokens: true) == ids, "\(name): \(line.debugDescription)")
        }
        #expect(reread.eosTokenID == tokenizer.eosTokenID && reread.bosTokenID == tokenizer.bosTokenID)
    }

    @Test func convertedFilesDeclareTheOriginalPipelines() throws {
        func pre(_ name: String) throws -> [String: Any] { try #require(try Self.json(name)["pre_tokenizer"] as? [String: Any]) }
        func steps(_ name: String) throws -> [[String: Any]] { try #require(try pre(name)["pretokenizers"] as? [[String: Any]]) }

        // GPT-2: ByteLevel with its regex.
        #expect(try pre("gpt2")["type"] as? String == "ByteLevel")
        #expect(try pre("gpt2")["use_regex"] as? Bool == true && pre("gpt2")["add_prefix_space"] as? Bool == false)
        // Llama 3: Split(Llama-3 regex) + ByteLevel(use_regex false), ignore_merges, BOS by TemplateProcessing.
        #expect(try (steps("llama3")[0]["pattern"] as? [String: Any])?["Regex"] as? String == SplitPattern.llama3Source)
        #expect(try steps("llama3")[1]["use_regex"] as? Bool == false)
        #expect(try (Self.json("llama3")["model"] as? [String: Any])?["ignore_merges"] as? Bool == true)
        let post = try #require(try Self.json("llama3")["post_processor"] as? [String: Any])
        let processors = try #require(post["processors"] as? [[String: Any]])
        #expect(processors.map { $0["type"] as? String } == ["ByteLevel", "TemplateProcessing"])
        // Qwen2: NFC, Split(Qwen2 regex) + ByteLevel(use_regex false).
        #expect(try (Self.json("qwen2")["normalizer"] as? [String: Any])?["type"] as? String == "NFC")
        #expect(try (steps("qwen2")[0]["pattern"] as? [String: Any])?["Regex"] as? String == SplitPattern.qwen2Source)
        #expect(try (Self.json("qwen2")["model"] as? [String: Any])?["ignore_merges"] as? Bool == false)
        // SmolLM: Digits(individual_digits) + ByteLevel(use_regex true).
        #expect(try steps("smollm")[0]["type"] as? String == "Digits" && steps("smollm")[0]["individual_digits"] as? Bool == true)
        #expect(try steps("smollm")[1]["type"] as? String == "ByteLevel" && steps("smollm")[1]["use_regex"] as? Bool == true)
        for name in Self.names where name != "qwen2" { #expect(try Self.json(name)["normalizer"] is NSNull) }
    }

    @Test func convertedConfigNamesTheSpecialTokensAndKeepsTheChatTemplate() throws {
        let smollm = try Self.config("smollm")
        #expect(smollm["bos_token"] as? String == "<|im_start|>" && smollm["eos_token"] as? String == "<|im_end|>")
        #expect(smollm["pad_token"] as? String == "<|im_end|>" && smollm["unk_token"] as? String == "<|endoftext|>")
        #expect(smollm["add_bos_token"] as? Bool == false && smollm["tokenizer_class"] as? String == "PreTrainedTokenizerFast")
        let template = try Self.metadata("smollm")["tokenizer.chat_template"]?.string
        #expect(template != nil && smollm["chat_template"] as? String == template)
        let decoder = try #require(smollm["added_tokens_decoder"] as? [String: [String: Any]])
        #expect(decoder.keys.sorted() == ["0", "1", "2", "3", "4"])
        #expect(decoder["1"]?["content"] as? String == "<|im_start|>" && decoder["1"]?["special"] as? Bool == true)

        let qwen2 = try Self.config("qwen2")
        let qwenDecoder = try #require(qwen2["added_tokens_decoder"] as? [String: [String: Any]])
        let think = try #require(qwenDecoder.values.first { $0["content"] as? String == "<think>" })
        #expect(think["special"] as? Bool == false)  // user-defined: an added token, not special
        #expect(qwen2["bos_token"] as? String == "<|endoftext|>" && qwen2["unk_token"] is NSNull)
        #expect(qwen2["clean_up_tokenization_spaces"] as? Bool == false)
        let tokenizer = try Self.converted("qwen2")
        #expect(tokenizer.vocabSize == 503)  // [PADn] tokens keep the GGUF's vocabulary size
        #expect(tokenizer.encode("<think>x</think>").count == 3)
        #expect(tokenizer.hasChatTemplate)
        #expect(tokenizer.applyChatTemplate([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true)
                == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")

        let gpt2 = try Self.config("gpt2")
        #expect(gpt2["chat_template"] == nil && gpt2["add_bos_token"] as? Bool == false)
        #expect(try !Self.converted("gpt2").hasChatTemplate)
        #expect(try Self.config("llama3")["add_bos_token"] as? Bool == true)
        #expect(try Self.converted("llama3").encode("hi", addSpecialTokens: true).first == 0)
    }

    // MARK: Hugging Face → GGUF

    @Test(arguments: names)
    func roundTripGivesBackTheMetadata(name: String) throws {
        try Self.expectRoundTrip(try Self.metadata(name), try Self.converted(name), name: name)
    }

    /// metadata(for:) of the tokenizer converted from `original` gives back its tokens, types, merges,
    /// special ids, chat template and (effective) add_bos_token.
    static func expectRoundTrip(_ original: GGUFMetadata, _ converted: Tokenizer, name: String) throws {
        let exported = GGUFMetadata(file: "exported", entries: try GGUFTokenizer.metadata(for: converted))
        for key in ["model", "pre", "tokens", "token_type", "merges"].map({ "tokenizer.ggml.\($0)" }) + ["tokenizer.chat_template"] {
            #expect(exported[key] == original[key], "\(name): \(key)")
        }
        let idKeys = { (m: GGUFMetadata) in m.keys.filter { $0.hasSuffix("_token_id") } }
        #expect(Set(idKeys(exported)) == Set(idKeys(original)), "\(name)")
        for key in idKeys(original) { #expect(exported[key] == original[key], "\(name): \(key)") }
        // add_bos_token: the same value (where the file had none, llama.cpp's default for the pre).
        let pre = try original.string("tokenizer.ggml.pre")
        let addBOS = original["tokenizer.ggml.add_bos_token"]?.bool ?? (pre == "llama-bpe")
        #expect(exported["tokenizer.ggml.add_bos_token"] == .bool(addBOS), "\(name)")
        #expect(exported["tokenizer.ggml.add_eos_token"] == .bool(false), "\(name)")
    }

    @Test(arguments: names)
    func exportMatchesConvertHFToGGUFOnTheOriginalFiles(name: String) throws {
        // The original tokenizer directory the fixture GGUF was converted from by llama.cpp's converter.
        let dir = Self.fixtures.appendingPathComponent("original/\(name)").path
        let tokenizer = try Tokenizer(directory: dir)
        var want = try Self.metadata(name).entries
        var vocabularySize: Int? = nil
        if name == "qwen2" {
            // convert_hf_to_gguf.py reads config.json too: its vocab_size (past the tokenizer's, hence
            // [PADn] tokens) and bos_token_id (Qwen2's tokenizer_config.json has no bos_token).
            let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as? [String: Any]
            vocabularySize = config?["vocab_size"] as? Int
            want.removeAll { $0.key == "tokenizer.ggml.bos_token_id" }
        }
        let got = try GGUFTokenizer.metadata(for: tokenizer, vocabularySize: vocabularySize)
        #expect(got.map(\.key) == want.map(\.key), "\(name)")
        for (g, w) in zip(got, want) where g.key == w.key {
            #expect(g.value == w.value, "\(name): \(g.key)")
        }
    }

    @Test func trainedTokenizerExportsAsQwen2AndComesBack() throws {
        let text = Self.expected.lines.joined(separator: "\n")
        let trained = try TokenizerTrainer.train(texts: Array(repeating: text, count: 3), vocabSize: 400)
        let entries = try GGUFTokenizer.metadata(for: trained, vocabularySize: 410)
        let metadata = GGUFMetadata(file: "trained.gguf", entries: entries)
        #expect(try metadata.string("tokenizer.ggml.pre") == "qwen2")
        #expect(try metadata.strings("tokenizer.ggml.tokens").count == 410)
        #expect(try metadata.optionalInts("tokenizer.ggml.token_type")?.suffix(10) == Array(repeating: 5, count: 10))
        #expect(try metadata.strings("tokenizer.ggml.tokens").last == "[PAD409]")
        #expect(try metadata.string("tokenizer.chat_template") == Tokenizer.chatMLTemplate)
        let back = try Tokenizer(gguf: metadata)
        for line in Self.expected.lines + [text] { #expect(back.encode(line) == trained.encode(line), "\(line.debugDescription)") }
        #expect(back.eosTokenID == trained.eosTokenID && back.eosTokenID != nil)
        #expect(back.padTokenID == trained.padTokenID)
        #expect(back.vocabSize == 410)
        // Exported again: the same keys and values, plus the add_*_token flags the converted config declares.
        let again = try GGUFTokenizer.metadata(for: back)
        for (key, value) in entries { #expect(again.first { $0.key == key }?.value == value, "\(key)") }
        let extra = again.filter { e in !entries.contains { $0.key == e.key } }
        #expect(extra.map(\.key) == ["tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"])
        #expect(extra.allSatisfy { $0.value == .bool(false) })
    }

    @Test func exportRejectsPreTokenizersLlamaCppHasNoNameFor() throws {
        for name in ["gpt2_prefix", "digits"] {  // ByteLevel(add_prefix_space true); Digits(individual_digits false)
            let url = TokenizerTests.fixtures.appendingPathComponent(name + ".json")
            let tokenizer = try Tokenizer(json: try Data(contentsOf: url))
            do {
                _ = try GGUFTokenizer.metadata(for: tokenizer)
                Issue.record("\(name): expected an error")
            } catch let error as FormatError {
                #expect(error.name == "pre_tokenizer", "\(error)")
                #expect("\(error)".contains("ByteLevel(add_prefix_space"), "\(error)")
            }
        }
        let small = try TokenizerTests.load("qwen2")
        #expect(throws: FormatError.self) { try GGUFTokenizer.metadata(for: small, vocabularySize: 10) }
    }

    // MARK: Errors

    /// The FormatError converting `metadata` gives, or nil.
    static func conversionError(_ change: (inout GGUFMetadata) -> Void) throws -> FormatError? {
        var metadata = try Self.metadata("smollm")
        change(&metadata)
        do {
            _ = try GGUFTokenizer.huggingFaceFiles(from: metadata)
            return nil
        } catch let error as FormatError {
            return error
        }
    }

    @Test func unsupportedModelsAndPreTokenizersAreErrorsNamingKeyAndValue() throws {
        for model in ["llama", "bert", "t5"] {
            let error = try Self.conversionError { $0["tokenizer.ggml.model"] = .string(model) }
            #expect(error?.name == "tokenizer.ggml.model" && "\(error!)".contains("\"\(model)\""), "\(String(describing: error))")
        }
        let pre = try Self.conversionError { $0["tokenizer.ggml.pre"] = .string("deepseek-llm") }
        #expect(pre?.name == "tokenizer.ggml.pre" && "\(pre!)".contains("\"deepseek-llm\""), "\(String(describing: pre))")
        #expect("\(pre!)".contains("smollm.gguf"))
        let noPre = try Self.conversionError { $0["tokenizer.ggml.pre"] = nil }
        #expect(noPre?.name == "tokenizer.ggml.pre" && "\(noPre!)".contains("missing"), "\(String(describing: noPre))")
    }

    @Test func malformedMetadataIsAnErrorNamingTheKey() throws {
        let cases: [(String, String, (inout GGUFMetadata) -> Void)] = [
            ("tokenizer.ggml.tokens", "missing", { $0["tokenizer.ggml.tokens"] = nil }),
            ("tokenizer.ggml.tokens", "array of strings", { $0["tokenizer.ggml.tokens"] = .array(.int32, [.int32(1)]) }),
            ("tokenizer.ggml.tokens", "repeats token 17", {
                var tokens = $0["tokenizer.ggml.tokens"]!.strings!
                tokens[18] = tokens[17]
                $0["tokenizer.ggml.tokens"] = .array(.string, tokens.map { .string($0) })
            }),
            ("tokenizer.ggml.merges", "missing", { $0["tokenizer.ggml.merges"] = nil }),
            ("tokenizer.ggml.merges", "\"zzzq\"", {
                var merges = $0["tokenizer.ggml.merges"]!.array!
                merges[3] = .string("Ġ zzzq")
                $0["tokenizer.ggml.merges"] = .array(.string, merges)
            }),
            ("tokenizer.ggml.merges", "[0] \"nospace\" is not two tokens", {
                $0["tokenizer.ggml.merges"] = .array(.string, [.string("nospace")])
            }),
            ("tokenizer.ggml.token_type", "has 3 entries but tokenizer.ggml.tokens has", {
                $0["tokenizer.ggml.token_type"] = .array(.int32, [.int32(3), .int32(1), .int32(1)])
            }),
            ("tokenizer.ggml.eos_token_id", "past the", { $0["tokenizer.ggml.eos_token_id"] = .uint32(100_000) }),
            ("tokenizer.ggml.add_bos_token", "no tokenizer.ggml.bos_token_id", {
                $0["tokenizer.ggml.bos_token_id"] = nil
                $0["tokenizer.ggml.add_bos_token"] = .bool(true)
            }),
            ("tokenizer.ggml.add_bos_token", "expected a bool", { $0["tokenizer.ggml.add_bos_token"] = .uint8(1) }),
        ]
        for (key, text, change) in cases {
            let error = try Self.conversionError(change)
            #expect(error?.name == key, "\(key): \(String(describing: error))")
            #expect(error.map { "\($0)".contains(text) } == true, "\(key): \(String(describing: error))")
        }
    }

    // MARK: Files for the Hugging Face check

    /// With CAIRN_GGUF_TOKENIZER_CHECK_DIR=DIR: writes DIR/NAME/{tokenizer.json, tokenizer_config.json,
    /// cairn_ids.json} for every fixture, and for DIR/smollm2.metadata.json when make_fixtures.py
    /// --smollm2-metadata DIR wrote it, for `make_fixtures.py --check-cairn DIR` and `--smollm2-expected DIR`;
    /// checks the round trip of each on the way.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CAIRN_GGUF_TOKENIZER_CHECK_DIR"] != nil))
    func writeConvertedFilesForTheHuggingFaceCheck() throws {
        let dir = try #require(ProcessInfo.processInfo.environment["CAIRN_GGUF_TOKENIZER_CHECK_DIR"])
        var sources = Self.names.map { (name: $0, url: Self.fixtures.appendingPathComponent("\($0).metadata.json")) }
        let smollm2 = URL(fileURLWithPath: dir).appendingPathComponent("smollm2.metadata.json")
        if FileManager.default.fileExists(atPath: smollm2.path) { sources.append((name: "smollm2", url: smollm2)) }
        for (name, url) in sources {
            let metadata = try GGUFMetadataJSON.read(url, file: "\(name).gguf")
            let tokenizer = try Tokenizer(gguf: metadata)
            try Self.expectRoundTrip(metadata, tokenizer, name: name)
            let out = dir + "/" + name
            try tokenizer.write(to: out)
            let texts = try JSONDecoder().decode(GGUFMetadataJSON.File.self, from: Data(contentsOf: url)).lines ?? Self.expected.lines
            let ids: [String: Any] = [
                "texts": texts, "ids": texts.map { tokenizer.encode($0) },
                "ids_with_special_tokens": texts.map { tokenizer.encode($0, addSpecialTokens: true) },
            ]
            try JSONSerialization.data(withJSONObject: ids).write(to: URL(fileURLWithPath: out + "/cairn_ids.json"))
        }
    }
}

/// GGUF metadata stored as JSON by the fixture scripts: {"entries": [{"key", "type", "value"} or
/// {"key", "type": "array", "element_type", "value"}]}, types named as gguf-py's GGUFValueType in lower case.
/// Read with JSONDecoder: swift-corelibs-foundation's JSONSerialization drops a U+FEFF that follows an
/// escape sequence ("\t\u{FEFF}"), which one of the corpus lines has.
enum GGUFMetadataJSON {
    indirect enum Value: Decodable {
        case string(String), bool(Bool), int(Int64), uint(UInt64), double(Double), array([Value])

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let v = try? c.decode(String.self) { self = .string(v) }
            else if let v = try? c.decode(Bool.self) { self = .bool(v) }
            else if let v = try? c.decode(Int64.self) { self = .int(v) }
            else if let v = try? c.decode(UInt64.self) { self = .uint(v) }
            else if let v = try? c.decode(Double.self) { self = .double(v) }
            else { self = .array(try c.decode([Value].self)) }
        }
    }

    struct Entry: Decodable {
        var key: String
        var type: String
        var element_type: String?
        var value: Value
    }

    struct File: Decodable {
        var entries: [Entry]
        /// Texts to encode (SmolLM2's corpus, written by make_fixtures.py --smollm2-metadata).
        var lines: [String]?
    }

    static func read(_ url: URL, file: String) throws -> GGUFMetadata {
        let decoded = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        var list: [(key: String, value: GGUFValue)] = []
        for entry in decoded.entries {
            if entry.type == "array" {
                let elementType = try #require(entry.element_type)
                guard case .array(let values) = entry.value else { throw FormatError(file: file, key: entry.key, "is not an array") }
                list.append((entry.key, .array(try valueType(elementType), try values.map { try value($0, type: elementType) })))
            } else {
                list.append((entry.key, try value(entry.value, type: entry.type)))
            }
        }
        return GGUFMetadata(file: file, entries: list)
    }

    static func valueType(_ name: String) throws -> GGUFValueType {
        let all: [GGUFValueType] = [.uint8, .int8, .uint16, .int16, .uint32, .int32, .float32, .bool, .string, .array,
                                    .uint64, .int64, .float64]
        return try #require(all.first { $0.description == name }, "unknown GGUF type \(name)")
    }

    static func value(_ v: Value, type: String) throws -> GGUFValue {
        switch (type, v) {
        case ("string", .string(let s)): return .string(s)
        case ("bool", .bool(let b)): return .bool(b)
        case ("float32", .double(let d)): return .float32(Float(d))
        case ("float32", .int(let i)): return .float32(Float(i))
        case ("float64", .double(let d)): return .float64(d)
        case ("float64", .int(let i)): return .float64(Double(i))
        case (_, .int(let i)):
            switch type {
            case "uint8": if let x = UInt8(exactly: i) { return .uint8(x) }
            case "int8": if let x = Int8(exactly: i) { return .int8(x) }
            case "uint16": if let x = UInt16(exactly: i) { return .uint16(x) }
            case "int16": if let x = Int16(exactly: i) { return .int16(x) }
            case "uint32": if let x = UInt32(exactly: i) { return .uint32(x) }
            case "int32": if let x = Int32(exactly: i) { return .int32(x) }
            case "uint64": if let x = UInt64(exactly: i) { return .uint64(x) }
            case "int64": return .int64(i)
            default: break
            }
        case ("uint64", .uint(let u)): return .uint64(u)
        default: break
        }
        throw FormatError(file: "metadata JSON", "\(v) is not a GGUF \(type)")
    }
}
