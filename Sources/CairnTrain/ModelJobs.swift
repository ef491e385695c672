import Foundation

/// The model commands' work (`cairn model init`, `cairn model logprobs`), callable without the CLI.
public enum ModelJobs {
    /// A new model of `architecture` with random weights (`seed`), sized by the JSON config at
    /// `configFile` (vocabulary and special tokens filled in from the tokenizer when absent),
    /// written with the tokenizer into `out`.
    public static func initModel(architecture: ModelConfig.Architecture, configFile: String, tokenizerDirectory: String,
                                 seed: UInt64, out: String) throws -> ModelConfig {
        guard let data = FileManager.default.contents(atPath: configFile),
              var json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError("cannot read '\(configFile)' as a JSON object")
        }
        let tok = try Tokenizer(directory: tokenizerDirectory)
        json["architectures"] = [architecture.rawValue]
        if json["vocab_size"] == nil { json["vocab_size"] = tok.vocabSize }
        if json["eos_token_id"] == nil, let e = tok.eosTokenID { json["eos_token_id"] = e }
        if json["bos_token_id"] == nil, let b = tok.bosTokenID { json["bos_token_id"] = b }
        if json["pad_token_id"] == nil, let p = tok.padTokenID { json["pad_token_id"] = p }
        let config = try ModelConfig(json: json, file: configFile)
        guard config.vocabSize >= tok.vocabSize else {
            throw ModelError("\(configFile): vocab_size \(config.vocabSize) is smaller than the tokenizer's \(tok.vocabSize) tokens")
        }
        let model = try TransformerModel.randomlyInitialised(config: config, seed: seed)
        try model.save(to: out)
        try tok.write(to: out)
        return config
    }

    /// One scored text: its tokens and log p(token | everything before it).
    public struct LogProbLine: Encodable, Sendable {
        public let line: Int?
        public let tokens: [String]
        public let ids: [Int]
        /// Nil for the first token and for prompt tokens.
        public let logprobs: [Double?]
        public let sum: Double
    }

    /// Scores every item of `inputs`; every item is encoded and checked before the first forward pass.
    public static func logprobs(model: TransformerModel, tokenizer tok: Tokenizer, configFile: String, inputs: [ScoringInput]) throws -> [LogProbLine] {
        let encoded = try inputs.flatMap { input in
            try input.items.map { (line: $0.line, try input.encode($0, tokenizer: tok, config: model.config, configFile: configFile)) }
        }
        return try encoded.map { line, e in
            let (ids, promptCount) = e
            let logits = try model.logits(inputIDs: [ids])
            let lp = TransformerModel.tokenLogProbs(logits: logits, ids: ids, vocabSize: model.config.vocabSize)
            let first = max(promptCount, 1)
            let scored: [Double?] = ids.indices.map { $0 >= first ? lp[$0] : nil }
            return LogProbLine(line: line, tokens: ids.map { tok.token(of: $0) ?? "?" }, ids: ids, logprobs: scored,
                               sum: scored.compactMap { $0 }.reduce(0, +))
        }
    }
}
