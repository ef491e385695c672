import Foundation
import Testing
@testable import CairnTrain

func jsonString(_ s: String) -> String {
    String(data: try! JSONSerialization.data(withJSONObject: [s]), encoding: .utf8)!.dropFirst().dropLast().description
}

@Suite("LoRA SFT")
struct SFTTrainerTests {
    @Test func sftHalvesTheHeldOutLossOnTheSyntheticTask() throws {
        let s = Scratch()
        try SyntheticTasks.write(to: s.path)
        let tok = try TokenizerTrainer.train(corpusFiles: [s.path + "/corpus.txt"], vocabSize: 400)
        let model = try SyntheticTasks.pretrainedBase(in: s.path, tokenizer: tok)
        let train = try SFTDataset(file: s.path + "/train.jsonl", tokenizer: tok, maxSeqLength: 128)
        let held = try SFTDataset(file: s.path + "/heldout.jsonl", tokenizer: tok, maxSeqLength: 128)
        var tc = TrainingConfig()
        tc.epochs = 12; tc.batchSize = 8; tc.gradientAccumulation = 1; tc.learningRate = 5e-3; tc.warmupRatio = 0.05
        tc.loraR = 16; tc.loraAlpha = 32; tc.loraDropout = 0; tc.targetModules = LoRASpec.allTargets
        let pad = tok.padTokenID ?? tok.eosTokenID!
        let trainer = try SFTTrainer(model: model, train: train.examples, config: tc, padID: pad)
        let before = try SFTTrainer.evaluate(model: model, examples: held.examples, batchSize: 8, padID: pad)
        let start = Date()
        while !trainer.isFinished { try trainer.trainStep() }
        let after = try SFTTrainer.evaluate(model: model, examples: held.examples, batchSize: 8, padID: pad)
        print("SFT: held-out loss \(before) -> \(after) in \(trainer.step) steps, \(Date().timeIntervalSince(start)) s")
        #expect(after < before / 2, "held-out loss \(before) -> \(after)")
        // The fast held-out loss (the training step's sharded path) against its naive reference
        // (plain logits), before and after training, with and without padding in the batches.
        for bs in [8, 5] {
            let fast = try SFTTrainer.evaluate(model: model, examples: held.examples, batchSize: bs, padID: pad)
            let naive = try SFTTrainer.evaluateReference(model: model, examples: held.examples, batchSize: bs, padID: pad)
            #expect(abs(fast - naive) <= 1e-5 * abs(naive), "batch \(bs): \(fast) vs \(naive)")
        }
        #expect(trainer.history.allSatisfy { $0.values["loss"]!.isFinite })
        #expect(trainer.history.first!.values["learning_rate"] == 0)  // warmup starts at zero, as transformers'
    }
}
