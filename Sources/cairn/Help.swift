import CairnPipeline

/// What `cairn` says about its commands: the overview grouped by task, an example per command,
/// and the nearest command or option to a mistyped one.
enum Help {
    static let groups: [(title: String, commands: [String])] = [
        ("Store: artifacts, lineage, aliases", ["init", "add", "artifacts", "show", "checkout", "lineage", "descendants", "alias", "rollback",
                                                "gc", "fsck", "index rebuild"]),
        ("Pipelines and runs", ["run", "runs", "run show", "resume", "report", "check", "worker"]),
        ("Sweeps: variants of a pipeline", ["sweep", "compare"]),
        ("GitOps: runs from commits", ["status", "hooks install", "watch", "trigger", "queue", "queue work", "queue run-one"]),
        ("Training", ["train pretrain", "train sft", "train dpo", "merge"]),
        ("Models and tokenizers", ["model import", "model export", "model generate", "model logprobs", "model tokenize", "model chat-template",
                                   "model init", "tokenizer train"]),
    ]

    static let examples: [String: String] = [
        "init": "cairn init --store ./store",
        "add": "cairn add data/sft.jsonl --kind dataset --name task-api-sft",
        "artifacts": "cairn artifacts --kind adapter",
        "show": "cairn show task-api@production",
        "checkout": "cairn checkout task-api@production ./model",
        "lineage": "cairn lineage task-api@production --dot > lineage.dot",
        "descendants": "cairn descendants data/sft.jsonl",
        "alias": "cairn alias set task-api@staging 3f2a9c1e --reason \"manual check passed\"",
        "rollback": "cairn rollback task-api@production --reason \"prose replies\"",
        "gc": "cairn gc --dry-run",
        "fsck": "cairn fsck --repair",
        "index rebuild": "cairn index rebuild --json",
        "run": "cairn run pipelines/task-api --executor slurm",
        "runs": "cairn runs --limit 10",
        "run show": "cairn run show 12",
        "resume": "cairn resume 12",
        "report": "cairn report 12 --out reports/",
        "check": "cairn check output_format_valid --model ./merged --data eval_prompts.jsonl --result out.json",
        "worker": "cairn worker /shared/task-api/artifacts/run-12/sft/attempt-1/job.json",
        "sweep": "cairn sweep pipelines/task-api/sweep-lr.yaml",
        "compare": "cairn compare pipelines/task-api/sweep-lr.yaml --markdown",
        "status": "cairn status --json",
        "hooks install": "cairn hooks install ~/task-api-repo --store ~/cairn-store",
        "watch": "cairn watch ~/task-api-repo --branch main",
        "trigger": "cairn trigger ~/task-api-repo --wait",
        "queue": "cairn queue --all",
        "queue work": "cairn queue work --jobs 2",
        "queue run-one": "cairn queue run-one 7",
        "train pretrain": "cairn train pretrain --model ./init --data corpus.jsonl --config pretrain.yaml --out ./pretrained",
        "train sft": "cairn train sft --model smollm2-135m-instruct@upstream --data sft.jsonl --config sft.yaml --out ./adapter",
        "train dpo": "cairn train dpo --model ./merged --data preferences.jsonl --config dpo.yaml --out ./dpo",
        "merge": "cairn merge --model ./base --adapter ./adapter --out ./merged",
        "model import": "cairn model import SmolLM2-135M-Instruct-Q8_0.gguf --out ./smollm2",
        "model export": "cairn model export task-api@production --format gguf --type q8_0 --out task-api.gguf",
        "model generate": "cairn model generate task-api@production --chat --prompt \"Create a task: buy milk\"",
        "model logprobs": "cairn model logprobs ./model --text \"Hello world\"",
        "model tokenize": "cairn model tokenize ./model --text \"Hello world\" --json",
        "model chat-template": "cairn model chat-template ./model --messages chat.json",
        "model init": "cairn model init --arch llama --config model.json --tokenizer ./tokenizer --out ./init --seed 1",
        "tokenizer train": "cairn tokenizer train --corpus corpus.txt --vocab-size 512 --out ./tokenizer",
    ]

    /// `cairn` alone or `cairn --help`: the commands grouped by task, with what each does.
    static func overview(_ specs: [CommandSpec]) -> String {
        var lines = ["usage: cairn COMMAND [ARGS] [--store DIR]", ""]
        let width = (specs.map(\.name.count).max() ?? 0) + 2
        for g in groups {
            lines.append(g.title + ":")
            for name in g.commands {
                guard let c = specs.first(where: { $0.name == name }) else { continue }
                lines.append("  " + c.name.padding(toLength: width, withPad: " ", startingAt: 0) + c.summary)
            }
            lines.append("")
        }
        let grouped = Set(groups.flatMap(\.commands))
        let others = specs.filter { !grouped.contains($0.name) }
        if !others.isEmpty {
            lines.append("Other:")
            for c in others { lines.append("  " + c.name.padding(toLength: width, withPad: " ", startingAt: 0) + c.summary) }
            lines.append("")
        }
        lines.append("The store is --store DIR, else $CAIRN_STORE, else the nearest ./store. `cairn COMMAND --help` for details and an example.")
        return lines.joined(separator: "\n")
    }

    /// `cairn COMMAND --help`.
    static func command(_ spec: CommandSpec) -> String {
        "usage: \(spec.usage)\n\n\(spec.summary)" + (examples[spec.name].map { "\n\nexample: \($0)" } ?? "")
    }

    /// The candidate nearest to `word`, when it is near enough to be what was meant.
    static func nearest(_ word: String, in candidates: [String]) -> String? {
        guard let best = candidates.min(by: { editDistance($0, word) < editDistance($1, word) }) else { return nil }
        let d = editDistance(best, word)
        return d > 0 && d <= max(2, word.count / 3) ? best : nil
    }
}
