/// A token of `added_tokens`: matched in the text before pre-tokenization, never split.
struct AddedToken: Equatable {
    var id: Int
    var content: String
    var special: Bool
    var singleWord: Bool
    var lstrip: Bool
    var rstrip: Bool
    /// Matched against the normalized text (true) or the raw text (false, as special tokens are).
    var normalized: Bool
}

/// A piece of input text after added tokens are taken out: an added token's id, or text for the model.
enum Segment: Equatable {
    case token(Int)
    case text(String)
}

/// The `added_tokens` of a tokenizer and the matcher that finds them, as HF's `AddedVocabulary` does:
/// leftmost-longest non-overlapping matches, honouring `single_word`, `lstrip` and `rstrip`.
struct AddedVocabulary {
    let tokens: [AddedToken]
    /// For one matching pass: tokens by first byte, longest first.
    private struct Matcher {
        var byFirstByte: [[(bytes: [UInt8], token: AddedToken)]] = Array(repeating: [], count: 256)
        var isEmpty = true
        init(_ tokens: [(bytes: [UInt8], token: AddedToken)]) {
            for t in tokens.sorted(by: { $0.bytes.count > $1.bytes.count }) where !t.bytes.isEmpty {
                byFirstByte[Int(t.bytes[0])].append(t)
                isEmpty = false
            }
        }
    }
    private let raw: Matcher
    private let normalizedMatcher: Matcher

    /// `normalize` is applied to the content of tokens matched on normalized text.
    init(_ tokens: [AddedToken], normalize: (String) -> String) {
        self.tokens = tokens
        raw = Matcher(tokens.filter { !$0.normalized }.map { (Array($0.content.utf8), $0) })
        normalizedMatcher = Matcher(tokens.filter { $0.normalized }.map { (Array(normalize($0.content).utf8), $0) })
    }

    /// Splits raw text on the tokens matched before normalization.
    func splitRaw(_ text: String) -> [Segment] { split(text, raw) }
    /// Splits normalized text on the tokens matched after normalization.
    func splitNormalized(_ text: String) -> [Segment] { split(text, normalizedMatcher) }

    private func split(_ text: String, _ matcher: Matcher) -> [Segment] {
        if matcher.isEmpty { return text.isEmpty ? [] : [.text(text)] }
        let bytes = Array(text.utf8)
        var segments: [Segment] = []
        var emitted = 0      // bytes before this are in segments
        var i = 0
        func emitText(upTo end: Int) {
            if end > emitted { segments.append(.text(String(decoding: bytes[emitted..<end], as: UTF8.self))) }
        }
        while i < bytes.count {
            var found: (bytes: [UInt8], token: AddedToken)? = nil
            for candidate in matcher.byFirstByte[Int(bytes[i])] where i + candidate.bytes.count <= bytes.count {
                if bytes[i..<(i + candidate.bytes.count)].elementsEqual(candidate.bytes) {
                    found = candidate
                    break
                }
            }
            guard let (tokenBytes, token) = found else {
                i += 1
                continue
            }
            var start = i, stop = i + tokenBytes.count
            if token.singleWord {
                let before = start == 0 || !Self.isWordScalar(lastScalar(bytes, before: start))
                let after = stop == bytes.count || !Self.isWordScalar(firstScalar(bytes, at: stop))
                if !before || !after {
                    i = stop
                    continue
                }
            }
            if token.lstrip {
                while start > emitted, let s = lastScalar(bytes, before: start), s.properties.isWhitespace {
                    start -= String(s).utf8.count
                }
            }
            if token.rstrip {
                while stop < bytes.count, let s = firstScalar(bytes, at: stop), s.properties.isWhitespace {
                    stop += String(s).utf8.count
                }
            }
            emitText(upTo: start)
            segments.append(.token(token.id))
            emitted = stop
            i = stop
        }
        emitText(upTo: bytes.count)
        return segments
    }

    /// HF's word test for `single_word`: the `regex` crate's Unicode `\w`, that is Alphabetic, marks,
    /// decimal digits, connector punctuation and the joiners.
    static func isWordScalar(_ s: Unicode.Scalar?) -> Bool {
        guard let s else { return false }
        if s.properties.isAlphabetic || s.properties.isJoinControl { return true }
        switch s.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    private func lastScalar(_ bytes: [UInt8], before end: Int) -> Unicode.Scalar? {
        guard end > 0 else { return nil }
        var start = end - 1
        while start > 0 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self).unicodeScalars.first
    }

    private func firstScalar(_ bytes: [UInt8], at start: Int) -> Unicode.Scalar? {
        guard start < bytes.count else { return nil }
        var end = start + 1
        while end < bytes.count && bytes[end] & 0xC0 == 0x80 { end += 1 }
        return String(decoding: bytes[start..<end], as: UTF8.self).unicodeScalars.first
    }
}
