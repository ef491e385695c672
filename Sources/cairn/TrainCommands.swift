import CairnPipeline
import CairnStore
import CairnTrain
import Foundation

/// `cairn train pretrain|sft|dpo` and `cairn merge`: parse, call TrainingJobs, print progress.
enum TrainCommands {
    /// The option group every `cairn train KIND` takes.
    static func train(_ kind: String, _ summary: String) -> CommandSpec {
        CommandSpec(name: "train " + kind,
                    usage: "cairn train \(kind) --model M --data FILE.jsonl --config CONFIG.yaml --out DIR [--eval FILE.jsonl] [--save-steps N] [--base-name NAME] [--resume]",
                    summary: summary, flags: ["resume"], options: ["model", "data", "config", "out", "eval", "save-steps", "base-name"])
    }
    static let specs: [CommandSpec] = [
        train("pretrain", "full-parameter next-token training ({\"text\"} lines)"),
        train("sft", "LoRA supervised fine-tuning; writes a PEFT adapter"),
        train("dpo", "DPO with a fresh LoRA on a (merged) model"),
        CommandSpec(name: "merge", usage: "cairn merge --model M --adapter A --out DIR [--dtype f32|f16|bf16]",
                    summary: "fold a LoRA adapter into the model's weights", options: ["model", "adapter", "out", "dtype"]),
    ]

    static func run(_ name: String, _ a: Arguments) throws -> Int32 {
        if name == "merge" {
            let (model, cleanup) = try ModelCommands.modelDirectory(try a.required("model"), a)
            defer { cleanup() }
            let (adapter, acleanup) = try ModelCommands.modelDirectory(try a.required("adapter"), a)
            defer { acleanup() }
            let dtype = try a.option("dtype").map(ModelCommands.parseDType)
            let out = try a.required("out")
            try TrainingJobs.merge(model: model, adapter: adapter, out: out, dtype: dtype)
            Output.out("merged '\(a.options["adapter"]![0])' into '\(a.options["model"]![0])': \(out)")
            return 0
        }
        let (model, cleanup) = try ModelCommands.modelDirectory(try a.required("model"), a)
        defer { cleanup() }
        var config = try TrainingConfig.load(yamlFile: try a.required("config"))
        if a.options["save-steps"] != nil { config.saveSteps = max(1, try a.int("save-steps", default: config.saveSteps)) }
        let terminal = isatty(2) == 1
        var lastPrint = 0.0
        let baseOptions = TrainingJobs.Options(
            model: model, data: try a.required("data"), eval: try a.option("eval"), config: config, out: try a.required("out"),
            resume: a.has("resume"),
            progress: { m, total, elapsed, done in
                let rate = Double(done) / max(elapsed, 1e-9)
                let eta = Double(total - m.step) / max(rate, 1e-9)
                var text = String(format: "step %d/%d  loss %.4f  lr %.2e", m.step, total, m.values["loss"] ?? .nan, m.values["learning_rate"] ?? 0)
                if let t = m.values["tokens"] { text += String(format: "  %.0f tok/s", t * rate) }
                if let acc = m.values["rewards/accuracies"] { text += String(format: "  acc %.2f", acc) }
                text += String(format: "  ETA %d:%02d", Int(eta) / 60, Int(eta) % 60)
                if terminal {
                    FileHandle.standardError.write(Data(("\r\u{1B}[K" + text + (m.step == total ? "\n" : "")).utf8))
                } else if m.step % config.loggingSteps == 0 || m.step == total || elapsed - lastPrint > 10 {
                    lastPrint = elapsed
                    Output.note(text)
                }
            },
            note: { Output.note("note: " + $0) })
        var options = baseOptions
        options.baseModelName = try a.option("base-name")
        let stop = StopSignal()  // SIGTERM: finish the step, write a checkpoint, stop
        options.stopRequested = { stop.isSet }
        let summary: TrainingJobs.Summary
        switch name {
        case "train pretrain": summary = try TrainingJobs.pretrain(options)
        case "train sft": summary = try TrainingJobs.sft(options)
        default: summary = try TrainingJobs.dpo(options)
        }
        Output.out(summary.sorted { $0.key < $1.key }.map { "\($0.key): \(String(format: "%.6g", $0.value))" }.joined(separator: "\n"))
        return 0
    }
}
