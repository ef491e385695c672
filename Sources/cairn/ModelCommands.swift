import CairnStore
import CairnTrain
import Foundation

/// `cairn model …` and `cairn tokenizer …`: parse, call CairnTrain, print.
enum ModelCommands {
    static let specs: [CommandSpec] = [
        CommandSpec(name: "model init", usage: "cairn model init --arch llama|qwen2 --config FILE.json --tokenizer DIR --out DIR [--seed S]",
                    summary: "a randomly initialised model in Hugging Face format", options: ["arch", "config", "tokenizer", "out", "seed"]),
        CommandSpec(name: "model tokenize", usage: "cairn model tokenize MODEL --text T [--json]",
                    summary: "token ids and pieces of a text", flags: ["json"], options: ["text"], positionals: 1...1),
        CommandSpec(name: "model logprobs", usage: "cairn model logprobs MODEL [--adapter DIR] (--text T | --input FILE.jsonl) [--json]",
                    summary: "per-token log-probabilities and their sum", flags: ["json"], options: ["adapter", "text", "input"],
                    positionals: 1...1),
        CommandSpec(name: "model generate",
                    usage: "cairn model generate MODEL [--adapter DIR] --prompt P [--max-tokens N] [--temperature T] [--top-p P] [--seed S] [--chat]",
                    summary: "continue a prompt (greedy at temperature 0; stops at EOS or <|im_end|>)", flags: ["chat", "json"],
                    options: ["adapter", "prompt", "max-tokens", "temperature", "top-p", "seed"], positionals: 1...1),
        CommandSpec(name: "model import", usage: "cairn model import FILE.gguf --out DIR [--dtype f32|f16|bf16]",
                    summary: "a GGUF model (llama, qwen2) as a Hugging Face directory", flags: ["json"], options: ["out", "dtype"],
                    positionals: 1...1),
        CommandSpec(name: "model export", usage: "cairn model export MODEL --format gguf --type f32|f16|q8_0 --out FILE.gguf [--name NAME]",
                    summary: "a model as a GGUF file for llama.cpp and Ollama", options: ["format", "type", "out", "name"],
                    positionals: 1...1),
        CommandSpec(name: "model chat-template",
                    usage: "cairn model chat-template MODEL --messages FILE.json [--add-generation-prompt] [--ids] [--tools FILE.json]",
                    summary: "a conversation as the model's own chat template renders it (--ids: its token ids)",
                    flags: ["add-generation-prompt", "ids", "json"], options: ["messages", "tools"], positionals: 1...1),
        CommandSpec(name: "tokenizer train", usage: "cairn tokenizer train --corpus FILE... --vocab-size N --out DIR",
                    summary: "train a byte-level BPE tokenizer (tokenizer.json)", options: ["corpus", "vocab-size", "out"]),
    ]

    static func run(_ name: String, _ a: Arguments) throws -> Int32 {
        switch name {
        case "model init": return try initModel(a)
        case "model tokenize":
            let (dir, cleanup) = try modelDirectory(a.positionals[0], a)
            defer { cleanup() }
            let tok = try Tokenizer(directory: dir)
            let text = try a.required("text")
            let ids = tok.encode(text)
            if a.has("json") {
                struct Out: Encodable { let ids: [Int]; let tokens: [String] }
                try Output.json(Out(ids: ids, tokens: ids.map { tok.token(of: $0) ?? "?" }))
            } else {
                Output.out(ids.map(String.init).joined(separator: " "))
                Output.note(ids.map { tok.token(of: $0) ?? "?" }.joined(separator: " | "))
            }
        case "model logprobs": return try logprobs(a)
        case "model generate": return try generate(a)
        case "model import": return try importGGUF(a)
        case "model chat-template": return try chatTemplate(a)
        case "model export": return try exportGGUF(a)
        case "tokenizer train":
            let corpus = a.all("corpus")
            guard !corpus.isEmpty else { throw UsageError(message: "give at least one --corpus FILE") }
            let vocab = try a.int("vocab-size", default: 0)
            guard vocab > 0 else { throw UsageError(message: "missing --vocab-size N") }
            let out = try a.required("out")
            let start = Date()
            let tok = try TokenizerTrainer.train(corpusFiles: corpus, vocabSize: vocab)
            try tok.write(to: out)
            Output.out("\(out)/tokenizer.json: \(tok.vocabSize) tokens (trained in \(String(format: "%.1f", Date().timeIntervalSince(start))) s)")
        default: throw UsageError(message: "unknown command '\(name)'")
        }
        return 0
    }

    /// MODEL is a Hugging Face directory, or a store reference checked out (verified) into a
    /// temporary directory that `cleanup` removes.
    static func modelDirectory(_ ref: String, _ a: Arguments) throws -> (String, () -> Void) {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: ref, isDirectory: &isDir), isDir.boolValue { return (ref, {}) }
        let store = try a.openStore()
        let id = try store.resolve(ref)
        let tmp = NSTemporaryDirectory() + "cairn-model-\(id.hex.prefix(12))-\(ProcessInfo.processInfo.processIdentifier)"
        try store.checkout(id, into: tmp, force: true)
        return (tmp, { try? FileManager.default.removeItem(atPath: tmp) })
    }

    /// The model, its tokenizer, the config file's path (for messages) and the cleanup of a checkout.
    static func loadModel(_ a: Arguments) throws -> (TransformerModel, Tokenizer, String, () -> Void) {
        let (dir, cleanup) = try modelDirectory(a.positionals[0], a)
        let model = try TransformerModel.load(directory: dir)
        let tok = try Tokenizer(directory: dir)
        if let adapter = try a.option("adapter") {
            let (adir, acleanup) = try modelDirectory(adapter, a)
            defer { acleanup() }
            try model.loadAdapter(directory: adir)
        }
        return (model, tok, (dir as NSString).appendingPathComponent("config.json"), cleanup)
    }

    static func initModel(_ a: Arguments) throws -> Int32 {
        guard let arch = ModelConfig.Architecture.allCases.first(where: { $0.modelType == (try? a.required("arch")) }) else {
            throw UsageError(message: "--arch must be llama or qwen2")
        }
        let configPath = try a.required("config"), tokenizer = try a.required("tokenizer")
        let seed = UInt64(try a.int("seed", default: 0)), out = try a.required("out")
        let config = try ModelJobs.initModel(architecture: arch, configFile: configPath, tokenizerDirectory: tokenizer, seed: seed, out: out)
        Output.out("\(out): \(arch.rawValue), \(config.parameterCount) parameters (\(config.numLayers) layers, hidden \(config.hiddenSize), vocab \(config.vocabSize)), seed \(seed)")
        return 0
    }

    static func logprobs(_ a: Arguments) throws -> Int32 {
        let (model, tok, configFile, cleanup) = try loadModel(a)
        defer { cleanup() }
        var inputs: [ScoringInput] = []
        if let t = try a.option("text") { inputs.append(ScoringInput(text: t)) }
        if let input = try a.option("input") { inputs.append(try ScoringInput(file: input)) }
        guard !inputs.isEmpty else { throw UsageError(message: "give --text T or --input FILE.jsonl") }
        let results = try ModelJobs.logprobs(model: model, tokenizer: tok, configFile: configFile, inputs: inputs)
        if a.has("json") { try Output.json(results) } else {
            for r in results {
                if let l = r.line { Output.out("line \(l):") }
                for (t, p) in zip(r.tokens, r.logprobs) { Output.out("  \(p.map { String(format: "%9.4f", $0) } ?? "        -")  \(t.debugDescription)") }
                Output.out(String(format: "  sum %.4f", r.sum))
            }
        }
        return 0
    }

    static func generate(_ a: Arguments) throws -> Int32 {
        let (model, tok, configFile, cleanup) = try loadModel(a)
        defer { cleanup() }
        var prompt = try a.required("prompt")
        if a.has("chat") { prompt = try tok.renderChat([ChatMessage(role: "user", content: prompt)], addGenerationPrompt: true) }
        let ids = tok.encode(prompt)
        guard !ids.isEmpty else { throw UsageError(message: "--prompt is empty") }
        try model.config.checkTokenIDs(ids, source: "--prompt encoded by \((configFile as NSString).deletingLastPathComponent)/tokenizer.json",
                                       configFile: configFile, token: tok.token(of:))
        let maxTokens = try a.int("max-tokens", default: 64)
        guard maxTokens >= 0 && maxTokens <= model.config.maxPositionEmbeddings - ids.count else {
            throw UsageError(message: "--max-tokens \(maxTokens): the prompt's \(ids.count) tokens and the new ones must fit the model's "
                             + "max_position_embeddings (\(model.config.maxPositionEmbeddings) in \(configFile))")
        }
        let temperature = Float(try a.option("temperature") ?? "0") ?? -1
        let topP = Float(try a.option("top-p") ?? "1") ?? -1
        guard temperature >= 0 else { throw UsageError(message: "--temperature wants a number ≥ 0") }
        guard topP > 0 && topP <= 1 else { throw UsageError(message: "--top-p wants a number in (0, 1]") }
        var stops = Set(model.config.eosTokenIDs)  // SmolLM2's is <|im_end|>, which ends its turns
        for t in [tok.eosTokenID, tok.chatEndTokenID] { if let t = t { stops.insert(t) } }
        let out = try model.generate(prompt: ids, maxNewTokens: maxTokens,
                                     sampling: SamplingOptions(temperature: temperature, topP: topP, seed: UInt64(try a.int("seed", default: 0))),
                                     stopTokens: stops)
        let text = tok.decode(out.filter { !stops.contains($0) })
        if a.has("json") {
            struct Out: Encodable { let prompt_ids: [Int]; let ids: [Int]; let text: String }
            try Output.json(Out(prompt_ids: ids, ids: out, text: text))
        } else {
            Output.out(text)
        }
        return 0
    }
}
