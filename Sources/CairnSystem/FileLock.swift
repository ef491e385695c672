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

    /// Whether some process holds a flock on the file at `path`, looked up in /proc/locks
    /// without taking the lock (taking it, even for an instant, could turn away a process that
    /// tries to take it then). False when the file does not exist or /proc/locks cannot be read.
    public static func isHeld(path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0, let locks = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return false }
        // The kernel writes the device as MAJOR:MINOR in hex (glibc's encoding of st_dev) and the inode in decimal.
        let dev = UInt64(st.st_dev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        let id = String(format: "%02llx:%02llx:%llu", major, minor, UInt64(st.st_ino))
        return locks.split(separator: "\n").contains { line in
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            return f.count >= 6 && f[1] == "FLOCK" && f[5] == id
        }
    }
}
