import CairnTestSupport
import Foundation
import Testing
@testable import CairnStore

/// A temporary directory removed when the object goes away.
final class TempDir {
    let path: String
    init(_ label: String = "cairn") {
        path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit {
        // Blobs are read-only: make them writable so the tree can go.
        _ = try? run("/bin/chmod", ["-R", "u+w", path])
        try? FileManager.default.removeItem(atPath: path)
    }
    func sub(_ p: String) -> String { path + "/" + p }

    /// Writes a file, creating parent directories.
    @discardableResult
    func write(_ rel: String, _ text: String, executable: Bool = false) -> String {
        writeBytes(rel, Array(text.utf8), executable: executable)
    }

    @discardableResult
    func writeBytes(_ rel: String, _ bytes: [UInt8], executable: Bool = false) -> String {
        let p = sub(rel)
        try! FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        precondition(FileManager.default.createFile(atPath: p, contents: Data(bytes), attributes: [.posixPermissions: executable ? 0o755 : 0o644]), "cannot write \(p)")
        return p
    }

    func makeStore() throws -> ArtifactStore { try ArtifactStore.initialize(at: sub("store")) }
}

/// Deterministic pseudo-random bytes (xorshift), so test data is the same on every run.
func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed &* 0x9E3779B97F4A7C15 | 1
    var out = [UInt8](repeating: 0, count: count)
    var i = 0
    while i < count {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        var v = x
        for _ in 0..<8 where i < count { out[i] = UInt8(truncatingIfNeeded: v); v >>= 8; i += 1 }
    }
    return out
}

func readFile(_ path: String) -> [UInt8]? {
    FileManager.default.contents(atPath: path).map { Array($0) }
}

/// Files under `objects/sha256/??/`: the blobs on disk.
func blobFiles(_ store: ArtifactStore) -> [String] {
    let root = store.root + "/objects/sha256"
    var out: [String] = []
    for shard in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where shard.count == 2 {
        for f in (try? FileManager.default.contentsOfDirectory(atPath: root + "/" + shard)) ?? [] { out.append(shard + f) }
    }
    return out.sorted()
}

typealias ProcessResult = ProcessOutput

/// Runs a program to completion.
@discardableResult
func run(_ exe: String, _ args: [String], env: [String: String] = [:], cwd: String? = nil) throws -> ProcessResult {
    try TestProcess.run(exe, args, env: env, cwd: cwd)
}

/// The `cairn` executable built beside the test bundle.
let cairnBinary = TestProcess.cairn(release: false)

/// Runs `cairn ARGS --store STORE`.
@discardableResult
func cairn(_ store: String, _ args: String..., cwd: String? = nil) throws -> ProcessResult {
    try run(cairnBinary, args + ["--store", store], cwd: cwd)
}

/// The errors (not warnings) of an fsck report.
func fsckErrors(_ store: ArtifactStore) throws -> [Finding] {
    try store.fsck().findings.filter { $0.severity == .error }
}
