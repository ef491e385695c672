import Foundation

/// A path of a commit that a run may not use: a symlink leaving the repository, a submodule.
public struct UnsafePathError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let commit: CommitID
    public let reason: String
    public var description: String { "'\(path)' at commit \(commit.short): \(reason)" }
}

extension GitRepository {
    /// Writes every file of the commit's tree into `directory` (which must not exist yet): what
    /// a run reads, so that uncommitted edits in a work tree never leak into it. Symlinks are
    /// recreated only when their target stays inside the tree; one that leaves it, or an
    /// absolute one, is an UnsafePathError naming the path and the commit. Written into a
    /// temporary sibling and renamed, so a half-written export is never seen.
    public func export(_ commit: CommitID, into directory: String) throws {
        let fm = FileManager.default
        let temp = directory + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try fm.createDirectory(atPath: temp, withIntermediateDirectories: true)
        do {
            for f in try files(under: "", at: commit) {
                let dest = temp + "/" + f.path
                try fm.createDirectory(atPath: (dest as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                switch f.kind {
                case .file, .executable:
                    try f.data.write(to: URL(fileURLWithPath: dest))
                    if f.kind == .executable { try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dest) }
                case .symlink:
                    let target = String(decoding: f.data, as: UTF8.self)
                    guard Self.staysInside(link: f.path, target: target) else {
                        throw UnsafePathError(path: f.path, commit: commit, reason: "a symlink to '\(target)', which leaves the repository")
                    }
                    try fm.createSymbolicLink(atPath: dest, withDestinationPath: target)
                case .submodule:
                    continue  // a submodule's content is not in this repository
                }
            }
            try? fm.removeItem(atPath: directory)
            try fm.moveItem(atPath: temp, toPath: directory)
        } catch {
            try? fm.removeItem(atPath: temp)
            throw error
        }
    }

    /// Whether a link at `link` (a path in the tree) pointing at `target` resolves inside the tree.
    public static func staysInside(link: String, target: String) -> Bool {
        if target.hasPrefix("/") { return false }
        var parts = link.split(separator: "/").dropLast().map(String.init)
        for c in target.split(separator: "/") {
            if c == "." || c.isEmpty { continue }
            if c == ".." {
                if parts.isEmpty { return false }
                parts.removeLast()
            } else {
                parts.append(String(c))
            }
        }
        return true
    }
}
