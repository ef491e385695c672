import Foundation

/// What a finished process printed, and its exit status.
public struct ProcessOutput: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Running programs from the tests (the cairn executable, git) — one copy for every test target.
public enum TestProcess {
    /// The source tree's root.
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Runs a program to completion; both pipes are read before waiting, so a chatty child never
    /// blocks on a full pipe.
    @discardableResult
    public static func run(_ exe: String, _ args: [String], env: [String: String] = [:], cwd: String? = nil) throws -> ProcessOutput {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        if let c = cwd { p.currentDirectoryURL = URL(fileURLWithPath: c) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return ProcessOutput(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: errBox.data, as: UTF8.self))
    }

    /// The cairn executable: with `release`, the release build `make test` made (CAIRN_RELEASE_BIN);
    /// else CAIRN_BIN, else the build beside the test bundle, else .build/debug.
    public static func cairn(release: Bool) -> String {
        let env = ProcessInfo.processInfo.environment
        if release, let r = env["CAIRN_RELEASE_BIN"], FileManager.default.isExecutableFile(atPath: r) { return r }
        if let b = env["CAIRN_BIN"] { return b }
        var candidates: [String] = []
        if let exe = Bundle.main.executableURL { candidates.append(exe.deletingLastPathComponent().path + "/cairn") }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path + "/cairn")
        candidates += [repositoryRoot + "/.build/debug/cairn", repositoryRoot + "/.build/x86_64-unknown-linux-gnu/debug/cairn"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }
}
