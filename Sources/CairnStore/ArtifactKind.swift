/// What an artifact is. Kept in the index beside its id; the id depends on content only.
public enum ArtifactKind: String, CaseIterable, Codable, Sendable {
    case dataset
    case config
    case tokenizer
    case baseModel = "base-model"
    case adapter
    case mergedModel = "merged-model"
    case alignedModel = "aligned-model"
    case metrics
    case report
    case checkpoint
    /// A stage's log (what its process printed).
    case log
    /// A GGUF model file brought into the store (the source of an imported base model).
    case gguf
    /// A file Cairn exported for another runtime (a GGUF for llama.cpp or Ollama).
    case export

    /// Parses a kind from the command line; the error lists the valid kinds.
    public static func parse(_ text: String) throws -> ArtifactKind {
        guard let kind = ArtifactKind(rawValue: text) else {
            let names = allCases.map(\.rawValue).joined(separator: ", ")
            throw StoreError.bad("unknown artifact kind '\(text)': use one of \(names)")
        }
        return kind
    }
}
