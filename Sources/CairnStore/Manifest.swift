/// One file of an artifact.
public struct ManifestEntry: Codable, Equatable, Sendable {
    /// Relative path with `/` separators; never absolute, never with `.` or `..` components.
    public let path: String
    /// SHA-256 of the file's bytes, 64 hex digits: the blob that holds them.
    public let blob: String
    public let size: Int64
    public let executable: Bool
}

/// The canonical description of an artifact's tree. Its SHA-256 is the artifact id, so the
/// same content gets the same id whoever adds it and wherever it came from.
///
/// Text form (UTF-8), entries sorted by the bytes of their paths:
/// ```
/// cairn-manifest 1
/// 100644 <blob hex> <size> <path>
/// 100755 <blob hex> <size> <path>
/// ```
public struct Manifest: Equatable, Sendable {
    public let entries: [ManifestEntry]

    static let header = "cairn-manifest 1\n"

    /// Sorts the entries; the paths must be valid and distinct.
    init(entries: [ManifestEntry]) throws {
        let sorted = entries.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        for e in sorted { try Manifest.validate(path: e.path) }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.path == b.path {
            throw StoreError.bad("the path '\(a.path)' appears twice in one artifact")
        }
        self.entries = sorted
    }

    public var canonicalText: String {
        var s = Manifest.header
        for e in entries {
            s += "\(e.executable ? "100755" : "100644") \(e.blob) \(e.size) \(e.path)\n"
        }
        return s
    }

    public var canonicalBytes: [UInt8] { Array(canonicalText.utf8) }
    public var id: ArtifactID { ArtifactID(hex: SHA256Hasher.hex(canonicalBytes)) }
    public var totalSize: Int64 { entries.reduce(0) { $0 + $1.size } }

    /// Parses the canonical text (from a manifest blob); throws when it is not canonical.
    static func parse(_ bytes: [UInt8]) throws -> Manifest {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasPrefix(header) else { throw StoreError(.integrity, "manifest does not start with '\(header.dropLast())'") }
        var entries: [ManifestEntry] = []
        for line in text.dropFirst(header.count).split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count == 4, parts[0] == "100644" || parts[0] == "100755",
                  parts[1].count == 64, ArtifactID.isHex(String(parts[1])), let size = Int64(parts[2]), size >= 0 else {
                throw StoreError(.integrity, "malformed manifest line '\(line)'")
            }
            entries.append(ManifestEntry(path: String(parts[3]), blob: String(parts[1]), size: size, executable: parts[0] == "100755"))
        }
        let m = try Manifest(entries: entries)
        guard m.canonicalBytes == bytes else { throw StoreError(.integrity, "manifest is not in canonical form") }
        return m
    }

    /// A path inside an artifact: relative, `/`-separated, no empty, `.` or `..` component,
    /// no control characters. Checked when adding and again before every checkout.
    public static func validate(path: String) throws {
        if path.isEmpty { throw StoreError.bad("an empty path cannot be stored") }
        if path.hasPrefix("/") { throw StoreError.bad("absolute path '\(path)' refused: artifact paths are relative") }
        for c in path.unicodeScalars where c.value < 0x20 || c.value == 0x7f {
            throw StoreError.bad("path '\(path.debugDescription)' refused: it contains a control character")
        }
        for comp in path.split(separator: "/", omittingEmptySubsequences: false) {
            if comp.isEmpty || comp == "." || comp == ".." {
                throw StoreError.bad("path '\(path)' refused: '..', '.' and empty components are not allowed")
            }
        }
    }
}
