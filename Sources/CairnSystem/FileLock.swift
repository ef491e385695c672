import Glibc

/// An advisory `flock` on a lock file (created when missing): shared or exclusive, waited for or
/// tried. Released when the object is freed (or the process dies, even by SIGKILL).
public final class FileLock {
    private let file: FileDescriptor
    public var path: String { file.path }

    /// Waits for the lock.
    public init(path: String, exclusive: Bool) throws {
        file = try FileDescriptor.open(path, O_RDWR | O_CREAT)
        let fd = file.fd
        try systemCall("flock", path) { flock(fd, exclusive ? LOCK_EX : LOCK_SH) }
    }

    /// Takes the lock without waiting; nil when another process holds it in a conflicting mode.
    public init?(trying path: String, exclusive: Bool) throws {
        file = try FileDescriptor.open(path, O_RDWR | O_CREAT)
        let fd = file.fd
        do {
            try systemCall("flock", path) { flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) }
        } catch let e as SystemError where e.wouldBlock {
            return nil
        }
    }
}
