import Foundation

/// The cluster settings: `STORE/executors.yaml`, a file of the store (or the daemon's host),
/// never of a repository, so that a commit chooses what its stages are but not where or with
/// what they run. Every mistake names the file, line and key.
///
/// ```yaml
/// slurm:
///   partition: cpu                # sbatch --partition (none: the cluster's default)
///   account: ml-team              # sbatch --account
///   cairn: /shared/bin/cairn      # the cairn the nodes run (default: this executable)
///   bin: /usr/bin                 # where sbatch, squeue, scontrol, scancel are (default: PATH)
///   signal_seconds: 120           # at least this long to checkpoint between the SIGTERM and the kill
///   stop_grace_seconds: 300       # after a stop, how long jobs get to checkpoint before scancel
///   poll_seconds: 2               # how often squeue is asked
///   requeue: true                 # a preempted job is queued again and resumes
///   sbatch_options: ["--qos=normal"]
///   environment: {OPENBLAS_CORETYPE: SkylakeX}
///   resources:                    # per kind of job: train (pretrain, sft, dpo), merge, export, check
///     train: {cpus: 16, memory: 32G, options: ["--constraint=avx512"]}
///     merge: {cpus: 4, memory: 16G}
/// ```
public struct ExecutorSettings: Sendable, Equatable {
    public struct Resources: Sendable, Equatable {
        public var cpus = 1
        /// sbatch --mem: a number with K, M, G or T (none: the cluster's default).
        public var memory: String?
        public var options: [String] = []
        public init(cpus: Int = 1, memory: String? = nil, options: [String] = []) {
            self.cpus = cpus; self.memory = memory; self.options = options
        }
    }

    public struct Slurm: Sendable, Equatable {
        public var partition: String?
        public var account: String?
        public var cairn: String?
        public var bin: String?
        public var signalSeconds = 120
        public var stopGraceSeconds = 300.0
        public var pollSeconds = 2.0
        public var requeue = true
        public var sbatchOptions: [String] = []
        public var environment: [String: String] = [:]
        public var resources: [StageJob.Kind: Resources] = [:]

        public init() {}

        func command(_ name: String) -> String { bin.map { $0 + "/" + name } ?? name }
    }

    public var file: String
    public var slurm: Slurm?

    public static func path(store: String) -> String { store + "/executors.yaml" }

    /// The store's settings; a missing file is empty settings.
    public static func load(store: String) throws -> ExecutorSettings {
        let p = path(store: store)
        guard FileManager.default.fileExists(atPath: p) else { return ExecutorSettings(file: p, slurm: nil) }
        guard let data = FileManager.default.contents(atPath: p), data.count <= 1 << 20 else {
            throw ConfigError(file: p, line: nil, "cannot read it (or it is over 1 MiB)")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: p)
    }

    public static func parse(_ text: String, file: String) throws -> ExecutorSettings {
        let root = try YAMLNode.parse(text, file: file)
        if root.isNull { return ExecutorSettings(file: file, slurm: nil) }
        let top = try YAMLMapping(root, file: file, known: ["slurm"])
        guard let node = top.node("slurm"), !node.isNull else { return ExecutorSettings(file: file, slurm: nil) }
        let m = try YAMLMapping(node, file: file, known: ["partition", "account", "cairn", "bin", "signal_seconds", "stop_grace_seconds",
                                                          "poll_seconds", "requeue", "sbatch_options", "environment", "resources"])
        var s = Slurm()
        s.partition = try m.string("partition")
        s.account = try m.string("account")
        s.cairn = try m.string("cairn")
        s.bin = try m.string("bin")
        for (key, value) in [("cairn", s.cairn), ("bin", s.bin)] {
            if let v = value, !v.hasPrefix("/") { throw ConfigError(file: file, line: m.node(key)?.line, "key '\(key)' must be an absolute path, not '\(v)'") }
        }
        s.signalSeconds = try m.int("signal_seconds", min: 1, max: 65_000) ?? s.signalSeconds  // sbatch allows 65535; minutes add up to 59
        s.stopGraceSeconds = try m.double("stop_grace_seconds", Bounds(0, 86_400)) ?? s.stopGraceSeconds
        s.pollSeconds = try m.double("poll_seconds", Bounds(0.1, 600)) ?? s.pollSeconds
        s.requeue = try m.bool("requeue") ?? s.requeue
        s.sbatchOptions = try options(m, "sbatch_options")
        if let env = m.node("environment"), !env.isNull {
            let e = try YAMLMapping(env, file: file, known: (env.entries ?? []).compactMap { $0.key.scalar })
            for (k, _) in env.entries ?? [] {
                guard let name = k.scalar, name.range(of: "^[A-Za-z_][A-Za-z0-9_]*$", options: .regularExpression) != nil else {
                    throw ConfigError(file: file, line: k.line, "key 'environment': '\(k.scalar ?? "")' is not a variable name")
                }
                s.environment[name] = try e.string(name) ?? ""
            }
        }
        if let res = m.node("resources"), !res.isNull {
            let r = try YAMLMapping(res, file: file, known: StageJob.Kind.allCases.map(\.rawValue))
            for kind in StageJob.Kind.allCases {
                guard let n = r.node(kind.rawValue), !n.isNull else { continue }
                let k = try YAMLMapping(n, file: file, known: ["cpus", "memory", "options"])
                var one = Resources()
                one.cpus = try k.int("cpus", min: 1, max: 4096) ?? 1
                if let mem = try k.string("memory") {
                    guard mem.range(of: "^[0-9]+[KMGT]?$", options: .regularExpression) != nil else {
                        throw ConfigError(file: file, line: k.node("memory")?.line, "key 'memory' must be a size such as 16G or 500M, not '\(mem)'")
                    }
                    one.memory = mem
                }
                one.options = try options(k, "options")
                s.resources[kind] = one
            }
        }
        return ExecutorSettings(file: file, slurm: s)
    }

    /// sbatch options: each one `--name` or `--name=value`; never one Cairn sets itself.
    static func options(_ m: YAMLMapping, _ key: String) throws -> [String] {
        let list = try m.strings(key) ?? []
        let own = ["--time", "--signal", "--output", "--error", "--open-mode", "--job-name", "--chdir", "--parsable", "--export", "--wrap", "--requeue", "--no-requeue"]
        for o in list {
            guard o.hasPrefix("--"), !o.contains("\n") else {
                throw ConfigError(file: m.file, line: m.node(key)?.line, "key '\(key)': '\(o)' is not an sbatch option (--name or --name=value)")
            }
            let name = String(o.split(separator: "=", maxSplits: 1)[0])
            if own.contains(name) {
                throw ConfigError(file: m.file, line: m.node(key)?.line, "key '\(key)': Cairn sets \(name) itself (from the stage's timeout and the settings above)")
            }
        }
        return list
    }
}
