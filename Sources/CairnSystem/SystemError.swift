// CairnSystem: the one room for POSIX (swift-system is the model). Every library of Cairn makes
// its system calls through these types; SQLite, libgit2, OpenBLAS, libyaml and inotify keep their
// own rooms (Sources/<Module>/C/), and their errno failures come through this gate too.
import Glibc

/// A failed system call: keeps the function's name, errno and the path it was given ("" when
/// the call takes none).
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let function: String
    public let errno: Int32
    public let path: String

    public init(function: String, errno: Int32, path: String) {
        self.function = function; self.errno = errno; self.path = path
    }

    /// The error that `function` just left in errno.
    public static func last(_ function: String, _ path: String = "") -> SystemError {
        SystemError(function: function, errno: Glibc.errno, path: path)
    }

    /// errno's text (strerror).
    public var message: String { String(cString: strerror(errno)) }
    public var description: String { "\(function) '\(path)': \(message)" }
    public var isNotFound: Bool { errno == ENOENT || errno == ENOTDIR }
    public var exists: Bool { errno == EEXIST }
    public var wouldBlock: Bool { errno == EWOULDBLOCK || errno == EAGAIN }
}

/// The errno gate: runs a call that returns -1 and sets errno on failure, again while it fails
/// with EINTR (when `retryOnInterrupt`), and turns any other failure into a `SystemError` naming
/// `function` and `path`. Every EINTR loop of Cairn is this one.
@discardableResult
public func systemCall<T: FixedWidthInteger & SignedInteger>(
    _ function: String, _ path: String = "", retryOnInterrupt: Bool = true, _ call: () -> T
) throws -> T {
    while true {
        let result = call()
        if result != -1 { return result }
        if retryOnInterrupt && Glibc.errno == EINTR { continue }
        throw SystemError.last(function, path)
    }
}

/// For the calls that return their error number instead of setting errno (posix_spawn, the
/// pthread family): 0 is success.
public func systemCheck(_ function: String, _ path: String = "", _ rc: Int32) throws {
    guard rc == 0 else { throw SystemError(function: function, errno: rc, path: path) }
}
