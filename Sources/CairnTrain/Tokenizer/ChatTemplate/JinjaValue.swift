import Foundation

/// A JSON-like value handed to a chat template: the messages, the tools and any extra variable.
///
/// Objects keep their key order, as Python dicts do: `tojson` and `for k, v in d.items()` render the
/// keys in the order given. Integers and floats stay apart (`1` renders as `1`, `1.0` as `1.0`).
/// Build values with literals (`["role": "user", "content": "hi"]`), from `[ChatMessage]`, or from JSON
/// text with `JinjaValue(json:)`.
public enum JinjaValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JinjaValue])
    /// Key/value pairs in order; a key given twice keeps its first place and its last value.
    case object([(key: String, value: JinjaValue)])

    public static func == (a: JinjaValue, b: JinjaValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The string, when this is one.
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    /// The integer, when this is one.
    public var intValue: Int? { if case .int(let i) = self { return i } else { return nil } }
    /// The items, when this is an array.
    public var arrayValue: [JinjaValue]? { if case .array(let a) = self { return a } else { return nil } }
    /// The pairs, when this is an object.
    public var objectValue: [(key: String, value: JinjaValue)]? { if case .object(let o) = self { return o } else { return nil } }

    /// The value of `key` when this is an object.
    public subscript(key: String) -> JinjaValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.last(where: { $0.key == key })?.value
    }

    /// The messages as transformers passes them: one `{"role", "content"}` object per message.
    public static func messages(_ messages: [ChatMessage]) -> [JinjaValue] {
        messages.map { .object([("role", .string($0.role)), ("content", .string($0.content))]) }
    }

    /// Parses JSON text as Python's `json.loads` does: key order kept, `1` an int, `1.0` and `1e3`
    /// floats. Throws `ChatTemplateError` (kind `.input`) on malformed JSON.
    public init(json text: String) throws {
        var parser = JSONReader(scalars: Array(text.unicodeScalars))
        self = try parser.readDocument()
    }

    /// Parses UTF-8 JSON data (see `init(json:)`).
    public init(jsonData: Data) throws {
        try self.init(json: String(decoding: jsonData, as: UTF8.self))
    }

    /// Converts what `JSONSerialization` returns (NSNumber booleans become `.bool`). Dictionary keys
    /// are sorted, since Foundation does not keep their order; use `init(json:)` when order matters.
    public init(foundation object: Any) throws {
        switch object {
        case is NSNull: self = .null
        case let s as String: self = .string(s)
        case let n as NSNumber:
            switch String(cString: n.objCType) {
            case "c", "B": self = .bool(n.boolValue)
            case "d", "f": self = .double(n.doubleValue)
            default: self = .int(n.intValue)
            }
        case let a as [Any]: self = .array(try a.map { try JinjaValue(foundation: $0) })
        case let d as [String: Any]:
            self = .object(try d.keys.sorted().map { ($0, try JinjaValue(foundation: d[$0]!)) })
        default:
            throw ChatTemplateError(.input, line: 0, "cannot pass a value of type \(type(of: object)) to a chat template")
        }
    }
}

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) { self = .object(elements.map { ($0.0, $0.1) }) }
    public init(nilLiteral: ()) { self = .null }
}

/// A small JSON reader that keeps object key order and Python's int/float distinction.
private struct JSONReader {
    let scalars: [Unicode.Scalar]
    var pos = 0

    init(scalars: [Unicode.Scalar]) { self.scalars = scalars }

    mutating func readDocument() throws -> JinjaValue {
        let value = try readValue()
        skipSpace()
        if pos < scalars.count { throw fail("unexpected text after the JSON value") }
        return value
    }

    func fail(_ what: String) -> ChatTemplateError {
        ChatTemplateError(.input, line: 0, "malformed JSON at character \(pos): \(what)")
    }

    mutating func skipSpace() {
        while pos < scalars.count, [" ", "\n", "\r", "\t"].contains(scalars[pos]) { pos += 1 }
    }

    mutating func literal(_ word: String, _ value: JinjaValue) throws -> JinjaValue {
        let w = Array(word.unicodeScalars)
        guard pos + w.count <= scalars.count, Array(scalars[pos..<pos + w.count]) == w else { throw fail("unexpected token") }
        pos += w.count
        return value
    }

    var depth = 0

    mutating func readValue() throws -> JinjaValue {
        depth += 1
        defer { depth -= 1 }
        if depth > 500 { throw fail("nested more than 500 deep") }
        skipSpace()
        guard pos < scalars.count else { throw fail("unexpected end") }
        switch scalars[pos] {
        case "{":
            pos += 1
            var pairs: [(key: String, value: JinjaValue)] = []
            skipSpace()
            if pos < scalars.count, scalars[pos] == "}" { pos += 1; return .object(pairs) }
            while true {
                skipSpace()
                guard pos < scalars.count, scalars[pos] == "\"" else { throw fail("expected a string key") }
                let key = try readString()
                skipSpace()
                guard pos < scalars.count, scalars[pos] == ":" else { throw fail("expected ':'") }
                pos += 1
                let value = try readValue()
                if let i = pairs.firstIndex(where: { $0.key == key }) { pairs[i].value = value } else { pairs.append((key, value)) }
                skipSpace()
                guard pos < scalars.count else { throw fail("unexpected end") }
                if scalars[pos] == "," { pos += 1; continue }
                if scalars[pos] == "}" { pos += 1; return .object(pairs) }
                throw fail("expected ',' or '}'")
            }
        case "[":
            pos += 1
            var items: [JinjaValue] = []
            skipSpace()
            if pos < scalars.count, scalars[pos] == "]" { pos += 1; return .array(items) }
            while true {
                items.append(try readValue())
                skipSpace()
                guard pos < scalars.count else { throw fail("unexpected end") }
                if scalars[pos] == "," { pos += 1; continue }
                if scalars[pos] == "]" { pos += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        case "\"": return .string(try readString())
        case "t": return try literal("true", .bool(true))
        case "f": return try literal("false", .bool(false))
        case "n": return try literal("null", .null)
        case "N": return try literal("NaN", .double(.nan))
        case "I": return try literal("Infinity", .double(.infinity))
        default: return try readNumber()
        }
    }

    mutating func readNumber() throws -> JinjaValue {
        let start = pos
        if pos < scalars.count, scalars[pos] == "-" {
            pos += 1
            if pos < scalars.count, scalars[pos] == "I" { _ = try literal("Infinity", .null); return .double(-.infinity) }
        }
        var isFloat = false
        while pos < scalars.count {
            let c = scalars[pos]
            if ("0"..."9").contains(c) { pos += 1 }
            else if c == "." || c == "e" || c == "E" || ((c == "+" || c == "-") && isFloat) { isFloat = true; pos += 1 }
            else { break }
        }
        let text = String(String.UnicodeScalarView(scalars[start..<pos]))
        if text.isEmpty || text == "-" { throw fail("unexpected character") }
        if !isFloat {
            guard let i = Int(text) else { throw fail("the integer \(text) is beyond 64 bits (Cairn has no big integers)") }
            return .int(i)
        }
        guard let d = Double(text) else { throw fail("malformed number \(text)") }
        return .double(d)
    }

    mutating func readString() throws -> String {
        pos += 1
        var out = String.UnicodeScalarView()
        while pos < scalars.count {
            let c = scalars[pos]
            pos += 1
            if c == "\"" { return String(out) }
            if c != "\\" { out.append(c); continue }
            guard pos < scalars.count else { break }
            let e = scalars[pos]
            pos += 1
            switch e {
            case "n": out.append("\n")
            case "t": out.append("\t")
            case "r": out.append("\r")
            case "b": out.append("\u{8}")
            case "f": out.append("\u{c}")
            case "u":
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code), pos + 1 < scalars.count, scalars[pos] == "\\", scalars[pos + 1] == "u" {
                    pos += 2
                    let low = try hex4()
                    if (0xDC00..<0xE000).contains(low) { code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00) }
                    else { out.append("\u{FFFD}"); code = low }
                }
                out.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default: out.append(e)
            }
        }
        throw fail("unterminated string")
    }

    mutating func hex4() throws -> UInt32 {
        guard pos + 4 <= scalars.count, let v = UInt32(String(String.UnicodeScalarView(scalars[pos..<pos + 4])), radix: 16) else {
            throw fail("malformed \\u escape")
        }
        pos += 4
        return v
    }
}
