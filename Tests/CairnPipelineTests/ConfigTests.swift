import Foundation
import Testing
import CairnTrain
@testable import CairnPipeline

func writeTemp(_ name: String, _ text: String) -> String {
    let dir = NSTemporaryDirectory() + "cairn-cfg-\(UUID().uuidString.prefix(8))"
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let p = dir + "/" + name
    try! text.write(toFile: p, atomically: true, encoding: .utf8)
    return p
}

@Suite("Stage configs in YAML")
struct ConfigTests {
    @Test func referenceKeysAreRead() throws {
        let p = writeTemp("sft_config.yaml", """
            # sft_config.yaml as the reference writes it
            max_seq_length: 256
            lora_r: 8
            lora_alpha: 16
            lora_dropout: 0.05
            epochs: 2
            batch_size: 4
            gradient_accumulation: 2
            learning_rate: 2.0e-4
            warmup_ratio: 0.1
            save_steps: 50
            target_modules: [q_proj, v_proj]
            """)
        let c = try TrainingConfig.load(yamlFile: p)
        #expect(c.maxSeqLength == 256 && c.loraR == 8 && c.loraAlpha == 16 && c.loraDropout == 0.05)
        #expect(c.epochs == 2 && c.batchSize == 4 && c.gradientAccumulation == 2 && c.learningRate == 2e-4)
        #expect(c.warmupRatio == 0.1 && c.saveSteps == 50 && c.targetModules == ["q_proj", "v_proj"])
        let d = try TrainingConfig(yaml: try YAMLNode.parse("beta: 0.2\nloss_type: ipo\nlearning_rate: 5e-5\n", file: "dpo.yaml"), file: "dpo.yaml")
        #expect(d.beta == 0.2 && d.lossType == .ipo && d.learningRate == 5e-5)
    }

    @Test(arguments: [
        ("learning_rte: 1e-4\n", 1, "unknown key 'learning_rte'", "did you mean 'learning_rate'?"),
        ("epochs: 3\nbatch_size: four\n", 2, "key 'batch_size' must be a whole number", "four"),
        ("lora_dropout: 1.5\n", 1, "lora_dropout", "[0, 1)"),
        ("beta: 0.1\nlabel_smoothing: 0.5\n", 2, "label_smoothing", "[0, 0.5)"),  // the DPO loss divides by 1 − 2·ls
        ("eval_steps: 0\n", 1, "eval_steps", "1"),
        ("loss_type: kto\n", 1, "loss_type", "sigmoid, ipo, hinge, robust"),
        ("target_modules: [q_proj, lm_head]\n", 1, "lm_head", "q_proj"),
        ("epochs: [1\n", 2, "invalid YAML", "sft_config.yaml"),
        ("- a\n- b\n", 1, "expected a mapping", "sft_config.yaml"),
    ])
    func badConfigsNameFileLineAndKey(text: String, line: Int, fragment: String, more: String) throws {
        let p = writeTemp("sft_config.yaml", text)
        do {
            _ = try TrainingConfig.load(yamlFile: p)
            Issue.record("no error for \(text)")
        } catch let e as ConfigError {
            #expect(e.description.contains("sft_config.yaml:\(line)"), "\(e)")
            #expect(e.description.contains(fragment) && e.description.contains(more), "\(e)")
        }
    }

    @Test func yamlValuesKeepTheirLines() throws {
        let n = try YAMLNode.parse("a: 1\nb:\n  - x\n  - 'y'\nc: {d: true}\n", file: "t.yaml")
        let e = n.entries!
        #expect(e.map { $0.key.scalar! } == ["a", "b", "c"])
        #expect(e[1].value.items!.map(\.line) == [3, 4])
        if case .scalar(_, let quoted) = e[1].value.items![1].value { #expect(quoted) }
        #expect(e[2].value.entries?.first?.value.scalar == "true")
        #expect(editDistance("learning_rte", "learning_rate") == 1)
    }
}
