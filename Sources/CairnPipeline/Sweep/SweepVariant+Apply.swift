import CairnStore
import CairnSystem
import CairnTrain
import Foundation

/// A variant applied to its pipeline: each stage config it overrides written again with the
/// overrides (a file of its own, stored as the run's config like any other), validation
/// overridden in place. Two variants with the same SFT values write byte-identical SFT configs,
/// so the stage cache runs that SFT once for both.
extension SweepVariant {
    /// The variant's id within its sweep: a hash of its values (12 hex digits).
    public var id: String { String(SHA256Hex.of(values.map { "\($0.name)=\($0.text)" }.joined(separator: "\n")).prefix(12)) }

    /// `sft.learning_rate=0.001 dpo.beta=0.1`.
    public var label: String { values.map { "\($0.name)=\($0.text)" }.joined(separator: " ") }

    /// The pipeline with this variant's values; stage configs written under `directory`.
    /// Errors name the sweep file and the line of the value that is wrong.
    public func apply(to sweep: SweepConfig, directory: String) throws -> PipelineConfig {
        var config = sweep.pipeline
        // A variant is an experiment: only the sweep's best moves an alias (promote_best_to).
        config.promoteTo = nil
        for p in sweep.space where p.target == "validation" {
            guard let text = values.first(where: { $0.name == p.name })?.text else { continue }
            guard let x = Double(text), x.isFinite, let b = SweepParameter.validationKeys[p.key], b.contains(x) else {
                throw ConfigError(file: sweep.file, line: p.line, "'\(p.name)' must be a number in \(SweepParameter.validationKeys[p.key]!), not '\(text)'")
            }
            switch p.key {
            case "max_loss": config.validation.maxLoss = x
            case "min_accuracy": config.validation.minAccuracy = x
            default: config.validation.mergeTolerance = x
            }
        }
        for i in config.stages.indices {
            let stage = config.stages[i].name.rawValue
            let params = sweep.space.filter { $0.target == stage }
            // The early stop's stage measures its held-out data at every rung (rungs are multiples of min_steps).
            let rungs = sweep.earlyStop.flatMap { $0.metric.stage == stage ? $0.minSteps : nil }
            guard !params.isEmpty || rungs != nil, let original = config.stages[i].configPath else { continue }
            let (text, training) = try overridden(original, stage: stage, params: params, sweepFile: sweep.file, evalSteps: rungs)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let path = directory + "/\(stage)_config.yaml"
            try AtomicFile.write(text, to: path)
            config.stages[i].configPath = path
            config.stages[i].training = training
        }
        return config
    }

    /// The stage config at `file` with this variant's values of `params` in place of (or after)
    /// its own, as YAML text, checked as the stage will read it.
    func overridden(_ file: String, stage: String, params: [SweepParameter], sweepFile: String, evalSteps: Int? = nil) throws -> (String, TrainingConfig) {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ConfigError(file: file, line: nil, "cannot read the stage config") }
        var entries = try YAMLNode.parse(text, file: file).entries ?? []
        func set(_ key: String, _ node: YAMLNode) {
            let k = YAMLNode(.scalar(key, quoted: false), line: node.line, column: 0)
            if let j = entries.firstIndex(where: { $0.key.scalar == key }) { entries[j] = (k, node) } else { entries.append((k, node)) }
        }
        for p in params {
            if case .expression = p.values { continue }  // below: it reads the values set here
            guard let v = values.first(where: { $0.name == p.name }) else { continue }
            set(p.key, YAMLNode(.scalar(v.text, quoted: Double(v.text) == nil && !["true", "false"].contains(v.text)), line: p.line, column: 0))
        }
        for p in params {
            guard case .expression(let factor, let key) = p.values else { continue }
            guard let base = entries.first(where: { $0.key.scalar == key })?.value.scalar.flatMap(Double.init) else {
                throw ConfigError(file: sweepFile, line: p.line, "'\(p.name)': '\(key)' has no numeric value in \(stage)'s config or this variant")
            }
            let x = factor * base
            set(p.key, YAMLNode(.scalar(x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : SweepConfig.number(x), quoted: false), line: p.line, column: 0))
        }
        if let n = evalSteps { set("eval_steps", YAMLNode(.scalar(String(n), quoted: false), line: 1, column: 0)) }
        let merged = YAMLNode(.mapping(entries), line: 1, column: 0)
        // Only an override can be wrong (the file itself passed when the pipeline was read), and
        // every override node carries its line in the sweep file.
        let training = try TrainingConfig(yaml: merged, file: sweepFile)
        return (Self.emit(entries), training)
    }

    /// A flat mapping as YAML: `key: value`, lists in flow style, quoted scalars JSON-quoted.
    static func emit(_ entries: [(key: YAMLNode, value: YAMLNode)]) -> String {
        func scalar(_ n: YAMLNode) -> String {
            guard case .scalar(let s, let quoted) = n.value else { return "null" }
            return quoted ? jsonQuoted(s) : s
        }
        return entries.map { e in
            let value = e.value.items.map { "[" + $0.map(scalar).joined(separator: ", ") + "]" } ?? scalar(e.value)
            return "\(e.key.scalar ?? ""): \(value)\n"
        }.joined()
    }
}
