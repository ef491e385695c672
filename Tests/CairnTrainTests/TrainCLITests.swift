import Foundation
import Testing
@testable import CairnTrain

/// A tiny base model with its tokenizer, and the synthetic task's data, in a scratch folder.
func trainingWorkspace() throws -> Scratch {
    let s = Scratch()
    try SyntheticTasks.write(to: s.path, train: 48, heldout: 12)
    let tok = try TokenizerTrainer.train(corpusFiles: [s.path + "/corpus.txt"], vocabSize: 400)
    let config = ModelConfig(architecture: .qwen2, vocabSize: tok.vocabSize, hiddenSize: 32, intermediateSize: 64, numLayers: 2,
                             numHeads: 4, numKVHeads: 2, rmsNormEps: 1e-6, tieWordEmbeddings: true, maxPositionEmbeddings: 256,
                             eosTokenIDs: [tok.eosTokenID!])
    let model = try TransformerModel.randomlyInitialised(config: config, seed: 5)
    try model.save(to: s.path + "/base")
    try tok.write(to: s.path + "/base")
    _ = s.write("sft.yaml", "epochs: 3\nbatch_size: 4\ngradient_accumulation: 2\nlearning_rate: 3e-3\nwarmup_ratio: 0.1\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.1\nsave_steps: 2\nsave_total_limit: 2\nlogging_steps: 1\nmax_seq_length: 96\n")
    _ = s.write("dpo.yaml", "epochs: 2\nbatch_size: 4\ngradient_accumulation: 1\nlearning_rate: 2e-3\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.1\nbeta: 0.1\nsave_steps: 3\nlogging_steps: 1\nmax_seq_length: 96\n")
    // Held out a quarter, measured every 2 steps, logged every 3: the eval lines are there because of the eval.
    _ = s.write("sft-eval.yaml", "epochs: 2\nbatch_size: 4\ngradient_accumulation: 1\nlearning_rate: 3e-3\nlora_r: 4\nlora_alpha: 8\nlora_dropout: 0.0\nsave_steps: 3\nlogging_steps: 3\neval_split: 0.25\neval_steps: 2\nmax_seq_length: 96\n")
    _ = s.write("dpo-eval.yaml", "epochs: 2\nbatch_size: 4\ngradient_accumulation: 1\nlearning_rate: 2e-3\nlora_r: 4\nlora_alpha: 8\nbeta: 0.1\nsave_steps: 3\nlogging_steps: 3\neval_split: 0.25\neval_steps: 2\nmax_seq_length: 96\n")
    return s
}

@Suite("cairn train and cairn merge", .serialized)
struct TrainCLITests {
    let cairn = cairnExecutable()

    func train(_ kind: String, _ s: Scratch, out: String, data: String, config: String, resume: Bool = false) throws -> (status: Int32, out: String, err: String) {
        try runProcess(cairn, ["train", kind, "--model", s.path + "/base", "--data", s.path + "/" + data, "--config", s.path + "/" + config,
                               "--out", s.path + "/" + out] + (resume ? ["--resume"] : []))
    }

    /// Starts a training process and SIGKILLs it once checkpoint-`after` exists.
    func killAfterCheckpoint(_ args: [String], checkpoints: String, after: Int) throws -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: cairn)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && Date() < deadline {
            if FileManager.default.fileExists(atPath: checkpoints + "/checkpoint-\(after)") { kill(p.processIdentifier, SIGKILL); break }
            usleep(2000)
        }
        p.waitUntilExit()
        return p.terminationReason == .uncaughtSignal
    }

    @Test(arguments: [("sft", "train.jsonl", "sft.yaml", 4), ("dpo", "prefs.jsonl", "dpo.yaml", 3),
                      ("sft", "train.jsonl", "sft-eval.yaml", 3), ("dpo", "prefs.jsonl", "dpo-eval.yaml", 3)])
    func killedAndResumedRunEndsByteIdentical(kind: String, data: String, config: String, killAfter: Int) throws {
        let s = try trainingWorkspace()
        let whole = try train(kind, s, out: "whole", data: data, config: config)
        if config.contains("eval") {  // the held-out numbers are the same in another process
            _ = try train(kind, s, out: "again", data: data, config: config)
            #expect(FileManager.default.contents(atPath: s.path + "/whole/metrics.jsonl") == FileManager.default.contents(atPath: s.path + "/again/metrics.jsonl"))
            #expect(FileManager.default.contents(atPath: s.path + "/whole/metrics.json") == FileManager.default.contents(atPath: s.path + "/again/metrics.json"))
        }
        #expect(whole.status == 0, "\(whole.err)")
        let args = ["train", kind, "--model", s.path + "/base", "--data", s.path + "/" + data, "--config", s.path + "/" + config, "--out", s.path + "/cut"]
        let killed = try killAfterCheckpoint(args, checkpoints: s.path + "/cut/checkpoints", after: killAfter)
        #expect(killed, "the run finished before it could be killed")
        #expect(!FileManager.default.fileExists(atPath: s.path + "/cut/adapter_model.safetensors"))
        let resumed = try train(kind, s, out: "cut", data: data, config: config, resume: true)
        #expect(resumed.status == 0, "\(resumed.err)")
        #expect(resumed.err.contains("resumed from checkpoint-"))
        let a = FileManager.default.contents(atPath: s.path + "/whole/adapter_model.safetensors")
        let b = FileManager.default.contents(atPath: s.path + "/cut/adapter_model.safetensors")
        #expect(a != nil && a == b, "adapters differ after resume")
        let wholeLog = try String(contentsOfFile: s.path + "/whole/metrics.jsonl", encoding: .utf8)
        let cutLog = try String(contentsOfFile: s.path + "/cut/metrics.jsonl", encoding: .utf8)
        #expect(wholeLog == cutLog, "metrics.jsonl differs after the resume:\n\(zip(wholeLog.split(separator: "\n"), cutLog.split(separator: "\n")).filter { $0 != $1 }.map { "\($0)\n\($1)" }.joined(separator: "\n"))")
        #expect(try String(contentsOfFile: s.path + "/whole/metrics.json", encoding: .utf8) == String(contentsOfFile: s.path + "/cut/metrics.json", encoding: .utf8))
        if config.contains("eval") {
            // Held-out data measured every eval_steps steps during training (not the last: the
            // stage measures that itself), logged with the step and kept through the resume.
            let rows = try String(contentsOfFile: s.path + "/cut/metrics.jsonl", encoding: .utf8).split(separator: "\n")
                .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let total = try #require(rows.last?["step"] as? Int)
            let evalSteps = rows.filter { $0["eval_loss"] != nil }.compactMap { $0["step"] as? Int }
            #expect(evalSteps == Array(stride(from: 2, to: total, by: 2)), "\(evalSteps) of \(total)")
            #expect(rows.allSatisfy { ($0["eval_loss"] as? Double).map { $0.isFinite && $0 > 0 } ?? true })
            if kind == "dpo" { #expect(rows.filter { $0["eval_accuracy"] != nil }.count == evalSteps.count) }
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.path + "/cut/metrics.json"))) as! [String: Double]
            #expect(summary["eval_loss"] != nil)
        }
        // The adapter loads back onto the base model.
        let m = try TransformerModel.load(directory: s.path + "/base")
        try m.loadAdapter(directory: s.path + "/cut")
        #expect(m.loraSpec?.rank == 4)
    }

    @Test func sftThenMergeGivesTheAdapterLogitsAndBadInputIsExitTwo() throws {
        let s = try trainingWorkspace()
        let r = try runProcess(cairn, ["train", "sft", "--model", s.path + "/base", "--data", s.path + "/train.jsonl", "--eval", s.path + "/heldout.jsonl",
                                       "--config", s.path + "/sft.yaml", "--out", s.path + "/sft"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("final_loss") && r.out.contains("eval_loss"))
        let lines = (try String(contentsOfFile: s.path + "/sft/metrics.jsonl", encoding: .utf8)).split(separator: "\n")
        #expect(lines.count == 18)  // 48 examples / (4 × 2) × 3 epochs, logging_steps 1
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.path + "/sft/metrics.json"))) as! [String: Double]
        #expect(metrics["total_steps"] == 18)
        let merged = try runProcess(cairn, ["merge", "--model", s.path + "/base", "--adapter", s.path + "/sft", "--out", s.path + "/merged"])
        #expect(merged.status == 0, "\(merged.err)")
        let base = try TransformerModel.load(directory: s.path + "/base")
        try base.loadAdapter(directory: s.path + "/sft")
        let ids = [[3, 40, 7, 99, 12, 5]]
        let mm = try TransformerModel.load(directory: s.path + "/merged")
        #expect(try mm.logits(inputIDs: ids).maxAbsDifference(base.logits(inputIDs: ids)) < 1e-4)
        #expect(FileManager.default.fileExists(atPath: s.path + "/merged/tokenizer.json"))
        // Bad inputs: file, line and key; exit 2.
        let badCfg = s.write("bad.yaml", "learning_rte: 1e-3\n")
        let c = try runProcess(cairn, ["train", "sft", "--model", s.path + "/base", "--data", s.path + "/train.jsonl", "--config", badCfg, "--out", s.path + "/x"])
        #expect(c.status == 2 && c.err.contains("bad.yaml:1") && c.err.contains("learning_rate"))
        let badData = s.write("bad.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"c\"}\n")
        let d = try runProcess(cairn, ["train", "sft", "--model", s.path + "/base", "--data", badData, "--config", s.path + "/sft.yaml", "--out", s.path + "/y"])
        #expect(d.status == 2 && d.err.contains("line 2") && d.err.contains("completion"))
        #expect(!FileManager.default.fileExists(atPath: s.path + "/y/adapter_model.safetensors"))
    }
}

@Suite("cairn train pretrain and eval splits")
struct PretrainCLITests {
    @Test func pretrainWritesAModelThatLoadsAndLearnedWithAHeldOutSplit() throws {
        let s = try trainingWorkspace()
        let lines = SyntheticTasks.examples(40, seed: 9).map { "{\"text\": \(jsonString($0.prompt + " " + $0.reply))}" }
        let data = s.write("text.jsonl", lines.joined(separator: "\n") + "\n")
        let cfg = s.write("pre.yaml", "epochs: 2\nbatch_size: 4\ngradient_accumulation: 1\nlearning_rate: 3e-3\nmax_seq_length: 96\neval_split: 0.2\nsave_steps: 100\n")
        let r = try runProcess(cairnExecutable(), ["train", "pretrain", "--model", s.path + "/base", "--data", data, "--config", cfg, "--out", s.path + "/pre"])
        #expect(r.status == 0, "\(r.err)")
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.path + "/pre/metrics.json"))) as! [String: Double]
        #expect(metrics["total_steps"] == 16)  // 32 training lines (8 held out) / 4 × 2 epochs
        #expect(metrics["eval_loss"]! < 5.5)     // a random model starts near ln(vocab) ≈ 5.99
        let m = try TransformerModel.load(directory: s.path + "/pre")
        let base = try TransformerModel.load(directory: s.path + "/base")
        #expect(try m.logits(inputIDs: [[3, 4, 5]]).maxAbsDifference(base.logits(inputIDs: [[3, 4, 5]])) > 1e-3)
        var c = TrainingConfig(); c.evalSplit = 0.2
        let split = c.evalSplitIndices(count: 40)
        #expect(split.eval.count == 8 && Set(split.train).isDisjoint(with: split.eval) && split.train.count == 32)
    }
}

@Suite("Non-finite values stop training")
struct NonFiniteTests {
    @Test func aNaNStopsAtItsStepAndNoAdapterIsWritten() throws {
        let s = try trainingWorkspace()
        // Poison one weight of the base model.
        let m = try TransformerModel.load(directory: s.path + "/base")
        let w = m.namedParameters().first { $0.name == "model.layers.1.mlp.up_proj.weight" }!.tensor
        w[7] = .nan
        try m.save(to: s.path + "/poisoned")
        try Tokenizer(directory: s.path + "/base").write(to: s.path + "/poisoned")
        let r = try runProcess(cairnExecutable(), ["train", "sft", "--model", s.path + "/poisoned", "--data", s.path + "/train.jsonl",
                                                   "--config", s.path + "/sft.yaml", "--out", s.path + "/out"])
        #expect(r.status == 1)
        #expect(r.err.contains("training stopped at step 1") && r.err.contains("loss"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: s.path + "/out/adapter_model.safetensors"))
        #expect(!FileManager.default.fileExists(atPath: s.path + "/out/metrics.json"))
    }
}
