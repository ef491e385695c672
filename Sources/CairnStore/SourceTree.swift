/// A file or directory about to be added: its regular files, walked without leaving it.
struct SourceTree {
    struct File {
        /// Path inside the artifact.
        let relative: String
        /// Path on disk to read.
        let absolute: String
        let size: Int64
        let executable: Bool
    }

    let root: String
    let files: [File]
    /// Display name: the last component of the path.
    let name: String

    /// Walks `path`. A single file becomes an artifact with one entry named after it.
    /// Symlinks are followed only when they resolve inside the added directory and to a
    /// regular file; any other symlink, device, socket or fifo is refused.
    init(path: String) throws {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        guard let info = try FS.lstatInfo(p) else {
            throw StoreError.bad("cannot add '\(path)': no such file or directory")
        }
        root = p
        name = String(p.split(separator: "/").last ?? Substring(p))
        switch info.kind {
        case .file:
            try Manifest.validate(path: name)
            files = [File(relative: name, absolute: p, size: info.size, executable: info.isExecutable)]
        case .directory:
            guard let real = FS.realPath(p) else { throw StoreError.bad("cannot resolve '\(path)'") }
            var out: [File] = []
            try SourceTree.walk(dir: p, relative: "", realRoot: real, into: &out)
            files = out
        case .symlink:
            throw StoreError.bad("cannot add '\(path)': it is a symlink; add the file or directory it points to")
        case .other:
            throw StoreError.bad("cannot add '\(path)': not a regular file or directory")
        }
    }

    private static func walk(dir: String, relative: String, realRoot: String, into out: inout [File]) throws {
        for name in try FS.listDirectory(dir).sorted() {
            let abs = dir + "/" + name
            let rel = relative.isEmpty ? name : relative + "/" + name
            try Manifest.validate(path: rel)
            guard let info = try FS.lstatInfo(abs) else { continue }  // vanished while walking
            switch info.kind {
            case .file:
                out.append(File(relative: rel, absolute: abs, size: info.size, executable: info.isExecutable))
            case .directory:
                try walk(dir: abs, relative: rel, realRoot: realRoot, into: &out)
            case .symlink:
                guard let target = FS.realPath(abs) else {
                    throw StoreError.bad("cannot add '\(abs)': dangling symlink")
                }
                guard target.hasPrefix(realRoot + "/") else {
                    throw StoreError.bad("cannot add '\(abs)': symlink points outside the added directory (to '\(target)')")
                }
                guard let t = try FS.statInfo(abs), t.kind == .file else {
                    throw StoreError.bad("cannot add '\(abs)': symlink to a directory is not supported; add the directory itself")
                }
                out.append(File(relative: rel, absolute: abs, size: t.size, executable: t.isExecutable))
            case .other:
                throw StoreError.bad("cannot add '\(abs)': not a regular file, directory or symlink")
            }
        }
    }
}
