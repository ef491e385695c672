import CairnStore
import CairnTrain
import Foundation

/// A sweep file: a pipeline, a space of overrides of its stage configs and validation, a
/// strategy that turns the space into variants, the objective that ranks them, and what to do
/// with the best. Every mistake is a ConfigError naming the sweep file, line and key, found
/// before any run starts.
///
/// ```yaml
/// pipeline: pipelines/task-api          # a pipeline directory or file, relative to this file
/// strategy: grid                        # grid (default) or random (with n and seed)
/// space:
///   sft.learning_rate: [1.0e-3, 3.0e-3]
///   sft.lora_r: [4, 8]
///   sft.lora_alpha: "2*lora_r"          # an expression over a key of the same stage
///   dpo.beta: {loguniform: [0.05, 0.5]} # random only: uniform, loguniform, int
/// objective: {metric: dpo.eval_accuracy, goal: maximize, then: {metric: sft.eval_loss, goal: minimize}}
/// parallel: 1
/// promote_best_to: task-api@sweep-best
/// ```
public struct SweepConfig: Sendable {
    public enum Strategy: String, Sendable { case grid, random }

    /// A metric of a stage's metrics.json (`dpo.eval_accuracy`), to maximize or minimize.
    public struct Objective: Sendable, Equatable {
        public var stage: String
        public var key: String
        public var maximize: Bool
        public var name: String { stage + "." + key }

        /// Whether `a` is better than `b` (a missing value is worse than any).
        public func better(_ a: Double?, _ b: Double?) -> Bool {
            guard let a else { return false }
            guard let b else { return true }
            return maximize ? a > b : a < b
        }
    }

    public var file: String
    public var sweepID: String
    public var pipeline: PipelineConfig
    public var strategy: Strategy = .grid
    public var space: [SweepParameter]
    /// random: how many variants, and the seed that draws them.
    public var count = 0
    public var seed: UInt64 = 0
    /// The objective first, then the metrics that break its ties, in order.
    public var objectives: [Objective]
    /// Runs at once (each with cores / parallel BLAS threads); nil: what the machine allows.
    public var parallel: Int?
    public var promoteBestTo: String?
    public var earlyStop: EarlyStop?

    /// `early_stop: {strategy: successive_halving, metric: sft.eval_loss, min_steps: 20,
    /// reduction_factor: 2}`: every variant trains the metric's stage to `minSteps` (the first
    /// rung), the best 1/factor go on to minSteps·factor, and so on; the rest stop there.
    public struct EarlyStop: Sendable, Equatable {
        public var metric: Objective
        public var minSteps: Int
        public var factor: Int
        public static let keys = ["strategy", "metric", "min_steps", "reduction_factor"]
    }

    public static let keys = ["sweep_id", "pipeline", "strategy", "n", "seed", "space", "objective", "parallel", "promote_best_to", "early_stop"]
    /// The metrics each stage writes in its metrics.json, by stage name.
    public static let stageMetrics: [String: [String]] = [
        "pretrain": ["final_loss", "eval_loss", "total_steps"],
        "sft": ["final_loss", "train_loss", "eval_loss", "total_steps"],
        "dpo": ["final_loss", "eval_loss", "eval_accuracy", "eval_margin", "total_steps"],
    ]
    /// Most variants a sweep may have (a grid's product, or n).
    public static let maxVariants = 10_000

    /// Reads a sweep file and the pipeline it names; `repository` bounds every path
    /// (default: the enclosing git work tree of the sweep file).
    public static func load(_ path: String, repository: String? = nil, allowCommands: Bool = false) throws -> SweepConfig {
        let file = URL(fileURLWithPath: path).standardizedFileURL.path
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ConfigError(file: path, line: nil, "cannot read the sweep file") }
        let m = try YAMLMapping(try YAMLNode.parse(text, file: path), file: path, known: keys)
        let dir = (file as NSString).deletingLastPathComponent
        guard let pipelinePath = try m.string("pipeline") else { throw ConfigError(file: path, line: m.node.line, "a sweep needs 'pipeline' (a pipeline directory or file)") }
        let repo = repository ?? Paths.repositoryRoot(containing: dir) ?? dir
        let resolved = try Paths.inside(repository: repo, relativeTo: dir, pipelinePath, file: path, line: m.node("pipeline")!.line, key: "pipeline")
        let pipeline: PipelineConfig
        do { pipeline = try PipelineConfig.load(resolved, repository: repo, allowCommands: allowCommands) } catch let e as ConfigError where e.file == resolved && e.line == nil {
            throw ConfigError(file: path, line: m.node("pipeline")!.line, "key 'pipeline': \(e.message) ('\(pipelinePath)')")
        }
        let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        var sweep = SweepConfig(file: path, sweepID: try m.string("sweep_id") ?? stem, pipeline: pipeline, space: [], objectives: [])
        if let s = try m.choice("strategy", Strategy.self, allowed: ["grid", "random"]) { sweep.strategy = s }
        if let n = try m.int("n", min: 1, max: maxVariants) { sweep.count = n }
        if let s = try m.int("seed", min: 0, max: Int(UInt32.max)) { sweep.seed = UInt64(s) }
        if sweep.strategy == .random && sweep.count == 0 { throw ConfigError(file: path, line: m.node.line, "strategy random needs 'n' (how many variants)") }
        if sweep.strategy == .grid, let n = m.node("n") { throw ConfigError(file: path, line: n.line, "key 'n' belongs to strategy random; a grid runs every combination") }
        if let p = try m.int("parallel", min: 1, max: 256) { sweep.parallel = p }
        if let a = try m.string("promote_best_to") {
            do { try ArtifactStore.validateAlias(a) } catch { throw ConfigError(file: path, line: m.node("promote_best_to")!.line, "\(error)") }
            sweep.promoteBestTo = a
        }
        guard let spaceNode = m.node("space"), !spaceNode.isNull else { throw ConfigError(file: path, line: m.node.line, "a sweep needs 'space' (the keys to vary and their values)") }
        sweep.space = try SweepParameter.parseSpace(spaceNode, file: path, pipeline: pipeline, strategy: sweep.strategy)
        guard let objective = m.node("objective") else { throw ConfigError(file: path, line: m.node.line, "a sweep needs 'objective' (a metric such as dpo.eval_accuracy)") }
        sweep.objectives = try parseObjective(objective, file: path, pipeline: pipeline)
        if let e = m.node("early_stop"), !e.isNull { sweep.earlyStop = try parseEarlyStop(e, file: path, pipeline: pipeline) }
        return sweep
    }

    /// The early stop: its metric must be one a stage measures while it trains (held-out loss or
    /// accuracy, so the stage needs held-out data), its rungs whole steps.
    static func parseEarlyStop(_ node: YAMLNode, file: String, pipeline: PipelineConfig) throws -> EarlyStop {
        let m = try YAMLMapping(node, file: file, known: EarlyStop.keys)
        guard let s = try m.string("strategy"), s == "successive_halving" else {
            throw ConfigError(file: file, line: m.node("strategy")?.line ?? node.line, "early_stop needs 'strategy: successive_halving' (the one Cairn has)")
        }
        guard let metricNode = m.node("metric") else { throw ConfigError(file: file, line: node.line, "early_stop needs 'metric' (such as sft.eval_loss)") }
        guard let metric = try parseObjective(metricNode, file: file, pipeline: pipeline).first, ["eval_loss", "eval_accuracy", "eval_margin"].contains(metric.key) else {
            throw ConfigError(file: file, line: metricNode.line, "early_stop's metric must be one measured while training: STAGE.eval_loss, dpo.eval_accuracy or dpo.eval_margin")
        }
        let heldOut = metric.stage == "dpo" ? "preference_eval" : "eval"
        let split = pipeline.stages.first { $0.name.rawValue == metric.stage }?.training?.evalSplit ?? 0
        guard pipeline.datasets[heldOut] != nil || split > 0 else {
            throw ConfigError(file: file, line: metricNode.line, "early_stop's metric \(metric.name) needs held-out data: datasets.\(heldOut) or eval_split in the \(metric.stage) config")
        }
        guard let steps = try m.int("min_steps", min: 1, max: 100_000_000) else { throw ConfigError(file: file, line: node.line, "early_stop needs 'min_steps' (the first rung)") }
        return EarlyStop(metric: metric, minSteps: steps, factor: try m.int("reduction_factor", min: 2, max: 100) ?? 2)
    }

    /// `objective: dpo.eval_accuracy` (maximize an accuracy, minimize anything else), or
    /// `{metric, goal, then}`, `then` being another objective that breaks ties.
    static func parseObjective(_ node: YAMLNode, file: String, pipeline: PipelineConfig) throws -> [Objective] {
        let metric: String, goalNode: YAMLNode?, then: YAMLNode?
        if let s = node.scalar {
            metric = s; goalNode = nil; then = nil
        } else {
            let m = try YAMLMapping(node, file: file, known: ["metric", "goal", "then"])
            guard let s = try m.string("metric") else { throw ConfigError(file: file, line: node.line, "an objective needs 'metric' (such as dpo.eval_accuracy)") }
            metric = s; goalNode = m.node("goal"); then = m.node("then")
        }
        let parts = metric.split(separator: ".", maxSplits: 1).map(String.init)
        let enabled = pipeline.stages.filter(\.enabled).map(\.name.rawValue)
        guard parts.count == 2, let known = stageMetrics[parts[0]], known.contains(parts[1]) else {
            let all = stageMetrics.sorted { $0.key < $1.key }.flatMap { s, ks in ks.map { s + "." + $0 } }
            throw ConfigError(file: file, line: node.line, "objective '\(metric)' is not a metric a stage writes: one of \(all.joined(separator: ", "))")
        }
        guard enabled.contains(parts[0]) else {
            throw ConfigError(file: file, line: node.line, "objective '\(metric)': the pipeline has no \(parts[0]) stage (it runs \(enabled.joined(separator: ", ")))")
        }
        var maximize = parts[1].contains("accuracy") || parts[1].contains("margin")
        if let g = goalNode {
            switch g.scalar {
            case "maximize": maximize = true
            case "minimize": maximize = false
            default: throw ConfigError(file: file, line: g.line, "key 'goal' must be maximize or minimize, not '\(g.scalar ?? "a list or mapping")'")
            }
        }
        return [Objective(stage: parts[0], key: parts[1], maximize: maximize)] + (try then.map { try parseObjective($0, file: file, pipeline: pipeline) } ?? [])
    }
}
