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
    /// The path itself may be a symlink (it is what the user named); inside a directory,
    /// symlinks are followed only when they resolve inside it and to a regular file; any other
    /// symlink, device, socket or fifo is refused. `excluding` (the store itself) is refused
    /// as a source and skipped inside one.
    init(path: String, excluding store: String? = nil) throws {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        guard try FS.lstatInfo(p) != nil else {
            throw StoreError.bad("cannot add '\(path)': no such file or directory")
        }
        name = String(p.split(separator: "/").last ?? Substring(p))
        guard let real = FS.realPath(p), let info = try FS.lstatInfo(real) else {
            throw StoreError.bad("cannot add '\(path)': it is a dangling symlink")
        }
        let skip = store.flatMap(FS.realPath)
        if let s = skip, real == s || real.hasPrefix(s + "/") {
            throw StoreError.bad("cannot add '\(path)': it is inside the store itself")
        }
        p = real
        root = p
        switch info.kind {
        case .file:
            try Manifest.validate(path: name)
            files = [File(relative: name, absolute: p, size: info.size, executable: info.isExecutable)]
        case .directory:
            var out: [File] = []
            try SourceTree.walk(dir: p, relative: "", realRoot: real, skip: skip, into: &out)
            files = out
        case .symlink, .other:
            throw StoreError.bad("cannot add '\(path)': not a regular file or directory")
        }
    }

    private static func walk(dir: String, relative: String, realRoot: String, skip: String?, into out: inout [File]) throws {
        for name in try FS.listDirectory(dir).sorted() {
            let abs = dir + "/" + name
            if abs == skip { continue }
            let rel = relative.isEmpty ? name : relative + "/" + name
            try Manifest.validate(path: rel)
            guard let info = try FS.lstatInfo(abs) else { continue }  // vanished while walking
            switch info.kind {
            case .file:
                out.append(File(relative: rel, absolute: abs, size: info.size, executable: info.isExecutable))
            case .directory:
                try walk(dir: abs, relative: rel, realRoot: realRoot, skip: skip, into: &out)
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
