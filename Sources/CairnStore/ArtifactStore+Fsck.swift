/// A problem fsck found. Severities come from one table, `Finding.severity(of:)`.
public struct Finding: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case corruptBlob = "corrupt-blob"
        case missingBlob = "missing-blob"
        case badManifest = "bad-manifest"
        case danglingEdge = "dangling-edge"
        case damagedIndex = "damaged-index"
        case indexBehindJournal = "index-behind-journal"
        case damagedJournal = "damaged-journal"
        case indexDiffersFromJournal = "index-differs-from-journal"
        case orphanBlob = "orphan-blob"
        case leftoverTemp = "leftover-temp"
        case strayFile = "stray-file"
    }
    public enum Severity: String, Codable, Sendable { case error, warning }

    /// The one table of severities: errors are damage (exit 1); warnings are garbage that
    /// `cairn gc` removes (exit 1 only with --strict).
    public static func severity(of kind: Kind) -> Severity {
        switch kind {
        case .corruptBlob, .missingBlob, .badManifest, .danglingEdge, .damagedIndex, .indexBehindJournal, .damagedJournal, .indexDiffersFromJournal: return .error
        case .orphanBlob, .leftoverTemp, .strayFile: return .warning
        }
    }

    public let kind: Kind
    public let severity: Severity
    /// The blob hash, file path or index row concerned.
    public let subject: String
    public let message: String
    /// Artifacts affected (for blobs: every artifact that holds it).
    public let artifacts: [ArtifactID]

    init(_ kind: Kind, _ subject: String, _ message: String, artifacts: [ArtifactID] = []) {
        self.kind = kind; self.severity = Finding.severity(of: kind); self.subject = subject
        self.message = message; self.artifacts = artifacts
    }
}

public struct FsckReport: Codable, Sendable {
    public let findings: [Finding]
    public let blobsChecked: Int
    public let bytesChecked: Int64
    public let artifactsChecked: Int
    /// Set by `cairn fsck --repair`: what the repair did before this check.
    public var repair: RepairReport?
    public var errors: Int { findings.filter { $0.severity == .error }.count }
    public var warnings: Int { findings.filter { $0.severity == .warning }.count }

    enum CodingKeys: String, CodingKey {
        case findings, blobsChecked = "blobs_checked", bytesChecked = "bytes_checked", artifactsChecked = "artifacts_checked", repair
    }

    init(findings: [Finding], blobsChecked: Int, bytesChecked: Int64, artifactsChecked: Int) {
        self.findings = findings; self.blobsChecked = blobsChecked; self.bytesChecked = bytesChecked; self.artifactsChecked = artifactsChecked
    }

    /// The report for a store whose index cannot be trusted: that one finding, nothing checked
    /// against it (every blob would look orphaned).
    public init(damage: IndexDamage) {
        self.init(findings: [Finding(damage.finding, damage.subject, damage.message)], blobsChecked: 0, bytesChecked: 0, artifactsChecked: 0)
    }
}

extension ArtifactStore {
    /// Rehashes every blob and cross-checks the index; collects every finding before returning.
    /// Holds the gc lock shared, so gc cannot remove content between what fsck reads from the
    /// index and what it finds on disk (adds may go on; their new blobs can show as orphans).
    public func fsck() throws -> FsckReport {
        let lock = try FileLock(path: gcLockPath, exclusive: false)
        defer { withExtendedLifetime(lock) {} }
        var findings: [Finding] = []
        // 1. The index file itself, and against the journal.
        let check = try indexed("fsck cannot read the index") { try db.query("PRAGMA quick_check").compactMap { $0.string(0) } }
        for line in check where line != "ok" { findings.append(Finding(.damagedIndex, indexPath, line)) }
        findings += try compareWithJournal()
        // 2. What the index references, read in one snapshot.
        let view = try indexView()
        findings += view.dangling
        // 3. What is on disk, every blob rehashed on every core.
        let scan = try scanObjects()
        let disk = try checkBlobs(scan, holders: view.holders)
        findings += disk.findings
        // 4. Each artifact's manifest blob against its id and the index's file rows.
        findings += checkManifests(view, present: disk.present, corrupt: disk.corrupt)
        // 5. Garbage: temp files whose writer is gone, and files that are not blobs.
        for t in scan.temps where t.isLeftover(cutoff: FS.now - 3600) {
            findings.append(Finding(.leftoverTemp, t.path, "leftover temp file '\(t.path)' from an interrupted write; `cairn gc` removes it"))
        }
        for s in scan.strays {
            findings.append(Finding(.strayFile, s, "'\(s)' is not a blob (unexpected name) and is ignored"))
        }
        return FsckReport(findings: findings, blobsChecked: scan.blobs.count, bytesChecked: disk.bytes, artifactsChecked: view.live.count)
    }

    /// The index's view of the content: each blob's holders, each live artifact's files, and
    /// rows that point at rows that do not exist.
    struct IndexView {
        var holders: [String: [ArtifactID]] = [:]       // blob -> artifacts holding it
        var files: [ArtifactID: [ManifestEntry]] = [:]  // index's view of each artifact
        var live: [ArtifactID] = []
        var dangling: [Finding] = []
    }

    func indexView() throws -> IndexView {
        var v = IndexView()
        try indexed("fsck cannot read the index") {
            try db.readTransaction {
                for r in try db.query("SELECT id FROM artifacts WHERE collected_at IS NULL") {
                    let id = ArtifactID(r.string(0)!)!
                    v.live.append(id)
                    v.holders[id.hex, default: []].append(id)
                    v.files[id] = []
                }
                try db.forEach("""
                    SELECT a.id, f.path, f.blob, f.size, f.executable FROM artifact_files f
                    JOIN artifacts a ON a.seq = f.artifact WHERE a.collected_at IS NULL
                    """) { r in
                    let id = ArtifactID(r.string(0)!)!
                    v.holders[r.string(2)!, default: []].append(id)
                    v.files[id, default: []].append(ManifestEntry(path: r.string(1)!, blob: r.string(2)!, size: r.int(3)!, executable: r.int(4) == 1))
                }
                let dangling: [(String, String)] = [
                    ("SELECT execution, artifact FROM lineage WHERE artifact NOT IN (SELECT seq FROM artifacts)", "lineage edge of execution %0 points at missing artifact row %1"),
                    ("SELECT execution, artifact FROM lineage WHERE execution NOT IN (SELECT id FROM stage_executions)", "lineage edge to artifact row %1 names missing stage execution %0"),
                    ("SELECT id, run FROM stage_executions WHERE run NOT IN (SELECT id FROM runs)", "stage execution %0 names missing run %1"),
                    ("SELECT name, artifact FROM aliases WHERE artifact NOT IN (SELECT seq FROM artifacts)", "alias %0 points at missing artifact row %1"),
                    ("SELECT l.name, a.id FROM aliases l JOIN artifacts a ON a.seq = l.artifact WHERE a.collected_at IS NOT NULL", "alias %0 points at %1, whose content gc removed"),
                    ("SELECT alias, to_artifact FROM alias_history WHERE to_artifact NOT IN (SELECT seq FROM artifacts)", "history of alias %0 names missing artifact row %1"),
                    ("SELECT artifact, path FROM artifact_files WHERE artifact NOT IN (SELECT seq FROM artifacts)", "file row '%1' belongs to missing artifact row %0"),
                ]
                for (sql, template) in dangling {
                    for r in try db.query(sql) {
                        let a = describe(r[0]), b = describe(r[1])
                        v.dangling.append(Finding(.danglingEdge, "\(a)→\(b)", template.replacingOccurrences(of: "%0", with: a).replacingOccurrences(of: "%1", with: b)))
                    }
                }
            }
        }
        return v
    }

    /// Every blob on disk rehashed against its name and matched with its holders.
    func checkBlobs(_ scan: ObjectScan, holders: [String: [ArtifactID]]) throws -> (findings: [Finding], present: Set<String>, corrupt: Set<String>, bytes: Int64) {
        let hashes = try Self.parallelMap(scan.blobs) { BlobStore.hashFile($0.path) }
        var findings: [Finding] = []
        var present = Set<String>(), corrupt = Set<String>()
        var bytes: Int64 = 0
        for (blob, got) in zip(scan.blobs, hashes) {
            present.insert(blob.hex)
            bytes += got?.size ?? 0
            let owners = (holders[blob.hex] ?? []).sorted()
            if got?.hex != blob.hex {
                corrupt.insert(blob.hex)
                let what = got.map { "its bytes hash to \($0.hex)" } ?? "it cannot be read"
                let held = owners.isEmpty ? "no artifact holds it" : "held by " + owners.map(\.description).joined(separator: ", ")
                findings.append(Finding(.corruptBlob, blob.hex, "blob \(blob.hex) is corrupt: \(what); \(held)", artifacts: owners))
            } else if owners.isEmpty {
                findings.append(Finding(.orphanBlob, blob.hex, "blob \(blob.hex) (\(got!.size) bytes) belongs to no artifact; `cairn gc` removes it"))
            }
        }
        for (hex, owners) in holders.sorted(by: { $0.key < $1.key }) where !present.contains(hex) {
            let o = owners.sorted()
            findings.append(Finding(.missingBlob, hex, "blob \(hex) is missing; needed by " + o.map(\.description).joined(separator: ", "), artifacts: o))
        }
        return (findings, present, corrupt, bytes)
    }

    /// Each live artifact's manifest (when its blob is whole) against its id and the index's file rows.
    func checkManifests(_ view: IndexView, present: Set<String>, corrupt: Set<String>) -> [Finding] {
        var findings: [Finding] = []
        for id in view.live.sorted() where present.contains(id.hex) && !corrupt.contains(id.hex) {
            do {
                let m = try Manifest.parse(try blobs.readAll(id.hex))
                let indexed = (view.files[id] ?? []).sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
                if m.entries != indexed {
                    findings.append(Finding(.badManifest, id.hex, "the index's file list for \(id) differs from its manifest", artifacts: [id]))
                }
            } catch {
                findings.append(Finding(.badManifest, id.hex, "manifest of \(id) cannot be read: \(error)", artifacts: [id]))
            }
        }
        return findings
    }

    private func describe(_ v: SQLValue) -> String {
        switch v {
        case .int(let i): return String(i)
        case .text(let s): return s
        case .double(let d): return String(d)
        default: return "null"
        }
    }
}
