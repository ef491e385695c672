import CairnStore
import CairnTestSupport
import Foundation
import Testing

/// The cairn executable the tests run (the release build when CAIRN_RELEASE_BIN names one).
func cairnBinary() -> String { TestProcess.cairn(release: true) }

let repoRoot = TestProcess.repositoryRoot

struct ProcessResult { let status: Int32; let out: String; let err: String }

/// Runs cairn to its end; stdout and stderr captured.
@discardableResult
func cairn(_ args: [String], store: String, env: [String: String] = [:], cwd: String? = nil) throws -> ProcessResult {
    var e = ["CAIRN_STORE": store, "CAIRN_RETRY_BACKOFF_SECONDS": ProcessInfo.processInfo.environment["CAIRN_RETRY_BACKOFF_SECONDS"] ?? "0.1"]
    for (k, v) in env { e[k] = v }
    let r = try TestProcess.run(cairnBinary(), args, env: e, cwd: cwd)
    return ProcessResult(status: r.status, out: r.stdout, err: r.stderr)
}

/// A tiny pretrained base model, made once per test process: a tokenizer trained on the
/// task-api corpus, `cairn model init`, then `cairn train pretrain` with the base-model config.
enum SharedBase {
    static let dir: String = {
        let d = NSTemporaryDirectory() + "cairn-pipeline-base-\(getpid())"
        let store = d + "/store"
        try? FileManager.default.removeItem(atPath: d)
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        let ex = repoRoot + "/pipelines"
        func must(_ args: [String]) {
            let r = try! cairn(args, store: store)
            precondition(r.status == 0, "cairn \(args.joined(separator: " ")) failed: \(r.err)")
        }
        must(["tokenizer", "train", "--corpus", ex + "/task-api/data/corpus.txt", "--vocab-size", "512", "--out", d + "/tok"])
        must(["model", "init", "--arch", "llama", "--config", ex + "/base-model/model.json", "--tokenizer", d + "/tok", "--out", d + "/init", "--seed", "1"])
        must(["train", "pretrain", "--model", d + "/init", "--data", ex + "/task-api/data/pretrain.jsonl", "--config", ex + "/base-model/pretrain_config.yaml",
              "--out", d + "/pretrained"])
        try? FileManager.default.removeItem(atPath: d + "/pretrained/checkpoints")
        return d + "/pretrained"
    }()
}

/// A throwaway repository (a directory with .git) holding a copy of pipelines/task-api with the
/// shared base model as ./base, and its own store.
final class Workspace {
    let root = NSTemporaryDirectory() + "cairn-pipeline-\(UUID().uuidString.prefix(8))"
    var repo: String { root + "/repo" }
    var pipeline: String { repo + "/task-api" }
    var store: String { root + "/store" }

    /// `edit` rewrites pipeline.yaml's text; `quick` shortens SFT and DPO to a few steps.
    init(quick: Bool = false, edit: (String) -> String = { $0 }) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: repo + "/.git", withIntermediateDirectories: true)
        try fm.copyItem(atPath: repoRoot + "/pipelines/task-api", toPath: pipeline)
        try fm.copyItem(atPath: SharedBase.dir, toPath: pipeline + "/base")
        var yaml = try String(contentsOfFile: pipeline + "/pipeline.yaml", encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "base_model: task-api-base@latest", with: "base_model: ./base")
            .replacingOccurrences(of: "output_dir: ../../artifacts/task-api", with: "output_dir: ./artifacts")
        try edit(yaml).write(toFile: pipeline + "/pipeline.yaml", atomically: true, encoding: .utf8)
        if quick {
            try setKey("sft_config.yaml", "epochs", "2")
            try setKey("dpo_config.yaml", "epochs", "1")
        }
    }

    /// Replaces `key: …` in one of the pipeline's YAML files.
    func setKey(_ file: String, _ key: String, _ value: String) throws {
        let p = pipeline + "/" + file
        let lines = try String(contentsOfFile: p, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let out = lines.map { $0.hasPrefix(key + ":") ? "\(key): \(value)" : String($0) }
        try out.joined(separator: "\n").write(toFile: p, atomically: true, encoding: .utf8)
    }

    /// `cairn run` of the pipeline started in the background, its output discarded.
    /// Starts cairn in the background (default: a run of the pipeline).
    /// `errorLog`: where its stderr goes (default: discarded).
    func start(_ args: [String]? = nil, env: [String: String] = [:], errorLog: String? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: cairnBinary())
        p.arguments = args ?? ["run", pipeline, "--quiet"]
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        e["CAIRN_STORE"] = store
        p.environment = e
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        if let log = errorLog {
            FileManager.default.createFile(atPath: log, contents: nil)
            p.standardError = FileHandle(forWritingAtPath: log)
        }
        try p.run()
        return p
    }

    func run(_ extra: [String] = [], env: [String: String] = [:]) throws -> ProcessResult {
        try cairn(["run", pipeline, "--quiet"] + extra, store: store, env: env)
    }

    func openStore() throws -> ArtifactStore { try ArtifactStore(root: store) }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

/// The "Final artifact:" line of a run's summary.
func finalArtifact(_ r: ProcessResult) -> String? {
    r.out.split(separator: "\n").first { $0.hasPrefix("Final artifact: ") }.map { String($0.dropFirst("Final artifact: ".count)) }
}

func runNumber(_ r: ProcessResult) -> Int64? {
    r.out.split(separator: "\n").first { $0.hasPrefix("Run: ") }.flatMap { Int64($0.dropFirst(5).split(separator: " ")[0]) }
}
