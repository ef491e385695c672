/// A name (`task-api@production`) pointing at an artifact.
public struct AliasRecord: Codable, Sendable, Equatable {
    public let name: String
    public let artifact: ArtifactID
    /// Number of moves so far; the history has exactly this many entries.
    public let version: Int
    public let updatedAt: Double

    enum CodingKeys: String, CodingKey { case name, artifact, version, updatedAt = "updated_at" }
}

/// One entry of an alias's append-only history.
public struct AliasMove: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable { case set, rollback }
    public let alias: String
    public let version: Int
    public let action: Action
    public let from: ArtifactID?
    public let to: ArtifactID
    public let actor: String
    public let at: Double
    public let reason: String?
    public let run: Int64?
}

extension ArtifactStore {
    /// Alias names: letters, digits, `.`, `_`, `-`, at most one `@` (`task-api@production`).
    /// A name that could read as an id prefix (8+ hex digits) or a path is refused, so references
    /// stay unambiguous.
    public static func validateAlias(_ name: String) throws {
        let allowed = { (c: Unicode.Scalar) in
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "." || c == "_" || c == "-" || c == "@"
        }
        guard !name.isEmpty, name.count <= 128, name.unicodeScalars.allSatisfy(allowed),
              name.filter({ $0 == "@" }).count <= 1, !name.hasPrefix("@"), !name.hasSuffix("@"),
              !name.hasPrefix("."), !name.hasPrefix("-") else {
            throw StoreError.bad("invalid alias name '\(name)': use letters, digits, '.', '_', '-' and one '@' (e.g. task-api@production)")
        }
        if ArtifactID.isHex(name) && name.count >= 8 {
            throw StoreError.bad("invalid alias name '\(name)': it reads as an artifact id prefix")
        }
    }

    /// Points `name` at `artifact`, appending the move to its history.
    /// - automated: a move made by a pipeline; it is refused for an artifact that was rolled
    ///   back from on this alias, and a move to the current target records nothing.
    /// A person's move to a rolled-back artifact lifts that mark.
    @discardableResult
    public func setAlias(_ name: String, to artifact: ArtifactID, reason: String? = nil, actor: String? = nil,
                         run: Int64? = nil, automated: Bool = false) throws -> AliasMove {
        try Self.validateAlias(name)
        return try indexed("cannot move alias '\(name)'") {
            try write {
                guard let seq = try seqOf(artifact) else { throw StoreError.bad("unknown artifact \(artifact)") }
                if let rec = try artifactRecordCollected(seq), rec { throw StoreError(.refused, "artifact \(artifact) was removed by gc; add its content again first") }
                let current = try db.query("SELECT artifact FROM aliases WHERE name = ?", [.text(name)]).first?.int(0)
                if automated {
                    if let block = try db.query("SELECT history FROM alias_blocks WHERE alias = ? AND artifact = ?", [.text(name), .int(seq)]).first {
                        throw StoreError(.refused, "\(artifact) was rolled back from '\(name)' (history entry \(block.int(0)!)); automation never promotes it again — a person can, with `cairn alias set`")
                    }
                    if current == seq, let last = try lastMove(name) { return last }
                } else {
                    try unblock(name, seq)
                }
                return try appendMove(name, action: .set, from: current, to: seq, actor: actor, reason: reason, run: run).move
            }
        }
    }

    private func artifactRecordCollected(_ seq: Int64) throws -> Bool? {
        try db.query("SELECT collected_at FROM artifacts WHERE seq = ?", [.int(seq)]).first.map { $0[0] != .null }
    }

    /// Moves `name` back: to `target`, or by default to the newest earlier target in its history
    /// that is neither the current one nor itself rolled back from. The artifact rolled away from
    /// is marked so that automation never promotes it to this alias again.
    @discardableResult
    public func rollback(_ name: String, to target: ArtifactID? = nil, reason: String? = nil, actor: String? = nil) throws -> AliasMove {
        try indexed("cannot roll back '\(name)'") {
            try write {
                guard let current = try db.query("SELECT artifact FROM aliases WHERE name = ?", [.text(name)]).first?.int(0) else {
                    throw StoreError.bad("unknown alias '\(name)'")
                }
                let to: Int64
                if let t = target {
                    guard let seq = try seqOf(t) else { throw StoreError.bad("unknown artifact \(t)") }
                    guard seq != current else { throw StoreError(.refused, "'\(name)' already points at \(t)") }
                    if try artifactRecordCollected(seq) == true { throw StoreError(.refused, "artifact \(t) was removed by gc; add its content again first") }
                    to = seq
                } else {
                    let earlier = try db.query("""
                        SELECT to_artifact FROM alias_history
                        WHERE alias = ?1 AND to_artifact != ?2
                          AND to_artifact NOT IN (SELECT artifact FROM alias_blocks WHERE alias = ?1)
                        ORDER BY version DESC LIMIT 1
                        """, [.text(name), .int(current)]).first?.int(0)
                    guard let e = earlier else {
                        throw StoreError(.refused, "'\(name)' has no earlier artifact to roll back to (see `cairn alias history \(name)`)")
                    }
                    to = e
                }
                try unblock(name, to)
                let (move, entry) = try appendMove(name, action: .rollback, from: current, to: to, actor: actor, reason: reason, run: nil)
                try db.run("INSERT OR REPLACE INTO alias_blocks(alias, artifact, history) VALUES(?,?,?)",
                           [.text(name), .int(current), .int(entry)])
                try logRow("alias_blocks", ["alias": .text(name), "artifact": .int(current)])
                return move
            }
        }
    }

    private func appendMove(_ name: String, action: AliasMove.Action, from: Int64?, to: Int64, actor: String?,
                            reason: String?, run: Int64?) throws -> (move: AliasMove, entry: Int64) {
        let version = (try db.query("SELECT version FROM aliases WHERE name = ?", [.text(name)]).first?.int(0) ?? 0) + 1
        let now = FS.now
        try db.run("""
            INSERT INTO aliases(name, artifact, version, updated_at) VALUES(?,?,?,?)
            ON CONFLICT(name) DO UPDATE SET artifact = excluded.artifact, version = excluded.version, updated_at = excluded.updated_at
            """, [.text(name), .int(to), .int(version), .double(now)])
        try db.run("""
            INSERT INTO alias_history(alias, version, action, from_artifact, to_artifact, actor, at, reason, run)
            VALUES(?,?,?,?,?,?,?,?,?)
            """, [.text(name), .int(version), .text(action.rawValue), from.map { .int($0) } ?? .null, .int(to),
                  .text(actor ?? FS.userName), .double(now), opt(reason), run.map { .int($0) } ?? .null])
        let entry = db.lastInsertRowID
        try logRow("aliases", ["name": .text(name)])
        try logRow("alias_history", ["id": .int(entry)])
        return (try lastMove(name)!, entry)
    }

    /// Lifts the rollback mark of `artifact` on `name`, if it has one.
    private func unblock(_ name: String, _ artifact: Int64) throws {
        try db.run("DELETE FROM alias_blocks WHERE alias = ? AND artifact = ?", [.text(name), .int(artifact)])
        if db.changes > 0 { logDelete("alias_blocks", ["alias": .text(name), "artifact": .int(artifact)]) }
    }

    static let moveSQL = """
        SELECT h.alias, h.version, h.action, f.id, t.id, h.actor, h.at, h.reason, h.run
        FROM alias_history h JOIN artifacts t ON t.seq = h.to_artifact LEFT JOIN artifacts f ON f.seq = h.from_artifact
        """

    static func move(from r: Row) -> AliasMove {
        AliasMove(alias: r.string(0)!, version: Int(r.int(1)!), action: AliasMove.Action(rawValue: r.string(2)!) ?? .set,
                  from: r.string(3).flatMap(ArtifactID.init), to: ArtifactID(r.string(4)!)!, actor: r.string(5)!,
                  at: r.double(6)!, reason: r.string(7), run: r.int(8))
    }

    private func lastMove(_ name: String) throws -> AliasMove? {
        try db.query(Self.moveSQL + " WHERE h.alias = ? ORDER BY h.version DESC LIMIT 1", [.text(name)]).first.map(Self.move(from:))
    }

    /// Every alias and where it points.
    public func aliases() throws -> [AliasRecord] {
        try indexed("cannot read aliases") {
            try db.query("SELECT l.name, a.id, l.version, l.updated_at FROM aliases l JOIN artifacts a ON a.seq = l.artifact ORDER BY l.name").map {
                AliasRecord(name: $0.string(0)!, artifact: ArtifactID($0.string(1)!)!, version: Int($0.int(2)!), updatedAt: $0.double(3)!)
            }
        }
    }

    /// Aliases pointing at one artifact now.
    public func aliases(pointingAt id: ArtifactID) throws -> [String] {
        try aliases().filter { $0.artifact == id }.map(\.name)
    }

    /// Every move of an alias, oldest first.
    public func history(_ name: String) throws -> [AliasMove] {
        try indexed("cannot read the history of '\(name)'") {
            try db.query(Self.moveSQL + " WHERE h.alias = ? ORDER BY h.version", [.text(name)]).map(Self.move(from:))
        }
    }

    /// Whether automation is barred from pointing `alias` at `artifact` (it was rolled back from).
    public func isBlocked(alias: String, artifact: ArtifactID) throws -> Bool {
        try indexed("cannot read aliases") {
            guard let seq = try seqOf(artifact) else { return false }
            return try !db.query("SELECT 1 FROM alias_blocks WHERE alias = ? AND artifact = ?", [.text(alias), .int(seq)]).isEmpty
        }
    }
}
