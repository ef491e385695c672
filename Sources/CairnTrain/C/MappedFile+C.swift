// The only file of CairnTrain's formats that makes POSIX calls: open, fstat, mmap/munmap for
// reading model files in place; open, write, fsync, rename for writing them as git does.
import Glibc

/// A failed system call in the formats code: the function, the path and errno's message.
struct FileSystemError: Error, CustomStringConvertible {
    let function: String
    let path: String
    let errno: Int32
    var description: String { "\(function) '\(path)': \(String(cString: strerror(errno)))" }
    var isNotFound: Bool { errno == ENOENT || errno == ENOTDIR }
}

@inline(__always) private func fail(_ function: String, _ path: String) -> FileSystemError {
    FileSystemError(function: function, path: path, errno: Glibc.errno)
}

/// A whole file mapped private and writable: pages are shared with the page cache until written,
/// then copied (copy-on-write), so the file on disk never changes. Unmapped in `deinit`.
final class MappedFile {
    let path: String
    /// The first byte of the mapping; nil for an empty file (mmap refuses length 0).
    let base: UnsafeMutableRawPointer?
    let size: Int

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("open", path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw fail("fstat", path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw FileSystemError(function: "open", path: path, errno: EISDIR)
        }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
            return
        }
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw fail("mmap", path) }
        base = p
    }

    deinit {
        if let base { munmap(base, size) }
    }

    /// Maps a model file (safetensors, GGUF); failures as the `FormatError` the formats throw.
    convenience init(modelFile path: String) throws {
        do {
            try self.init(path: path)
        } catch let e as FileSystemError {
            throw FormatError(file: path, e.isNotFound ? "no such file" : "cannot open: \(e)")
        }
    }

    /// The mapped bytes, read-only.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }
}

/// A file written as git writes objects: into a temp file beside the destination, fsync'd, renamed
/// over the destination, then the directory fsync'd. Until `commit()` the destination is untouched;
/// an uncommitted writer removes its temp file in `deinit`.
final class AtomicFileWriter {
    let path: String
    private let tempPath: String
    private var fd: Int32
    private var committed = false

    init(path: String) throws {
        self.path = path
        let dir = AtomicFileWriter.directory(of: path)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        var fd: Int32 = -1
        var temp = ""
        for _ in 0..<16 {
            temp = "\(dir)/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            if fd >= 0 || Glibc.errno != EEXIST { break }
        }
        guard fd >= 0 else { throw fail("open", temp) }
        self.fd = fd
        tempPath = temp
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(tempPath) }
    }

    func write(_ buffer: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < buffer.count {
            let n = Glibc.write(fd, buffer.baseAddress! + off, buffer.count - off)
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw fail("write", tempPath)
            }
            off += n
        }
    }

    func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// fsync, close, rename over `path`, fsync the directory.
    func commit() throws {
        guard fsync(fd) == 0 else { throw fail("fsync", tempPath) }
        let rc = close(fd)
        fd = -1
        guard rc == 0 else { throw fail("close", tempPath) }
        guard rename(tempPath, path) == 0 else { throw fail("rename", path) }
        committed = true
        try AtomicFileWriter.syncDirectory(AtomicFileWriter.directory(of: path))
    }

    /// Writes a whole file atomically.
    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        let w = try AtomicFileWriter(path: path)
        try w.write(bytes)
        try w.commit()
    }

    /// fsync on a directory, so that a rename in it is durable.
    static func syncDirectory(_ dir: String) throws {
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw fail("open", dir) }
        defer { close(dfd) }
        guard fsync(dfd) == 0 else { throw fail("fsync", dir) }
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// The process's peak resident set size (getrusage), for memory checks and benchmarks.
public enum PeakMemory {
    public static var residentBytes: Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Int(u.ru_maxrss) * 1024
    }
}

/// glibc's heap.
enum Allocator {
    /// Gives the heap's free pages back to the kernel (malloc_trim): the tensors of an arena's
    /// first step of a shape, freed when its block takes over, would otherwise stay resident.
    static func returnFreeMemory() {
        // malloc_trim is not in Glibc's module map.
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(sym, to: (@convention(c) (Int) -> Int32).self)(0)
    }
}
