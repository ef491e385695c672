// The only file of CairnGit that calls libgit2.
import CGit2
import Foundation

/// A libgit2 failure, keeping the C function's name and libgit2's message.
public struct GitError: Error, CustomStringConvertible, Sendable {
    public let function: String
    public let code: Int32
    public let message: String
    public var description: String { "\(function): \(message)" }
}

/// Turns a libgit2 return code into a GitError.
@discardableResult
func check(_ rc: Int32, _ function: String) throws -> Int32 {
    guard rc < 0 else { return rc }
    let m = git_error_last().flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "error \(rc)"
    throw GitError(function: function, code: rc, message: m)
}

enum Libgit2 {
    /// git_libgit2_init once per process; owner validation off (repositories in the tests and
    /// on servers belong to other users than the daemon's).
    static let initialised: Bool = {
        git_libgit2_init()
        _ = cairn_git_set_owner_validation(0)
        return true
    }()
}

/// A commit id as 40 hex characters.
public struct CommitID: Hashable, Sendable, CustomStringConvertible, Codable {
    public let hex: String
    public init?(_ hex: String) {
        guard hex.count == 40, hex.allSatisfy({ $0.isHexDigit }) else { return nil }
        self.hex = hex.lowercased()
    }
    init(_ oid: git_oid) {
        var o = oid
        var buf = [CChar](repeating: 0, count: 41)
        git_oid_tostr(&buf, 41, &o)
        hex = String(cString: buf)
    }
    var oid: git_oid {
        var o = git_oid()
        _ = git_oid_fromstr(&o, hex)
        return o
    }
    public var description: String { hex }
    public var short: String { String(hex.prefix(10)) }
}

public struct CommitInfo: Sendable {
    public let id: CommitID
    public let parents: [CommitID]
    public let author: String
    public let email: String
    public let message: String
    public let time: Date
    public var summary: String { String(message.split(separator: "\n").first ?? "") }
}

/// One entry of a commit's tree.
public struct TreeFile: Sendable {
    public enum Kind: Sendable { case file, executable, symlink, submodule }
    public let path: String
    public let kind: Kind
    /// File content; for a symlink, its target.
    public let data: Data
}

/// A repository opened with libgit2 (a work tree or a bare repository). Read-only use.
public final class GitRepository: @unchecked Sendable {
    let handle: OpaquePointer
    public let path: String

    public init(path: String) throws {
        _ = Libgit2.initialised
        var r: OpaquePointer?
        try check(git_repository_open_ext(&r, path, 0, nil), "git_repository_open_ext('\(path)')")
        handle = r!
        self.path = path
    }

    deinit { git_repository_free(handle) }

    /// The git directory (`.git/` of a work tree, the repository itself when bare), with a trailing slash.
    public var gitDirectory: String { String(cString: git_repository_path(handle)) }
    public var isBare: Bool { git_repository_is_bare(handle) == 1 }
    /// The work tree, nil for a bare repository.
    public var workTree: String? { git_repository_workdir(handle).map { String(cString: $0) } }

    /// Local branch names (refs/heads/…), nested ones included (`team/feature`).
    public func branches() throws -> [String] {
        var it: OpaquePointer?
        try check(git_branch_iterator_new(&it, handle, GIT_BRANCH_LOCAL), "git_branch_iterator_new")
        defer { git_branch_iterator_free(it) }
        var out: [String] = []
        var ref: OpaquePointer?
        var type = GIT_BRANCH_LOCAL
        while git_branch_next(&ref, &type, it) == 0 {
            var name: UnsafePointer<CChar>?
            if git_branch_name(&name, ref) == 0, let n = name { out.append(String(cString: n)) }
            git_reference_free(ref)
        }
        return out.sorted()
    }

    /// The commit a branch points at; nil when there is no such branch.
    public func tip(branch: String) throws -> CommitID? {
        var oid = git_oid()
        let rc = git_reference_name_to_id(&oid, handle, "refs/heads/" + branch)
        if rc == GIT_ENOTFOUND.rawValue { return nil }
        try check(rc, "git_reference_name_to_id('refs/heads/\(branch)')")
        return CommitID(oid)
    }

    /// The branch HEAD names (nil when detached or unborn).
    public func headBranch() -> String? {
        var ref: OpaquePointer?
        guard git_repository_head(&ref, handle) == 0 else { return nil }
        defer { git_reference_free(ref) }
        guard git_reference_is_branch(ref) == 1, let n = git_reference_shorthand(ref) else { return nil }
        return String(cString: n)
    }

    public func exists(_ id: CommitID) -> Bool {
        var o = id.oid
        var c: OpaquePointer?
        guard git_commit_lookup(&c, handle, &o) == 0 else { return false }
        git_commit_free(c)
        return true
    }

    func withCommit<T>(_ id: CommitID, _ body: (OpaquePointer) throws -> T) throws -> T {
        var o = id.oid
        var c: OpaquePointer?
        try check(git_commit_lookup(&c, handle, &o), "git_commit_lookup(\(id.short))")
        defer { git_commit_free(c) }
        return try body(c!)
    }

    public func commit(_ id: CommitID) throws -> CommitInfo {
        try withCommit(id) { c in
            let n = git_commit_parentcount(c)
            let parents = (0..<n).compactMap { i in git_commit_parent_id(c, i).map { CommitID($0.pointee) } }
            let sig = git_commit_author(c)!.pointee
            return CommitInfo(id: id, parents: parents, author: sig.name.map { String(cString: $0) } ?? "", email: sig.email.map { String(cString: $0) } ?? "",
                              message: git_commit_message(c).map { String(cString: $0) } ?? "",
                              time: Date(timeIntervalSince1970: Double(git_commit_time(c))))
        }
    }

    /// Whether `descendant` has `ancestor` in its history (false for the same commit).
    public func isDescendant(_ descendant: CommitID, of ancestor: CommitID) throws -> Bool {
        var d = descendant.oid, a = ancestor.oid
        return try check(git_graph_descendant_of(handle, &d, &a), "git_graph_descendant_of") == 1
    }

    /// Commits reachable from `tip` and not from `hide` (when it exists), newest first
    /// (topological, then by time); at most `limit`.
    public func commits(from tip: CommitID, hiding hide: CommitID?, limit: Int = 100_000) throws -> [CommitID] {
        var walk: OpaquePointer?
        try check(git_revwalk_new(&walk, handle), "git_revwalk_new")
        defer { git_revwalk_free(walk) }
        git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_TIME.rawValue)
        var t = tip.oid
        try check(git_revwalk_push(walk, &t), "git_revwalk_push(\(tip.short))")
        if let h = hide, exists(h) {
            var o = h.oid
            try check(git_revwalk_hide(walk, &o), "git_revwalk_hide(\(h.short))")
        }
        var out: [CommitID] = []
        var oid = git_oid()
        while out.count < limit, git_revwalk_next(&oid, walk) == 0 { out.append(CommitID(oid)) }
        return out
    }

    func withTree<T>(_ id: CommitID, _ body: (OpaquePointer) throws -> T) throws -> T {
        try withCommit(id) { c in
            var tree: OpaquePointer?
            try check(git_commit_tree(&tree, c), "git_commit_tree(\(id.short))")
            defer { git_tree_free(tree) }
            return try body(tree!)
        }
    }

    /// Paths changed between `base` (nil: the empty tree) and `commit`, old and new names of renames.
    public func changedPaths(from base: CommitID?, to commit: CommitID) throws -> Set<String> {
        try withTree(commit) { newTree in
            func diff(_ oldTree: OpaquePointer?) throws -> Set<String> {
                var d: OpaquePointer?
                try check(git_diff_tree_to_tree(&d, handle, oldTree, newTree, nil), "git_diff_tree_to_tree")
                defer { git_diff_free(d) }
                var paths = Set<String>()
                for i in 0..<git_diff_num_deltas(d) {
                    guard let delta = git_diff_get_delta(d, i)?.pointee else { continue }
                    if let p = delta.old_file.path { paths.insert(String(cString: p)) }
                    if let p = delta.new_file.path { paths.insert(String(cString: p)) }
                }
                return paths
            }
            guard let b = base else { return try diff(nil) }
            return try withTree(b) { try diff($0) }
        }
    }

    /// Every path in the commit's tree (blobs and links), sorted.
    public func paths(at commit: CommitID) throws -> [String] {
        try withTree(commit) { tree in
            var out: [String] = []
            try walk(tree, prefix: "") { path, _, _ in out.append(path) }
            return out.sorted()
        }
    }

    private func walk(_ tree: OpaquePointer, prefix: String, _ visit: (String, git_filemode_t, git_oid) throws -> Void) throws {
        for i in 0..<git_tree_entrycount(tree) {
            guard let e = git_tree_entry_byindex(tree, i) else { continue }
            let name = prefix + String(cString: git_tree_entry_name(e))
            let mode = git_tree_entry_filemode(e)
            let oid = git_tree_entry_id(e)!.pointee
            if mode == GIT_FILEMODE_TREE {
                var sub: OpaquePointer?
                var o = oid
                try check(git_tree_lookup(&sub, handle, &o), "git_tree_lookup(\(name))")
                defer { git_tree_free(sub) }
                try walk(sub!, prefix: name + "/", visit)
            } else {
                try visit(name, mode, oid)
            }
        }
    }

    func blob(_ oid: git_oid) throws -> Data {
        var o = oid
        var b: OpaquePointer?
        try check(git_blob_lookup(&b, handle, &o), "git_blob_lookup")
        defer { git_blob_free(b) }
        let size = Int(git_blob_rawsize(b))
        guard size > 0, let raw = git_blob_rawcontent(b) else { return Data() }
        return Data(bytes: raw, count: size)
    }

    static func kind(_ mode: git_filemode_t) -> TreeFile.Kind {
        switch mode {
        case GIT_FILEMODE_BLOB_EXECUTABLE: return .executable
        case GIT_FILEMODE_LINK: return .symlink
        case GIT_FILEMODE_COMMIT: return .submodule
        default: return .file
        }
    }

    /// One file of the commit's tree; nil when the path is not there (or is a directory).
    public func file(_ path: String, at commit: CommitID) throws -> TreeFile? {
        try withTree(commit) { tree in
            var e: OpaquePointer?
            let rc = git_tree_entry_bypath(&e, tree, path)
            if rc == GIT_ENOTFOUND.rawValue { return nil }
            try check(rc, "git_tree_entry_bypath('\(path)')")
            defer { git_tree_entry_free(e) }
            let mode = git_tree_entry_filemode(e)
            if mode == GIT_FILEMODE_TREE || mode == GIT_FILEMODE_COMMIT { return nil }
            return TreeFile(path: path, kind: Self.kind(mode), data: try blob(git_tree_entry_id(e)!.pointee))
        }
    }

    /// Every file under `prefix` ("" for all) of the commit's tree, with its content.
    public func files(under prefix: String, at commit: CommitID) throws -> [TreeFile] {
        try withTree(commit) { tree in
            var out: [TreeFile] = []
            try walk(tree, prefix: "") { path, mode, oid in
                guard prefix.isEmpty || path == prefix || path.hasPrefix(prefix.hasSuffix("/") ? prefix : prefix + "/") else { return }
                if mode == GIT_FILEMODE_COMMIT { out.append(TreeFile(path: path, kind: .submodule, data: Data())); return }
                out.append(TreeFile(path: path, kind: Self.kind(mode), data: try blob(oid)))
            }
            return out
        }
    }
}
