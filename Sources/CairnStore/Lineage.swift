/// The run and stage that produced an artifact.
public struct Producer: Codable, Sendable, Equatable {
    public let execution: Int64
    public let run: Int64
    public let stage: String
    public let pipeline: String
    public let repo: String?
    public let branch: String?
    public let commit: String?
    /// The commit's author ("Name <email>") and first line, for runs started from a commit.
    public let author: String?
    public let message: String?
    /// The sweep the run was a variant of, and its values: `rank-beta: dpo.beta=0.3 sft.lora_r=24`.
    public let sweep: String?

    public init(execution: Int64, run: Int64, stage: String, pipeline: String, repo: String?, branch: String?, commit: String?,
                author: String? = nil, message: String? = nil, sweep: String? = nil) {
        self.execution = execution; self.run = run; self.stage = stage; self.pipeline = pipeline
        self.repo = repo; self.branch = branch; self.commit = commit; self.author = author; self.message = message; self.sweep = sweep
    }

    /// A run record's sweep tag as `Producer.sweep` writes it.
    static func sweepLabel(_ metadata: JSONValue?) -> String? {
        guard let s = metadata?["sweep"], let id = s["id"]?.stringValue else { return nil }
        guard case .object(let params)? = s["params"] else { return id }
        return id + ": " + params.keys.sorted().map { "\($0)=\(params[$0]!.stringValue ?? params[$0]!.description)" }.joined(separator: " ")
    }
}

public struct LineageNode: Codable, Sendable, Equatable {
    public let id: ArtifactID
    public let kind: String
    public let name: String
    public let collected: Bool
    /// The first execution that generated it; nil for artifacts added by hand without lineage.
    public let producer: Producer?
}

/// `input` was used (with `role`) by the execution that generated `output`.
public struct LineageEdge: Codable, Sendable, Equatable {
    public let input: ArtifactID
    public let output: ArtifactID
    public let role: String
    public let execution: Int64
}

/// The ancestors (provenance) or descendants (impact) of one artifact.
public struct LineageGraph: Codable, Sendable {
    public enum Direction: String, Codable, Sendable { case ancestors, descendants }
    public let root: ArtifactID
    public let direction: Direction
    public let nodes: [LineageNode]
    public let edges: [LineageEdge]

    /// An indented tree, the root first. A node reached twice is shown once in full and then
    /// as "(shown above)".
    public func renderTree() -> String {
        let byID = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var children: [ArtifactID: [(ArtifactID, String)]] = [:]
        for e in edges {
            switch direction {
            case .ancestors: children[e.output, default: []].append((e.input, e.role))
            case .descendants: children[e.input, default: []].append((e.output, e.role))
            }
        }
        for k in children.keys {
            // An artifact made again by a cached execution (a later run with the same inputs) has
            // the same edges once more: each (artifact, role) is shown once.
            var seen = Set<String>()
            children[k] = children[k]!.filter { seen.insert($0.0.hex + " " + $0.1).inserted }
            children[k]!.sort { ($0.1, byID[$0.0]?.kind ?? "", $0.0.hex) < ($1.1, byID[$1.0]?.kind ?? "", $1.0.hex) }
        }
        var out = ""
        var shown = Set<ArtifactID>()
        func line(_ id: ArtifactID, role: String) -> String {
            guard let n = byID[id] else { return id.short }
            var s = "\(n.kind)  \(id.short)  \(n.name)" + (role.isEmpty ? "" : "  (as \(role))")
            if n.collected { s += "  [content removed by gc]" }
            if let p = n.producer {
                switch p.pipeline {
                case "manual": s += "  ← added by hand (run \(p.run))"
                case "import": s += "  ← imported from \(p.stage) (run \(p.run))"
                default: s += "  ← run \(p.run) \(p.pipeline)/\(p.stage)"
                }
                if let c = p.commit { s += " @ \(c.prefix(10))" }
                if let w = p.sweep { s += "  [sweep \(w)]" }
            }
            return s
        }
        func visit(_ id: ArtifactID, role: String, prefix: String, connector: String) {
            let again = shown.contains(id)
            out += prefix + connector + line(id, role: role) + (again && !(children[id] ?? []).isEmpty ? "  (shown above)" : "") + "\n"
            if again { return }
            shown.insert(id)
            let kids = children[id] ?? []
            let childPrefix = prefix + (connector == "├─ " ? "│  " : connector.isEmpty ? "" : "   ")
            for (i, kid) in kids.enumerated() {
                visit(kid.0, role: kid.1, prefix: childPrefix, connector: i == kids.count - 1 ? "└─ " : "├─ ")
            }
        }
        visit(root, role: "", prefix: "", connector: "")
        // The commits the runs above started from, once each: where the model came from in git.
        var commits: [String] = []
        for n in nodes.sorted(by: { ($0.producer?.run ?? 0, $0.id.hex) < ($1.producer?.run ?? 0, $1.id.hex) }) {
            guard let p = n.producer, let c = p.commit else { continue }
            var line = "commit \(c.prefix(10))" + (p.branch.map { " on \($0)" } ?? "") + (p.repo.map { " of \($0)" } ?? "")
            if let a = p.author { line += "\n  by \(a)" }
            if let m = p.message { line += "\n  \(m.debugDescription)" }
            if !commits.contains(line) { commits.append(line) }
        }
        if !commits.isEmpty { out += "\n" + commits.joined(separator: "\n") + "\n" }
        return out
    }

    /// Graphviz: one node per artifact, edges from input to output labelled with the role.
    public func renderDot() -> String {
        var s = "digraph lineage {\n  rankdir=BT;\n  node [shape=box, fontname=\"monospace\"];\n"
        for n in nodes.sorted(by: { $0.id < $1.id }) {
            let label = "\(n.kind)\\n\(n.id.short)\\n\(n.name)" + (n.producer.map { "\\nrun \($0.run) \($0.stage)" } ?? "")
            s += "  \"\(n.id.hex.prefix(16))\" [label=\"\(dotEscape(label))\"\(n.id == root ? ", style=bold" : "")];\n"
        }
        for e in edges {
            s += "  \"\(e.input.hex.prefix(16))\" -> \"\(e.output.hex.prefix(16))\" [label=\"\(dotEscape(e.role))\"];\n"
        }
        return s + "}\n"
    }

    private func dotEscape(_ s: String) -> String {
        s.replacingOccurrences(of: "\"", with: "\\\"")
    }
}

extension ArtifactStore {
    /// Everything `id` was made from, recursively (a recursive query over the lineage edges).
    public func ancestors(of id: ArtifactID) throws -> LineageGraph {
        try lineage(of: id, direction: .ancestors)
    }

    /// Everything made from `id`, recursively: every model trained from a dataset.
    public func descendants(of id: ArtifactID) throws -> LineageGraph {
        try lineage(of: id, direction: .descendants)
    }

    /// How many artifacts were made from `id`, directly or not (without building the graph).
    public func descendantCount(of id: ArtifactID) throws -> Int {
        try indexed("cannot read the lineage of \(id)") {
            guard let start = try seqOf(id) else { throw StoreError.bad("unknown artifact \(id)") }
            return Int(try db.query("SELECT count(*) - 1 FROM (\(Self.descendantsSQL))", [.int(start)])[0].int(0)!)
        }
    }

    static let ancestorsSQL = """
        WITH RECURSIVE anc(seq) AS (
            SELECT ?1
            UNION
            SELECT u.artifact FROM anc
            JOIN lineage g ON g.artifact = anc.seq AND g.relation = 'generated'
            JOIN lineage u ON u.execution = g.execution AND u.relation = 'used'
        ) SELECT seq FROM anc
        """

    static let descendantsSQL = """
        WITH RECURSIVE des(seq) AS (
            SELECT ?1
            UNION
            SELECT g.artifact FROM des
            JOIN lineage u ON u.artifact = des.seq AND u.relation = 'used'
            JOIN lineage g ON g.execution = u.execution AND g.relation = 'generated'
        ) SELECT seq FROM des
        """

    func lineage(of id: ArtifactID, direction: LineageGraph.Direction) throws -> LineageGraph {
        try indexed("cannot read the lineage of \(id)") {
            try db.readTransaction {
                guard let start = try seqOf(id) else { throw StoreError.bad("unknown artifact \(id)") }
                let seqs = try db.query(direction == .ancestors ? Self.ancestorsSQL : Self.descendantsSQL, [.int(start)]).map { $0.int(0)! }
                let members = Set(seqs)
                var ids: [Int64: ArtifactID] = [:]
                var nodes: [LineageNode] = []
                for seq in seqs {
                    let r = try db.query("SELECT id, kind, name, collected_at FROM artifacts WHERE seq = ?", [.int(seq)])
                    guard let row = r.first else { continue }  // a dangling edge: fsck reports it
                    let aid = ArtifactID(row.string(0)!)!
                    ids[seq] = aid
                    let p = try db.query("""
                        SELECT e.id, e.run, e.stage, r.pipeline, r.repo, r.branch, r.commit_sha, r.author, r.message, r.metadata
                        FROM lineage g JOIN stage_executions e ON e.id = g.execution JOIN runs r ON r.id = e.run
                        WHERE g.artifact = ? AND g.relation = 'generated' ORDER BY e.id LIMIT 1
                        """, [.int(seq)]).first.map {
                        Producer(execution: $0.int(0)!, run: $0.int(1)!, stage: $0.string(2)!, pipeline: $0.string(3)!,
                                 repo: $0.string(4), branch: $0.string(5), commit: $0.string(6), author: $0.string(7), message: $0.string(8),
                                 sweep: Producer.sweepLabel($0.string(9).flatMap(JSONValue.parse)))
                    }
                    nodes.append(LineageNode(id: aid, kind: row.string(1)!, name: row.string(2)!, collected: row[3] != .null, producer: p))
                }
                var edges: [LineageEdge] = []
                for seq in seqs {
                    // Edges where this node is the output (ancestors) or the input (descendants).
                    let sql = direction == .ancestors
                        ? "SELECT u.artifact, g.artifact, u.role, g.execution FROM lineage g JOIN lineage u ON u.execution = g.execution AND u.relation = 'used' WHERE g.artifact = ? AND g.relation = 'generated'"
                        : "SELECT u.artifact, g.artifact, u.role, g.execution FROM lineage u JOIN lineage g ON g.execution = u.execution AND g.relation = 'generated' WHERE u.artifact = ? AND u.relation = 'used'"
                    for r in try db.query(sql, [.int(seq)]) {
                        guard members.contains(r.int(0)!), members.contains(r.int(1)!),
                              let input = ids[r.int(0)!], let output = ids[r.int(1)!] else { continue }
                        edges.append(LineageEdge(input: input, output: output, role: r.string(2)!, execution: r.int(3)!))
                    }
                }
                return LineageGraph(root: id, direction: direction, nodes: nodes, edges: edges)
            }
        }
    }
}
