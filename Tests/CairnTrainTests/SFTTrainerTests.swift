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
        let config = ModelConfig(architecture: .llama, vocabSize: tok.vocabSize, hiddenSize: 64, intermediateSize: 128, numLayers: 2,
                                 numHeads: 4, numKVHeads: 2, rmsNormEps: 1e-5, maxPositionEmbeddings: 256,
                                 eosTokenIDs: [tok.eosTokenID!])
        let model = try TransformerModel.randomlyInitialised(config: config, seed: 1)
        // A base model first: full-parameter pretraining on requests with chatty replies, and on
        // JSON records of another shape (a base model has seen JSON, never these replies to requests).
        let pre = SyntheticTasks.examples(200, seed: 3)
        let text = pre.map { "{\"text\": \(jsonString($0.prompt + "\n" + $0.wrong))}" }
            + SyntheticTasks.records(200, seed: 4).map { "{\"text\": \(jsonString($0))}" }
        try text.joined(separator: "\n").write(toFile: s.path + "/pretrain.jsonl", atomically: true, encoding: .utf8)
        let corpus = try SFTDataset(file: s.path + "/pretrain.jsonl", tokenizer: tok, maxSeqLength: 128)
        var pc = TrainingConfig()
        pc.epochs = 2; pc.batchSize = 8; pc.gradientAccumulation = 1; pc.learningRate = 3e-3; pc.warmupRatio = 0.05
        let pretrainer = try SFTTrainer(model: model, train: corpus.examples, config: pc, padID: tok.eosTokenID!, mode: .full)
        while !pretrainer.isFinished { try pretrainer.trainStep() }
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
        print("pretrain \(pretrainer.history.first!.values["loss"]!) -> \(pretrainer.history.last!.values["loss"]!); SFT: held-out loss \(before) -> \(after) in \(trainer.step) steps, \(Date().timeIntervalSince(start)) s")
        #expect(after < before / 2, "held-out loss \(before) -> \(after)")
        #expect(trainer.history.allSatisfy { $0.values["loss"]!.isFinite })
        #expect(trainer.history.first!.values["learning_rate"] == 0)  // warmup starts at zero, as transformers'
    }
}
