import Foundation
import Testing
@testable import CairnTrain

/// Golden tests against HF `tokenizers` (fixtures made by Fixtures/tokenizer/make_fixtures.py).
@Suite("Tokenizer")
struct TokenizerTests {
    static let fixtureNames = ["qwen2", "llama3", "gpt2", "gpt2_prefix", "nfc", "digits", "digits_individual"]

    static let fixtures: URL = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/tokenizer")

    struct Expected: Decodable {
        struct PerTokenizer: Decodable {
            var ids: [[Int]]
            var decoded: [String]
            var decoded_skip_special: [String]
            var corpus_ids: [Int]
            /// add_special_tokens=True, where it differs from `ids`.
            var ids_with_special_tokens: [[Int]]?
        }
        struct InvalidUTF8: Decodable {
            var bytes: [UInt8]
            var ids: [Int]
            var text: String
        }
        struct Chat: Decodable {
            var messages: [ChatMessage]
            var template: String
            var with_generation_prompt: String
            var without_generation_prompt: String
        }
        var lines: [String]
        var tokenizers: [String: PerTokenizer]
        var invalid_utf8: [InvalidUTF8]
        var chat: Chat
    }

    static let expected: Expected = {
        let data = try! Data(contentsOf: fixtures.appendingPathComponent("expected.json"))
        return try! JSONDecoder().decode(Expected.self, from: data)
    }()

    static func load(_ name: String, builtinPatterns: Bool = true) throws -> Tokenizer {
        let url = fixtures.appendingPathComponent(name + ".json")
        return try Tokenizer(json: try Data(contentsOf: url), file: url.path, useBuiltinPatterns: builtinPatterns)
    }

    /// Extra strings for the pre-tokenizer checks: regex corner cases beyond the corpus.
    static let trickyStrings = [
        "a  b   c    d\n", "  \n\n  x", "\r\n\r\n", "x\r\ny", " \t\n \t", "'S 'RE 'Ve 'lL 'ſ 'x", "a'b'c", "'",
        "12345678 x1y22z333", "Ⅻ½²٣", "\u{85}b \u{2028} \u{a0}x\u{3000}y", "!!!\n\n", " !!\r\n", "x\u{301}y",
        "🙂🙂 🙂\n", "   ", " ", "\n", "\t\tx", "a\u{200B}b", "(?i) \\s \\p{L}",
    ]

    // MARK: Golden ids

    @Test(arguments: fixtureNames)
    func idsMatchHuggingFaceForEveryCorpusLine(name: String) throws {
        let tokenizer = try Self.load(name)
        let expected = try #require(Self.expected.tokenizers[name])
        #expect(Self.expected.lines.count > 30)
        for (line, ids) in zip(Self.expected.lines, expected.ids) {
            #expect(tokenizer.encode(line) == ids, "\(name): \(line.debugDescription)")
        }
    }

    @Test(arguments: fixtureNames)
    func idsMatchHuggingFaceForTheWholeCorpusFile(name: String) throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("corpus.txt"))
        let text = String(decoding: data, as: UTF8.self)
        #expect(Array(text.utf8) == Array((Self.expected.lines.joined(separator: "\n") + "\n").utf8))
        #expect(text.utf8.count == data.count)
        #expect(text.contains("\r\n") && text.unicodeScalars.contains("\u{301}") && text.contains("<|im_start|>"))
        let tokenizer = try Self.load(name)
        let expected = try #require(Self.expected.tokenizers[name])
        #expect(tokenizer.encode(text) == expected.corpus_ids)
    }

    @Test(arguments: fixtureNames)
    func swiftRegexPathAlsoMatchesHuggingFace(name: String) throws {
        // The same tokenizer with its Split pattern run by Swift's Regex instead of the hand-written matcher.
        let tokenizer = try Self.load(name, builtinPatterns: false)
        let expected = try #require(Self.expected.tokenizers[name])
        for (line, ids) in zip(Self.expected.lines, expected.ids) {
            #expect(tokenizer.encode(line) == ids, "\(name): \(line.debugDescription)")
        }
    }

    @Test(arguments: [SplitPattern.gpt2Source, SplitPattern.qwen2Source, SplitPattern.llama3Source])
    func handWrittenMatcherAgreesWithSwiftRegex(pattern: String) throws {
        let builtin = try SplitPattern.compile(pattern)
        let regex = try SplitPattern.compile(pattern, useBuiltin: false)
        guard case .builtin = builtin, case .regex = regex else {
            Issue.record("pattern not recognised")
            return
        }
        for text in Self.expected.lines + Self.trickyStrings {
            let bytes = Array(text.utf8)
            var a: [Range<Int>] = [], b: [Range<Int>] = []
            builtin.split(bytes, 0..<bytes.count, into: &a)
            regex.split(bytes, 0..<bytes.count, into: &b)
            #expect(a == b, "\(text.debugDescription)")
            #expect(a.map(\.count).reduce(0, +) == bytes.count)
        }
    }

    @Test func qwen2PatternSplitsLikeOniguruma() throws {
        // Pieces HF's Split(Qwen2 regex, Isolated) gives (checked with tokenizers 0.23).
        let tokenizer = try Self.load("qwen2")
        #expect(tokenizer.preTokens("x'ſ a'K") == ["x", "'ſ", " a", "'K"])
        #expect(tokenizer.preTokens("a\u{85}b \u{2028} \u{a0}x") == ["a", "\u{85}b", " \u{2028} ", "\u{a0}x"])
        #expect(tokenizer.preTokens("hi  there\n\n  ok 12") == ["hi", " ", " there", "\n\n", " ", " ok", " ", "1", "2"])
        let llama = try Self.load("llama3")
        #expect(llama.preTokens("1234567") == ["123", "456", "7"])
    }

    @Test(arguments: fixtureNames)
    func addSpecialTokensFollowsThePostProcessorAsHuggingFaceDoes(name: String) throws {
        let tokenizer = try Self.load(name)
        let expected = try #require(Self.expected.tokenizers[name])
        let withSpecial = expected.ids_with_special_tokens ?? expected.ids
        for (line, ids) in zip(Self.expected.lines, withSpecial) {
            #expect(tokenizer.encode(line, addSpecialTokens: true) == ids, "\(name): \(line.debugDescription)")
        }
        // Only "digits" has a post-processor that adds a token (<|endoftext|> after the text).
        #expect(tokenizer.addsEOS == (name == "digits"))
        #expect(!tokenizer.addsBOS)
    }

    @Test func digitsSplitsLikeHuggingFace() throws {
        // Pieces HF's Sequence[Digits, ByteLevel(use_regex true)] gives (tokenizers 0.23), as raw text.
        let contiguous = try Self.load("digits"), individual = try Self.load("digits_individual")
        #expect(contiguous.preTokens("a12 345b") == ["a", "12", " ", "345", "b"])
        #expect(contiguous.preTokens("x \u{663}\u{664}½Ⅻ²y") == ["x", " ", "\u{663}\u{664}½Ⅻ²", "y"])
        #expect(contiguous.preTokens(" 2024-06") == [" ", "2024", "-", "06"])
        #expect(individual.preTokens("a12 345b") == ["a", "1", "2", " ", "3", "4", "5", "b"])
        #expect(individual.preTokens("x \u{663}\u{664}½Ⅻ²y") == ["x", " ", "\u{663}", "\u{664}", "½", "Ⅻ", "²", "y"])
        #expect(individual.preTokens(" 2024-06") == [" ", "2", "0", "2", "4", "-", "0", "6"])
    }

    @Test func configFlagsOverrideThePostProcessorAsTransformersDoes() throws {
        // transformers 5 rebuilds the post-processor when tokenizer_config.json has add_bos_token or
        // add_eos_token; otherwise tokenizer.json's post_processor decides.
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("digits.json"))
        let plain = try Tokenizer(json: data, config: ["eos_token": "<|im_end|>", "bos_token": "<|im_start|>"])
        #expect(plain.addsEOS && !plain.addsBOS)
        #expect(plain.encode("a1", addSpecialTokens: true) == plain.encode("a1") + [0])
        let bos = try Tokenizer(json: data, config: ["bos_token": "<|im_start|>", "add_bos_token": true])
        #expect(bos.addsBOS && !bos.addsEOS)
        #expect(bos.encode("a1", addSpecialTokens: true) == [1] + bos.encode("a1"))
        let noBOSToken = try Tokenizer(json: data, config: ["add_bos_token": true, "add_eos_token": NSNull()])
        #expect(!noBOSToken.addsBOS && !noBOSToken.addsEOS)
        #expect(throws: TokenizerError.self) { try Tokenizer(json: data, config: ["add_bos_token": "yes"]) }
    }

    // MARK: Decoding

    @Test(arguments: fixtureNames)
    func decodeMatchesHuggingFace(name: String) throws {
        let tokenizer = try Self.load(name)
        let expected = try #require(Self.expected.tokenizers[name])
        for i in expected.ids.indices {
            #expect(tokenizer.decode(expected.ids[i]) == expected.decoded[i], "\(name) line \(i)")
            #expect(tokenizer.decode(expected.ids[i], skipSpecialTokens: true) == expected.decoded_skip_special[i],
                    "\(name) line \(i)")
        }
    }

    @Test(arguments: fixtureNames)
    func decodeInvertsEncode(name: String) throws {
        let tokenizer = try Self.load(name)
        for line in Self.expected.lines + Self.trickyStrings {
            var want = name == "nfc" ? line.precomposedStringWithCanonicalMapping : line
            if name == "gpt2_prefix" {
                continue  // adds a space before every stretch of text; checked against HF above
            }
            if name == "gpt2" {
                want = want.replacingOccurrences(of: " <mask>", with: "<mask>")  // lstrip eats the space
            }
            let decoded = tokenizer.decode(tokenizer.encode(line))
            // Compare scalars: String == would hide composed/decomposed differences.
            #expect(Array(decoded.unicodeScalars) == Array(want.unicodeScalars), "\(name): \(line.debugDescription)")
        }
    }

    @Test func invalidUTF8DecodesToReplacementCharactersAsHuggingFaceDoes() throws {
        let tokenizer = try Self.load("qwen2")
        for c in Self.expected.invalid_utf8 {
            #expect(tokenizer.decode(c.ids) == c.text, "\(c.bytes)")
        }
        #expect(Self.expected.invalid_utf8.contains { $0.text.contains("\u{FFFD}") })
    }

    // MARK: Added and special tokens

    @Test func specialTokensAreMatchedBeforeThePreTokenizer() throws {
        let tokenizer = try Self.load("qwen2")
        let start = try #require(tokenizer.id(of: "<|im_start|>"))
        let end = try #require(tokenizer.id(of: "<|im_end|>"))
        let ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>")
        #expect(ids.first == start)
        #expect(ids.last == end)
        #expect(ids.filter { $0 == start || $0 == end }.count == 2)
        #expect(tokenizer.isSpecial(start) && tokenizer.isSpecial(end))
        #expect(tokenizer.decode(ids) == "<|im_start|>user\nhi<|im_end|>")
        #expect(tokenizer.decode(ids, skipSpecialTokens: true) == "user\nhi")
        // A broken special token is ordinary text.
        #expect(!tokenizer.encode("<|im_star|>").contains(start))
    }

    @Test func addedTokenFlagsFollowHuggingFace() throws {
        let tokenizer = try Self.load("gpt2")
        let mask = try #require(tokenizer.id(of: "<mask>"))
        let note = try #require(tokenizer.id(of: "[[note]]"))
        // lstrip: the space before <mask> belongs to the token.
        #expect(tokenizer.encode("a <mask>") == tokenizer.encode("a") + [mask])
        // single_word: matched only between non-word characters.
        #expect(tokenizer.encode("x [[note]] y").contains(note))
        #expect(!tokenizer.encode("x[[note]]y").contains(note))
        // A non-special added token survives skipSpecialTokens; a special one does not.
        #expect(tokenizer.decode([note, mask], skipSpecialTokens: true) == "[[note]]")
    }

    @Test func ignoreMergesKeepsAWholeWordThatIsInTheVocabulary() throws {
        let url = Self.fixtures.appendingPathComponent("llama3.json")
        let data = try Data(contentsOf: url)
        let withFlag = try Tokenizer(json: data)
        let zebra = try #require(withFlag.id(of: "Ġzebra"))
        #expect(withFlag.encode(" zebra") == [zebra])
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var model = try #require(object["model"] as? [String: Any])
        model["ignore_merges"] = false
        object["model"] = model
        let withoutFlag = try Tokenizer(json: try JSONSerialization.data(withJSONObject: object))
        #expect(withoutFlag.encode(" zebra").count > 1)
        #expect(withoutFlag.decode(withoutFlag.encode(" zebra")) == " zebra")
    }

    @Test func heapAndScanningMergeLoopsAgree() throws {
        let tokenizer = try Self.load("qwen2")
        let model = tokenizer.json.model
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("the quick brown fox eerr ünï 東京 🙂 aaaa".utf8)
        for length in [1, 2, 3, 7, 30, 100, 400] {
            for _ in 0..<20 {
                let bytes = (0..<length).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }
                let symbols = bytes.map { model.idOfByte[Int($0)] }
                #expect(model.mergeWithHeap(symbols) == model.mergeByScanning(symbols), "\(bytes)")
            }
        }
        // Long words take the heap path inside encode and still round-trip.
        let long = String(repeating: "東京", count: 300)
        #expect(tokenizer.decode(tokenizer.encode(long)) == long)
    }

    @Test func vocabularyLookups() throws {
        let tokenizer = try Self.load("qwen2")
        let space = try #require(tokenizer.id(of: "Ġ"))
        #expect(tokenizer.token(of: space) == "Ġ")
        #expect(tokenizer.encode(" ") == [space])
        #expect(tokenizer.id(of: "<|endoftext|>") == 0)
        #expect(tokenizer.token(of: -1) == nil)
        #expect(tokenizer.token(of: tokenizer.vocabSize) == nil)
        #expect(tokenizer.token(of: tokenizer.vocabSize - 1) != nil)
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("qwen2.json")))
        let vocab = try #require(((object as? [String: Any])?["model"] as? [String: Any])?["vocab"] as? [String: Int])
        #expect(tokenizer.vocabSize == vocab.values.max()! + 1)
        #expect(tokenizer.id(of: "Ġthe") == vocab["Ġthe"])
        #expect(tokenizer.eosTokenID == nil)  // no tokenizer_config.json
    }

    // MARK: Chat template

    @Test func chatMLMatchesTransformersApplyChatTemplate() throws {
        let tokenizer = try Self.load("qwen2")
        let chat = Self.expected.chat
        #expect(chat.messages.count == 3)
        #expect(chat.template == Tokenizer.chatMLTemplate)
        #expect(tokenizer.applyChatTemplate(chat.messages, addGenerationPrompt: true) == chat.with_generation_prompt)
        #expect(tokenizer.applyChatTemplate(chat.messages, addGenerationPrompt: false) == chat.without_generation_prompt)
        let ids = tokenizer.encode(chat.with_generation_prompt)
        #expect(ids.filter { $0 == tokenizer.id(of: "<|im_start|>") }.count == 4)
        #expect(tokenizer.decode(ids) == chat.with_generation_prompt)
    }

    // MARK: Errors

    static func mutatedQwen2(_ change: (inout [String: Any]) -> Void) throws -> Data {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("qwen2.json"))
        var object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        change(&object)
        return try JSONSerialization.data(withJSONObject: object)
    }

    static func error(_ data: Data) -> String? {
        do {
            _ = try Tokenizer(json: data)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func badTokenizerFilesGiveErrorsNamingTheKey() throws {
        let missing = Self.error(try Self.mutatedQwen2 { $0["model"] = nil })
        #expect(missing?.contains("missing key \"model\"") == true, "\(missing ?? "no error")")
        let unigram = Self.error(try Self.mutatedQwen2 {
            var model = $0["model"] as! [String: Any]
            model["type"] = "Unigram"
            $0["model"] = model
        })
        #expect(unigram?.contains("model.type \"Unigram\"") == true, "\(unigram ?? "no error")")
        let normalizer = Self.error(try Self.mutatedQwen2 {
            $0["normalizer"] = ["type": "Sequence", "normalizers": [["type": "NFC"], ["type": "Lowercase"]]]
        })
        #expect(normalizer?.contains("normalizer.normalizers[1].type \"Lowercase\"") == true, "\(normalizer ?? "no error")")
        let metaspace = Self.error(try Self.mutatedQwen2 { $0["pre_tokenizer"] = ["type": "Metaspace"] })
        #expect(metaspace?.contains("pre_tokenizer.type \"Metaspace\"") == true, "\(metaspace ?? "no error")")
        let post = Self.error(try Self.mutatedQwen2 {
            $0["post_processor"] = ["type": "Sequence", "processors": [["type": "ByteLevel"], ["type": "Weird"]]]
        })
        #expect(post?.contains("post_processor.processors[1].type \"Weird\"") == true, "\(post ?? "no error")")
        let template = Self.error(try Self.mutatedQwen2 {
            $0["post_processor"] = ["type": "TemplateProcessing", "single": [["SpecialToken": ["id": "<s>", "type_id": 0]]],
                                    "special_tokens": [:] as [String: Any]]
        })
        #expect(template?.contains("post_processor.special_tokens has no ids for \"<s>\"") == true, "\(template ?? "no error")")
        let merge = Self.error(try Self.mutatedQwen2 {
            var model = $0["model"] as! [String: Any]
            model["merges"] = [["e", "r"], ["q", "zzz"]]
            $0["model"] = model
        })
        #expect(merge?.contains("model.merges[1]") == true && merge?.contains("zzz") == true, "\(merge ?? "no error")")
        #expect(Self.error(Data("[1]".utf8))?.contains("not a JSON object") == true)
        #expect(Self.error(Data("{".utf8))?.contains("not valid JSON") == true)
    }

    @Test func directoryErrorsNameTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-tok-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: TokenizerError.self) { try Tokenizer(directory: dir) }
        do {
            _ = try Tokenizer(directory: dir)
        } catch {
            #expect("\(error)".contains("\(dir)/tokenizer.json"))
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.fixtures.appendingPathComponent("qwen2.json").path,
                                         toPath: dir + "/tokenizer.json")
        try Data(#"{"eos_token": "<|nope|>"}"#.utf8).write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
        do {
            _ = try Tokenizer(directory: dir)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("tokenizer_config.json") && "\(error)".contains("eos_token \"<|nope|>\""))
        }
        try Data(#"{"eos_token": {"content": "<|im_end|>", "__type": "AddedToken"}, "pad_token": "<|endoftext|>", "chat_template": "x"}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
        let tokenizer = try Tokenizer(directory: dir)
        #expect(tokenizer.eosTokenID == tokenizer.id(of: "<|im_end|>"))
        #expect(tokenizer.padTokenID == 0)
        #expect(tokenizer.bosTokenID == nil)
        #expect(tokenizer.hasChatTemplate)
    }

    // MARK: Training

    /// About `lines` lines of made-up words from a fixed seed, with accents, CJK, emoji, digits and chat turns.
    static func trainingCorpus(lines: Int = 400) -> String {
        let syllables = ["al", "pha", "be", "ta", "ga", "ma", "del", "ca", "fé", "na", "ïve", "東", "京", "ro", "ti",
                         "on", "er", "st", "qu", "x", "y", "z"]
        let extras = ["🙂", "don't", "we'll", "3.14", "12345", "\t", "  ", "(a)", "x+y=z;"]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        var text = ""
        for i in 0..<lines {
            var words: [String] = []
            for _ in 0..<(3 + next(8)) {
                words.append(next(6) == 0 ? extras[next(extras.count)] : (0..<(1 + next(3))).map { _ in syllables[next(syllables.count)] }.joined())
            }
            text += words.joined(separator: " ") + (i % 9 == 0 ? "\n\n" : "\n")
            if i % 13 == 0 { text += "<|im_start|>user\nhi<|im_end|>\n" }
        }
        return text
    }

    @Test func trainedTokenizerRoundTripsAndReloads() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-tok-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let corpus = dir + "/corpus.txt", jsonl = dir + "/chat.jsonl"
        try Self.trainingCorpus().write(toFile: corpus, atomically: true, encoding: .utf8)
        let line = #"{"messages": [{"role": "user", "content": "zyzzyva zyzzyva zyzzyva"}], "n": 3}"#
        try String(repeating: line + "\n", count: 60).write(toFile: jsonl, atomically: true, encoding: .utf8)
        let tokenizer = try TokenizerTrainer.train(corpusFiles: [corpus, jsonl], vocabSize: 400)
        #expect(tokenizer.vocabSize == 400)
        #expect(tokenizer.id(of: "<|endoftext|>") == 397)
        #expect(tokenizer.id(of: "<|im_end|>") == 399)
        #expect(tokenizer.eosTokenID == 397 && tokenizer.padTokenID == 397 && tokenizer.bosTokenID == nil)
        #expect(tokenizer.id(of: "al") != nil)
        #expect(tokenizer.id(of: "Ġzyzzyva") != nil)  // learned from the .jsonl's string values
        let sample = "alpha beta\n\n café cafe\u{301} 東京🙂 <|im_start|>user\nhi<|im_end|> 3.14"
        let ids = tokenizer.encode(sample)
        #expect(ids.count < sample.utf8.count / 2)
        #expect(tokenizer.decode(ids) == sample.precomposedStringWithCanonicalMapping)
        #expect(ids.contains(399))

        // Deterministic: training again gives the same file.
        let again = try TokenizerTrainer.train(corpusFiles: [corpus, jsonl], vocabSize: 400)
        #expect(again.jsonData == tokenizer.jsonData)

        // Written files load back (tokenizer_config.json included) with the same ids.
        let out = dir + "/tok"
        try tokenizer.write(to: out)
        let reloaded = try Tokenizer(directory: out)
        #expect(reloaded.hasChatTemplate)
        #expect(reloaded.eosTokenID == 397)
        let texts = Self.expected.lines + Self.trickyStrings + [sample]
        for text in texts { #expect(reloaded.encode(text) == tokenizer.encode(text)) }

        // Keep it for `make_fixtures.py --check-cairn DIR` when asked.
        if let keep = ProcessInfo.processInfo.environment["CAIRN_TOKENIZER_CHECK_DIR"] {
            let big = try TokenizerTrainer.train(corpusFiles: [corpus, jsonl, Self.fixtures.appendingPathComponent("corpus.txt").path],
                                                 vocabSize: 600)
            try big.write(to: keep)
            let checkTexts = texts + [Self.trainingCorpus()]
            let chat = Self.expected.chat.messages
            let object: [String: Any] = [
                "texts": checkTexts, "ids": checkTexts.map { big.encode($0) }, "decoded": checkTexts.map { big.decode(big.encode($0)) },
                "chat": ["messages": chat.map { ["role": $0.role, "content": $0.content] },
                         "rendered": big.applyChatTemplate(chat, addGenerationPrompt: true)],
            ]
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: keep + "/cairn_ids.json"))
        }
    }

    @Test func trainingRejectsTooSmallAVocabularyAndUnreadableCorpora() throws {
        do {
            _ = try TokenizerTrainer.train(corpusFiles: [], vocabSize: 258)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("at least 259"))
        }
        do {
            _ = try TokenizerTrainer.train(corpusFiles: ["/nonexistent/corpus.txt"], vocabSize: 300)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("/nonexistent/corpus.txt"))
        }
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-tok-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: bad) }
        try "{\"a\": \"b\"}\n{oops\n".write(toFile: bad, atomically: true, encoding: .utf8)
        do {
            _ = try TokenizerTrainer.train(corpusFiles: [bad], vocabSize: 300)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains(bad) && "\(error)".contains("line 2"))
        }
    }

    @Test func trainingStopsWhenTheCorpusRunsOutOfPairs() throws {
        let tokenizer = try TokenizerTrainer.train(texts: ["ab ab ab"], vocabSize: 1000)
        // "ab", "Ġa"... a handful of merges, then the three special tokens right after them.
        #expect(tokenizer.vocabSize < 270)
        #expect(tokenizer.id(of: "<|im_end|>") == tokenizer.vocabSize - 1)
        #expect(tokenizer.encode("ab ab") == [try #require(tokenizer.id(of: "ab")), try #require(tokenizer.id(of: "Ġab"))])
    }
}
