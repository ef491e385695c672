import CairnTrain
import Foundation

/// One key a sweep varies: a stage config key (`sft.learning_rate`) or a validation key
/// (`validation.min_accuracy`), with its values.
public struct SweepParameter: Sendable {
    public enum Values: @unchecked Sendable {
        /// Values as written (YAML scalars, kept with their lines).
        case list([YAMLNode])
        /// random only: a real drawn evenly, or evenly in its logarithm, or a whole number, in [low, high].
        case uniform(Double, Double), logUniform(Double, Double), integers(Int, Int)
        /// `"2*lora_r"`: `factor` times the variant's value of `key`, a key of the same stage.
        case expression(factor: Double, key: String)
    }

    /// As written: `sft.learning_rate`.
    public var name: String
    /// The stage (`sft`) or `validation`.
    public var target: String
    public var key: String
    public var values: Values
    public var line: Int

    /// The validation keys a sweep may vary (numbers all of them).
    public static let validationKeys: [String: Bounds] = [
        "max_loss": ValidationConfig.maxLossBounds, "min_accuracy": ValidationConfig.minAccuracyBounds,
        "merge_tolerance": ValidationConfig.mergeToleranceBounds,
    ]

    /// The `space` mapping. Every key names an enabled training stage of the pipeline (or
    /// validation) and a key it has; every list has a value; distributions need strategy random.
    static func parseSpace(_ node: YAMLNode, file: String, pipeline: PipelineConfig, strategy: SweepConfig.Strategy) throws -> [SweepParameter] {
        guard let entries = node.entries else { throw ConfigError(file: file, line: node.line, "key 'space' must be a mapping of keys to values") }
        guard !entries.isEmpty else { throw ConfigError(file: file, line: node.line, "key 'space' is empty: name at least one key to vary") }
        var out: [SweepParameter] = []
        for (k, v) in entries {
            guard let name = k.scalar else { throw ConfigError(file: file, line: k.line, "keys must be plain names") }
            let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
            let training = pipeline.stages.filter { $0.enabled && $0.training != nil }.map(\.name.rawValue)
            guard parts.count == 2, parts[0] == "validation" || training.contains(parts[0]) else {
                throw ConfigError(file: file, line: k.line, "space key '\(name)' must be STAGE.KEY or validation.KEY, STAGE one of the pipeline's training stages (\(training.joined(separator: ", ")))")
            }
            let known = parts[0] == "validation" ? validationKeys.keys.sorted() : TrainingConfig.yamlKeys
            guard known.contains(parts[1]) else {
                let near = known.min { editDistance($0, parts[1]) < editDistance($1, parts[1]) }
                let hint = near.flatMap { editDistance($0, parts[1]) <= max(2, parts[1].count / 3) ? " — did you mean '\(parts[0]).\($0)'?" : nil } ?? ""
                throw ConfigError(file: file, line: k.line, "unknown key '\(name)'\(hint)")
            }
            if out.contains(where: { $0.name == name }) { throw ConfigError(file: file, line: k.line, "key '\(name)' appears twice") }
            out.append(SweepParameter(name: name, target: parts[0], key: parts[1], values: try values(v, name: name, file: file, strategy: strategy), line: k.line))
        }
        for p in out {
            if case .expression(_, let key) = p.values, !(TrainingConfig.yamlKeys.contains(key)) || p.target == "validation" {
                throw ConfigError(file: file, line: p.line, "'\(p.name)': an expression names a key of the same stage config, not '\(key)'")
            }
        }
        return out
    }

    /// A list, a distribution (`{uniform: [a, b]}`, `{loguniform: [a, b]}`, `{int: [a, b]}`), an
    /// expression (`"2*lora_r"`), or one plain value.
    static func values(_ v: YAMLNode, name: String, file: String, strategy: SweepConfig.Strategy) throws -> Values {
        if let items = v.items {
            guard !items.isEmpty else { throw ConfigError(file: file, line: v.line, "'\(name)' has no values: give at least one") }
            for i in items where i.scalar == nil { throw ConfigError(file: file, line: i.line, "'\(name)': each value must be a single value, not a list or mapping") }
            return .list(items)
        }
        if let entries = v.entries {
            guard entries.count == 1, let kind = entries[0].key.scalar, ["uniform", "loguniform", "int"].contains(kind) else {
                throw ConfigError(file: file, line: v.line, "'\(name)': a distribution is {uniform: [LOW, HIGH]}, {loguniform: [LOW, HIGH]} or {int: [LOW, HIGH]}")
            }
            guard strategy == .random else {
                throw ConfigError(file: file, line: v.line, "'\(name)': a \(kind) range needs strategy random (a grid takes a list of values)")
            }
            let ends = entries[0].value.items?.compactMap { $0.scalar.flatMap(Double.init) } ?? []
            guard ends.count == 2, ends.allSatisfy(\.isFinite), ends[0] < ends[1] else {
                throw ConfigError(file: file, line: entries[0].value.line, "'\(name)': \(kind) needs [LOW, HIGH] with LOW < HIGH")
            }
            switch kind {
            case "uniform": return .uniform(ends[0], ends[1])
            case "loguniform":
                guard ends[0] > 0 else { throw ConfigError(file: file, line: entries[0].value.line, "'\(name)': loguniform needs LOW > 0") }
                return .logUniform(ends[0], ends[1])
            default:
                guard ends.allSatisfy({ $0 == $0.rounded() }) else { throw ConfigError(file: file, line: entries[0].value.line, "'\(name)': int needs whole numbers") }
                return .integers(Int(ends[0]), Int(ends[1]))
            }
        }
        guard let s = v.scalar, !v.isNull else { throw ConfigError(file: file, line: v.line, "'\(name)' has no values: give at least one") }
        if case .scalar(_, let quoted) = v.value, quoted || Double(s) == nil, let e = expression(s) { return e }
        return .list([v])
    }

    /// `N*key`, `key*N` or `key` (N a number, key a config key name).
    static func expression(_ s: String) -> Values? {
        let parts = s.replacingOccurrences(of: " ", with: "").split(separator: "*").map(String.init)
        let isKey = { (t: String) in !t.isEmpty && t.allSatisfy { $0.isLetter || $0 == "_" } }
        switch parts.count {
        case 1 where isKey(parts[0]): return .expression(factor: 1, key: parts[0])
        case 2 where isKey(parts[1]) && Double(parts[0]) != nil: return .expression(factor: Double(parts[0])!, key: parts[1])
        case 2 where isKey(parts[0]) && Double(parts[1]) != nil: return .expression(factor: Double(parts[1])!, key: parts[0])
        default: return nil
        }
    }
}

/// One point of the space: each parameter's value as YAML scalar text, in the space's order
/// (expressions are evaluated when the variant is applied).
public struct SweepVariant: Sendable, Equatable {
    public var values: [(name: String, text: String)]
    public static func == (a: SweepVariant, b: SweepVariant) -> Bool { a.values.map { $0.name + "=" + $0.text } == b.values.map { $0.name + "=" + $0.text } }
}

extension SweepConfig {
    /// The variants: every combination (grid, the first key changing slowest), or `count` drawn
    /// with `seed` (random; a repeated draw is kept once). Expressions are not part of a variant's
    /// identity: they follow from the other values.
    public func variants() throws -> [SweepVariant] {
        let drawn = space.filter { if case .expression = $0.values { return false }; return true }
        var out: [SweepVariant] = []
        switch strategy {
        case .grid:
            var combos: [[(String, String)]] = [[]]
            for p in drawn {
                guard case .list(let items) = p.values else { continue }
                combos = combos.flatMap { c in items.map { c + [(p.name, $0.scalar!)] } }
                if combos.count > Self.maxVariants {
                    throw ConfigError(file: file, line: p.line, "the grid has more than \(Self.maxVariants) variants; use strategy random with n")
                }
            }
            out = combos.map { SweepVariant(values: $0.map { (name: $0.0, text: $0.1) }) }
        case .random:
            var rng = RandomGenerator(seed: seed)
            func u() -> Double { Double(rng.next() >> 11) * (1.0 / Double(UInt64(1) << 53)) }
            for _ in 0..<count {
                let v = SweepVariant(values: drawn.map { p in
                    switch p.values {
                    case .list(let items): return (p.name, items[min(items.count - 1, Int(u() * Double(items.count)))].scalar!)
                    case .uniform(let a, let b): return (p.name, Self.number(a + (b - a) * u()))
                    case .logUniform(let a, let b): return (p.name, Self.number(exp(log(a) + (log(b) - log(a)) * u())))
                    case .integers(let a, let b): return (p.name, String(a + min(b - a, Int(u() * Double(b - a + 1)))))
                    case .expression: return (p.name, "")
                    }
                })
                if !out.contains(v) { out.append(v) }
            }
        }
        return out
    }

    /// A drawn real as YAML writes it: 6 significant digits.
    static func number(_ x: Double) -> String { String(format: "%.6g", x) }
}
