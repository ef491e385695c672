import Foundation

/// One tokenized training example: ids and labels (−100 where no loss is taken).
public struct SFTExample: Sendable, Equatable {
    public var ids: [Int]
    public var labels: [Int]
    /// The line of the file it came from.
    public var line: Int
    public var lossTokens: Int { labels.filter { $0 != CrossEntropyOp.ignoreIndex }.count }

    public init(ids: [Int], labels: [Int], line: Int) { self.ids = ids; self.labels = labels; self.line = line }
}

/// A supervised fine-tuning dataset from JSONL, one example per line, in one of three shapes:
/// - `{"prompt": …, "completion": …}`: loss on the completion (and the EOS appended to it);
/// - `{"messages": [{"role", "content"}, …]}`: the conversation rendered with the model's own chat
///   template (ChatML when the tokenizer declares none), as transformers' `apply_chat_template`
///   renders it; loss on every assistant turn — its content and what the template writes after it
///   to end the turn (`<|im_end|>\n`, `<|eot_id|>`) — as TRL's `assistant_only_loss`;
/// - `{"text": …}`: loss on every token (and EOS).
/// `completionOnlyLoss: false` takes the loss on the prompt too. Examples longer than
/// `maxSeqLength` are cut at the end; one with no loss token left is skipped and counted in
/// `skippedTooLong` (the documented behaviour); every other problem is a DatasetError.
public struct SFTDataset: Sendable {
    public let file: String
    public let examples: [SFTExample]
    public let skippedTooLong: Int
    /// Examples whose prompt's tokens were not a prefix of prompt+completion's (the split
    /// point then follows the prompt's token count, as TRL does).
    public let promptBoundaryMismatches: Int

    public init(file: String, tokenizer: Tokenizer, maxSeqLength: Int, completionOnlyLoss: Bool = true) throws {
        self.file = file
        let jl = try JSONLines(file: file)
        guard let eos = tokenizer.eosTokenID else { throw DatasetError(file: file, "the tokenizer has no EOS token to end examples with") }
        var out: [SFTExample] = []
        var skipped = 0, mismatches = 0
        for (line, obj) in jl.records {
            var ids: [Int], labels: [Int]
            if obj["messages"] != nil {
                let messages = try jl.messages(obj["messages"], key: "messages", line: line)
                guard let last = messages.last, last.role == "assistant" else {
                    throw DatasetError(file: file, line: line, key: "messages", "the last message must be the assistant's (the completion to learn)")
                }
                guard !last.content.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                    throw DatasetError(file: file, line: line, key: "messages", "the last assistant message is empty")
                }
                let mask: [Bool]
                do {
                    (ids, mask) = try tokenizer.encodeChatWithAssistantMask(JinjaValue.messages(messages))
                } catch let e as ChatTemplateError {
                    throw DatasetError(file: file, line: line, key: "messages", "the chat template cannot render this conversation: \(e)")
                }
                labels = completionOnlyLoss ? zip(ids, mask).map { $1 ? $0 : CrossEntropyOp.ignoreIndex } : ids
            } else {
                var prompt = "", completion: String
                if obj["prompt"] != nil || obj["completion"] != nil {
                    prompt = try jl.string(obj, "prompt", line: line, allowEmpty: true)
                    completion = try jl.string(obj, "completion", line: line)
                } else if obj["text"] != nil {
                    completion = try jl.string(obj, "text", line: line)
                } else {
                    throw DatasetError(file: file, line: line, key: "completion", "missing key \"completion\" (an example has \"prompt\" and \"completion\", \"messages\", or \"text\")")
                }
                let promptIDs = prompt.isEmpty ? [] : tokenizer.encode(prompt)
                ids = tokenizer.encode(prompt + completion)
                if Array(ids.prefix(promptIDs.count)) != promptIDs { mismatches += 1 }
                ids.append(eos)
                labels = ids
                if completionOnlyLoss { for i in 0..<min(promptIDs.count, labels.count) { labels[i] = CrossEntropyOp.ignoreIndex } }
            }
            if ids.count > maxSeqLength { ids = Array(ids.prefix(maxSeqLength)); labels = Array(labels.prefix(maxSeqLength)) }
            // Position t learns labels[t + 1]: a loss token needs a position before it.
            if labels.dropFirst().allSatisfy({ $0 == CrossEntropyOp.ignoreIndex }) { skipped += 1; continue }
            out.append(SFTExample(ids: ids, labels: labels, line: line))
        }
        guard !out.isEmpty else {
            throw DatasetError(file: file, "every example is longer than max_seq_length (\(maxSeqLength)) before its completion starts; nothing to learn")
        }
        examples = out
        skippedTooLong = skipped
        promptBoundaryMismatches = mismatches
    }

    /// Pads examples (right) into a batch: pad id in the ids, mask 0, labels −100.
    public static func batch(_ examples: [SFTExample], padID: Int) -> TrainingBatch {
        let T = examples.map(\.ids.count).max() ?? 0
        return TrainingBatch(
            inputIDs: examples.map { $0.ids + Array(repeating: padID, count: T - $0.ids.count) },
            attentionMask: examples.map { Array(repeating: 1, count: $0.ids.count) + Array(repeating: 0, count: T - $0.ids.count) },
            labels: examples.map { $0.labels + Array(repeating: CrossEntropyOp.ignoreIndex, count: T - $0.labels.count) })
    }

    /// TRL's padding-free batch: the examples one after another in a single row, each a
    /// sequence of its own (positions restart, attention stays inside it, no loss across).
    public static func paddingFreeBatch(_ examples: [SFTExample]) -> TrainingBatch {
        TrainingBatch(inputIDs: [examples.flatMap(\.ids)], labels: [examples.flatMap(\.labels)],
                      sequences: [examples.map(\.ids.count)])
    }
}
