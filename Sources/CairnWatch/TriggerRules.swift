import CairnGit
import CairnPipeline
import Foundation

/// The pipelines of a commit's tree and the paths each one uses: its directory (configs,
/// sweep files, anything beside pipeline.yaml), the stage configs and datasets it names, and a
/// base model given as a path. A commit that changes none of a pipeline's paths does not
/// start it.
public struct PipelineMap: Sendable {
    public struct Entry: Sendable, Equatable {
        /// The pipeline's directory in the repository ("" for the root).
        public let directory: String
        /// Its pipeline file, e.g. pipelines/task-api/pipeline.yaml.
        public let file: String
        /// Files outside its directory that it names (normalised repository paths).
        public let referenced: Set<String>
    }
    public let entries: [Entry]

    public static let fileNames: Set<String> = ["pipeline.yaml", "pipeline.yml"]

    /// Reads every pipeline file of the commit. A file that does not parse still maps its
    /// directory (its run then fails with the parse error, in its log and in `cairn runs`).
    public init(repository: GitRepository, commit: CommitID) throws {
        var out: [Entry] = []
        for path in try repository.paths(at: commit) {
            let name = (path as NSString).lastPathComponent
            guard Self.fileNames.contains(name) else { continue }
            let dir = (path as NSString).deletingLastPathComponent
            var refs = Set<String>()
            if let f = try repository.file(path, at: commit), f.kind == .file,
               let node = try? YAMLNode.parse(String(decoding: f.data, as: UTF8.self), file: path) {
                for value in Self.pathValues(node) {
                    for candidate in [Self.join(dir, value), Self.join("", value)].compactMap({ $0 }) { refs.insert(candidate) }
                }
            }
            out.append(Entry(directory: dir, file: path, referenced: refs))
        }
        entries = out
    }

    /// The pipelines a set of changed paths affects.
    public func affected(by changed: Set<String>) -> [Entry] {
        entries.filter { e in
            changed.contains { p in
                e.directory.isEmpty || p == e.directory || p.hasPrefix(e.directory + "/") || e.referenced.contains(p)
                    || e.referenced.contains { $0.hasPrefix(p + "/") || p.hasPrefix($0 + "/") }
            }
        }
    }

    /// config_path of every stage, every dataset, and base_model / output_dir when written as paths.
    static func pathValues(_ node: YAMLNode) -> [String] {
        guard let top = node.entries else { return [] }
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

    /// `dir/value` normalised inside the repository; nil when it leaves it or is absolute.
    static func join(_ dir: String, _ value: String) -> String? {
        if value.hasPrefix("/") { return nil }
        var parts = dir.split(separator: "/").map(String.init)
        for c in value.split(separator: "/") {
            if c == "." || c.isEmpty { continue }
            if c == ".." { if parts.isEmpty { return nil }; parts.removeLast() } else { parts.append(String(c)) }
        }
        return parts.joined(separator: "/")
    }
}
