import Foundation
import Testing
@testable import CairnStore

/// SQLite's errors keep the C function, the result code, SQLite's message and the statement.
@Suite struct SQLiteErrorTests {
    @Test func aFailingStatementNamesItsSQL() throws {
        let t = TempDir()
        let db = try Database(path: t.path + "/x.db", create: true)
        try db.execute("CREATE TABLE t(k INTEGER PRIMARY KEY)")
        try db.run("INSERT INTO t(k) VALUES(?)", [.int(1)])
        #expect {
            try db.run("INSERT INTO t(k) VALUES(?)", [.int(1)])
        } throws: { e in
            guard let e = e as? SQLiteError else { return false }
            return e.function == "sqlite3_step" && e.sql == "INSERT INTO t(k) VALUES(?)"
                && e.description == "sqlite3_step failed (1555): UNIQUE constraint failed: t.k — while executing `INSERT INTO t(k) VALUES(?)`"
        }
        #expect {
            try db.query("SELECT nope FROM t")
        } throws: { e in
            (e as? SQLiteError).map { $0.function == "sqlite3_prepare_v2" && $0.sql == "SELECT nope FROM t" && $0.message == "no such column: nope" } ?? false
        }
    }

    @Test func openingNamesNoStatement() throws {
        let t = TempDir()
        #expect {
            _ = try Database(path: t.path + "/missing/x.db", create: true)
        } throws: { e in
            (e as? SQLiteError).map { $0.function == "sqlite3_open_v2" && $0.sql == nil && !$0.description.contains("while executing") } ?? false
        }
    }

    @Test func sha256MatchesTheStandardVectors() {
        #expect(SHA256Hasher.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let h = SHA256Hasher()
        h.update(Array("a".utf8)); h.update(Array("bc".utf8))
        #expect(h.finalizeHex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
