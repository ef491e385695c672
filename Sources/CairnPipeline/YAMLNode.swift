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

    public func int(_ key: String, min lower: Int? = nil) throws -> Int? {
        guard let n = values[key], !n.isNull else { return nil }
        guard let s = n.scalar, let i = Int(s) ?? Double(s).flatMap({ $0 == $0.rounded() && abs($0) < 1e15 ? Int($0) : nil }) else {
            throw fail(key, n, "a whole number")
        }
        if let l = lower, i < l { throw ConfigError(file: file, line: n.line, "key '\(key)' must be at least \(l), not \(i)") }
        return i
    }

    public func double(_ key: String) throws -> Double? {
        guard let n = values[key], !n.isNull else { return nil }
        guard let s = n.scalar, let d = Double(s), d.isFinite else { throw fail(key, n, "a number") }
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

/// Levenshtein distance, for "did you mean".
func editDistance(_ a: String, _ b: String) -> Int {
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
