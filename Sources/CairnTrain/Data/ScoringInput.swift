import Foundation

/// What `cairn model logprobs` scores: one text, or the lines of a JSONL file (`{"text"}` or
/// `{"prompt", "completion"}`), encoded and checked against the model before any forward pass.
///
/// Limits, so that no input makes the forward pass allocate without bound: a line of the file is at
/// most `maxLineBytes` (refused before it is parsed), and an encoded item at most the model's
/// `max_position_embeddings` tokens, every id inside its vocabulary.
public struct ScoringInput: Sendable {
    /// The longest line of an input file, in bytes (1 MiB).
    public static let maxLineBytes = 1 << 20

    /// One thing to score: `prompt` (not scored, may be empty) then `text`.
    public struct Item: Sendable {
        /// The line of the file it came from (nil for `--text`).
        public let line: Int?
        public let prompt: String
        public let text: String
    }

    /// The file the items came from (nil for `--text`).
    public let file: String?
    public let items: [Item]

    /// One text given on the command line.
    public init(text: String) {
        file = nil
        items = [Item(line: nil, prompt: "", text: text)]
    }

    /// Reads a JSONL file; errors (`DatasetError`) name the file, the line and the key, and an
    /// empty file is one.
    public init(file: String) throws {
        let lines = try JSONLines(file: file, maxLineBytes: Self.maxLineBytes)
        self.file = file
        items = try lines.records.map { line, obj in
            if obj["text"] != nil { return Item(line: line, prompt: "", text: try lines.string(obj, "text", line: line, allowEmpty: true)) }
            guard obj["prompt"] != nil else {
                throw DatasetError(file: file, line: line, key: "text", "missing key \"text\" or \"prompt\"")
            }
            return Item(line: line, prompt: try lines.string(obj, "prompt", line: line, allowEmpty: true),
                        text: try lines.string(obj, "completion", line: line, allowEmpty: true))
        }
    }

    /// The ids of `item` (prompt ids first, then the text's) and how many are the prompt's. Throws
    /// a `DatasetError` naming the file and line (or `--text`) when there is nothing to score, when
    /// the ids are more than `config.maxPositionEmbeddings`, or when an id is outside the model's
    /// vocabulary (`configFile` is named as the vocabulary's source).
    public func encode(_ item: Item, tokenizer: Tokenizer, config: ModelConfig, configFile: String) throws -> (ids: [Int], promptCount: Int) {
        let source = file ?? "--text"
        func fail(_ reason: String) -> DatasetError { DatasetError(file: source, line: item.line, reason) }
        let promptIDs = item.prompt.isEmpty ? [] : tokenizer.encode(item.prompt)
        let ids = promptIDs + tokenizer.encode(item.text)
        guard !ids.isEmpty else { throw fail("nothing to score: the text is empty") }
        guard ids.count <= config.maxPositionEmbeddings else {
            throw fail("\(ids.count) tokens, more than the model's max_position_embeddings (\(config.maxPositionEmbeddings) in \(configFile))")
        }
        if let bad = ids.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            let name = tokenizer.token(of: bad).map { " (\($0.debugDescription))" } ?? ""
            throw fail("token id \(bad)\(name) is outside the model's vocabulary (vocab_size \(config.vocabSize) in \(configFile))")
        }
        return (ids, promptCount: promptIDs.count)
    }
}
