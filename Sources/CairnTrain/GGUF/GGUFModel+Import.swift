import CairnSystem
import Foundation

extension GGUFModel {
    /// What `importModel` wrote.
    public struct ImportSummary: Sendable {
        public var architecture: String
        public var name: String?
        public var parameters: Int
        /// How many tensors of each ggml type the GGUF held (`Q4_1: 210`).
        public var tensorTypes: [String: Int]
        public var files: [String]
    }

    /// Writes a Hugging Face model directory from a GGUF file: config.json, model.safetensors (in
    /// `dtype`), tokenizer.json and tokenizer_config.json (with the chat template) from the
    /// `tokenizer.ggml.*` keys, and generation_config.json. The tokenizer is converted and checked
    /// before any weight is read, so an unsupported tokenizer fails fast.
    @discardableResult
    public static func importModel(from path: String, to directory: String, dtype: DType = .f32) throws -> ImportSummary {
        try importModel(try GGUFFile(path: path), to: directory, dtype: dtype)
    }

    /// As `importModel(from:to:dtype:)`, from a file already opened.
    @discardableResult
    public static func importModel(_ file: GGUFFile, to directory: String, dtype: DType = .f32) throws -> ImportSummary {
        let path = file.path
        let config = try config(of: file)
        let (tokenizerJSON, tokenizerConfig) = try GGUFTokenizer.huggingFaceFiles(from: file.metadata)
        let tokenizer = try Tokenizer(json: tokenizerJSON, config: tokenizerConfig, file: path + " (tokenizer.json from tokenizer.ggml.*)",
                                      configFile: path + " (tokenizer_config.json from tokenizer.ggml.*)")
        guard tokenizer.vocabSize <= config.vocabSize else {
            throw FormatError(file: path, key: "tokenizer.ggml.tokens",
                              "has \(tokenizer.vocabSize) tokens but token_embd.weight has \(config.vocabSize) rows")
        }
        let model = try load(file)
        try model.save(to: directory, dtype: dtype)
        try tokenizer.write(to: directory)
        var generation: [String: Any] = ["_from_model_config": true, "transformers_version": "4.46.0"]
        if let b = config.bosTokenID { generation["bos_token_id"] = b }
        if let e = config.eosTokenIDs.first { generation["eos_token_id"] = config.eosTokenIDs.count == 1 ? e : config.eosTokenIDs }
        if let p = config.padTokenID { generation["pad_token_id"] = p }
        let data = try JSONSerialization.data(withJSONObject: generation, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: directory + "/generation_config.json")
        var types: [String: Int] = [:]
        for t in file.tensors { types[t.type.description, default: 0] += 1 }
        return ImportSummary(architecture: config.architecture.modelType, name: try? file.metadata.optionalString("general.name"),
                             parameters: config.parameterCount, tensorTypes: types,
                             files: ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
    }
}
