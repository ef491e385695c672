import CairnStore
import CairnTestSupport
import Foundation
import Testing

let repoRoot = TestProcess.repositoryRoot

func cairnBinary() -> String { TestProcess.cairn(release: true) }

struct Result { let status: Int32; let out: String; let err: String }

@discardableResult
func shell(_ exe: String, _ args: [String], cwd: String? = nil, env: [String: String] = [:]) throws -> Result {
    let r = try TestProcess.run(exe, args, env: env, cwd: cwd)
    return Result(status: r.status, out: r.stdout, err: r.stderr)
}

/// A real git repository made with the git command line, in a scratch directory with a store.
final class GitFixture {
    let root = NSTemporaryDirectory() + "cairn-git-\(UUID().uuidString.prefix(8))"
    var repo: String { root + "/repo" }
    var store: String { root + "/store" }

    init(bare: Bool = false) throws {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try git(["init", "-q", "-b", "main", repo], cwd: root)
        try git(["config", "user.email", "ada@example.com"])
        try git(["config", "user.name", "Ada"])
    }

    @discardableResult
    func git(_ args: [String], cwd: String? = nil) throws -> String {
        let r = try shell("/usr/bin/git", args, cwd: cwd ?? repo, env: ["GIT_CONFIG_NOSYSTEM": "1"])
        precondition(r.status == 0, "git \(args.joined(separator: " ")): \(r.err)")
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func write(_ path: String, _ text: String) throws {
        let p = repo + "/" + path
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: p, atomically: true, encoding: .utf8)
    }

    /// Writes the files and commits them; returns the commit id.
    @discardableResult
    func commit(_ message: String, _ files: [String: String]) throws -> String {
        for (p, t) in files { try write(p, t) }
        try git(["add", "-A"])
        try git(["commit", "-q", "--allow-empty", "-m", message])
        return try git(["rev-parse", "HEAD"])
    }

    func cairn(_ args: [String]) throws -> Result { try shell(cairnBinary(), args + ["--store", store]) }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

/// A pipeline.yaml that names a stage config and a dataset outside its own directory.
func pipelineYAML(_ id: String, dataset: String) -> String {
    """
    pipeline_id: \(id)
    base_model: ./base
    stages:
      - name: sft
        config_path: ./sft_config.yaml
    datasets:
      sft: \(dataset)

    """
}
