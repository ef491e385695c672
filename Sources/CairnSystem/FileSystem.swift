import Glibc

/// Path-level system calls.
public enum FileSystem {
    /// `lstat`: nil when the path does not exist.
    public static func lstatInfo(_ path: String) throws -> FileInfo? {
        var st = stat()
        if Glibc.lstat(path, &st) == 0 { return FileInfo(st) }
        if Glibc.errno == ENOENT || Glibc.errno == ENOTDIR { return nil }
        throw SystemError.last("lstat", path)
    }

    /// `stat` (follows symlinks): nil when the path or its target does not exist.
    public static func statInfo(_ path: String) throws -> FileInfo? {
        var st = stat()
        if fstatat(AT_FDCWD, path, &st, 0) == 0 { return FileInfo(st) }
        if Glibc.errno == ENOENT || Glibc.errno == ENOTDIR || Glibc.errno == ELOOP { return nil }
        throw SystemError.last("stat", path)
    }

    /// The canonical absolute path with every symlink resolved, or nil when it does not resolve.
    public static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// Creates a directory; an existing directory is fine.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        if mkdir(path, mode) == 0 || Glibc.errno == EEXIST { return }
        throw SystemError.last("mkdir", path)
    }

    /// Hard-links `from` to `to`; false when `to` already exists (it is never replaced).
    public static func linkNoReplace(_ from: String, _ to: String) throws -> Bool {
        if link(from, to) == 0 { return true }
        if Glibc.errno == EEXIST { return false }
        throw SystemError.last("link", to)
    }

    /// Atomically renames, replacing `to` (used for files Cairn owns, never for blobs).
    public static func rename(_ from: String, _ to: String) throws {
        try systemCall("rename", to) { Glibc.rename(from, to) }
    }

    /// Removes a file; a missing file is fine.
    public static func removeFile(_ path: String) throws {
        if unlink(path) == 0 || Glibc.errno == ENOENT { return }
        throw SystemError.last("unlink", path)
    }

    public static func removeDirectory(_ path: String) {
        _ = rmdir(path)
    }

    /// Sets a file's modification time to now (git's "freshen": keeps a reused blob out of gc's reach).
    public static func touch(_ path: String) throws {
        try systemCall("utimensat", path) { utimensat(AT_FDCWD, path, nil, 0) }
    }

    public static func setMode(_ path: String, _ mode: mode_t) throws {
        try systemCall("chmod", path) { chmod(path, mode) }
    }

    /// Names in a directory, without "." and "..".
    public static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw SystemError.last("opendir", path) }
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
    public static func syncDirectory(_ path: String) throws {
        try FileDescriptor.openDirectory(path).sync()
    }

    /// The directory part of a path ("." for a bare name, "/" for a file at the root).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    public static var now: Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static var userName: String {
        if let u = getenv("USER") { return String(cString: u) }
        if let pw = getpwuid(getuid()), let n = pw.pointee.pw_name { return String(cString: n) }
        return "uid \(getuid())"
    }
}

/// Other processes on this machine, and this one.
public enum Processes {
    public static var currentID: Int32 { getpid() }

    /// Whether a process with this id exists on this machine (kill(pid, 0); EPERM: it exists but
    /// belongs to another user).
    public static func isAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || Glibc.errno == EPERM
    }

    /// Runs this program again in this process (execv of /proc/self/exe, same arguments) with
    /// `variable=value` in its environment. Returns only when execv failed.
    public static func reexecute(setting variable: String, to value: String) {
        setenv(variable, value, 1)
        var cargs: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &cargs)
        for p in cargs { free(p) }
    }

    /// Whether `pid` is alive and its command line (/proc/PID/cmdline) contains `name`: a pid the
    /// kernel has since given to another program does not count.
    public static func isAlive(_ pid: Int32, running name: String) -> Bool {
        guard isAlive(pid), let file = try? FileDescriptor.openForReading("/proc/\(pid)/cmdline") else { return false }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while let n = try? buffer.withUnsafeMutableBytes({ try file.read(into: $0) }), n > 0 { bytes += buffer[..<n] }
        return String(decoding: bytes, as: UTF8.self).contains(name)
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
public enum Allocator {
    /// Gives the heap's free pages back to the kernel (malloc_trim): the tensors of an arena's
    /// first step of a shape, freed when its block takes over, would otherwise stay resident.
    public static func returnFreeMemory() {
        // malloc_trim is not in Glibc's module map.
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(sym, to: (@convention(c) (Int) -> Int32).self)(0)
    }
}
