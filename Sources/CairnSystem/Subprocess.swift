import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process in its own process group, with its stdout and stderr merged into one pipe
/// that the parent copies to a log file and (optionally) to its own stderr. The whole group is
/// stopped at a deadline: SIGTERM, then SIGKILL 2 s later, so everything the child started goes
/// with it. The one place that calls posix_spawn, waitpid and kill on a child.
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

    /// A process that could not be started: "cannot start EXECUTABLE: reason".
    public struct StartError: Error, CustomStringConvertible, Sendable {
        public let executable: String
        public let cause: SystemError
        public var description: String {
            "cannot start \(executable): \(cause.function == "posix_spawn" ? "" : cause.function + ": ")\(cause.message)"
        }
    }

    public let pid: pid_t
    private let started = Date()
    private var reader: Thread?
    private let readerDone = DispatchSemaphore(value: 0)

    /// Starts `arguments[0]` with `arguments[1...]`. Output lines go to `logPath` (appended) and,
    /// when `echo` is set, to this process's stderr.
    public init(_ arguments: [String], environment: [String: String]? = nil, logPath: String?, echo: Bool) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw StartError(executable: arguments[0], cause: .last("pipe")) }
        let output = Output.pipe(write: fds[1], read: fds[0])
        do {
            pid = try Self.spawn(arguments, environment: environment ?? ProcessInfo.processInfo.environment, output: output, detached: false)
            close(fds[1])
        } catch {
            close(fds[1]); close(fds[0])
            throw error
        }
        let fd = fds[0], done = readerDone
        let t = Thread {
            Self.copyOutput(fd, to: logPath, echo: echo)
            done.signal()
        }
        t.start()
        reader = t
    }

    /// Copies the child's output until it closes the pipe; the pipe and the log are closed on return.
    private static func copyOutput(_ fd: Int32, to logPath: String?, echo: Bool) {
        let pipe = FileDescriptor(adopting: fd, path: "pipe")
        let log = logPath.flatMap { try? FileDescriptor.open($0, O_WRONLY | O_CREAT | O_APPEND) }
        var buf = [UInt8](repeating: 0, count: 65536)
        while let n = try? buf.withUnsafeMutableBytes({ try pipe.read(into: $0) }), n > 0 {
            try? log?.writeAll(Array(buf[0..<n]))
            if echo { FileHandle.standardError.write(Data(buf[0..<n])) }
        }
    }

    /// Starts a process in a new session, detached from this one (nothing waits for it), its
    /// stdout and stderr appended to `logPath`.
    public static func startDetached(_ arguments: [String], environment: [String: String], logPath: String) throws {
        _ = try spawn(arguments, environment: environment, output: .appending(logPath), detached: true)
    }

    private enum Output {
        case pipe(write: Int32, read: Int32)
        case appending(String)
    }

    /// posix_spawn with stdin from /dev/null and stdout+stderr to `output`. Not `detached`: in a
    /// process group of its own, with an empty signal mask and SIGTERM, SIGINT, SIGPIPE and SIGHUP
    /// at their defaults (whatever this process ignores). `detached`: in a session of its own.
    private static func spawn(_ arguments: [String], environment: [String: String], output: Output, detached: Bool) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        switch output {
        case .pipe(let write, let read):
            posix_spawn_file_actions_adddup2(&actions, write, 1)
            posix_spawn_file_actions_adddup2(&actions, write, 2)
            posix_spawn_file_actions_addclose(&actions, read)
            posix_spawn_file_actions_addclose(&actions, write)
        case .appending(let path):
            posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        if detached {
            posix_spawnattr_setflags(&attr, Int16(0x80))  // POSIX_SPAWN_SETSID (glibc 2.26+), not imported
        } else {
            posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
            posix_spawnattr_setpgroup(&attr, 0)
            var empty = sigset_t()
            sigemptyset(&empty)
            posix_spawnattr_setsigmask(&attr, &empty)
            var defaults = sigset_t()
            sigemptyset(&defaults)
            for s in [SIGTERM, SIGINT, SIGPIPE, SIGHUP] { sigaddset(&defaults, s) }
            posix_spawnattr_setsigdefault(&attr, &defaults)
        }
        let env = environment.map { "\($0.key)=\($0.value)" }
        var child: pid_t = 0
        let rc = withCStrings(arguments) { argv in
            withCStrings(env) { envp in posix_spawn(&child, arguments[0], &actions, &attr, argv, envp) }
        }
        do { try systemCheck("posix_spawn", arguments[0], rc) } catch let e as SystemError {
            throw StartError(executable: arguments[0], cause: e)
        }
        return child
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
        return finished(status, timedOut: timedOut)
    }

    /// The outcome if the child has ended (its output then fully copied), else nil. Never blocks.
    public func poll() -> Outcome? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        return finished(status, timedOut: false)
    }

    /// After the child ended: anything it left running in its group goes too, its output is
    /// copied, and its waitpid status becomes an Outcome (WIFEXITED / WEXITSTATUS / WTERMSIG are
    /// macros Swift does not import).
    private func finished(_ status: Int32, timedOut: Bool) -> Outcome {
        kill(-pid, SIGKILL)
        _ = readerDone.wait(timeout: .now() + 5)
        let seconds = Date().timeIntervalSince(started)
        let exited = (status & 0x7f) == 0
        return Outcome(exitCode: exited ? (status >> 8) & 0xff : nil, signal: exited ? nil : status & 0x7f, timedOut: timedOut, seconds: seconds)
    }

    /// Makes this process die (SIGKILL) when its parent `parent` does, so that a SIGKILLed
    /// parent leaves nothing running behind it.
    public static func dieWithParent(_ parent: pid_t) {
        // prctl is variadic, so Swift does not import it: called through dlsym with its integer
        // arguments (PR_SET_PDEATHSIG is 1).
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        if let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") {
            _ = unsafeBitCast(sym, to: Prctl.self)(1, UInt(SIGKILL), 0, 0, 0)
        }
        if getppid() != parent { exit(137) }  // it died before prctl took effect
    }

    /// The path of the running executable (for starting stage processes of the same cairn).
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
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
