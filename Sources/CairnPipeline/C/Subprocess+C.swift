import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process in its own process group, with its stdout and stderr merged into one pipe
/// that the parent copies to a log file and (optionally) to its own stderr. The whole group is
/// stopped at a deadline: SIGTERM, then SIGKILL 2 s later, so everything the child started goes
/// with it. The only file of CairnPipeline that calls posix_spawn, waitpid and kill.
public final class Subprocess: @unchecked Sendable {
    public struct Outcome: Sendable {
        /// Exit status when it exited; nil when a signal ended it.
        public let exitCode: Int32?
        public let signal: Int32?
        public let timedOut: Bool
        public let seconds: Double
        public var succeeded: Bool { exitCode == 0 && !timedOut }
        public var description: String {
            if timedOut { return "timed out after \(String(format: "%.1f", seconds)) s" }
            if let s = signal { return "killed by signal \(s)" }
            return "exit status \(exitCode ?? -1)"
        }
    }

    public let pid: pid_t
    private let readFD: Int32
    private let started = Date()
    private var reader: Thread?
    private let readerDone = DispatchSemaphore(value: 0)

    /// Starts `arguments[0]` with `arguments[1...]`. Output lines go to `logPath` (appended) and,
    /// when `echo` is set, to this process's stderr.
    public init(_ arguments: [String], environment: [String: String]? = nil, logPath: String?, echo: Bool) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw PipelineError("cannot start \(arguments[0]): pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attr, 0)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGPIPE, SIGHUP] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var child: pid_t = 0
        let rc = Self.withCStrings(arguments) { argv in
            Self.withCStrings(env) { envp in posix_spawn(&child, arguments[0], &actions, &attr, argv, envp) }
        }
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw PipelineError("cannot start \(arguments[0]): \(String(cString: strerror(rc)))")
        }
        pid = child
        readFD = fds[0]
        let log = logPath.flatMap { FileHandle(forWritingAtPath: $0) ?? (FileManager.default.createFile(atPath: $0, contents: nil) ? FileHandle(forWritingAtPath: $0) : nil) }
        log?.seekToEndOfFile()
        let fd = readFD, done = readerDone
        let t = Thread {
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &buf, buf.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                let data = Data(buf[0..<n])
                log?.write(data)
                if echo { FileHandle.standardError.write(data) }
            }
            try? log?.close()
            close(fd)
            done.signal()
        }
        t.start()
        reader = t
    }

    private static func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        ptrs.append(nil)
        defer { for p in ptrs { free(p) } }
        return body(ptrs)
    }

    /// Sends `signal` to the child's whole process group.
    public func signalGroup(_ signal: Int32) { kill(-pid, signal) }

    /// Waits for the child; at `deadline` stops its group (SIGTERM, SIGKILL after `grace`).
    /// Then waits for its output to be copied.
    /// `tick` runs about once a second while the child runs. When `stopRequested` first says
    /// yes, the child's group gets SIGTERM (once) and is waited for as before.
    public func wait(deadline: Date? = nil, grace: Double = 2, tick: (() -> Void)? = nil, stopRequested: () -> Bool = { false }) -> Outcome {
        var forwarded = false
        var status: Int32 = 0
        var timedOut = false
        var termSentAt: Date?
        var lastTick = Date()
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { break }
            let now = Date()
            if let d = deadline, now >= d {
                if termSentAt == nil {
                    timedOut = true
                    termSentAt = now
                    signalGroup(SIGTERM)
                } else if now.timeIntervalSince(termSentAt!) >= grace {
                    signalGroup(SIGKILL)
                }
            }
            if let t = tick, now.timeIntervalSince(lastTick) >= 1 { lastTick = now; t() }
            if !forwarded && stopRequested() { forwarded = true; signalGroup(SIGTERM) }
            usleep(20_000)
        }
        // Anything the child left running in its group goes too.
        kill(-pid, SIGKILL)
        _ = readerDone.wait(timeout: .now() + 5)
        let seconds = Date().timeIntervalSince(started)
        return outcome(status, timedOut: timedOut, seconds: seconds)
    }

    /// A waitpid status as an Outcome (WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import).
    private func outcome(_ status: Int32, timedOut: Bool, seconds: Double) -> Outcome {
        let exited = (status & 0x7f) == 0
        return Outcome(exitCode: exited ? (status >> 8) & 0xff : nil, signal: exited ? nil : status & 0x7f, timedOut: timedOut, seconds: seconds)
    }

    /// In a stage or check process started by an orchestrator (CAIRN_DIE_WITH_PARENT=its pid):
    /// die with it, so that a SIGKILLed orchestrator leaves no training running behind it.
    public static func dieWithParentIfAsked() {
        guard let s = ProcessInfo.processInfo.environment["CAIRN_DIE_WITH_PARENT"], let parent = pid_t(s) else { return }
        // prctl is variadic, so Swift does not import it: called through dlsym with its integer
        // arguments (PR_SET_PDEATHSIG is 1).
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        if let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") {
            _ = unsafeBitCast(sym, to: Prctl.self)(1, UInt(SIGKILL), 0, 0, 0)
        }
        if getppid() != parent { exit(137) }  // it died before prctl took effect
    }

    /// The outcome if the child has ended (its output then fully copied), else nil. Never blocks.
    public func poll() -> Outcome? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        guard r == pid else { return nil }
        kill(-pid, SIGKILL)
        _ = readerDone.wait(timeout: .now() + 5)
        return outcome(status, timedOut: false, seconds: Date().timeIntervalSince(started))
    }

    /// The path of the running executable (for starting stage processes of the same cairn).
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// An orchestration failure that is not the user's input (exit code 1).
public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// SIGTERM and SIGINT set this flag (through dispatch sources, so nothing runs in a signal
/// handler). Children started with Subprocess get the default dispositions back.
public final class StopSignal: @unchecked Sendable {
    private var set = false
    private let lock = NSLock()
    private var sources: [DispatchSourceSignal] = []
    public init() {
        for s in [SIGTERM, SIGINT] {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
            src.setEventHandler { [weak self] in self?.lock.lock(); self?.set = true; self?.lock.unlock() }
            src.resume()
            sources.append(src)
        }
    }
    public var isSet: Bool { lock.lock(); defer { lock.unlock() }; return set }
}
