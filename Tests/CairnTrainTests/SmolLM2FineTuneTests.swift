import CairnTestSupport
import Foundation
import Testing
@testable import CairnTrain

/// SmolLM2-135M-Instruct, imported from its GGUF, fine-tuned on the task-api examples written as
/// conversations and rendered through its own chat template (default system prompt included):
/// SFT must teach it the JSON replies, DPO after it must prefer them on held-out pairs.
@Suite("SmolLM2 fine-tuned to the task API through its own template", .serialized)
struct SmolLM2FineTuneTests {
    static let data = TestProcess.repositoryRoot + "/pipelines/task-api/data"

    /// The task-api files as conversations: SFT pairs as user → assistant, prompts as one user
    /// turn, preference pairs with a conversational prompt and one assistant message each side.
    static func conversational(into dir: String, sftRows: Int) throws {
        func rows(_ name: String) throws -> [[String: Any]] {
            try String(contentsOfFile: data + "/" + name, encoding: .utf8).split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
        }
        func user(_ r: [String: Any]) -> [String: String] {
            ["role": "user", "content": (r["prompt"] as! String).trimmingCharacters(in: .whitespacesAndNewlines)]
        }
        func write(_ name: String, _ objects: [[String: Any]]) throws {
            let lines = try objects.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
            try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        }
        let sft = { (r: [String: Any]) -> [String: Any] in ["messages": [user(r), ["role": "assistant", "content": r["completion"] as! String]]] }
        try write("sft.jsonl", try rows("sft.jsonl").prefix(sftRows).map(sft))
        try write("sft_eval.jsonl", try rows("sft_eval.jsonl").map(sft))
        try write("eval_prompts.jsonl", try rows("eval_prompts.jsonl").map { ["messages": [user($0)]] })
        let pref = { (r: [String: Any]) -> [String: Any] in
            ["prompt": [user(r)], "chosen": [["role": "assistant", "content": r["chosen"] as! String]],
             "rejected": [["role": "assistant", "content": r["rejected"] as! String]]]
        }
        try write("preferences.jsonl", try rows("preferences.jsonl").map(pref))
        try write("preferences_eval.jsonl", try rows("preferences_eval.jsonl").map(pref))
    }

    /// Mean loss per assistant token of a conversational SFT file under `model`.
    static func heldOutLoss(_ model: TransformerModel, _ tok: Tokenizer, _ file: String) throws -> Double {
        let ds = try SFTDataset(file: file, tokenizer: tok, maxSeqLength: 256)
        var sum = 0.0, n = 0
        for e in ds.examples {
            let batch = SFTDataset.batch([e], padID: tok.padTokenID ?? 0)
            sum += try model.rowLossSums(batch).reduce(0, +)
            n += batch.lossTokens
        }
        return sum / Double(n)
    }

    static func run(_ args: [String]) throws -> ProcessOutput {
        let r = try TestProcess.run(TestProcess.cairn(release: true), args)
        #expect(r.status == 0, "cairn \(args.joined(separator: " ")): \(r.stderr.suffix(2000))")
        return r
    }

    static func formatRate(model: String, adapter: String?, prompts: String, result: String) throws -> Double {
        var args = ["check", "output_format_valid", "--model", model, "--data", prompts, "--schema", TestProcess.repositoryRoot + "/pipelines/task-api/schema.json",
                    "--max-new-tokens", "64", "--threshold", "0.9", "--result", result]
        if let a = adapter { args += ["--adapter", a] }
        _ = try TestProcess.run(TestProcess.cairn(release: true), args)
        let checks = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: result))) as! [[String: Any]]
        return checks[0]["value"] as? Double ?? -1
    }

    @Test func sftThenDPOTeachTheTaskAPIThroughTheModelsOwnTemplate() throws {
        let base = SmolLM2Tests.imported
        let work = NSTemporaryDirectory() + "cairn-smollm2-ft-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        try Self.conversational(into: work, sftRows: 96)
        let tok = try Tokenizer(directory: base)
        // The template is the model's own: every rendered example starts with SmolLM2's default system turn.
        let rendered = try tok.renderChat([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true)
        #expect(rendered.hasPrefix("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"))

        let before = try Self.heldOutLoss(try TransformerModel.load(directory: base), tok, work + "/sft_eval.jsonl")
        let baseRate = try Self.formatRate(model: base, adapter: nil, prompts: work + "/eval_prompts.jsonl", result: work + "/base.json")

        try """
            max_seq_length: 160
            lora_r: 16
            lora_alpha: 32
            lora_dropout: 0.0
            target_modules: [q_proj, k_proj, v_proj, o_proj]
            max_steps: 24
            batch_size: 8
            gradient_accumulation: 1
            learning_rate: 1.0e-3
            warmup_ratio: 0.1
            save_steps: 1000
            seed: 7
            logging_steps: 4
            """.write(toFile: work + "/sft.yaml", atomically: true, encoding: .utf8)
        _ = try Self.run(["train", "sft", "--model", base, "--data", work + "/sft.jsonl", "--eval", work + "/sft_eval.jsonl",
                          "--config", work + "/sft.yaml", "--out", work + "/sft"])
        let sftModel = try TransformerModel.load(directory: base)
        try sftModel.loadAdapter(directory: work + "/sft")
        let after = try Self.heldOutLoss(sftModel, tok, work + "/sft_eval.jsonl")
        let sftRate = try Self.formatRate(model: base, adapter: work + "/sft", prompts: work + "/eval_prompts.jsonl", result: work + "/sft.json")
        print("SmolLM2 SFT: held-out loss \(before) -> \(after); valid JSON \(baseRate) -> \(sftRate)")
        #expect(after <= before / 2, "held-out loss \(before) -> \(after)")
        #expect(baseRate <= 0.1, "the base model already writes the JSON: \(baseRate)")
        #expect(sftRate >= 0.9, "valid JSON after SFT: \(sftRate)")

        _ = try Self.run(["merge", "--model", base, "--adapter", work + "/sft", "--out", work + "/merged"])
        try """
            max_seq_length: 160
            lora_r: 8
            lora_alpha: 16
            lora_dropout: 0.0
            target_modules: [q_proj, v_proj]
            max_steps: 16
            batch_size: 8
            gradient_accumulation: 1
            learning_rate: 5.0e-4
            beta: 0.1
            save_steps: 1000
            seed: 7
            logging_steps: 4
            """.write(toFile: work + "/dpo.yaml", atomically: true, encoding: .utf8)
        _ = try Self.run(["train", "dpo", "--model", work + "/merged", "--data", work + "/preferences.jsonl", "--eval", work + "/preferences_eval.jsonl",
                          "--config", work + "/dpo.yaml", "--out", work + "/dpo"])
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/dpo/metrics.json"))) as! [String: Any]
        let accuracy = (metrics["eval_accuracy"] as? NSNumber)?.doubleValue ?? -1
        print("SmolLM2 DPO: held-out preference accuracy \(accuracy), margin \(metrics["eval_margin"] ?? "?")")
        #expect(accuracy >= 0.9, "held-out preference accuracy after DPO: \(accuracy)")
    }
}
