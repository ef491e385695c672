import Foundation
import Testing
@testable import CairnStore

@Suite("Aliases, history and rollback")
struct AliasTests {
    func threeModels() throws -> (TempDir, ArtifactStore, [ArtifactID]) {
        let t = TempDir()
        let store = try t.makeStore()
        let ids = try (1...3).map { try store.add(path: t.write("m\($0)", "model \($0)"), kind: .alignedModel).artifact.id }
        return (t, store, ids)
    }

    @Test func rollbackGoesToThePreviousArtifactAndMarksTheOneLeft() throws {
        let (_, store, m) = try threeModels()
        let name = "task-api@production"
        try store.setAlias(name, to: m[0], reason: "v1")
        try store.setAlias(name, to: m[1], reason: "v2")
        try store.setAlias(name, to: m[2], reason: "v3", run: nil, automated: true)
        let back = try store.rollback(name, reason: "v3 regressed")
        #expect(back.from == m[2] && back.to == m[1] && back.action == .rollback)
        #expect(try store.isBlocked(alias: name, artifact: m[2]))
        // Automation never re-promotes what was rolled back from.
        #expect(throws: StoreError.self) { try store.setAlias(name, to: m[2], automated: true) }
        #expect(try store.resolve(name) == m[1])
        // A second rollback keeps walking back, skipping the rolled-back artifact.
        let again = try store.rollback(name)
        #expect(again.to == m[0])
        #expect(try store.isBlocked(alias: name, artifact: m[1]))
        #expect(throws: StoreError.self) { try store.rollback(name) }  // nothing earlier left
        // The history has every move, in order, and cannot be rewritten.
        let h = try store.history(name)
        #expect(h.map(\.version) == [1, 2, 3, 4, 5])
        #expect(h.map(\.to) == [m[0], m[1], m[2], m[1], m[0]])
        #expect(h[3].reason == "v3 regressed")
        #expect(throws: (any Error).self) { try store.db.run("DELETE FROM alias_history") }
        #expect(throws: (any Error).self) { try store.db.run("UPDATE alias_history SET reason = 'x'") }
        // A person may promote it again; that lifts the mark.
        try store.setAlias(name, to: m[2], reason: "fixed upstream")
        #expect(try !store.isBlocked(alias: name, artifact: m[2]))
        // The mark is per alias: another alias may take it.
        try store.setAlias("task-api@staging", to: m[1], automated: true)
    }

    @Test func rollbackToAnExplicitTarget() throws {
        let (_, store, m) = try threeModels()
        try store.setAlias("a", to: m[0])
        try store.setAlias("a", to: m[1])
        try store.setAlias("a", to: m[2])
        let move = try store.rollback("a", to: m[0])
        #expect(move.to == m[0])
        #expect(throws: StoreError.self) { try store.rollback("a", to: m[0]) }
        #expect(throws: StoreError.self) { try store.rollback("nope") }
    }

    @Test func automatedMoveToTheCurrentTargetRecordsNothing() throws {
        let (_, store, m) = try threeModels()
        try store.setAlias("x@prod", to: m[0], automated: true)
        try store.setAlias("x@prod", to: m[0], automated: true)
        #expect(try store.history("x@prod").count == 1)
    }

    @Test func aliasNamesAreChecked() throws {
        let (_, store, m) = try threeModels()
        for bad in ["", "a b", "deadbeef", "a@b@c", "@x", "x/y", "../x", "-x"] {
            #expect(throws: StoreError.self, "\(bad)") { try store.setAlias(bad, to: m[0]) }
        }
    }

    @Test func cliAliasRollbackAndHistory() throws {
        let t = TempDir()
        let s = t.sub("store")
        try cairn(s, "init")
        let a = try cairn(s, "add", t.write("a", "a"), "--kind", "aligned-model").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let b = try cairn(s, "add", t.write("b", "b"), "--kind", "aligned-model").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cairn(s, "alias", "set", "api@prod", a, "--reason", "first").status == 0)
        #expect(try cairn(s, "alias", "set", "api@prod", b).status == 0)
        let rb = try cairn(s, "rollback", "api@prod", "--json")
        #expect(rb.status == 0)
        let move = try JSONDecoder().decode(AliasMove.self, from: Data(rb.stdout.utf8))
        #expect(move.to.description == a)
        let hist = try JSONDecoder().decode([AliasMove].self, from: Data(try cairn(s, "alias", "history", "api@prod", "--json").stdout.utf8))
        #expect(hist.count == 3 && hist[0].reason == "first")
        let list = try JSONDecoder().decode([AliasRecord].self, from: Data(try cairn(s, "alias", "list", "--json").stdout.utf8))
        #expect(list.map(\.name) == ["api@prod"] && list[0].artifact.description == a)
        #expect(try cairn(s, "alias", "history", "nope").status == 2)
        #expect(try cairn(s, "alias", "set", "x").status == 2)
        #expect(try cairn(s, "rollback", "api@prod", "--to", "ffffffffffff").status == 2)
    }

    /// Eight processes moving the same alias at once lose no move.
    @Test func eightProcessesMovingAliasesLoseNoMove() throws {
        let (t, store, m) = try threeModels()
        let perProcess = 12
        let script = """
            for i in $(seq 1 \(perProcess)); do
              "$CAIRN" alias set task-api@production "$1" --reason "p$2-$i" --store "$STORE" >/dev/null || exit 1
            done
            """
        let procs = try (0..<8).map { p -> Process in
            let proc = Process()
            proc.executableURL = URL(fileURLWithPath: "/bin/sh")
            proc.arguments = ["-c", script, "sh", m[p % 3].description, String(p)]
            proc.environment = ["CAIRN": cairnBinary, "STORE": store.root, "PATH": "/usr/bin:/bin"]
            try proc.run()
            return proc
        }
        for p in procs { p.waitUntilExit(); #expect(p.terminationStatus == 0) }
        _ = t
        let h = try store.history("task-api@production")
        #expect(h.count == 8 * perProcess)
        #expect(h.map(\.version) == Array(1...(8 * perProcess)))
        #expect(Set(h.compactMap(\.reason)).count == 8 * perProcess)
        // Each move's "from" is the previous move's "to": no move was lost or reordered.
        for (prev, next) in zip(h, h.dropFirst()) { #expect(next.from == prev.to) }
        // The journal holds the moves in commit order: replayed, it gives this index row for row.
        #expect(try Journal(path: store.root + "/journal").readAll().count == 1 + 3 + 8 * perProcess)
        #expect(try fsckErrors(store).isEmpty)
    }
}
