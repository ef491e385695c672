/// What gc keeps and for how long.
public struct GCOptions: Sendable {
    public var dryRun: Bool
    /// The outputs of this many newest pipeline runs are kept.
    public var keepRuns: Int
    /// Blobs, temp files and artifacts younger than this are never removed (seconds).
    public var graceSeconds: Double

    public init(dryRun: Bool = false, keepRuns: Int = 10, graceSeconds: Double = 3600) {
        self.dryRun = dryRun; self.keepRuns = keepRuns; self.graceSeconds = graceSeconds
    }
}

public struct GCReport: Codable, Sendable {
    public struct Collected: Codable, Sendable { public let id: ArtifactID; public let kind: String; public let name: String }
    public let dryRun: Bool
    /// Artifacts whose content was (or would be) removed; their records and lineage stay.
    public let collected: [Collected]
    public let keptArtifacts: Int
    public let removedBlobs: Int
    public let freedBytes: Int64
    public let removedTempFiles: Int

    enum CodingKeys: String, CodingKey {
        case dryRun = "dry_run", collected, keptArtifacts = "kept_artifacts", removedBlobs = "removed_blobs"
        case freedBytes = "freed_bytes", removedTempFiles = "removed_temp_files"
    }
}

extension ArtifactStore {
    /// The artifacts gc must keep: alias targets and every artifact in alias histories, pinned
    /// (added by hand) and young artifacts, everything touched by unfinished runs, the outputs
    /// of the newest `keepRuns` pipeline runs — and, so that provenance survives, every ancestor
    /// of those.
    static let keepSQL = """
        WITH RECURSIVE roots(seq) AS (
            SELECT artifact FROM aliases
            UNION SELECT to_artifact FROM alias_history
            UNION SELECT from_artifact FROM alias_history WHERE from_artifact IS NOT NULL
            UNION SELECT seq FROM artifacts WHERE pinned = 1 OR created_at > ?1
            UNION SELECT l.artifact FROM lineage l JOIN stage_executions e ON e.id = l.execution JOIN runs r ON r.id = e.run
                  WHERE r.status IN ('queued', 'running', 'interrupted')
            UNION SELECT l.artifact FROM lineage l JOIN stage_executions e ON e.id = l.execution
                  WHERE l.relation = 'generated' AND e.run IN (SELECT id FROM runs WHERE pipeline != 'manual' ORDER BY id DESC LIMIT ?2)
        ), keep(seq) AS (
            SELECT seq FROM roots
            UNION
            SELECT u.artifact FROM keep
            JOIN lineage g ON g.artifact = keep.seq AND g.relation = 'generated'
            JOIN lineage u ON u.execution = g.execution AND u.relation = 'used'
        ) SELECT seq FROM keep
        """

    /// Removes the content of unreachable artifacts and every unreferenced blob older than the
    /// grace period. Holds the store's gc lock exclusively, so it waits for adds in progress and
    /// adds wait for it: a blob an add is about to reuse is never deleted under it. The index is
    /// updated before any blob is deleted, so a crash leaves orphans, never missing blobs.
    public func collectGarbage(_ options: GCOptions = GCOptions()) throws -> GCReport {
        let lock = try FileLock(path: gcLockPath, exclusive: true)
        defer { withExtendedLifetime(lock) {} }
        let cutoff = FS.now - options.graceSeconds
        let (collect, kept, referenced) = try indexed("gc cannot read the index") {
            try db.readTransaction { () -> ([GCReport.Collected], Int, Set<String>) in
                let keep = Set(try db.query(Self.keepSQL, [.double(cutoff), .int(Int64(options.keepRuns))]).map { $0.int(0)! })
                var collect: [GCReport.Collected] = []
                var collectSeqs = Set<Int64>()
                var referenced = Set<String>()
                for r in try db.query("SELECT seq, id, kind, name FROM artifacts WHERE collected_at IS NULL") {
                    let seq = r.int(0)!, id = ArtifactID(r.string(1)!)!
                    if keep.contains(seq) { referenced.insert(id.hex) } else {
                        collectSeqs.insert(seq)
                        collect.append(.init(id: id, kind: r.string(2)!, name: r.string(3)!))
                    }
                }
                try db.forEach("SELECT f.artifact, f.blob FROM artifact_files f JOIN artifacts a ON a.seq = f.artifact WHERE a.collected_at IS NULL") {
                    if !collectSeqs.contains($0.int(0)!) { referenced.insert($0.string(1)!) }
                }
                return (collect, keep.count, referenced)
            }
        }
        if !options.dryRun && !collect.isEmpty {
            try indexed("gc cannot update the index") {
                try write {
                    for c in collect {
                        guard let seq = try seqOf(c.id) else { continue }
                        try db.run("UPDATE artifacts SET collected_at = ? WHERE seq = ?", [.double(FS.now), .int(seq)])
                        try db.run("DELETE FROM artifact_files WHERE artifact = ?", [.int(seq)])
                        try logRow("artifacts", ["seq": .int(seq)])
                    }
                }
            }
        }
        var removed = 0, freed: Int64 = 0, temps = 0
        let scan = try scanObjects()
        for (hex, path) in scan.blobs where !referenced.contains(hex) {
            guard let info = try FS.lstatInfo(path), info.modified < cutoff else { continue }
            if !options.dryRun { try FS.removeFile(path) }
            removed += 1; freed += info.size
        }
        for t in scan.temps where t.isLeftover(cutoff: cutoff) {
            if !options.dryRun { try FS.removeFile(t.path) }
            temps += 1
        }
        if !options.dryRun { for shard in scan.shards { FS.removeDirectory(shard) } }  // only empty ones go
        return GCReport(dryRun: options.dryRun, collected: collect, keptArtifacts: kept, removedBlobs: removed,
                        freedBytes: freed, removedTempFiles: temps)
    }

    struct TempFile {
        let path: String
        let pid: Int32?
        let modified: Double
        /// Its writer is gone, or it is older than the cutoff.
        func isLeftover(cutoff: Double) -> Bool {
            modified < cutoff || pid.map { !Processes.isAlive($0) } ?? true
        }
    }

    struct ObjectScan {
        var blobs: [(hex: String, path: String)] = []
        var temps: [TempFile] = []
        var strays: [String] = []
        var shards: [String] = []
    }

    /// Everything under `objects/sha256`: blobs, temp files and anything else.
    func scanObjects() throws -> ObjectScan {
        var scan = ObjectScan()
        for name in try FS.listDirectory(blobs.root).sorted() {
            let path = blobs.root + "/" + name
            if name.hasPrefix(BlobStore.tempPrefix) {
                scan.temps.append(TempFile(path: path, pid: BlobStore.pid(ofTemp: name), modified: (try? FS.lstatInfo(path))??.modified ?? 0))
                continue
            }
            guard name.count == 2, ArtifactID.isHex(name), name == name.lowercased(), try FS.lstatInfo(path)?.kind == .directory else {
                scan.strays.append(path); continue
            }
            scan.shards.append(path)
            for file in try FS.listDirectory(path).sorted() {
                let hex = name + file
                if hex.count == 64, ArtifactID.isHex(hex), hex == hex.lowercased() {
                    scan.blobs.append((hex, path + "/" + file))
                } else {
                    scan.strays.append(path + "/" + file)
                }
            }
        }
        return scan
    }
}
