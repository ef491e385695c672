/// Python's `str()`, `repr()` and transformers' `tojson` (`json.dumps(ensure_ascii=False)`) of values.
enum PyFormat {
    /// Python's `repr(float)`: the shortest digits that round-trip, fixed notation for exponents from
    /// -4 to 15 (`1e-05`, `0.0001`, `1e+16`, `1000000000000000.0`).
    static func float(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        let text = "\(abs(d))"
        var mantissa = Substring(text), exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...])!
        }
        let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
        let intPart = String(parts[0]), fracPart = parts.count > 1 ? String(parts[1]) : ""
        var digits = Array(intPart + fracPart)
        var decpt = intPart.count + exponent
        while digits.first == "0" { digits.removeFirst(); decpt -= 1 }
        while digits.last == "0" { digits.removeLast() }
        let sign = d < 0 ? "-" : ""
        if decpt > -4 && decpt <= 16 {
            if decpt <= 0 { return sign + "0." + String(repeating: "0", count: -decpt) + String(digits) }
            if decpt >= digits.count { return sign + String(digits) + String(repeating: "0", count: decpt - digits.count) + ".0" }
            return sign + String(digits[..<decpt]) + "." + String(digits[decpt...])
        }
        let e = decpt - 1
        var out = sign + String(digits[0])
        if digits.count > 1 { out += "." + String(digits[1...]) }
        let ae = abs(e)
        return out + "e" + (e < 0 ? "-" : "+") + (ae < 10 ? "0" : "") + String(ae)
    }

    /// `str(value)`: what `{{ value }}` prints. Undefined prints as "".
    static func str(_ v: Value) throws -> String {
        switch v {
        case .undefined: return ""
        case .string(let s), .markup(let s): return s
        default: return try repr(v)
        }
    }

    /// Containers nested deeper than this are refused when printed (Python raises RecursionError).
    static let maxDepth = 200

    /// Python's `repr(value)` (how lists and dicts print their items).
    static func repr(_ v: Value, depth: Int = 0) throws -> String {
        if depth > maxDepth { throw JinjaRuntimeError.value("RecursionError: values nested more than \(maxDepth) deep") }
        let repr = { (item: Value) in try Self.repr(item, depth: depth + 1) }
        switch v {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .float(let d): return float(d)
        case .string(let s): return PyString.repr(s)
        case .markup(let s): return "Markup(\(PyString.repr(s)))"
        case .list(let items): return "[" + (try items.map(repr)).joined(separator: ", ") + "]"
        case .tuple(let items):
            if items.count == 1 { return "(" + (try repr(items[0])) + ",)" }
            return "(" + (try items.map(repr)).joined(separator: ", ") + ")"
        case .dict(let d): return try dictRepr(d, depth: depth)
        case .view(let kind, let items):
            switch kind {
            case .range(let a, let b, let s): return s == 1 ? "range(\(a), \(b))" : "range(\(a), \(b), \(s))"
            default: return kind.typeName + "(" + (try Self.repr(.list(items), depth: depth + 1)) + ")"
            }
        case .namespace(let ns): return "<Namespace " + (try dictRepr(ns.attrs, depth: depth)) + ">"
        case .loop(let loop): return "<LoopContext \(loop.index0 + 1)/\(try loop.length())>"
        case .iterator: throw JinjaRuntimeError.unsupported("printing a generator (jinja2 prints its memory address); apply |list first")
        case .function(let f): throw JinjaRuntimeError.unsupported("printing the function '\(f.name)' (jinja2 prints its memory address)")
        }
    }

    static func dictRepr(_ d: PyDict, depth: Int) throws -> String {
        "{" + (try d.pairs.map { try repr($0, depth: depth + 1) + ": " + repr($1, depth: depth + 1) }).joined(separator: ", ") + "}"
    }

    /// `json.dumps(value, ensure_ascii=…, indent=…, separators=…, sort_keys=…)`.
    static func json(_ v: Value, ensureASCII: Bool = false, indent: String? = nil, separators: (String, String)? = nil,
                     sortKeys: Bool = false) throws -> String {
        let (itemSep, keySep) = separators ?? (indent == nil ? (", ", ": ") : (",", ": "))
        var out = ""
        func encode(_ v: Value, level: Int) throws {
            if level > maxDepth { throw JinjaRuntimeError.value("RecursionError: values nested more than \(maxDepth) deep") }
            switch v {
            case .none: out += "null"
            case .bool(let b): out += b ? "true" : "false"
            case .int(let i): out += String(i)
            case .float(let d): out += d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : float(d)
            case .string(let s), .markup(let s): out += jsonString(s, ensureASCII: ensureASCII)
            case .list(let items), .tuple(let items):
                if items.isEmpty { out += "[]"; return }
                out += "["
                let inner = indent.map { "\n" + String(repeating: $0, count: level + 1) }
                if let inner { out += inner }
                for (i, item) in items.enumerated() {
                    if i > 0 { out += itemSep + (inner ?? "") }
                    try encode(item, level: level + 1)
                }
                if let indent { out += "\n" + String(repeating: indent, count: level) }
                out += "]"
            case .dict(let d):
                if d.count == 0 { out += "{}"; return }
                var pairs = Array(d.pairs)
                if sortKeys { pairs = try sortedPairs(pairs) }
                out += "{"
                let inner = indent.map { "\n" + String(repeating: $0, count: level + 1) }
                if let inner { out += inner }
                for (i, (k, value)) in pairs.enumerated() {
                    if i > 0 { out += itemSep + (inner ?? "") }
                    out += jsonString(try jsonKey(k), ensureASCII: ensureASCII) + keySep
                    try encode(value, level: level + 1)
                }
                if let indent { out += "\n" + String(repeating: indent, count: level) }
                out += "}"
            default:
                throw JinjaRuntimeError.type("Object of type \(v.typeName) is not JSON serializable")
            }
        }
        try encode(v, level: 0)
        return out
    }

    private static func jsonKey(_ k: Value) throws -> String {
        switch k {
        case .string(let s), .markup(let s): return s
        case .int(let i): return String(i)
        case .float(let d): return d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : float(d)
        case .bool(let b): return b ? "true" : "false"
        case .none: return "null"
        default: throw JinjaRuntimeError.type("keys must be str, int, float, bool or None, not \(k.typeName)")
        }
    }

    private static func sortedPairs(_ pairs: [(Value, Value)]) throws -> [(Value, Value)] {
        var failure: Error? = nil
        let sorted = pairs.sorted { a, b in
            do { return try PyCompare.less(a.0, b.0) } catch { failure = error; return false }
        }
        if let failure { throw failure }
        return sorted
    }

    static func jsonString(_ s: String, ensureASCII: Bool) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{8}": out += "\\b"
            case "\u{c}": out += "\\f"
            default:
                if c.value < 0x20 { out += "\\u" + PyString.hex(c.value, 4) }
                else if ensureASCII && c.value > 0x7E {
                    if c.value > 0xFFFF {
                        let v = c.value - 0x10000
                        out += "\\u" + PyString.hex(0xD800 + (v >> 10), 4) + "\\u" + PyString.hex(0xDC00 + (v & 0x3FF), 4)
                    } else { out += "\\u" + PyString.hex(c.value, 4) }
                } else { out.unicodeScalars.append(c) }
            }
        }
        return out + "\""
    }
}
