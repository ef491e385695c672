/// A tokenizer.json `pre_tokenizer` that Cairn can run: a list of steps applied in order to every
/// stretch of text between added tokens, ending in ByteLevel.
struct PreTokenizer {
    enum Step {
        /// `Split` with behavior Isolated and invert false.
        case split(SplitPattern)
        /// `Digits`: every numeric scalar (general category Nd, Nl or No, Rust's `char::is_numeric`) its own
        /// piece when `individualDigits` (behaviour Isolated), otherwise each run of them one piece
        /// (Contiguous); the text between them stays whole. SmolLM and StarCoder put it before ByteLevel.
        case digits(individualDigits: Bool)
        /// `ByteLevel`: a space before every piece that lacks one when `addPrefixSpace`, then the GPT-2
        /// pattern when `useRegex`. (The byte→unicode map itself is folded into the BPE model, which
        /// works on raw bytes.)
        case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    }

    var steps: [Step]

    /// Splits `text` into pre-tokens: returns a byte buffer and ranges into it (the buffer differs from
    /// the text's UTF-8 only where ByteLevel adds prefix spaces).
    func pieces(of text: String) -> (bytes: [UInt8], ranges: [Range<Int>]) {
        var bytes = Array(text.utf8)
        var ranges: [Range<Int>] = bytes.isEmpty ? [] : [0..<bytes.count]
        for step in steps {
            switch step {
            case .split(let pattern):
                var out: [Range<Int>] = []
                out.reserveCapacity(ranges.count * 2)
                for r in ranges { pattern.split(bytes, r, into: &out) }
                ranges = out
            case .digits(let individualDigits):
                var out: [Range<Int>] = []
                out.reserveCapacity(ranges.count * 2)
                for r in ranges { Self.splitDigits(bytes, r, individually: individualDigits, into: &out) }
                ranges = out
            case .byteLevel(let addPrefixSpace, let useRegex):
                if addPrefixSpace && ranges.contains(where: { bytes[$0.lowerBound] != 0x20 }) {
                    var newBytes: [UInt8] = []
                    newBytes.reserveCapacity(bytes.count + ranges.count)
                    var newRanges: [Range<Int>] = []
                    for r in ranges {
                        let start = newBytes.count
                        if bytes[r.lowerBound] != 0x20 { newBytes.append(0x20) }
                        newBytes.append(contentsOf: bytes[r])
                        newRanges.append(start..<newBytes.count)
                    }
                    bytes = newBytes
                    ranges = newRanges
                }
                if useRegex {
                    var out: [Range<Int>] = []
                    out.reserveCapacity(ranges.count * 2)
                    let gpt2 = SplitPattern.builtin(.gpt2)
                    for r in ranges { gpt2.split(bytes, r, into: &out) }
                    ranges = out
                }
            }
        }
        return (bytes, ranges)
    }

    /// HF's `Digits`: splits `bytes[range]` into runs of numeric and of other scalars, and numeric runs
    /// further into single scalars when `individually`.
    static func splitDigits(_ bytes: [UInt8], _ range: Range<Int>, individually: Bool, into pieces: inout [Range<Int>]) {
        guard !range.isEmpty else { return }
        let s = ScalarScanner(bytes, range)
        var i = 0
        while i < s.count {
            let numeric = s.classes[i].contains(.number)
            var j = i + 1
            while j < s.count && s.classes[j].contains(.number) == numeric { j += 1 }
            if numeric && individually {
                for k in i..<j { pieces.append(s.offsets[k] ..< s.offsets[k + 1]) }
            } else {
                pieces.append(s.offsets[i] ..< s.offsets[j])
            }
            i = j
        }
    }
}
