import Foundation

/// One preference pair, tokenized: the prompt and the two completions (each ending with EOS,
/// or `<|im_end|>` for conversations) as SFT-style examples whose labels cover the completion.
public struct PreferenceExample: Sendable, Equatable {
    public var chosen: SFTExample
    public var rejected: SFTExample
    public var line: Int

    public init(chosen: SFTExample, rejected: SFTExample, line: Int) { self.chosen = chosen; self.rejected = rejected; self.line = line }
}

/// A DPO dataset from JSONL: `{"prompt", "chosen", "rejected"}` with strings, or conversational
/// (prompt a list of messages, chosen and rejected lists ending with one assistant message or
/// plain strings). Pairs longer than `maxSeqLength` are cut at the end; a pair where either side
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
            var prompt: String
            var end = eos
            if obj["prompt"] is [Any] {
                let messages = try jl.messages(obj["prompt"], key: "prompt", line: line)
                prompt = tokenizer.applyChatTemplate(messages, addGenerationPrompt: true)
                guard let imEnd = tokenizer.chatEndTokenID else {
                    throw DatasetError(file: file, line: line, key: "prompt", "the tokenizer has no <|im_end|> token for the chat template")
                }
                end = imEnd
            } else {
                prompt = try jl.string(obj, "prompt", line: line, allowEmpty: true)
            }
            func completion(_ key: String) throws -> String {
                if obj[key] is [Any] {
                    let m = try jl.messages(obj[key], key: key, line: line)
                    guard m.count == 1, m[0].role == "assistant" else {
                        throw DatasetError(file: file, line: line, key: key, "key \"\(key)\" must hold one assistant message")
                    }
                    guard !m[0].content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                        throw DatasetError(file: file, line: line, key: key, "key \"\(key)\" is empty")
                    }
                    return m[0].content
                }
                return try jl.string(obj, key, line: line)
            }
            let chosen = try completion("chosen"), rejected = try completion("rejected")
            let promptIDs = prompt.isEmpty ? [] : tokenizer.encode(prompt)
            func example(_ text: String) -> SFTExample? {
                var ids = tokenizer.encode(prompt + text) + [end]
                var labels = ids
                for i in 0..<min(promptIDs.count, labels.count) { labels[i] = CrossEntropyOp.ignoreIndex }
                if ids.count > maxSeqLength { ids = Array(ids.prefix(maxSeqLength)); labels = Array(labels.prefix(maxSeqLength)) }
                if labels.dropFirst().allSatisfy({ $0 == CrossEntropyOp.ignoreIndex }) { return nil }
                return SFTExample(ids: ids, labels: labels, line: line)
            }
            guard let c = example(chosen), let r = example(rejected) else { skipped += 1; continue }
            out.append(PreferenceExample(chosen: c, rejected: r, line: line))
        }
        guard !out.isEmpty else {
            throw DatasetError(file: file, "every pair is longer than max_seq_length (\(maxSeqLength)) before its completions start; nothing to learn")
        }
        pairs = out
        skippedTooLong = skipped
    }
}
