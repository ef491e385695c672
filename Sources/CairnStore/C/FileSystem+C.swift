// The only file of CairnStore that makes POSIX calls directly: descriptors, fsync, syncfs,
// link, flock, lstat. Everything else works with paths and these wrappers.
import Glibc

/// A failed system call: keeps the function's name, errno and the path it was given.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let function: String
    public let errno: Int32
    public let path: String
    public var description: String { "\(function) '\(path)': \(String(cString: strerror(errno)))" }
    var isNotFound: Bool { errno == ENOENT || errno == ENOTDIR }
    var exists: Bool { errno == EEXIST }
}

@inline(__always) private func fail(_ function: String, _ path: String) -> SystemError {
    SystemError(function: function, errno: Glibc.errno, path: path)
}

/// Owns one open file descriptor and closes it in `deinit`.
final class FileDescriptor {
    let fd: Int32
    let path: String

    private init(fd: Int32, path: String) { self.fd = fd; self.path = path }

    deinit { close(fd) }

    /// Opens an existing file for reading, never following a final symlink when `noFollow`.
    static func openForReading(_ path: String, noFollow: Bool = false) throws -> FileDescriptor {
        let fd = open(path, O_RDONLY | O_CLOEXEC | (noFollow ? O_NOFOLLOW : 0))
        guard fd >= 0 else { throw fail("open", path) }
        return FileDescriptor(fd: fd, path: path)
    }

    /// Creates a new file that must not exist yet (O_EXCL), never following symlinks.
    static func createExclusive(_ path: String, mode: mode_t = 0o644) throws -> FileDescriptor {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw fail("open", path) }
        return FileDescriptor(fd: fd, path: path)
    }

    /// Opens a file for reading and appending (every write lands at its end), creating it when
    /// `create`; used for the journal.
    static func openAppending(_ path: String, create: Bool) throws -> FileDescriptor {
        let fd = open(path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT : 0), 0o644)
        guard fd >= 0 else { throw fail("open", path) }
        return FileDescriptor(fd: fd, path: path)
    }

    /// Opens a directory so that it can be fsync'd or syncfs'd.
    static func openDirectory(_ path: String) throws -> FileDescriptor {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("open", path) }
        return FileDescriptor(fd: fd, path: path)
    }

    /// Reads up to `buffer.count` bytes; 0 at end of file.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if Glibc.errno == EINTR { continue }
            throw fail("read", path)
        }
    }

    /// Fills `buffer` unless the file ends first; returns the bytes read.
    func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var total = 0
        while total < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[total...]))
            if n == 0 { break }
            total += n
        }
        return total
    }

    func writeAll(_ buffer: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < buffer.count {
            let n = Glibc.write(fd, buffer.baseAddress! + off, buffer.count - off)
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw fail("write", path)
            }
            off += n
        }
    }

    func sync() throws {
        guard fsync(fd) == 0 else { throw fail("fsync", path) }
    }

    /// fdatasync: the file's bytes and size are durable (its times need not be).
    func dataSync() throws {
        guard fdatasync(fd) == 0 else { throw fail("fdatasync", path) }
    }

    /// Reads up to `count` bytes at `offset` without moving the file position; fewer at its end.
    func read(at offset: Int64, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var total = 0
        while total < count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + total, count - total, off_t(offset) + off_t(total)) }
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw fail("pread", path)
            }
            if n == 0 { break }
            total += n
        }
        out.removeSubrange(total...)
        return out
    }

    /// Cuts the file to `size` bytes.
    func truncate(to size: Int64) throws {
        while ftruncate(fd, off_t(size)) != 0 {
            if Glibc.errno == EINTR { continue }
            throw fail("ftruncate", path)
        }
    }

    /// Flushes every dirty page of the filesystem holding this descriptor (one call for a batch).
    func syncFilesystem() throws {
        // syncfs(2) is a GNU extension that Glibc's module map does not import.
        guard let f = syncfsFunction else {  // not available: fall back to a full sync
            Glibc.sync(); return
        }
        guard f(fd) == 0 else { throw fail("syncfs", path) }
    }

    /// Turns O_DIRECT on or off: writes that bypass the page cache (aligned buffers, sizes and
    /// offsets only). False when the filesystem refuses it (tmpfs).
    @discardableResult
    func setDirect(_ on: Bool) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return false }
        return fcntl(fd, F_SETFL, on ? flags | directFlag : flags & ~directFlag) == 0
    }

    func setMode(_ mode: mode_t) throws {
        guard fchmod(fd, mode) == 0 else { throw fail("fchmod", path) }
    }

    /// The descriptor's size and mode bits.
    func info() throws -> FileInfo {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw fail("fstat", path) }
        return FileInfo(st)
    }
}

private let syncfsFunction: (@convention(c) (Int32) -> Int32)? = {
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "syncfs") else { return nil }
    return unsafeBitCast(sym, to: (@convention(c) (Int32) -> Int32).self)
}()

// O_DIRECT is a GNU extension that Glibc's module map does not import.
#if arch(x86_64) || arch(i386)
private let directFlag: Int32 = 0o40000
#else
private let directFlag: Int32 = 0o200000
#endif

/// What `lstat` says about a path.
struct FileInfo {
    enum Kind { case file, directory, symlink, other }
    let kind: Kind
    let size: Int64
    let mode: UInt32
    let modified: Double  // seconds since 1970

    init(_ st: stat) {
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = .file
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        default: kind = .other
        }
        size = Int64(st.st_size)
        mode = UInt32(st.st_mode)
        modified = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
    }

    var isExecutable: Bool { mode & 0o100 != 0 }
}

/// Path-level system calls.
enum FS {
    /// `lstat`: nil when the path does not exist.
    static func lstatInfo(_ path: String) throws -> FileInfo? {
        var st = stat()
        if Glibc.lstat(path, &st) == 0 { return FileInfo(st) }
        if Glibc.errno == ENOENT || Glibc.errno == ENOTDIR { return nil }
        throw fail("lstat", path)
    }

    /// `stat` (follows symlinks): nil when the path or its target does not exist.
    static func statInfo(_ path: String) throws -> FileInfo? {
        var st = stat()
        if fstatat(AT_FDCWD, path, &st, 0) == 0 { return FileInfo(st) }
        if Glibc.errno == ENOENT || Glibc.errno == ENOTDIR || Glibc.errno == ELOOP { return nil }
        throw fail("stat", path)
    }

    /// The canonical absolute path with every symlink resolved, or nil when it does not resolve.
    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// Creates a directory; an existing directory is fine.
    static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        if mkdir(path, mode) == 0 || Glibc.errno == EEXIST { return }
        throw fail("mkdir", path)
    }

    /// Hard-links `from` to `to`; false when `to` already exists (it is never replaced).
    static func linkNoReplace(_ from: String, _ to: String) throws -> Bool {
        if link(from, to) == 0 { return true }
        if Glibc.errno == EEXIST { return false }
        throw fail("link", to)
    }

    /// Atomically renames, replacing `to` (used for files Cairn owns, never for blobs).
    static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw fail("rename", to) }
    }

    /// Removes a file; a missing file is fine.
    static func removeFile(_ path: String) throws {
        if unlink(path) == 0 || Glibc.errno == ENOENT { return }
        throw fail("unlink", path)
    }

    static func removeDirectory(_ path: String) {
        _ = rmdir(path)
    }

    /// Sets a file's modification time to now (git's "freshen": keeps a reused blob out of gc's reach).
    static func touch(_ path: String) throws {
        guard utimensat(AT_FDCWD, path, nil, 0) == 0 else { throw fail("utimensat", path) }
    }

    static func setMode(_ path: String, _ mode: mode_t) throws {
        guard chmod(path, mode) == 0 else { throw fail("chmod", path) }
    }

    /// Names in a directory, without "." and "..".
    static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw fail("opendir", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// fsync on a directory, so that renames and links in it are durable.
    static func syncDirectory(_ path: String) throws {
        try FileDescriptor.openDirectory(path).sync()
    }

    /// Whether a process with this id exists on this machine.
    static func processIsAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || Glibc.errno == EPERM
    }

    static var currentPID: Int32 { getpid() }

    static var now: Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static var userName: String {
        if let u = getenv("USER") { return String(cString: u) }
        if let pw = getpwuid(getuid()), let n = pw.pointee.pw_name { return String(cString: n) }
        return "uid \(getuid())"
    }
}

/// An advisory `flock` on a lock file: shared for writers of new data, exclusive for gc.
/// Released when the object is freed (or the process dies, even by SIGKILL).
final class FileLock {
    private let descriptor: Int32
    let path: String

    init(path: String, exclusive: Bool) throws {
        self.path = path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fail("open", path) }
        descriptor = fd
        while flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0 {
            if Glibc.errno == EINTR { continue }
            let err = fail("flock", path)
            close(fd)
            throw err
        }
    }

    /// Takes the lock without waiting; nil when another process holds it in a conflicting mode.
    init?(trying path: String, exclusive: Bool) throws {
        self.path = path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fail("open", path) }
        descriptor = fd
        while flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0 {
            if Glibc.errno == EINTR { continue }
            let busy = Glibc.errno == EWOULDBLOCK
            let err = fail("flock", path)
            close(fd)
            if busy { return nil }
            throw err
        }
    }

    deinit { close(descriptor) }
}
