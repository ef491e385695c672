// The only file of CairnStore that talks to SQLite's C API.
import CSQLite
import Foundation

/// A value bound to or read from an SQL statement.
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])

    var string: String? { if case .text(let s) = self { return s }; return nil }
    var int: Int64? { if case .int(let i) = self { return i }; return nil }
    var double: Double? {
        switch self { case .double(let d): return d; case .int(let i): return Double(i); default: return nil }
    }
}

/// One row of a query result, read by column index.
struct Row {
    let values: [SQLValue]
    subscript(_ i: Int) -> SQLValue { values[i] }
    func string(_ i: Int) -> String? { values[i].string }
    func int(_ i: Int) -> Int64? { values[i].int }
    func double(_ i: Int) -> Double? { values[i].double }
}

/// An SQLite error that keeps the C function's name, the result code, SQLite's message and, as
/// GRDB's do, the SQL of the failing statement (nil for calls that run none, such as opening).
struct SQLiteError: Error, CustomStringConvertible {
    let function: String
    let code: Int32
    let message: String
    var sql: String? = nil
    var description: String { "\(function) failed (\(code)): \(message)" + (sql.map { " — while executing `\($0)`" } ?? "") }
    /// SQLITE_CORRUPT or SQLITE_NOTADB: the file is damaged or is not a database.
    var isCorruption: Bool { code & 0xff == SQLITE_CORRUPT || code & 0xff == SQLITE_NOTADB }
    var isBusy: Bool { code & 0xff == SQLITE_BUSY || code & 0xff == SQLITE_LOCKED }
}

private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// Owns one sqlite3 connection and its prepared-statement cache; closes them in `deinit`.
final class Database {
    private var handle: OpaquePointer?
    private var cache: [String: OpaquePointer] = [:]
    let path: String

    /// Opens (creating when `create`) the database at `path`, in WAL mode with a busy timeout.
    init(path: String, create: Bool, busyTimeoutMs: Int32 = 30_000) throws {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        handle = db
        if rc != SQLITE_OK {
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            throw SQLiteError(function: "sqlite3_open_v2", code: rc, message: msg)
        }
        sqlite3_extended_result_codes(db, 1)
        try check(sqlite3_busy_timeout(db, busyTimeoutMs), "sqlite3_busy_timeout")
    }

    deinit { close() }

    /// Finalizes every statement and closes the connection (the last one to close a WAL
    /// database checkpoints it and removes the -wal file).
    func close() {
        for (_, stmt) in cache { sqlite3_finalize(stmt) }
        cache = [:]
        if let h = handle { sqlite3_close_v2(h) }
        handle = nil
    }

    private func check(_ rc: Int32, _ function: String, sql: String? = nil) throws {
        guard rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW else {
            throw SQLiteError(function: function, code: rc, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
        }
    }

    /// Runs one or more statements that take no parameters.
    func execute(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(err)
            throw SQLiteError(function: "sqlite3_exec", code: rc, message: msg, sql: sql)
        }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let stmt = cache[sql] {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
            return stmt
        }
        var stmt: OpaquePointer?
        try check(sqlite3_prepare_v2(handle, sql, -1, &stmt, nil), "sqlite3_prepare_v2", sql: sql)
        cache[sql] = stmt!
        return stmt!
    }

    private func bind(_ stmt: OpaquePointer, _ params: [SQLValue], sql: String) throws {
        for (i, value) in params.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(stmt, idx)
            case .int(let v): rc = sqlite3_bind_int64(stmt, idx, v)
            case .double(let v): rc = sqlite3_bind_double(stmt, idx, v)
            case .text(let v): rc = sqlite3_bind_text(stmt, idx, v, -1, transient)
            case .blob(let v): rc = v.withUnsafeBytes { sqlite3_bind_blob(stmt, idx, $0.baseAddress, Int32($0.count), transient) }
            }
            try check(rc, "sqlite3_bind", sql: sql)
        }
    }

    private func column(_ stmt: OpaquePointer, _ i: Int32) -> SQLValue {
        switch sqlite3_column_type(stmt, i) {
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(stmt, i))
        case SQLITE_FLOAT: return .double(sqlite3_column_double(stmt, i))
        case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(stmt, i)))
        case SQLITE_BLOB:
            let n = Int(sqlite3_column_bytes(stmt, i))
            guard n > 0, let p = sqlite3_column_blob(stmt, i) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: n)))
        default: return .null
        }
    }

    /// Runs a statement and returns every row.
    @discardableResult
    func query(_ sql: String, _ params: [SQLValue] = []) throws -> [Row] {
        var rows: [Row] = []
        try forEach(sql, params) { rows.append($0) }
        return rows
    }

    /// Runs a statement and calls `body` for each row without collecting them.
    func forEach(_ sql: String, _ params: [SQLValue] = [], _ body: (Row) throws -> Void) throws {
        let stmt = try prepared(sql)
        defer { sqlite3_reset(stmt) }
        try bind(stmt, params, sql: sql)
        let n = sqlite3_column_count(stmt)
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { try check(rc, "sqlite3_step", sql: sql); break }
            try body(Row(values: (0..<n).map { column(stmt, $0) }))
        }
    }

    /// Runs a statement and returns its column names with every row.
    func queryNamed(_ sql: String, _ params: [SQLValue] = []) throws -> (columns: [String], rows: [Row]) {
        let stmt = try prepared(sql)
        let names = (0..<sqlite3_column_count(stmt)).map { String(cString: sqlite3_column_name(stmt, $0)) }
        return (names, try query(sql, params))
    }

    /// Whether a transaction is open on this connection (after a failed COMMIT SQLite may have
    /// rolled it back already).
    var inTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Runs a statement that returns no rows.
    func run(_ sql: String, _ params: [SQLValue] = []) throws {
        try forEach(sql, params) { _ in }
    }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    var changes: Int { Int(sqlite3_changes(handle)) }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`, rolling back when it throws.
    /// `beforeRollback` runs first when the transaction (and so the write lock) is still held.
    func writeTransaction<T>(_ body: () throws -> T, beforeRollback: () -> Void = {}) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if inTransaction { beforeRollback() }
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs `body` inside a deferred (read) transaction so that it sees one snapshot.
    func readTransaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        defer { try? execute("COMMIT") }
        return try body()
    }
}
