/// An artifact's id: `sha256:` + the SHA-256 of its canonical manifest.
public struct ArtifactID: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    /// 64 lowercase hex digits.
    public let hex: String

    /// Accepts `sha256:<64 hex>` or the bare 64 hex digits.
    public init?(_ text: String) {
        let h = text.hasPrefix("sha256:") ? String(text.dropFirst(7)) : text
        guard Self.isHex(h), h.count == 64 else { return nil }
        hex = h.lowercased()
    }

    init(hex: String) { self.hex = hex }

    public var description: String { "sha256:" + hex }
    /// The id shortened for tables: `sha256:` and 12 hex digits.
    public var short: String { "sha256:" + hex.prefix(12) }

    public static func < (a: ArtifactID, b: ArtifactID) -> Bool { a.hex < b.hex }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let id = ArtifactID(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an artifact id: \(s)"))
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    static func isHex(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) || (65...70).contains($0) }
    }
}

/// SHA-256 of text as 64 hex characters (cache keys and the like), through libcrypto.
public enum SHA256Hex {
    public static func of(_ text: String) -> String { SHA256Hasher.hex(Array(text.utf8)) }
}
