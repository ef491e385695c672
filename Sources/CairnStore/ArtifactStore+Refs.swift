import Foundation

extension ArtifactStore {
    /// Resolves a reference from the command line: a full id (`sha256:…`), an alias name, a
    /// unique hex prefix of 8 or more digits (an ambiguous one lists the candidates), or a path
    /// whose content is stored.
    public func resolve(_ ref: String) throws -> ArtifactID {
        try indexed("cannot resolve '\(ref)'") {
            if let id = ArtifactID(ref) {
                guard try seqOf(id) != nil else { throw StoreError.bad("unknown artifact \(id): it is not in the store at '\(root)'") }
                return id
            }
            if let target = try db.query("SELECT a.id FROM aliases l JOIN artifacts a ON a.seq = l.artifact WHERE l.name = ?", [.text(ref)]).first {
                return ArtifactID(target.string(0)!)!
            }
            let hex = (ref.hasPrefix("sha256:") ? String(ref.dropFirst(7)) : ref).lowercased()
            let pathExists = FileManager.default.fileExists(atPath: ref)
            if ArtifactID.isHex(hex) && !pathExists {
                guard hex.count >= 8 else {
                    throw StoreError.bad("'\(ref)' is too short to name an artifact: give at least 8 hex digits of its id")
                }
                let rows = try db.query("SELECT id, kind, name FROM artifacts WHERE id >= ? AND id < ? ORDER BY id LIMIT 11",
                                        [.text("sha256:" + hex), .text("sha256:" + hex + "g")])
                if rows.count == 1 { return ArtifactID(rows[0].string(0)!)! }
                if rows.count > 1 {
                    let list = rows.prefix(10).map { "\($0.string(0)!) \($0.string(1)!) '\($0.string(2)!)'" }.joined(separator: "; ")
                    throw StoreError(.ambiguous, "ambiguous reference '\(ref)' matches \(rows.count > 10 ? "more than 10" : "\(rows.count)") artifacts: \(list); give more digits")
                }
                throw StoreError.bad("unknown reference '\(ref)': no artifact id starts with it and no alias has that name")
            }
            if pathExists {
                let id = try identify(path: ref)
                guard try seqOf(id) != nil else {
                    throw StoreError.bad("'\(ref)' is not in the store (its content would be \(id)); add it with `cairn add \(ref) --kind KIND`")
                }
                return id
            }
            throw StoreError.bad("unknown reference '\(ref)': not an artifact id, an id prefix, an alias or an existing path")
        }
    }
}
