import Foundation

/// Trains a byte-level BPE tokenizer from text, Qwen2-style: NFC, the Qwen2 Split regex, ByteLevel,
/// and the special tokens `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`.
///
/// Ids 0…255 are the single bytes in byte order, then one id per new merged token in the order they
/// were learned, then the three special tokens. Each step merges the adjacent pair with the highest
/// count over the corpus's pre-tokens (ties: the pair with the smaller left id, then the smaller right
/// id), so training is deterministic. Pair counts are kept over unique pre-tokens with their counts and
/// updated incrementally, only in the words that contain the merged pair.
public enum TokenizerTrainer {
    /// The special tokens every trained tokenizer has, in id order after the learned tokens.
    public static let specialTokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

    /// Byte-level BPE trained on the corpus files (lines of text; for `.jsonl` files every string value
    /// of every line's JSON), with `vocabSize` ids in all (fewer if the corpus runs out of pairs).
    /// `<|endoftext|>` is the eos and pad token of the result; `<|im_end|>` ends ChatML turns.
    public static func train(corpusFiles: [String], vocabSize: Int) throws -> Tokenizer {
        try checkVocabSize(vocabSize)
        var texts: [String] = []
        for file in corpusFiles { texts.append(contentsOf: try readCorpus(file)) }
        return try train(texts: texts, vocabSize: vocabSize)
    }

    static func checkVocabSize(_ vocabSize: Int) throws {
        let minimum = 256 + specialTokens.count
        guard vocabSize >= minimum else {
            throw TokenizerError(file: "--vocab-size \(vocabSize)",
                                 "the vocabulary size must be at least \(minimum): 256 byte tokens and \(specialTokens.count) special tokens")
        }
    }

    /// The texts of one corpus file: the whole file for text, every string value for `.jsonl`.
    static func readCorpus(_ file: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw TokenizerError(file: file, "cannot read the corpus file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TokenizerError(file: file, "the corpus is not valid UTF-8")
        }
        guard file.hasSuffix(".jsonl") else { return [text] }
        var texts: [String] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.allSatisfy({ $0.isWhitespace }) { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) else {
                throw TokenizerError(file: file, "line \(n + 1) is not valid JSON")
            }
            collectStrings(object, into: &texts)
        }
        return texts
    }

    private static func collectStrings(_ value: Any, into texts: inout [String]) {
        if let s = value as? String {
            texts.append(s)
        } else if let list = value as? [Any] {
            for v in list { collectStrings(v, into: &texts) }
        } else if let object = value as? [String: Any] {
            for key in object.keys.sorted() { collectStrings(object[key]!, into: &texts) }
        }
    }

    /// Trains on in-memory texts.
    static func train(texts: [String], vocabSize: Int) throws -> Tokenizer {
        try checkVocabSize(vocabSize)
        let (words, counts) = uniqueWords(texts)
        var learner = BPELearner(words: words, counts: counts)
        learner.learn(upTo: vocabSize - specialTokens.count)
        let data = try tokenizerJSON(tokenBytes: learner.tokenBytes, merges: learner.merges)
        let tokenizer = try Tokenizer(json: data, file: "tokenizer.json")
        tokenizer.eosToken = "<|endoftext|>"
        tokenizer.padToken = "<|endoftext|>"
        return tokenizer
    }

    /// The texts' unique pre-tokens (bytes as symbol ids 0…255) with their counts, in order of
    /// first appearance; the special tokens are cut out of the texts first.
    private static func uniqueWords(_ texts: [String]) -> (words: [[Int32]], counts: [Int]) {
        let special = AddedVocabulary(specialTokens.enumerated().map {
            AddedToken(id: $0.offset, content: $0.element, special: true, singleWord: false, lstrip: false,
                       rstrip: false, normalized: false)
        }, normalize: { $0 })
        let preTokenizer = PreTokenizer(steps: [.split(.builtin(.qwen2(maxDigits: 1))),
                                                .byteLevel(addPrefixSpace: false, useRegex: false)])
        var wordIndex: [ByteKey: Int] = [:]
        var words: [[Int32]] = []
        var counts: [Int] = []
        for text in texts {
            for segment in special.splitRaw(text) {
                guard case .text(let raw) = segment else { continue }
                let (bytes, ranges) = preTokenizer.pieces(of: raw.precomposedStringWithCanonicalMapping)
                for r in ranges {
                    let key = ByteKey(bytes[r])
                    if let w = wordIndex[key] {
                        counts[w] += 1
                    } else {
                        wordIndex[ByteKey(ArraySlice(Array(bytes[r])))] = words.count
                        words.append(bytes[r].map { Int32($0) })
                        counts.append(1)
                    }
                }
            }
        }
        return (words, counts)
    }

    /// The merge loop's state: the tokens and merges learned so far, the words as symbol ids, the
    /// pair counts, the words each pair occurs in (may hold stale entries) and a heap of candidates.
    private struct BPELearner {
        var words: [[Int32]]
        let counts: [Int]
        var tokenBytes: [[UInt8]] = (0..<256).map { [UInt8($0)] }
        var idOfTokenBytes: [[UInt8]: Int32] = [:]
        var merges: [(Int32, Int32)] = []
        var pairCounts: [UInt64: Int] = [:]
        var wordsOfPair: [UInt64: [Int32]] = [:]
        var heap = MinHeap<PairCandidate>()

        init(words: [[Int32]], counts: [Int]) {
            self.words = words
            self.counts = counts
            for (i, b) in tokenBytes.enumerated() { idOfTokenBytes[b] = Int32(i) }
            for (w, symbols) in words.enumerated() where symbols.count > 1 {
                for i in 0..<(symbols.count - 1) {
                    let key = pairKey(symbols[i], symbols[i + 1])
                    pairCounts[key, default: 0] += counts[w]
                    if wordsOfPair[key]?.last != Int32(w) { wordsOfPair[key, default: []].append(Int32(w)) }
                }
            }
            for (key, count) in pairCounts { heap.push(PairCandidate(count: count, key: key)) }
        }

        /// Merges the most frequent pair until there are `limit` tokens or no pair is left.
        mutating func learn(upTo limit: Int) {
            while tokenBytes.count < limit, let top = heap.pop() {
                let current = pairCounts[top.key] ?? 0
                if current != top.count {
                    if current > 0 { heap.push(PairCandidate(count: current, key: top.key)) }
                    continue
                }
                guard current > 0 else { break }
                let left = Int32(top.key >> 32), right = Int32(top.key & 0xFFFF_FFFF)
                let merged = tokenBytes[Int(left)] + tokenBytes[Int(right)]
                let newID: Int32
                if let existing = idOfTokenBytes[merged] {
                    newID = existing
                } else {
                    newID = Int32(tokenBytes.count)
                    tokenBytes.append(merged)
                    idOfTokenBytes[merged] = newID
                }
                merges.append((left, right))
                var delta: [UInt64: Int] = [:]
                for w32 in wordsOfPair[top.key] ?? [] { rewrite(word: w32, left: left, right: right, as: newID, delta: &delta) }
                wordsOfPair[top.key] = nil
                for (key, d) in delta where d != 0 {
                    let value = (pairCounts[key] ?? 0) + d
                    if value > 0 { pairCounts[key] = value } else { pairCounts[key] = nil }
                    if d > 0 { heap.push(PairCandidate(count: value, key: key)) }
                }
            }
        }

        /// Replaces each (left, right) in word `w32` by `newID`, adding the change in pair counts
        /// to `delta` and the word to the lists of its new pairs.
        private mutating func rewrite(word w32: Int32, left: Int32, right: Int32, as newID: Int32, delta: inout [UInt64: Int]) {
            let w = Int(w32)
            let old = words[w]
            var new: [Int32] = []
            new.reserveCapacity(old.count)
            var i = 0, changed = false
            while i < old.count {
                if i + 1 < old.count && old[i] == left && old[i + 1] == right {
                    new.append(newID)
                    i += 2
                    changed = true
                } else {
                    new.append(old[i])
                    i += 1
                }
            }
            guard changed else { return }
            let c = counts[w]
            for k in 0..<(old.count - 1) { delta[pairKey(old[k], old[k + 1]), default: 0] -= c }
            if new.count > 1 {
                var lastAdded: UInt64? = nil
                for k in 0..<(new.count - 1) {
                    let key = pairKey(new[k], new[k + 1])
                    delta[key, default: 0] += c
                    if (new[k] == newID || new[k + 1] == newID) && lastAdded != key {
                        wordsOfPair[key, default: []].append(w32)
                        lastAdded = key
                    }
                }
            }
            words[w] = new
        }
    }

    @inline(__always)
    private static func pairKey(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    /// A heap entry: the highest count first, then the smallest (left, right) pair.
    private struct PairCandidate: Comparable {
        var count: Int
        var key: UInt64
        static func < (a: PairCandidate, b: PairCandidate) -> Bool {
            a.count != b.count ? a.count > b.count : a.key < b.key
        }
    }

    /// The tokenizer.json of a trained tokenizer, in the layout HF `tokenizers` writes.
    static func tokenizerJSON(tokenBytes: [[UInt8]], merges: [(Int32, Int32)]) throws -> Data {
        var vocab: [String: Int] = [:]
        for (id, bytes) in tokenBytes.enumerated() { vocab[ByteLevel.encode(bytes)] = id }
        let mergeList = merges.map { [ByteLevel.encode(tokenBytes[Int($0.0)]), ByteLevel.encode(tokenBytes[Int($0.1)])] }
        let added: [[String: Any]] = specialTokens.enumerated().map {
            ["id": tokenBytes.count + $0.offset, "content": $0.element, "single_word": false, "lstrip": false,
             "rstrip": false, "normalized": false, "special": true]
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false]
        let root: [String: Any] = [
            "version": "1.0",
            "truncation": NSNull(),
            "padding": NSNull(),
            "added_tokens": added,
            "normalizer": ["type": "NFC"],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": SplitPattern.qwen2Source], "behavior": "Isolated", "invert": false],
                byteLevel,
            ] as [Any]],
            "post_processor": byteLevel,
            "decoder": byteLevel,
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": mergeList,
            ] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
    }
}
