// The only file of CairnWatch that calls inotify and poll; its errors come through CairnSystem's
// errno gate.
import CairnSystem
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// inotify on a git directory's refs: HEAD, packed-refs, and every folder under refs/heads
/// (nested branch folders included; folders created later are added as they appear).
public final class RefWatcher {
    public enum Event: Sendable, Equatable {
        case changed(String)
        /// The kernel's queue overflowed: events were lost; reconcile everything.
        case overflow
    }

    let fd: Int32
    var watches: [Int32: String] = [:]
    let gitDir: String

    public init(gitDirectory: String) throws {
        gitDir = gitDirectory.hasSuffix("/") ? String(gitDirectory.dropLast()) : gitDirectory
        fd = try WatchError.gate("inotify_init1") { inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC)) }
        try add(gitDir)  // HEAD, packed-refs (written as packed-refs.lock then renamed)
        try addTree(gitDir + "/refs/heads")
    }

    deinit { close(fd) }

    static let mask = UInt32(IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR)

    func add(_ dir: String) throws {
        let wd = try WatchError.gate("inotify_add_watch", dir) { inotify_add_watch(fd, dir, Self.mask) }
        watches[wd] = dir
    }

    func addTree(_ dir: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else { return }
        try add(dir)
        for sub in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] { try addTree(dir + "/" + sub) }
    }

    /// Waits up to `timeout` seconds for events; returns the ref paths that changed (relative to
    /// the git directory), or [.overflow].
    public func wait(timeout: Double) -> [Event] {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, Int32(max(0, timeout) * 1000))
        guard r > 0 else { return [] }
        var events: [Event] = []
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = read(fd, &buf, buf.count)
            if n <= 0 { break }
            var off = 0
            while off + 16 <= n {
                // struct inotify_event { int wd; uint32 mask, cookie, len; char name[]; } — Swift
                // does not import the name: it starts 16 bytes in and is `len` bytes long.
                let wd = buf.withUnsafeBytes { $0.load(fromByteOffset: off, as: Int32.self) }
                let mask = buf.withUnsafeBytes { $0.load(fromByteOffset: off + 4, as: UInt32.self) }
                let len = Int(buf.withUnsafeBytes { $0.load(fromByteOffset: off + 12, as: UInt32.self) })
                let nameBytes = buf[(off + 16)..<min(n, off + 16 + len)].prefix { $0 != 0 }
                let name = String(decoding: nameBytes, as: UTF8.self)
                off += 16 + len
                if mask & UInt32(IN_Q_OVERFLOW) != 0 { events.append(.overflow); continue }
                guard let dir = watches[wd] else { continue }
                let full = name.isEmpty ? dir : dir + "/" + name
                if mask & UInt32(IN_ISDIR) != 0 && mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 { try? addTree(full) }
                if mask & UInt32(IN_IGNORED) != 0 { watches[wd] = nil; continue }
                let rel = full.hasPrefix(gitDir + "/") ? String(full.dropFirst(gitDir.count + 1)) : full
                if rel.hasSuffix(".lock") { continue }  // the rename that follows is what counts
                events.append(.changed(rel))
            }
        }
        return events
    }
}

public struct WatchError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// A call through the errno gate whose failure reads "function('path'): reason".
    static func gate(_ function: String, _ path: String = "", _ call: () -> Int32) throws -> Int32 {
        do { return try systemCall(function, path, call) } catch let e as SystemError {
            throw WatchError("\(function)\(path.isEmpty ? "" : "('\(path)')"): \(e.message)")
        }
    }
}

/// An exclusive flock held while this process works the queue (the watcher, `cairn queue work`).
public final class WorkerLock {
    private let lock: FileLock
    /// nil when another process holds it.
    public init?(path: String) {
        guard let l = (try? FileLock(trying: path, exclusive: true)) ?? nil else { return nil }
        lock = l
    }
}

/// Starts a process in a new session, detached from this one (for hooks: the push does not wait).
public func spawnDetached(_ arguments: [String], logPath: String) throws {
    var env = ProcessInfo.processInfo.environment
    env["CAIRN_DIE_WITH_PARENT"] = nil
    try Subprocess.startDetached(arguments, environment: env, logPath: logPath)
}
