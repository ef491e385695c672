import Foundation

/// Reading pipeline.yaml: the one function `cairn run`, `cairn resume` and the queue runner use,
/// and what the trigger asks about a pipeline file that need not pass the checks.
extension PipelineConfig {
    /// Reads PIPELINE: a directory holding pipeline.yaml (or pipeline_config.yaml), or the file.
    public static func load(_ pipeline: String, repository: String? = nil, allowCommands: Bool = false) throws -> PipelineConfig {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: pipeline, isDirectory: &isDir) else {
            throw ConfigError(file: pipeline, line: nil, "no such pipeline directory or file")
        }
        var file = pipeline
        if isDir.boolValue {
            let names = ["pipeline.yaml", "pipeline.yml", "pipeline_config.yaml", "configs/pipeline_config.yaml"]
            guard let f = names.map({ pipeline + "/" + $0 }).first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw ConfigError(file: pipeline, line: nil, "no pipeline.yaml in this directory")
            }
            file = f
        }
        return try read(file: file, repository: repository, allowCommands: allowCommands)
    }

    /// Reads and checks the pipeline file `file`, its paths confined to `repository` (default:
    /// the git work tree holding it). `named` hears the pipeline_id as soon as the file parses,
    /// before the rest is checked: a run refused for a bad key is still recorded under its name.
    public static func read(file: String, repository: String? = nil, allowCommands: Bool = false,
                            named: (String) -> Void = { _ in }) throws -> PipelineConfig {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ConfigError(file: file, line: nil, "cannot read the file") }
        let node = try YAMLNode.parse(text, file: file)
        if let id = node.entries?.first(where: { $0.key.scalar == "pipeline_id" })?.value.scalar, !id.isEmpty { named(id) }
        return try PipelineConfig(yaml: node, file: file, repository: repository, allowCommands: allowCommands)
    }

    /// The paths a pipeline file names — every stage's config_path, every dataset, base_model
    /// when written as a path — read leniently (nothing else is checked; a file that does not
    /// parse names nothing), as written, relative to the file's directory.
    public static func namedPaths(yaml text: String, file: String) -> [String] {
        guard let top = (try? YAMLNode.parse(text, file: file))?.entries else { return [] }
        var out: [String] = []
        for (k, v) in top {
            switch k.scalar {
            case "stages":
                for item in v.items ?? [] {
                    for (sk, sv) in item.entries ?? [] where sk.scalar == "config_path" { if let s = sv.scalar { out.append(s) } }
                }
            case "datasets":
                for (_, dv) in v.entries ?? [] { if let s = dv.scalar { out.append(s) } }
            case "base_model":
                if let s = v.scalar, s.hasPrefix(".") { out.append(s) }
            default: break
            }
        }
        return out
    }
}
