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
        /// A sweep file (`sweep*.yaml`): its entry starts the sweep, and only a change to the
        /// file itself does; a pipeline is not run again for a change to its sweep files.
        public var isSweep = false

        /// The queue's name for it: the pipeline's directory, or `sweep:` and the sweep file.
        public var queueName: String { isSweep ? "sweep:" + file : (directory.isEmpty ? "." : directory) }
    }

    /// Whether a repository path is a sweep file: `sweep.yaml`, `sweep-lr.yml`, `sweep_rank.yaml`.
    public static func isSweepFile(_ path: String) -> Bool {
        let name = (path as NSString).lastPathComponent
        return name.hasPrefix("sweep") && (name.hasSuffix(".yaml") || name.hasSuffix(".yml"))
    }
    public let entries: [Entry]

    public static let fileNames: Set<String> = ["pipeline.yaml", "pipeline.yml"]

    /// Reads every pipeline file of the commit. A file that does not parse still maps its
    /// directory (its run then fails with the parse error, in its log and in `cairn runs`).
    public init(repository: GitRepository, commit: CommitID) throws {
        var out: [Entry] = []
        for path in try repository.paths(at: commit) {
            if Self.isSweepFile(path) {
                out.append(Entry(directory: (path as NSString).deletingLastPathComponent, file: path, referenced: [], isSweep: true))
                continue
            }
            let name = (path as NSString).lastPathComponent
            guard Self.fileNames.contains(name) else { continue }
            let dir = (path as NSString).deletingLastPathComponent
            var refs = Set<String>()
            if let f = try repository.file(path, at: commit), f.kind == .file {
                for value in PipelineConfig.namedPaths(yaml: String(decoding: f.data, as: UTF8.self), file: path) {
                    for candidate in [Paths.join(repositoryDirectory: dir, value), Paths.join(repositoryDirectory: "", value)].compactMap({ $0 }) {
                        refs.insert(candidate)
                    }
                }
            }
            out.append(Entry(directory: dir, file: path, referenced: refs))
        }
        entries = out
    }

    /// The pipelines a set of changed paths affects.
    public func affected(by changed: Set<String>) -> [Entry] {
        entries.filter { e in
            if e.isSweep { return changed.contains(e.file) }
            return changed.contains { p in
                !Self.isSweepFile(p) && (e.directory.isEmpty || p == e.directory || p.hasPrefix(e.directory + "/") || e.referenced.contains(p)
                    || e.referenced.contains { $0.hasPrefix(p + "/") || p.hasPrefix($0 + "/") })
            }
        }
    }
}
