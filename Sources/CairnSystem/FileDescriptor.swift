import Glibc

/// Owns one open file descriptor and closes it in `deinit`. Every call goes through the errno
/// gate, so a failure names the function and the path the descriptor was opened with.
public final class FileDescriptor {
    public let fd: Int32
    public let path: String

    private init(fd: Int32, path: String) { self.fd = fd; self.path = path }

    /// Takes ownership of an open descriptor (a pipe's end); `path` names it in errors.
    public convenience init(adopting fd: Int32, path: String) { self.init(fd: fd, path: path) }

    deinit { close(fd) }

    /// open(2) with `flags` (O_CLOEXEC is always added).
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws -> FileDescriptor {
        let fd = try systemCall("open", path) { Glibc.open(path, flags | O_CLOEXEC, mode) }
        return FileDescriptor(fd: fd, path: path)
    }

    /// Opens an existing file for reading, never following a final symlink when `noFollow`.
    public static func openForReading(_ path: String, noFollow: Bool = false) throws -> FileDescriptor {
        try open(path, O_RDONLY | (noFollow ? O_NOFOLLOW : 0))
    }

    /// Creates a new file that must not exist yet (O_EXCL), never following symlinks.
    public static func createExclusive(_ path: String, mode: mode_t = 0o644) throws -> FileDescriptor {
        try open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: mode)
    }

    /// Opens a file for reading and appending (every write lands at its end), creating it when
    /// `create`, never following a final symlink; used for the store's journal.
    public static func openAppending(_ path: String, create: Bool) throws -> FileDescriptor {
        try open(path, O_RDWR | O_APPEND | O_NOFOLLOW | (create ? O_CREAT : 0))
    }

    /// Opens a directory so that it can be fsync'd or syncfs'd.
    public static func openDirectory(_ path: String) throws -> FileDescriptor {
        try open(path, O_RDONLY | O_DIRECTORY)
    }

    /// Reads up to `buffer.count` bytes; 0 at end of file.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try systemCall("read", path) { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// Fills `buffer` unless the file ends first; returns the bytes read.
    public func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var total = 0
        while total < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[total...]))
            if n == 0 { break }
            total += n
        }
        return total
    }

    /// Reads up to `count` bytes at `offset` without moving the file position; fewer at its end.
    public func read(at offset: Int64, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var total = 0
        while total < count {
            let n = try out.withUnsafeMutableBytes { buf in
                try systemCall("pread", path) { pread(fd, buf.baseAddress! + total, count - total, off_t(offset) + off_t(total)) }
            }
            if n == 0 { break }
            total += n
        }
        out.removeSubrange(total...)
        return out
    }

    public func writeAll(_ buffer: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < buffer.count {
            off += try systemCall("write", path) { Glibc.write(fd, buffer.baseAddress! + off, buffer.count - off) }
        }
    }

    public func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAll($0) }
    }

    /// fsync: the file's bytes and metadata are durable.
    public func sync() throws {
        try systemCall("fsync", path) { fsync(fd) }
    }

    /// fdatasync: the file's bytes and size are durable (its times need not be).
    public func dataSync() throws {
        try systemCall("fdatasync", path) { fdatasync(fd) }
    }

    /// Cuts the file to `size` bytes.
    public func truncate(to size: Int64) throws {
        try systemCall("ftruncate", path) { ftruncate(fd, off_t(size)) }
    }

    /// Flushes every dirty page of the filesystem holding this descriptor (one call for a batch).
    public func syncFilesystem() throws {
        // syncfs(2) is a GNU extension that Glibc's module map does not import.
        guard let f = syncfsFunction else {  // not available: fall back to a full sync
            Glibc.sync(); return
        }
        try systemCall("syncfs", path) { f(fd) }
    }

    /// Turns O_DIRECT on or off: writes that bypass the page cache (aligned buffers, sizes and
    /// offsets only). False when the filesystem refuses it (tmpfs).
    @discardableResult
    public func setDirect(_ on: Bool) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return false }
        return fcntl(fd, F_SETFL, on ? flags | directFlag : flags & ~directFlag) == 0
    }

    public func setMode(_ mode: mode_t) throws {
        try systemCall("fchmod", path) { fchmod(fd, mode) }
    }

    /// The descriptor's kind, size and mode bits (fstat).
    public func info() throws -> FileInfo {
        var st = stat()
        try systemCall("fstat", path) { fstat(fd, &st) }
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

/// What `stat`, `lstat` or `fstat` says about a file.
public struct FileInfo: Sendable {
    public enum Kind: Sendable { case file, directory, symlink, other }
    public let kind: Kind
    public let size: Int64
    public let mode: UInt32
    public let modified: Double  // seconds since 1970
    /// The file's identity on its filesystem, with `modifiedNanoseconds`: what says that a file
    /// is still the one a worker hashed (KnownBlobs).
    public let inode: UInt64
    public let modifiedNanoseconds: Int64

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
        inode = UInt64(st.st_ino)
        modifiedNanoseconds = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    }

    public var isExecutable: Bool { mode & 0o100 != 0 }
}
