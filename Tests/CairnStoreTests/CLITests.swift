import Foundation
import Testing
@testable import CairnStore

@Suite("The cairn command line")
struct CLITests {
    @Test func twoProcessesAddingTheSameContentMakeOneArtifact() throws {
        let t = TempDir()
        let s = t.sub("store")
        try cairn(s, "init")
        for i in 0..<200 { t.writeBytes("data/f\(i).bin", pseudoRandomBytes(1500, seed: UInt64(i))) }
        t.writeBytes("data/big.bin", pseudoRandomBytes(9 << 20, seed: 99))
        let procs = try (0..<4).map { _ -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: cairnBinary)
            p.arguments = ["add", t.sub("data"), "--kind", "dataset", "--store", s]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        for p in procs { p.waitUntilExit(); #expect(p.terminationStatus == 0) }
        let store = try ArtifactStore(root: s)
        #expect(try store.artifacts().count == 1)
        #expect(blobFiles(store).count == 202)  // 200 small, 1 big, 1 manifest
        let report = try store.fsck()
        #expect(report.findings.isEmpty, "\(report.findings.map(\.message))")
    }

    @Test func exitCodesAndOneLineErrors() throws {
        let t = TempDir()
        let s = t.sub("store")
        #expect(try cairn(s, "init").status == 0)
        let cases: [([String], Int32)] = [
            (["show", "sha256:" + String(repeating: "0", count: 64)], 2),  // unknown id
            (["show", "0123456789"], 2),                                   // unknown prefix
            (["show", "no-such-alias"], 2),
            (["add", t.sub("missing"), "--kind", "dataset"], 2),           // missing path
            (["add", t.write("x", "x"), "--kind", "weights"], 2),          // unknown kind
            (["add", t.sub("x")], 2),                                      // missing --kind
            (["add"], 2),
            (["frobnicate"], 2),
            (["artifacts", "--bogus"], 2),
            (["gc", "--grace", "soon"], 2),
            (["checkout", "nope", t.sub("o")], 2),
        ]
        for (args, code) in cases {
            let r = try run(cairnBinary, args + ["--store", s])
            #expect(r.status == code, "\(args): \(r.stderr)")
            #expect(r.stderr.hasPrefix("cairn"), "\(args)")
            #expect(r.stdout.isEmpty, "\(args)")
        }
        #expect(try run(cairnBinary, ["add", "--help"]).status == 0)
        #expect(try run(cairnBinary, ["--help"]).stdout.contains("lineage"))
    }

    @Test func jsonOutputsParse() throws {
        let t = TempDir()
        let s = t.sub("store")
        try cairn(s, "init")
        t.write("m/config.json", "{}")
        t.write("m/weights.bin", "w")
        let add = try cairn(s, "add", t.sub("m"), "--kind", "base-model", "--name", "tiny-llama", "--json")
        let rec = try JSONDecoder().decode(ArtifactRecord.self, from: Data(add.stdout.utf8))
        #expect(rec.name == "tiny-llama" && rec.kind == "base-model" && rec.fileCount == 2 && rec.pinned)
        let list = try JSONDecoder().decode([ArtifactRecord].self, from: Data(try cairn(s, "artifacts", "--kind", "base-model", "--json").stdout.utf8))
        #expect(list == [rec])
        #expect(try JSONDecoder().decode([ArtifactRecord].self, from: Data(try cairn(s, "artifacts", "--kind", "dataset", "--json").stdout.utf8)).isEmpty)
        let show = try cairn(s, "show", "tiny-llama-not-an-alias")
        #expect(show.status == 2)
        let shown = try JSONSerialization.jsonObject(with: Data(try cairn(s, "show", String(rec.id.hex.prefix(12)), "--json").stdout.utf8)) as! [String: Any]
        #expect((shown["files"] as? [Any])?.count == 2)
        let fsck = try JSONDecoder().decode(FsckReport.self, from: Data(try cairn(s, "fsck", "--json").stdout.utf8))
        #expect(fsck.blobsChecked == 3 && fsck.findings.isEmpty)
        let gc = try JSONDecoder().decode(GCReport.self, from: Data(try cairn(s, "gc", "--dry-run", "--json").stdout.utf8))
        #expect(gc.dryRun && gc.collected.isEmpty)
        // checkout through a path reference and a prefix
        #expect(try cairn(s, "checkout", t.sub("m"), t.sub("out")).status == 0)
        #expect(readFile(t.sub("out/weights.bin")) == Array("w".utf8))
        #expect(try cairn(s, "checkout", String(rec.id.hex.prefix(8)), t.sub("out")).status == 1)  // would overwrite
        #expect(try cairn(s, "checkout", String(rec.id.hex.prefix(8)), t.sub("out"), "--force").status == 0)
    }

    @Test func storeIsFoundFromEnvironmentAndParentDirectories() throws {
        let t = TempDir()
        try FileManager.default.createDirectory(atPath: t.sub("repo/a/b"), withIntermediateDirectories: true)
        #expect(try run(cairnBinary, ["init"], cwd: t.sub("repo")).status == 0)
        #expect(FileManager.default.fileExists(atPath: t.sub("repo/store/index.db")))
        let add = try run(cairnBinary, ["add", t.write("repo/a/b/f.txt", "f"), "--kind", "config"], cwd: t.sub("repo/a/b"))
        #expect(add.status == 0, "\(add.stderr)")
        let env = try run(cairnBinary, ["artifacts", "--json"], env: ["CAIRN_STORE": t.sub("repo/store")], cwd: "/")
        #expect(env.stdout.contains("f.txt"))
        #expect(ArtifactStore.locate(explicit: "x", environment: ["CAIRN_STORE": "y"]) == "x")
        #expect(ArtifactStore.locate(explicit: nil, environment: ["CAIRN_STORE": "y"]) == "y")
    }
}

@Suite("cairn's help")
struct HelpTests {
    /// `cairn` alone lists every command under a task heading; each command's --help has an example.
    @Test func everyCommandIsListedByTaskAndHasAnExample() throws {
        let overview = try run(cairnBinary, [])
        #expect(overview.status == 2)
        #expect(overview.stdout.contains("Store: artifacts, lineage, aliases:") && overview.stdout.contains("GitOps: runs from commits:"))
        // Each line: two spaces, the name, at least two spaces, the summary.
        let names = overview.stdout.split(separator: "\n").filter { $0.hasPrefix("  ") }
            .map { String($0.dropFirst(2)).components(separatedBy: "  ")[0] }
        #expect(names.count >= 30)
        for name in names {
            let r = try run(cairnBinary, name.split(separator: " ").map(String.init) + ["--help"])
            #expect(r.status == 0, "\(name)")
            let example = r.stdout.split(separator: "\n").first { $0.hasPrefix("example: cairn \(name)") }
            #expect(example != nil, "\(name) has no example: \(r.stdout)")
        }
        // Nothing is missing from the overview: the commands `--help` knows are the ones listed.
        #expect(try run(cairnBinary, ["--help"]).stdout == overview.stdout)
    }

    @Test func aMistypedCommandOrOptionSuggestsTheNearestOne() throws {
        let t = TempDir()
        let cases: [([String], String)] = [
            (["lineag", "x"], "did you mean `cairn lineage`?"),
            (["model", "generat"], "did you mean `cairn model generate`?"),
            (["checkout", "a", "b", "--forse"], "did you mean --force?"),
            (["gc", "--dryrun"], "did you mean --dry-run?"),
        ]
        for (args, hint) in cases {
            let r = try run(cairnBinary, args + ["--store", t.sub("store")])
            #expect(r.status == 2, "\(args)")
            #expect(r.stderr.contains(hint), "\(args): \(r.stderr)")
        }
        #expect(!(try run(cairnBinary, ["frobnicate"])).stderr.contains("did you mean"))
    }
}
