import CairnStore
import CairnSystem
import Foundation

/// The run's artifacts as files in its work directory: outputs where the stages wrote them,
/// inputs checked out once per run under WORK/inputs, and files the gates need made there.
final class RunFiles {
    let store: ArtifactStore
    let workDir: String
    let journal: RunJournal
    private var paths: [ArtifactID: String] = [:]

    init(store: ArtifactStore, workDir: String, journal: RunJournal) {
        self.store = store; self.workDir = workDir; self.journal = journal
    }

    /// An output already on disk as these files: no checkout later.
    func remember(_ id: ArtifactID, at path: String) { paths[id] = path }

    /// The run's input of a role ("dataset:eval"), as files; nil when the run has none.
    func dataset(_ role: String) throws -> String? { try journal.input("dataset:" + role).map(materialize) }

    /// A stored artifact as files in the work directory (checked out once per run): the file
    /// itself for a one-file artifact, else its directory.
    func materialize(_ id: ArtifactID) throws -> String {
        if let p = paths[id] { return p }
        let dir = workDir + "/inputs/" + String(id.description.dropFirst(7).prefix(16))
        let manifest = try store.manifest(id)
        if !FileManager.default.fileExists(atPath: dir + "/.complete") {
            try? FileManager.default.removeItem(atPath: dir)
            _ = try store.checkout(id, into: dir)
            try? AtomicFile.write([UInt8](), to: dir + "/.complete")
        }
        // A one-file artifact stored from a file (a dataset, a config) is that file; an artifact
        // stored from a directory keeps its directory even with one file in it.
        let rec = try store.artifact(id)
        let single = manifest.entries.count == 1 && !manifest.entries[0].path.contains("/") && rec?.name.hasSuffix(manifest.entries[0].path) == true
        let path = single ? dir + "/" + manifest.entries[0].path : dir
        paths[id] = path
        return path
    }

    /// Prompts for output_format_valid: datasets.eval_prompts, else the prompts of the held-out
    /// SFT pairs (datasets.eval), else of the held-out or training preference pairs.
    func evalPrompts() throws -> String? {
        if let p = try dataset("eval_prompts") { return p }
        for role in ["eval", "preference_eval", "preference", "sft"] {
            if let d = try dataset(role) {
                let prompts = try GateChecks.prompts(d).prefix(32)
                return builtinFile("prompts-from-\(role).jsonl", prompts.map(\.jsonLine))
            }
        }
        return nil
    }

    /// Writes lines into the run's work directory and returns the path.
    func builtinFile(_ name: String, _ lines: [String]) -> String {
        let p = workDir + "/inputs/" + name
        try? FileManager.default.createDirectory(atPath: workDir + "/inputs", withIntermediateDirectories: true)
        try? AtomicFile.write(lines.joined(separator: "\n") + "\n", to: p)
        return p
    }
}
