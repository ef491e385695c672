import Foundation

/// One preference pair, tokenized: the prompt and the two completions (each ending with EOS, or
/// for conversations as the model's chat template ends a turn) as SFT-style examples whose labels
/// cover the completion.
public struct PreferenceExample: Sendable, Equatable {
    public var chosen: SFTExample
    public var rejected: SFTExample
    public var line: Int

    public init(chosen: SFTExample, rejected: SFTExample, line: Int) { self.chosen = chosen; self.rejected = rejected; self.line = line }
}

/// A DPO dataset from JSONL: `{"prompt", "chosen", "rejected"}` with strings, or conversational
/// (prompt a list of messages, chosen and rejected one assistant message each, or plain strings),
/// rendered with the model's chat template as TRL's DPOTrainer renders them. Pairs longer than `maxSeqLength` are cut at the end; a pair where either side
/// has no completion token left is skipped and counted in `skippedTooLong`.
public struct PreferenceDataset: Sendable {
    public let file: String
    public let pairs: [PreferenceExample]
    public let skippedTooLong: Int

    public init(file: String, tokenizer: Tokenizer, maxSeqLength: Int) throws {
        self.file = file
        let jl = try JSONLines(file: file)
        guard let eos = tokenizer.eosTokenID else { throw DatasetError(file: file, "the tokenizer has no EOS token to end completions with") }
        var out: [PreferenceExample] = []
        var skipped = 0
        for (line, obj) in jl.records {
            func completion(_ key: String) throws -> ChatMessage {
                if obj[key] is [Any] {
                    let m = try jl.messages(obj[key], key: key, line: line)
                    guard m.count == 1, m[0].role == "assistant" else {
                        throw DatasetError(file: file, line: line, key: key, "key \"\(key)\" must hold one assistant message")
                    }
                    guard !m[0].content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                        throw DatasetError(file: file, line: line, key: key, "key \"\(key)\" is empty")
                    }
                    return m[0]
                }
                return ChatMessage(role: "assistant", content: try jl.string(obj, key, line: line))
            }
            let chosen = try completion("chosen"), rejected = try completion("rejected")
            // (ids, number of leading prompt tokens) of prompt + chosen and prompt + rejected.
            var sides: [(ids: [Int], promptLength: Int)]
            if obj["prompt"] is [Any] {
                // TRL's DPOTrainer: the prompt rendered with the generation prompt, each side rendered
                // as the whole conversation; the completion starts where the ids first differ.
                let messages = try jl.messages(obj["prompt"], key: "prompt", line: line)
                func render(_ m: [ChatMessage], _ generation: Bool) throws -> [Int] {
                    do {
                        return tokenizer.encode(try tokenizer.renderChat(m, addGenerationPrompt: generation))
                    } catch let e as ChatTemplateError {
                        throw DatasetError(file: file, line: line, key: "prompt", "the chat template cannot render this conversation: \(e)")
                    }
                }
                let promptIDs = try render(messages, true)
                let c = try render(messages + [chosen], false), r = try render(messages + [rejected], false)
                func common(_ a: [Int], _ b: [Int]) -> Int { zip(a, b).prefix { $0 == $1 }.count }
                let n = min(common(promptIDs, c), common(promptIDs, r))
                sides = [(c, n), (r, n)]
            } else {
                let prompt = try jl.string(obj, "prompt", line: line, allowEmpty: true)
                let n = prompt.isEmpty ? 0 : tokenizer.encode(prompt).count
                sides = [chosen, rejected].map { (tokenizer.encode(prompt + $0.content) + [eos], n) }
            }
            func example(_ side: (ids: [Int], promptLength: Int)) -> SFTExample? {
                var ids = side.ids, labels = side.ids
                for i in 0..<min(side.promptLength, labels.count) { labels[i] = CrossEntropyOp.ignoreIndex }
                if ids.count > maxSeqLength { ids = Array(ids.prefix(maxSeqLength)); labels = Array(labels.prefix(maxSeqLength)) }
                if labels.dropFirst().allSatisfy({ $0 == CrossEntropyOp.ignoreIndex }) { return nil }
                return SFTExample(ids: ids, labels: labels, line: line)
            }
            guard let c = example(sides[0]), let r = example(sides[1]) else { skipped += 1; continue }
            out.append(PreferenceExample(chosen: c, rejected: r, line: line))
        }
        guard !out.isEmpty else {
            throw DatasetError(file: file, "every pair is longer than max_seq_length (\(maxSeqLength)) before its completions start; nothing to learn")
        }
        pairs = out
        skippedTooLong = skipped
    }
}
