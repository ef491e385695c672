import CairnPipeline
import CairnStore
import CairnSystem
import Foundation

/// The store's commands: each parses its arguments, calls CairnStore and prints.
enum StoreCommands {
    static let specs: [CommandSpec] = [
        CommandSpec(name: "init", usage: "cairn init [--store DIR]", summary: "create an empty store (default ./store)"),
        CommandSpec(name: "add", usage: "cairn add PATH --kind KIND [--name NAME] [--used ROLE=REF ...] [--json]\n       cairn add FILE.gguf --kind base-model --import [--name NAME] [--dtype f32|f16|bf16] [--json]",
                    summary: "store a file or directory as an artifact and print its id (--import: a GGUF as a model made from it)",
                    flags: ["json", "import"], options: ["kind", "name", "used", "dtype"], positionals: 1...1),
        CommandSpec(name: "checkout", usage: "cairn checkout REF DIR [--force]",
                    summary: "write an artifact's files into DIR, verifying every byte", flags: ["force"], positionals: 2...2),
        CommandSpec(name: "artifacts", usage: "cairn artifacts [--kind KIND] [--all] [--json]",
                    summary: "list artifacts, newest first (--all: also those whose content gc removed)",
                    flags: ["json", "all"], options: ["kind"]),
        CommandSpec(name: "show", usage: "cairn show REF [--json]", summary: "an artifact's record, files, aliases and producer",
                    flags: ["json"], positionals: 1...1),
        CommandSpec(name: "lineage", usage: "cairn lineage REF [--json | --dot | --svg FILE]",
                    summary: "everything REF was made from, as a tree (or a graph drawn as a standalone SVG file)",
                    flags: ["json", "dot"], options: ["svg"], positionals: 1...1),
        CommandSpec(name: "descendants", usage: "cairn descendants REF [--json | --dot]",
                    summary: "everything made from REF", flags: ["json", "dot"], positionals: 1...1),
        CommandSpec(name: "alias", usage: "cairn alias set NAME REF [--reason TEXT] | alias list [--json] | alias history NAME [--json]",
                    summary: "move, list and trace aliases", flags: ["json"], options: ["reason"], positionals: 1...3),
        CommandSpec(name: "rollback", usage: "cairn rollback NAME [--to REF] [--reason TEXT] [--json]",
                    summary: "move an alias back (default: to its previous artifact)", flags: ["json"], options: ["to", "reason"],
                    positionals: 1...1),
        CommandSpec(name: "gc", usage: "cairn gc [--dry-run] [--keep-runs N] [--grace DURATION] [--json]",
                    summary: "remove content nothing keeps (grace default 1h, keep-runs default 10)",
                    flags: ["dry-run", "json"], options: ["keep-runs", "grace"]),
        CommandSpec(name: "fsck", usage: "cairn fsck [--repair] [--json] [--strict]",
                    summary: "rehash every blob, check the index against the journal; exit 1 on damage (--repair: rebuild a damaged index)",
                    flags: ["json", "strict", "repair"]),
        CommandSpec(name: "index rebuild", usage: "cairn index rebuild [--json]",
                    summary: "rebuild index.db from the store's journal and manifests (the old one is kept as index.db.before-repair)",
                    flags: ["json"]),
    ]

    static func run(_ name: String, _ a: Arguments) throws -> Int32 {
        switch name {
        case "init":
            let root = try a.storeRoot()
            let existed = ArtifactStore.exists(at: root)
            let store = try ArtifactStore.initialize(at: root)
            Output.out((existed ? "Reinitialized existing" : "Initialized empty") + " Cairn store in \(FS_abs(store.root))")
        case "add": return try add(a)
        case "checkout":
            let store = try a.openStore()
            let id = try store.resolve(a.positionals[0])
            let files = try store.checkout(id, into: a.positionals[1], force: a.has("force"))
            Output.note("checked out \(id) into \(a.positionals[1]) (\(files.count) file\(files.count == 1 ? "" : "s"))")
        case "artifacts":
            let store = try a.openStore()
            let kind = try a.option("kind").map(ArtifactKind.parse)
            let list = try store.artifacts(kind: kind, includeCollected: a.has("all"))
            if a.has("json") { try Output.json(list) } else {
                Output.table(["ID", "KIND", "SIZE", "FILES", "CREATED", "NAME"], list.map {
                    [$0.id.short, $0.kind, Output.size($0.size), String($0.fileCount), Output.time($0.createdAt),
                     $0.name + ($0.collectedAt != nil ? " [removed by gc]" : "")]
                })
            }
        case "show": return try show(a)
        case "lineage", "descendants":
            let store = try a.openStore()
            let id = try store.resolve(a.positionals[0])
            let graph = name == "lineage" ? try store.ancestors(of: id) : try store.descendants(of: id)
            if let file = try a.option("svg") {
                try AtomicFile.write(RunReport.svgDocument(RunReport.lineageSVG(graph)), to: file)
                Output.out(file)
            } else if a.has("json") { try Output.json(graph) } else if a.has("dot") { Output.out(graph.renderDot()) } else {
                Output.out(graph.renderTree())
            }
        case "alias": return try alias(a)
        case "rollback":
            let store = try a.openStore()
            let to = try a.option("to").map { try store.resolve($0) }
            let move = try store.rollback(a.positionals[0], to: to, reason: try a.option("reason"))
            if a.has("json") { try Output.json(move) } else {
                Output.out("\(move.alias): \(move.from?.short ?? "-") → \(move.to.short) (rollback, version \(move.version)); \(move.from?.short ?? "-") will not be promoted again by automation")
            }
        case "gc":
            let store = try a.openStore()
            let grace = try a.option("grace").map(parseDuration) ?? 3600
            let report = try store.collectGarbage(GCOptions(dryRun: a.has("dry-run"), keepRuns: try a.int("keep-runs", default: 10), graceSeconds: grace))
            if a.has("json") { try Output.json(report) } else {
                let verb = report.dryRun ? "would remove" : "removed"
                for c in report.collected { Output.out("\(verb) content of \(c.kind) \(c.id.short) \(c.name)") }
                Output.out("\(verb) \(report.removedBlobs) blob(s), \(Output.size(report.freedBytes)), and \(report.removedTempFiles) leftover temp file(s); kept \(report.keptArtifacts) artifact(s)")
            }
        case "fsck": return try fsck(a)
        case "index rebuild":
            let root = try a.storeRoot()
            let report = try ArtifactStore.rebuildIndex(root: root, damage: try ArtifactStore.diagnose(root: root))
            if a.has("json") { try Output.json(report) } else { Output.out(describe(report)) }
        default: throw UsageError(message: "unknown command '\(name)'")
        }
        return 0
    }

    /// `cairn fsck [--repair]`: a damaged index is reported (and with --repair rebuilt) before
    /// the blobs are checked against it.
    static func fsck(_ a: Arguments) throws -> Int32 {
        let root = try a.storeRoot()
        var repaired: RepairReport? = nil
        if a.has("repair") {
            repaired = try ArtifactStore.repair(root: root)
            if !a.has("json") { Output.note(repaired.map(describe) ?? "the index matches the journal: nothing to repair") }
        }
        var report = try check(root)
        if a.has("repair") && repaired == nil {
            let differing = report.findings.filter { $0.kind == .indexDiffersFromJournal }.count
            if differing > 0 {
                repaired = try ArtifactStore.rebuildIndex(root: root, reason: "\(differing) index row(s) differed from the journal")
                if !a.has("json") { Output.note(describe(repaired!)) }
                report = try check(root)
            }
        }
        report.repair = repaired
        if a.has("json") { try Output.json(report) } else {
            for f in report.findings { Output.out("\(f.severity.rawValue): \(f.kind.rawValue): \(f.message)") }
            Output.out("checked \(report.blobsChecked) blob(s) (\(Output.size(report.bytesChecked))) and \(report.artifactsChecked) artifact(s): \(report.errors) error(s), \(report.warnings) warning(s)")
        }
        return report.errors > 0 || (a.has("strict") && report.warnings > 0) ? 1 : 0
    }

    /// fsck's report: the one damage finding when the index cannot be trusted, else the full check.
    static func check(_ root: String) throws -> FsckReport {
        if let damage = try ArtifactStore.diagnose(root: root) { return FsckReport(damage: damage) }
        return try ArtifactStore(root: root).fsck()
    }

    static func describe(_ r: RepairReport) -> String {
        let what = r.action == .rebuiltIndex ? "rebuilt the index from \(r.records) journal record(s)" : "wrote the journal again from the index"
        var line = (r.damage.map { "repaired: \($0); " } ?? "") + what
            + ": \(r.artifacts) artifact(s), \(r.runs) run(s), \(r.aliasMoves) alias move(s), \(r.queueEntries) queue entr\(r.queueEntries == 1 ? "y" : "ies")"
        if let k = r.keptAs { line += "; the old file is kept as \(k)" }
        if !r.unreadableManifests.isEmpty { line += "; \(r.unreadableManifests.count) manifest(s) unreadable (see `cairn fsck`)" }
        return line
    }

    static func add(_ a: Arguments) throws -> Int32 {
        let store = try a.openStore()
        let kind = try ArtifactKind.parse(try a.required("kind"))
        if a.has("import") { return try ModelCommands.addImported(a, store: store, kind: kind) }
        if a.options["dtype"] != nil { throw UsageError(message: "--dtype goes with --import") }
        let used = try a.all("used").map { spec -> (role: String, artifact: ArtifactID) in
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex else {
                throw UsageError(message: "--used wants ROLE=REF, not '\(spec)'")
            }
            return (String(spec[..<eq]), try store.resolve(String(spec[spec.index(after: eq)...])))
        }
        let result = try store.addByHand(path: a.positionals[0], kind: kind, name: try a.option("name"), used: used)
        let r = result.artifact
        if a.has("json") { try Output.json(r) } else {
            Output.out(r.id.description)
            Output.note(result.created ? "stored \(r.kind) '\(r.name)': \(r.fileCount) file(s), \(Output.size(r.size))"
                                       : "already stored as \(r.kind) '\(r.name)'")
        }
        return 0
    }

    static func show(_ a: Arguments) throws -> Int32 {
        let store = try a.openStore()
        let id = try store.resolve(a.positionals[0])
        guard let r = try store.artifact(id) else { throw StoreError(.badInput, "unknown artifact \(id)") }
        let aliases = try store.aliases(pointingAt: id)
        let graph = try store.ancestors(of: id)
        let producer = graph.nodes.first { $0.id == id }?.producer
        let manifest = r.collectedAt == nil ? try store.manifest(id) : nil
        let users = try store.descendantCount(of: id)
        if a.has("json") {
            struct Show: Encodable {
                let artifact: ArtifactRecord; let aliases: [String]; let producer: Producer?
                let files: [ManifestEntry]?; let descendants: Int
            }
            try Output.json(Show(artifact: r, aliases: aliases, producer: producer, files: manifest?.entries, descendants: users))
            return 0
        }
        Output.out("""
            id:       \(r.id)
            kind:     \(r.kind)
            name:     \(r.name)
            size:     \(Output.size(r.size)) in \(r.fileCount) file(s)
            created:  \(Output.time(r.createdAt)) by \(r.createdBy)\(r.pinned ? " (pinned: added by hand)" : "")
            """)
        if let c = r.collectedAt { Output.out("content:  removed by gc at \(Output.time(c))") }
        if r.metadata != .object([:]) { Output.out("metadata: \(r.metadata)") }
        if !aliases.isEmpty { Output.out("aliases:  " + aliases.joined(separator: ", ")) }
        if let p = producer {
            Output.out("made by:  run \(p.run) \(p.pipeline)/\(p.stage)" + (p.commit.map { " at commit \($0)" } ?? ""))
        }
        Output.out("derived:  \(users) artifact(s) made from it (cairn descendants)")
        if let m = manifest {
            Output.out("files:")
            for e in m.entries.prefix(50) {
                Output.out("  \(e.executable ? "x" : "-") \(e.blob.prefix(12))  \(Output.size(e.size).padding(toLength: 10, withPad: " ", startingAt: 0))  \(e.path)")
            }
            if m.entries.count > 50 { Output.out("  … \(m.entries.count - 50) more (--json lists all)") }
        }
        return 0
    }

    static func alias(_ a: Arguments) throws -> Int32 {
        let store = try a.openStore()
        let sub = a.positionals[0]
        switch (sub, a.positionals.count) {
        case ("set", 3):
            let id = try store.resolve(a.positionals[2])
            let wasBlocked = try store.isBlocked(alias: a.positionals[1], artifact: id)
            let move = try store.setAlias(a.positionals[1], to: id, reason: try a.option("reason"))
            if a.has("json") { try Output.json(move) } else {
                Output.out("\(move.alias): \(move.from?.short ?? "-") → \(move.to.short) (version \(move.version))")
                if wasBlocked { Output.note("note: \(id.short) had been rolled back from \(move.alias); this manual move lifts that mark") }
            }
        case ("list", 1):
            let list = try store.aliases()
            if a.has("json") { try Output.json(list) } else {
                Output.table(["ALIAS", "ARTIFACT", "VERSION", "UPDATED"], list.map { [$0.name, $0.artifact.short, String($0.version), Output.time($0.updatedAt)] })
            }
        case ("history", 2):
            let moves = try store.history(a.positionals[1])
            if moves.isEmpty { throw StoreError(.badInput, "unknown alias '\(a.positionals[1])'") }
            if a.has("json") { try Output.json(moves) } else {
                Output.table(["VERSION", "WHEN", "ACTION", "FROM", "TO", "BY", "REASON"], moves.map {
                    [String($0.version), Output.time($0.at), $0.action.rawValue, $0.from?.short ?? "-", $0.to.short,
                     $0.actor + ($0.run.map { " (run \($0))" } ?? ""), $0.reason ?? ""]
                })
            }
        default:
            throw UsageError(message: "usage: cairn alias set NAME REF | alias list | alias history NAME")
        }
        return 0
    }

    /// "90", "90s", "30m", "2h", "7d" → seconds.
    static func parseDuration(_ s: String) throws -> Double {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var num = s, mult = 1.0
        if let last = s.last, let m = units[last] { num = String(s.dropLast()); mult = m }
        guard let v = Double(num), v >= 0 else { throw UsageError(message: "--grace wants a duration like 30m, 2h or 0, not '\(s)'") }
        return v * mult
    }

    private static func FS_abs(_ p: String) -> String {
        p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
    }
}
