import Foundation
import Testing
@testable import CairnTrain

/// A small trained tokenizer with the ChatML specials.
func chatTokenizer() throws -> Tokenizer {
    let s = Scratch()
    let corpus = s.write("c.txt", (0..<300).map { "{\"action\": \"create\", \"title\": \"task \($0)\"} Create a task called task \($0)." }.joined(separator: "\n"))
    return try TokenizerTrainer.train(corpusFiles: [corpus], vocabSize: 400)
}

@Suite("Training datasets")
struct DatasetTests {
    @Test func sftFormatsLabelsAndEOS() throws {
        let tok = try chatTokenizer()
        let s = Scratch()
        let file = s.write("sft.jsonl", """
            {"prompt": "Create a task called task 1.", "completion": " {\\"action\\": \\"create\\"}"}

            {"messages": [{"role": "user", "content": "Create a task"}, {"role": "assistant", "content": "{\\"action\\": \\"create\\"}"}]}
            {"text": "task 7"}
            """)
        let d = try SFTDataset(file: file, tokenizer: tok, maxSeqLength: 512)
        #expect(d.examples.map(\.line) == [1, 3, 4])
        let pc = d.examples[0]
        let promptLen = tok.encode("Create a task called task 1.").count
        #expect(pc.ids.last == tok.eosTokenID)
        #expect(pc.labels.prefix(promptLen).allSatisfy { $0 == -100 })
        #expect(Array(pc.labels.dropFirst(promptLen)) == Array(pc.ids.dropFirst(promptLen)))
        let chat = d.examples[1]
        #expect(chat.ids.last == tok.chatEndTokenID)
        let rendered = tok.applyChatTemplate([ChatMessage(role: "user", content: "Create a task")], addGenerationPrompt: true)
        #expect(chat.labels.prefix(tok.encode(rendered).count).allSatisfy { $0 == -100 })
        #expect(tok.decode(chat.ids.filter { _ in true }).hasPrefix("<|im_start|>user\nCreate a task<|im_end|>\n<|im_start|>assistant\n"))
        #expect(d.examples[2].labels == d.examples[2].ids)  // text: every token
        let all = try SFTDataset(file: file, tokenizer: tok, maxSeqLength: 512, completionOnlyLoss: false)
        #expect(all.examples[0].labels == all.examples[0].ids)
        // Batching pads on the right with mask 0 and label −100.
        let b = SFTDataset.batch(Array(d.examples.prefix(2)), padID: tok.padTokenID ?? 0)
        let T = max(d.examples[0].ids.count, d.examples[1].ids.count)
        #expect(b.inputIDs.allSatisfy { $0.count == T })
        #expect(b.attentionMask![0].filter { $0 == 1 }.count == d.examples[0].ids.count)
    }

    @Test func tooLongExamplesAreSkippedAndCounted() throws {
        let tok = try chatTokenizer()
        let s = Scratch()
        let longPrompt = String(repeating: "Create a task called task 9. ", count: 40)
        let file = s.write("sft.jsonl", """
            {"prompt": "\(longPrompt)", "completion": " done"}
            {"prompt": "Create", "completion": " a task called task 2."}
            """)
        let d = try SFTDataset(file: file, tokenizer: tok, maxSeqLength: 32)
        #expect(d.skippedTooLong == 1 && d.examples.count == 1 && d.examples[0].line == 2)
        #expect(d.examples[0].ids.count <= 32)
        let only = s.write("only.jsonl", "{\"prompt\": \"\(longPrompt)\", \"completion\": \" done\"}\n")
        #expect(throws: DatasetError.self) { try SFTDataset(file: only, tokenizer: tok, maxSeqLength: 32) }
    }

    @Test(arguments: [
        ("{\"prompt\": \"a\", \"completion\": \"b\"}\n{not json}\n", 2, "invalid JSON"),
        ("{\"prompt\": \"a\"}\n", 1, "\"completion\""),
        ("{\"prompt\": \"a\", \"completion\": \"   \"}\n", 1, "\"completion\" is empty"),
        ("{\"prompt\": \"a\", \"completion\": 3}\n", 1, "must be a string"),
        ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n", 1, "assistant"),
        ("{\"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}]}\n", 1, "role"),
        ("{\"title\": \"x\"}\n", 1, "\"completion\""),
    ])
    func badSFTLinesNameFileLineAndKey(content: String, line: Int, fragment: String) throws {
        let tok = try chatTokenizer()
        let s = Scratch()
        let file = s.write("bad.jsonl", content)
        do {
            _ = try SFTDataset(file: file, tokenizer: tok, maxSeqLength: 64)
            Issue.record("no error for \(content)")
        } catch let e as DatasetError {
            #expect(e.line == line)
            #expect(e.description.contains("bad.jsonl") && e.description.contains("line \(line)") && e.description.contains(fragment), "\(e)")
        }
    }

    @Test func preferencePairsPlainAndConversational() throws {
        let tok = try chatTokenizer()
        let s = Scratch()
        let file = s.write("pref.jsonl", """
            {"prompt": "Create a task", "chosen": " {\\"action\\": \\"create\\"}", "rejected": " no"}
            {"prompt": [{"role": "user", "content": "Create a task"}], "chosen": [{"role": "assistant", "content": "{}"}], "rejected": [{"role": "assistant", "content": "no"}]}
            """)
        let d = try PreferenceDataset(file: file, tokenizer: tok, maxSeqLength: 128)
        #expect(d.pairs.count == 2)
        let p = d.pairs[0]
        let n = tok.encode("Create a task").count
        #expect(Array(p.chosen.ids.prefix(n)) == Array(p.rejected.ids.prefix(n)))
        #expect(p.chosen.labels.prefix(n).allSatisfy { $0 == -100 } && p.chosen.ids.last == tok.eosTokenID)
        #expect(d.pairs[1].chosen.ids.last == tok.chatEndTokenID)
        let bad = s.write("bad.jsonl", "{\"prompt\": \"x\", \"chosen\": \"y\"}\n")
        #expect(throws: DatasetError.self) { try PreferenceDataset(file: bad, tokenizer: tok, maxSeqLength: 64) }
    }
}
