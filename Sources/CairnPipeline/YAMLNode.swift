import Foundation

/// A configuration error: file, line, key, and what to do. Exit code 2.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int?
    public let message: String
    public init(file: String, line: Int?, _ message: String) { self.file = file; self.line = line; self.message = message }
    public var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(message)" }
}

/// A parsed YAML node with its position.
public struct YAMLNode: @unchecked Sendable {
    public indirect enum Value {
        case scalar(String, quoted: Bool)
        case sequence([YAMLNode])
        case mapping([(key: YAMLNode, value: YAMLNode)])
    }
    public let value: Value
    public let line: Int
    public let column: Int

    public init(_ value: Value, line: Int, column: Int) { self.value = value; self.line = line; self.column = column }

    public var isNull: Bool {
        if case .scalar(let s, let q) = value, !q, ["", "~", "null", "Null", "NULL"].contains(s) { return true }
        return false
    }
    public var scalar: String? { if case .scalar(let s, _) = value { return s }; return nil }
    public var entries: [(key: YAMLNode, value: YAMLNode)]? { if case .mapping(let m) = value { return m }; return nil }
    public var items: [YAMLNode]? { if case .sequence(let s) = value { return s }; return nil }
}

/// Reads a YAML mapping of known keys, with errors that name file, line and key and suggest the
/// closest known key for an unknown one.
public struct YAMLMapping {
    public let file: String
    public let node: YAMLNode
    let values: [String: YAMLNode]

    public init(_ node: YAMLNode, file: String, known: [String]) throws {
        self.file = file
        self.node = node
        guard let entries = node.entries else {
            throw ConfigError(file: file, line: node.line, "expected a mapping of keys to values")
        }
        var v: [String: YAMLNode] = [:]
        for (k, value) in entries {
            guard let name = k.scalar else { throw ConfigError(file: file, line: k.line, "keys must be plain names") }
            guard known.contains(name) else {
                let suggestion = known.min { editDistance($0, name) < editDistance($1, name) }
                let hint = suggestion.flatMap { editDistance($0, name) <= max(2, name.count / 3) ? " — did you mean '\($0)'?" : nil } ?? ""
                throw ConfigError(file: file, line: k.line, "unknown key '\(name)'\(hint)")
            }
            if v[name] != nil { throw ConfigError(file: file, line: k.line, "key '\(name)' appears twice") }
            v[name] = value
        }
        values = v
    }

    public func has(_ key: String) -> Bool { values[key].map { !$0.isNull } ?? false }
    public func node(_ key: String) -> YAMLNode? { values[key] }

    func fail(_ key: String, _ n: YAMLNode, _ want: String) -> ConfigError {
        ConfigError(file: file, line: n.line, "key '\(key)' must be \(want), not '\(n.scalar ?? "a list or mapping")'")
    }

    public func string(_ key: String) throws -> String? {
        guard let n = values[key], !n.isNull else { return nil }
        guard let s = n.scalar else { throw fail(key, n, "a string") }
        return s
    }

    /// A whole number, at least `lower` and at most `upper` when given.
    public func int(_ key: String, min lower: Int? = nil, max upper: Int? = nil) throws -> Int? {
        guard let n = values[key], !n.isNull else { return nil }
        guard let s = n.scalar, let i = Int(s) ?? Double(s).flatMap({ $0 == $0.rounded() && abs($0) < 1e15 ? Int($0) : nil }) else {
            throw fail(key, n, "a whole number")
        }
        if let l = lower, i < l { throw ConfigError(file: file, line: n.line, "key '\(key)' must be at least \(l), not \(i)") }
        if let u = upper, i > u { throw ConfigError(file: file, line: n.line, "key '\(key)' must be at most \(u), not \(i)") }
        return i
    }

    /// A finite number, inside `bounds` when given.
    public func double(_ key: String, _ bounds: Bounds? = nil) throws -> Double? {
        guard let n = values[key], !n.isNull else { return nil }
        guard let s = n.scalar, let d = Double(s), d.isFinite else { throw fail(key, n, "a number") }
        if let b = bounds, !b.contains(d) { throw ConfigError(file: file, line: n.line, "key '\(key)' must be in \(b), not \(s)") }
        return d
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let n = values[key], !n.isNull else { return nil }
        switch n.scalar?.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw fail(key, n, "true or false")
        }
    }

    public func strings(_ key: String) throws -> [String]? {
        guard let n = values[key], !n.isNull else { return nil }
        if let s = n.scalar { return [s] }
        guard let items = n.items else { throw fail(key, n, "a list of strings") }
        return try items.map { i in
            guard let s = i.scalar else { throw ConfigError(file: file, line: i.line, "key '\(key)' must be a list of strings") }
            return s
        }
    }

    public func choice<T: RawRepresentable>(_ key: String, _ type: T.Type, allowed: [String]) throws -> T? where T.RawValue == String {
        guard let s = try string(key) else { return nil }
        guard let v = T(rawValue: s) else {
            throw ConfigError(file: file, line: values[key]!.line, "key '\(key)' must be one of \(allowed.joined(separator: ", ")), not '\(s)'")
        }
        return v
    }
}

/// An interval of numbers a key accepts, written as in mathematics: (0, 10080] excludes 0.
public struct Bounds: CustomStringConvertible, Sendable {
    public var lower: Double, upper: Double
    public var lowerOpen: Bool, upperOpen: Bool
    public init(_ lower: Double, _ upper: Double, lowerOpen: Bool = false, upperOpen: Bool = false) {
        self.lower = lower; self.upper = upper; self.lowerOpen = lowerOpen; self.upperOpen = upperOpen
    }
    /// (lower, upper]: a positive quantity with a ceiling.
    public static func above(_ lower: Double, atMost upper: Double) -> Bounds { Bounds(lower, upper, lowerOpen: true, upperOpen: upper.isInfinite) }
    /// [lower, upper).
    public static func from(_ lower: Double, below upper: Double) -> Bounds { Bounds(lower, upper, upperOpen: true) }
    public func contains(_ x: Double) -> Bool {
        (lowerOpen ? x > lower : x >= lower) && (upperOpen ? x < upper : x <= upper)
    }
    public var description: String {
        func f(_ x: Double) -> String { x.isInfinite ? (x > 0 ? "∞" : "-∞") : x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)" }
        return "\(lowerOpen ? "(" : "[")\(f(lower)), \(f(upper))\(upperOpen ? ")" : "]")"
    }
}

/// Levenshtein distance, for "did you mean".
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var prev = row[0]
        row[0] = i
        for j in 1...max(b.count, 1) where !b.isEmpty {
            let cur = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
            prev = cur
        }
    }
    return row[b.count]
}

extension YAMLNode {
    /// The most lists and mappings one value may sit inside (pipeline.yaml needs four).
    /// Deeper input is refused while it is read, so no node tree is deep enough to overflow
    /// the stack when it is walked or freed.
    public static let maxDepth = 64
    /// The largest YAML config read: 4 MiB (configs are a few KiB; datasets are JSONL files).
    public static let maxBytes = 4 << 20

    /// "stages.0.config" for the containers being read: each mapping's key in progress, each
    /// list's index; long paths keep their first six parts.
    static func keyPath(_ frames: [(isMapping: Bool, items: [YAMLNode])]) -> String {
        let parts = frames.map { f -> String in
            f.isMapping ? (f.items.count % 2 == 1 ? f.items.last?.scalar ?? "?" : "?") : String(f.items.count)
        }
        return parts.count > 6 ? parts.prefix(6).joined(separator: ".") + ".…" : parts.joined(separator: ".")
    }
}
