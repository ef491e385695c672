/// A tokenizer file that cannot be read or used, or a training request that cannot be met.
///
/// The message names the file and the JSON key: `cannot use 'tok/tokenizer.json': model.type
/// "Unigram" is not supported (Cairn reads byte-level BPE only)`.
public struct TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file (or input) the problem is in.
    public var file: String
    /// What is wrong, naming the key.
    public var reason: String

    /// A problem with `file`, described by `reason`.
    public init(file: String, _ reason: String) {
        self.file = file
        self.reason = reason
    }

    /// `cannot use 'FILE': REASON`.
    public var description: String { "cannot use '\(file)': \(reason)" }
}
