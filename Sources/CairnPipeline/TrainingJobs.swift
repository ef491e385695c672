import CairnSystem
import CairnTrain
import Foundation

/// The training stages as jobs on directories: read a Hugging Face model and a dataset, train
/// (resuming when asked), and write the outputs atomically only when training succeeded.
public enum TrainingJobs {
    public struct Options {
        public var model: String
        public var data: String
        public var eval: String?
        public var config: TrainingConfig
        public var out: String
        public var resume: Bool
        /// What adapter_config.json records as base_model_name_or_path (default: `model`).
        public var baseModelName: String?
        /// Called after every optimizer step: metrics, total steps, seconds since this run started, steps this run.
        public var progress: ((LoggedMetrics, Int, Double, Int) -> Void)?
        /// Asked after every step; true stops training with a checkpoint (TrainingInterrupted).
        public var stopRequested: () -> Bool = { false }
        /// Called for notes worth a line (skipped examples, resumed step).
        public var note: (String) -> Void

        public init(model: String, data: String, eval: String? = nil, config: TrainingConfig, out: String, resume: Bool = false,
                    progress: ((LoggedMetrics, Int, Double, Int) -> Void)? = nil, note: @escaping (String) -> Void = { _ in }) {
            self.model = model; self.data = data; self.eval = eval; self.config = config; self.out = out; self.resume = resume
            self.progress = progress; self.note = note
        }
    }

    /// The reference's metrics.json keys, and what else the stage measured.
    public typealias Summary = [String: Double]

    /// `evaluate`: the held-out measurement, when the stage has held-out data; it runs every
    /// eval_steps (default: every save_steps) steps and is logged in metrics.jsonl with the step.
    static func runner(_ o: Options, evaluate: (() throws -> [String: Double])?) -> TrainingRunner {
        TrainingRunner(checkpointDirectory: o.out + "/checkpoints", metricsFile: o.out + "/metrics.jsonl",
                       saveSteps: o.config.saveSteps, keep: o.config.saveTotalLimit, loggingSteps: o.config.loggingSteps,
                       evalSteps: o.config.evalSteps ?? o.config.saveSteps, evaluate: evaluate)
    }

    static func writeSummary(_ s: Summary, to dir: String) throws {
        let data = try JSONSerialization.data(withJSONObject: s, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: dir + "/metrics.json")
    }

    /// Training and held-out indices: all for training when an eval file is given, else the eval_split.
    static func split(_ o: Options, _ c: TrainingConfig, count: Int) -> (train: [Int], held: [Int]) {
        o.eval == nil ? c.evalSplitIndices(count: count) : (Array(0..<count), [])
    }


    static func prepare(_ o: Options) throws -> (TransformerModel, Tokenizer) {
        try FileManager.default.createDirectory(atPath: o.out, withIntermediateDirectories: true)
        let model = try TransformerModel.load(directory: o.model)
        let tok = try Tokenizer(directory: o.model)
        guard tok.vocabSize <= model.config.vocabSize else {
            throw ModelError("\(o.model): the tokenizer has \(tok.vocabSize) tokens, the model's vocab_size is \(model.config.vocabSize)")
        }
        return (model, tok)
    }

    /// LoRA SFT: writes a PEFT adapter, the tokenizer, metrics.jsonl and metrics.json into `out`.
    @discardableResult
    public static func sft(_ o: Options) throws -> Summary {
        let (model, tok, summary) = try nextTokenTraining(o, config: o.config, mode: .lora)
        try model.saveAdapter(to: o.out, baseModel: o.baseModelName ?? o.model)
        try tok.write(to: o.out)
        try writeSummary(summary, to: o.out)
        return summary
    }

    /// Full-parameter next-token training: writes the model (config.json, model.safetensors), tokenizer and metrics.
    @discardableResult
    public static func pretrain(_ o: Options) throws -> Summary {
        var c = o.config
        c.completionOnlyLoss = false
        let (model, tok, summary) = try nextTokenTraining(o, config: c, mode: .full)
        try model.save(to: o.out)
        try tok.write(to: o.out)
        try writeSummary(summary, to: o.out)
        return summary
    }

    /// SFT and pretraining: the same data, trainer, resume and held-out loss; they differ in the
    /// weights trained (`mode`) and written. SFT's summary also counts samples and the mean loss.
    static func nextTokenTraining(_ o: Options, config c: TrainingConfig, mode: Trainable) throws -> (TransformerModel, Tokenizer, Summary) {
        let (model, tok) = try prepare(o)
        let data = try SFTDataset(file: o.data, tokenizer: tok, maxSeqLength: c.maxSeqLength, completionOnlyLoss: c.completionOnlyLoss)
        if mode == .lora && data.skippedTooLong > 0 {
            o.note("skipped \(data.skippedTooLong) example(s) of '\(o.data)' with no completion token within max_seq_length \(c.maxSeqLength)")
        }
        let pad = tok.padTokenID ?? tok.eosTokenID ?? 0
        let (trainIdx, evalIdx) = split(o, c, count: data.examples.count)
        // Held-out examples: the eval file when given, else the eval_split. The held-out SFT loss is
        // over completion tokens whatever completion_only_loss says (as it has been).
        let held = try o.eval.map {
            try SFTDataset(file: $0, tokenizer: tok, maxSeqLength: c.maxSeqLength, completionOnlyLoss: mode == .lora).examples
        } ?? evalIdx.map { data.examples[$0] }
        let heldOutLoss = { try SFTTrainer.evaluate(model: model, examples: held, batchSize: c.batchSize, padID: pad) }
        let trainer = try SFTTrainer(model: model, train: trainIdx.map { data.examples[$0] }, config: c, padID: pad, mode: mode)
        let from = try runner(o, evaluate: held.isEmpty ? nil : { ["eval_loss": try heldOutLoss()] }).run(trainer, resume: o.resume, progress: o.progress, stopRequested: o.stopRequested)
        if from > 0 { o.note("resumed from checkpoint-\(from)") }
        var summary: Summary = ["final_loss": trainer.history.last!.values["loss"]!, "total_steps": Double(trainer.step),
                                "epochs_completed": trainer.history.last!.epoch]
        if mode == .lora {
            summary["samples_processed"] = Double(trainer.step * c.batchSize * c.gradientAccumulation)
            summary["train_loss"] = trainer.history.map { $0.values["loss"]! }.reduce(0, +) / Double(trainer.history.count)
        }
        if !held.isEmpty { summary["eval_loss"] = try heldOutLoss() }
        return (model, tok, summary)
    }

    /// DPO with a fresh LoRA: writes the adapter, tokenizer, metrics.jsonl and metrics.json.
    @discardableResult
    public static func dpo(_ o: Options) throws -> Summary {
        let (model, tok) = try prepare(o)
        let data = try PreferenceDataset(file: o.data, tokenizer: tok, maxSeqLength: o.config.maxSeqLength)
        if data.skippedTooLong > 0 { o.note("skipped \(data.skippedTooLong) pair(s) of '\(o.data)' with no completion token within max_seq_length") }
        if o.config.lossType == .sigmoid && o.config.labelSmoothing != 0 {
            o.note("label_smoothing is ignored by the sigmoid loss (as in TRL 1.16); use loss_type robust for it")
        }
        let pad = tok.padTokenID ?? tok.eosTokenID ?? 0
        let (trainIdx, evalIdx) = split(o, o.config, count: data.pairs.count)
        let held = try o.eval.map { try PreferenceDataset(file: $0, tokenizer: tok, maxSeqLength: o.config.maxSeqLength).pairs }
            ?? evalIdx.map { data.pairs[$0] }
        let measure = { () throws -> [String: Double] in
            let r = try DPOTrainer.evaluate(model: model, pairs: held, beta: o.config.beta, padID: pad)
            return ["eval_accuracy": r.accuracy, "eval_margin": r.margin, "eval_loss": r.loss]
        }
        let trainer = try DPOTrainer(model: model, pairs: trainIdx.map { data.pairs[$0] }, config: o.config, padID: pad)
        let from = try runner(o, evaluate: held.isEmpty ? nil : measure).run(trainer, resume: o.resume, progress: o.progress, stopRequested: o.stopRequested)
        if from > 0 { o.note("resumed from checkpoint-\(from)") }
        var summary: Summary = trainer.history.last!.values
        summary["final_loss"] = summary["loss"]
        summary["total_steps"] = Double(trainer.step)
        summary["beta_used"] = o.config.beta
        if !held.isEmpty { summary.merge(try measure()) { _, new in new } }
        try model.saveAdapter(to: o.out, baseModel: o.baseModelName ?? o.model)
        try tok.write(to: o.out)
        try writeSummary(summary, to: o.out)
        return summary
    }

    /// W += scaling·B·A for every target; writes an HF model directory (and the tokenizer when the
    /// base has one) in `dtype` (default: the base's).
    public static func merge(model modelDir: String, adapter: String, out: String, dtype: DType? = nil) throws {
        let (model, baseDType) = try TransformerModel.loadWithStoredType(directory: modelDir)
        try model.loadAdapter(directory: adapter)
        try model.mergeLoRA()
        try model.save(to: out, dtype: dtype ?? baseDType)
        if let tok = try? Tokenizer(directory: modelDir) { try tok.write(to: out) }
    }
}
