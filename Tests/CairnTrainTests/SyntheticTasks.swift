import Foundation
@testable import CairnTrain

/// The synthetic task of the tests: requests about tasks in English, replies in JSON.
/// Deterministic for a seed.
enum SyntheticTasks {
    static let actions = ["create", "delete", "complete", "update"]
    static let titles = ["buy milk", "call mom", "write report", "fix bug", "book flight", "pay rent", "clean desk", "plan trip",
                         "read book", "walk dog", "send invoice", "water plants"]
    static let days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    static let priorities = ["low", "medium", "high"]

    struct Example { let prompt: String; let reply: String; let wrong: String }

    static func examples(_ n: Int, seed: UInt64) -> [Example] {
        var g = RandomGenerator(seed: seed)
        func pick<T>(_ a: [T]) -> T { a[Int(g.next() % UInt64(a.count))] }
        return (0..<n).map { _ in
            let a = pick(actions), t = pick(titles), d = pick(days), p = pick(priorities)
            let prompt = "Please \(a) the task \"\(t)\" due \(d) with \(p) priority."
            let reply = "{\"action\": \"\(a)\", \"title\": \"\(t)\", \"due\": \"\(d)\", \"priority\": \"\(p)\"}"
            let wrong = "Sure, I will \(a) \(t) on \(d)."
            return Example(prompt: prompt, reply: reply, wrong: wrong)
        }
    }

    /// JSON records with the task's words under other keys: what a base model may have seen.
    static func records(_ n: Int, seed: UInt64) -> [String] {
        var g = RandomGenerator(seed: seed)
        func pick<T>(_ a: [T]) -> T { a[Int(g.next() % UInt64(a.count))] }
        return (0..<n).map { i in "{\"id\": \(i), \"name\": \"\(pick(titles))\", \"day\": \"\(pick(days))\", \"level\": \"\(pick(priorities))\"}" }
    }

    /// Writes train.jsonl (SFT), heldout.jsonl (SFT), prefs.jsonl and prefs-heldout.jsonl (DPO), corpus.txt.
    static func write(to dir: String, train: Int = 96, heldout: Int = 24) throws {
        func jsonl(_ rows: [[String: String]]) -> String {
            rows.map { String(data: try! JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), encoding: .utf8)! }.joined(separator: "\n") + "\n"
        }
        let tr = examples(train, seed: 1), ho = examples(heldout, seed: 2)
        try jsonl(tr.map { ["prompt": $0.prompt + "\n", "completion": $0.reply] }).write(toFile: dir + "/train.jsonl", atomically: true, encoding: .utf8)
        try jsonl(ho.map { ["prompt": $0.prompt + "\n", "completion": $0.reply] }).write(toFile: dir + "/heldout.jsonl", atomically: true, encoding: .utf8)
        try jsonl(tr.map { ["prompt": $0.prompt + "\n", "chosen": $0.reply, "rejected": $0.wrong] }).write(toFile: dir + "/prefs.jsonl", atomically: true, encoding: .utf8)
        try jsonl(ho.map { ["prompt": $0.prompt + "\n", "chosen": $0.reply, "rejected": $0.wrong] }).write(toFile: dir + "/prefs-heldout.jsonl", atomically: true, encoding: .utf8)
        try (tr + ho).map { $0.prompt + "\n" + $0.reply + "\n" + $0.wrong }.joined(separator: "\n").write(toFile: dir + "/corpus.txt", atomically: true, encoding: .utf8)
    }

    /// A tiny Llama pretrained (full-parameter, 2 epochs) on requests with chatty replies and on
    /// JSON records of another shape: a base model that has seen JSON but never these replies.
    static func pretrainedBase(in dir: String, tokenizer tok: Tokenizer) throws -> TransformerModel {
        let config = ModelConfig(architecture: .llama, vocabSize: tok.vocabSize, hiddenSize: 64, intermediateSize: 128, numLayers: 2,
                                 numHeads: 4, numKVHeads: 2, rmsNormEps: 1e-5, maxPositionEmbeddings: 256, eosTokenIDs: [tok.eosTokenID!])
        let model = try TransformerModel.randomlyInitialised(config: config, seed: 1)
        let text = examples(200, seed: 3).map { "{\"text\": \(jsonString($0.prompt + "\n" + $0.wrong))}" }
            + records(200, seed: 4).map { "{\"text\": \(jsonString($0))}" }
        try text.joined(separator: "\n").write(toFile: dir + "/pretrain.jsonl", atomically: true, encoding: .utf8)
        var pc = TrainingConfig()
        pc.epochs = 2; pc.batchSize = 8; pc.gradientAccumulation = 1; pc.learningRate = 3e-3; pc.warmupRatio = 0.05
        let corpus = try SFTDataset(file: dir + "/pretrain.jsonl", tokenizer: tok, maxSeqLength: 128)
        let pre = try SFTTrainer(model: model, train: corpus.examples, config: pc, padID: tok.eosTokenID!, mode: .full)
        while !pre.isFinished { try pre.trainStep() }
        return model
    }
}
