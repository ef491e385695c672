import CairnTrain
import Foundation

/// One entry of `stages:` (the reference's StageConfig).
public struct StageConfig: Sendable, Equatable {
    public enum Name: String, CaseIterable, Sendable { case pretrain, sft, merge, dpo, export }
    public var name: Name
    public var enabled = true
    /// The stage config file (sft_config.yaml, …), resolved and checked to stay inside the repository.
    public var configPath: String?
    /// The stage config at configPath, parsed and checked once when the pipeline was read.
    public var training: TrainingConfig?
    public var timeoutMinutes: Double = 120
    public var retryCount = 1
    /// Line of the entry in pipeline.yaml, for errors.
    public var line: Int
    /// The export stage's file format (gguf) and tensor type (f32, f16, q8_0).
    public var format = "gguf"
    public var exportType = "f16"

    public static let keys = ["name", "enabled", "config_path", "timeout_minutes", "retry_count", "format", "type"]
    /// timeout_minutes: more than nothing, at most a week.
    public static let timeoutBounds = Bounds.above(0, atMost: 10_080)
    public static let maxRetries = 100
    /// What `cairn model export` writes (GGMLType.writable), as the config spells it.
    public static let exportTypes = GGMLType.writable.map { $0.description.lowercased() }
}

/// A gate check named in `validation.custom_checks` (or one of the built-ins every gate runs).
/// A plain name takes the defaults; a mapping may set blocking, timeout_seconds and threshold.
public struct CheckConfig: Sendable, Equatable {
    public var name: String
    /// Blocking checks run one after another; non-blocking ones run in parallel beside them.
    public var blocking: Bool
    public var timeoutSeconds: Double
    /// Pass rate needed (output_format_valid); ignored by checks without one.
    public var threshold: Double?
    /// Tokens to generate per prompt (output_format_valid, no_harmful_content).
    public var maxNewTokens: Int?
    /// A shell command (`sh -c`) run as a check after the last stage: exit 0 passes. Refused
    /// unless commands are allowed (`--allow-commands`).
    public var command: String?

    public static let keys = ["name", "blocking", "timeout_seconds", "threshold", "max_new_tokens", "command"]
    /// The pass rate output_format_valid needs unless `threshold` says otherwise.
    public static let defaultThreshold = 0.9
    /// Tokens generated per prompt unless `max_new_tokens` says otherwise.
    public static let defaultMaxNewTokens = 48
    /// timeout_seconds: more than nothing, at most a week; max_new_tokens: at most 65,536.
    public static let timeoutBounds = Bounds.above(0, atMost: 604_800)
    public static let maxNewTokensLimit = 65_536
    /// The custom checks Cairn has; anything else in custom_checks is a config error.
    public static let customNames = ["output_format_valid", "no_harmful_content"]
    /// Safety blocks (runs in order, as the reference's prompt asks); format checks run in parallel.
    public static func blockingByDefault(_ name: String) -> Bool { name == "no_harmful_content" }
}

/// The reference's ValidationConfig.
public struct ValidationConfig: Sendable, Equatable {
    public var maxLoss = 2.0
    public var minAccuracy = 0.7
    public var checkNaN = true
    public var customChecks: [CheckConfig] = []
    /// Tolerance of gate 2's logits comparison (merged model against base + adapter).
    public var mergeTolerance = 1e-3

    public static let keys = ["max_loss", "min_accuracy", "check_nan", "custom_checks", "merge_tolerance"]
    /// A loss gate above zero (a loss never is below it) and at most 1000; an accuracy in [0, 1];
    /// a logits tolerance above zero and at most 1.
    public static let maxLossBounds = Bounds.above(0, atMost: 1_000)
    public static let minAccuracyBounds = Bounds(0, 1)
    public static let mergeToleranceBounds = Bounds.above(0, atMost: 1)
}

/// A pipeline.yaml: the reference's PipelineConfig keys, plus `datasets` and `promote_to`.
/// Every path is resolved against the directory of the file and must stay inside `repository`.
public struct PipelineConfig: Sendable {
    public var file: String
    /// The directory paths must stay in: the enclosing git work tree, else the pipeline's directory.
    public var repository: String
    public var pipelineID: String
    /// An HF model directory (resolved path), a store reference or an alias (kept as written).
    public var baseModel: String
    public var baseModelIsPath: Bool
    public var outputDir: String
    public var stages: [StageConfig]
    public var validation = ValidationConfig()
    public var gpuMemoryFraction = 0.9
    public var checkpointEveryNSteps = 100
    /// false: a successful run removes its training checkpoints from the work directory
    /// (every output is in the store either way).
    public var saveIntermediate = true
    public var uploadToHub = false
    public var hubRepoID: String?
    /// Role → resolved path: sft, preference, eval (SFT held-out), preference_eval, pretrain,
    /// eval_prompts, red_team, schema, blocklist.
    public var datasets: [String: String] = [:]
    public var promoteTo: String?
    /// Keys accepted but meaningless here, reported once.
    public var ignoredKeys: [String] = []

    public static let keys = [
        "pipeline_id", "base_model", "output_dir", "stages", "validation", "gpu_memory_fraction", "checkpoint_every_n_steps",
        "save_intermediate", "upload_to_hub", "hub_repo_id", "datasets", "promote_to",
    ]
    public static let datasetRoles = ["sft", "preference", "eval", "preference_eval", "pretrain", "eval_prompts", "red_team", "schema", "blocklist"]

    public func stage(_ name: StageConfig.Name) -> StageConfig? { stages.first { $0.name == name && $0.enabled } }

    public init(yaml node: YAMLNode, file: String, repository: String? = nil, allowCommands: Bool = false) throws {
        let absFile = Paths.absolute(file)
        self.file = file
        let dir = Paths.parent(absFile)
        self.repository = repository ?? Paths.repositoryRoot(containing: dir) ?? dir
        let m = try YAMLMapping(node, file: file, known: Self.keys)
        func required(_ key: String) throws -> String {
            guard let v = try m.string(key), !v.isEmpty else { throw ConfigError(file: file, line: m.node(key)?.line ?? node.line, "missing required key '\(key)'") }
            return v
        }
        pipelineID = try required("pipeline_id")
        let base = try required("base_model")
        let repo = self.repository
        // Relative to the config file; a path that exists only relative to the repository's root
        // is taken from there (the reference keeps configs/pipeline_config.yaml beside
        // configs/sft_config.yaml and writes `config_path: ./configs/sft_config.yaml`).
        func path(_ value: String, key: String, line: Int?) throws -> String {
            let p = try Paths.inside(repository: repo, relativeTo: dir, value, file: file, line: line, key: key)
            if !value.hasPrefix("/") && !FileManager.default.fileExists(atPath: p) {
                if let fromRoot = try? Paths.inside(repository: repo, relativeTo: repo, value, file: file, line: line, key: key),
                   FileManager.default.fileExists(atPath: fromRoot) { return fromRoot }
            }
            return p
        }
        // A base model written as a path (./x, ../x, /x, or an existing directory) must be an
        // HF directory inside the repository; anything else is a store reference or an alias.
        if base.hasPrefix(".") || base.hasPrefix("/") || FileManager.default.fileExists(atPath: dir + "/" + base) {
            baseModel = try path(base, key: "base_model", line: m.node("base_model")?.line)
            baseModelIsPath = true
        } else {
            baseModel = base
            baseModelIsPath = false
        }
        outputDir = try path(try m.string("output_dir") ?? "./artifacts", key: "output_dir", line: m.node("output_dir")?.line)

        guard let stageNodes = m.node("stages"), let items = stageNodes.items, !items.isEmpty else {
            throw ConfigError(file: file, line: m.node("stages")?.line ?? node.line, "missing required key 'stages' (a list of stages)")
        }
        stages = []
        for item in items {
            let st = try StageConfig(yaml: item, file: file, path: path)
            if stages.contains(where: { $0.name == st.name }) { throw ConfigError(file: file, line: item.line, "stage '\(st.name.rawValue)' appears twice") }
            stages.append(st)
        }
        try StageConfig.checkOrder(stages, file: file, line: stageNodes.line)

        if let v = m.node("validation") { validation = try ValidationConfig(yaml: v, file: file, allowCommands: allowCommands) }
        try readRunKeys(m)
        if let d = m.node("datasets"), !d.isNull { datasets = try Self.datasets(d, file: file, path: path) }
        if let v = try m.string("promote_to") { promoteTo = v }
    }

    /// The run-wide keys; the reference's GPU and hub keys are accepted and noted as ignored.
    mutating func readRunKeys(_ m: YAMLMapping) throws {
        if let v = try m.double("gpu_memory_fraction", .above(0, atMost: 1)) {
            gpuMemoryFraction = v
            ignoredKeys.append("gpu_memory_fraction")
        }
        if let v = try m.int("checkpoint_every_n_steps", min: 1, max: 100_000_000) { checkpointEveryNSteps = v }
        if let v = try m.bool("save_intermediate") { saveIntermediate = v }
        if let v = try m.bool("upload_to_hub") {
            uploadToHub = v
            ignoredKeys.append("upload_to_hub")
        }
        if let v = try m.string("hub_repo_id") {
            hubRepoID = v
            ignoredKeys.append("hub_repo_id")
        }
    }

    /// The `datasets` mapping: role → an existing file inside the repository.
    static func datasets(_ d: YAMLNode, file: String, path: (String, String, Int?) throws -> String) throws -> [String: String] {
        let dm = try YAMLMapping(d, file: file, known: datasetRoles)
        var out: [String: String] = [:]
        for role in datasetRoles {
            if let v = try dm.string(role) {
                let p = try path(v, "datasets.\(role)", dm.node(role)!.line)
                guard FileManager.default.fileExists(atPath: p) else {
                    throw ConfigError(file: file, line: dm.node(role)!.line, "key 'datasets.\(role)': no such file '\(v)'")
                }
                out[role] = p
            }
        }
        return out
    }
}

/// Path rules for configs: relative to the config's directory, never leaving the repository
/// (no `..` escape, no absolute path outside it, no symlink that resolves outside it).
public enum Paths {
    public static func absolute(_ p: String) -> String {
        p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
    }

    public static func parent(_ p: String) -> String {
        (p as NSString).deletingLastPathComponent
    }

    /// Lexically normalised absolute path (`.` and `..` folded; `..` at the root stays there).
    public static func normalise(_ p: String) -> String {
        "/" + fold(absolute(p), escaping: true)!.joined(separator: "/")
    }

    /// `value` relative to `dir`, both repository-relative, folded; nil when it is absolute or
    /// leaves the repository.
    public static func join(repositoryDirectory dir: String, _ value: String) -> String? {
        if value.hasPrefix("/") { return nil }
        return fold(dir + "/" + value, escaping: false)?.joined(separator: "/")
    }

    /// The components of `p` with `.` and empty ones dropped and `..` taking one back; past the
    /// start, `..` is dropped when `escaping` and otherwise makes the result nil.
    private static func fold(_ p: String, escaping: Bool) -> [Substring]? {
        var parts: [Substring] = []
        for c in p.split(separator: "/") {
            if c == "." || c.isEmpty { continue }
            if c == ".." {
                if parts.isEmpty { if escaping { continue }; return nil }
                parts.removeLast()
                continue
            }
            parts.append(c)
        }
        return parts
    }

    /// The git work tree (or bare repository) that contains `dir`, if any.
    public static func repositoryRoot(containing dir: String) -> String? {
        var d = normalise(dir)
        while true {
            if FileManager.default.fileExists(atPath: d + "/.git") { return d }
            if d == "/" { return nil }
            d = parent(d)
        }
    }

    static func isInside(_ p: String, _ root: String) -> Bool { p == root || p.hasPrefix(root.hasSuffix("/") ? root : root + "/") }

    /// Resolves `value` (relative to `dir`) and checks that it stays inside `repository`, both
    /// as written and after following symlinks.
    public static func inside(repository: String, relativeTo dir: String, _ value: String, file: String, line: Int?, key: String) throws -> String {
        let root = normalise(repository)
        let p = normalise(value.hasPrefix("/") ? value : dir + "/" + value)
        guard isInside(p, root) else {
            throw ConfigError(file: file, line: line, "key '\(key)': path '\(value)' leaves the repository \(root)")
        }
        if FileManager.default.fileExists(atPath: p), let real = realpath(p, nil) {
            defer { free(real) }
            let r = String(cString: real)
            let rootReal = realpath(root, nil).map { s -> String in defer { free(s) }; return String(cString: s) } ?? root
            guard isInside(r, rootReal) else {
                throw ConfigError(file: file, line: line, "key '\(key)': path '\(value)' is a symlink that leaves the repository \(root)")
            }
        }
        return p
    }
}
