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

    /// The vocabulary spelling of a GGUF token: itself when every scalar is in the byte-level alphabet,
    /// otherwise its UTF-8 bytes spelled in that alphabet (as transformers' GGUF conversion does).
    static func byteLevelSpelling(_ token: String) -> String {
        ByteLevel.decode(token) != nil ? token : ByteLevel.encode(token.utf8)
    }
}
