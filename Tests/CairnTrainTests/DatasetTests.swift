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
        // A conversation: rendered by the template (ChatML here), loss on the assistant's turn as the
        // template writes it — the content, <|im_end|> and the newline after it — and nowhere else.
        let chat = d.examples[1]
        let rendered = tok.applyChatTemplate([ChatMessage(role: "user", content: "Create a task")], addGenerationPrompt: true)
        let promptLength = tok.encode(rendered).count
        #expect(tok.decode(chat.ids) == rendered + "{\"action\": \"create\"}<|im_end|>\n")
        #expect(chat.labels.prefix(promptLength).allSatisfy { $0 == -100 })
        #expect(Array(chat.labels.dropFirst(promptLength)) == Array(chat.ids.dropFirst(promptLength)))
        #expect(chat.ids.suffix(2) == [tok.chatEndTokenID!, tok.encode("\n")[0]])
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
        // Conversational: as TRL's DPOTrainer, each side is the whole conversation rendered by the
        // template, its completion starting where the prompt's ids end.
        let conv = d.pairs[1]
        let prompt = tok.applyChatTemplate([ChatMessage(role: "user", content: "Create a task")], addGenerationPrompt: true)
        #expect(tok.decode(conv.chosen.ids) == prompt + "{}<|im_end|>\n" && tok.decode(conv.rejected.ids) == prompt + "no<|im_end|>\n")
        let m = tok.encode(prompt).count
        #expect(conv.chosen.labels.prefix(m).allSatisfy { $0 == -100 } && !conv.chosen.labels.dropFirst(m).contains(-100))
        let bad = s.write("bad.jsonl", "{\"prompt\": \"x\", \"chosen\": \"y\"}\n")
        #expect(throws: DatasetError.self) { try PreferenceDataset(file: bad, tokenizer: tok, maxSeqLength: 64) }
    }
}

extension DatasetTests {
    /// A conversation the model's template refuses (Mistral-style alternation check) fails with the
    /// template's own message and the dataset line; a template Cairn cannot render names its line.
    @Test func templateErrorsNameTheDatasetLineAndTheTemplateLine() throws {
        let tok = try chatTokenizer()
        tok.chatTemplateTexts = ["default": """
            {%- for message in messages %}
            {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
            {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
            {%- endif %}
            {{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}
            {%- endfor %}
            """]
        let s = Scratch()
        let file = s.write("chat.jsonl", """
            {"messages": [{"role": "user", "content": "Create a task"}, {"role": "assistant", "content": "{}"}]}
            {"messages": [{"role": "assistant", "content": "hello"}, {"role": "assistant", "content": "{}"}]}
            """)
        do {
            _ = try SFTDataset(file: file, tokenizer: tok, maxSeqLength: 128)
            Issue.record("roles out of order were accepted")
        } catch let e as DatasetError {
            #expect(e.line == 2 && e.description.contains("Conversation roles must alternate user/assistant"), "\(e)")
        }
        tok.chatTemplateTexts = ["default": "{% for m in messages %}{{ m.content | wordwrap(5) }}\n{% endfor %}"]
        do {
            _ = try SFTDataset(file: file, tokenizer: tok, maxSeqLength: 128)
            Issue.record("an unsupported filter was rendered")
        } catch {
            #expect("\(error)".contains("wordwrap") && "\(error)".contains("line 1"), "\(error)")
        }
    }
}
