/// Python's `str` operations on Unicode scalars (Python strings index, count and compare code points,
/// where Swift's `String` works on grapheme clusters and canonical equivalence).
enum PyString {
    typealias Scalars = [Unicode.Scalar]

    /// Python's `str.isspace()`: the characters `\s`, `strip()` and `split()` treat as whitespace.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default: return false
        }
    }

    /// A character of Python's regex `\w` (letters, digits, underscore).
    static func isWordChar(_ c: Unicode.Scalar) -> Bool {
        c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil || c.properties.generalCategory == .nonspacingMark
    }

    /// Python's line boundaries for `splitlines()`.
    static func isLineBreak(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029: return true
        default: return false
        }
    }

    static func string(_ s: some Sequence<Unicode.Scalar>) -> String {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: s)
        return String(v)
    }

    static func strip(_ s: Scalars, chars: Scalars?, left: Bool, right: Bool) -> Scalars {
        let drop: (Unicode.Scalar) -> Bool = chars.map { set in { set.contains($0) } } ?? isSpace
        var a = 0, b = s.count
        if left { while a < b, drop(s[a]) { a += 1 } }
        if right { while b > a, drop(s[b - 1]) { b -= 1 } }
        return Array(s[a..<b])
    }

    static func find(_ s: Scalars, _ sub: Scalars, from start: Int = 0, to end: Int? = nil) -> Int? {
        let end = end ?? s.count
        if sub.isEmpty { return start <= end ? start : nil }
        guard end - start >= sub.count else { return nil }
        var i = start
        while i + sub.count <= end {
            if s[i] == sub[0], Array(s[i..<(i + sub.count)]) == sub { return i }
            i += 1
        }
        return nil
    }

    static func rfind(_ s: Scalars, _ sub: Scalars) -> Int? {
        if sub.isEmpty { return s.count }
        var i = s.count - sub.count
        while i >= 0 {
            if Array(s[i..<(i + sub.count)]) == sub { return i }
            i -= 1
        }
        return nil
    }

    /// Non-overlapping occurrences, as `str.count`.
    static func count(_ s: Scalars, _ sub: Scalars) -> Int {
        if sub.isEmpty { return s.count + 1 }
        var n = 0, i = 0
        while let f = find(s, sub, from: i) { n += 1; i = f + sub.count }
        return n
    }

    static func replace(_ s: Scalars, _ old: Scalars, _ new: Scalars, count: Int = -1) -> Scalars {
        var out: Scalars = []
        var done = 0
        if old.isEmpty {
            for c in s {
                if count < 0 || done < count { out += new; done += 1 }
                out.append(c)
            }
            if count < 0 || done < count { out += new }
            return out
        }
        var i = 0
        while count < 0 || done < count, let f = find(s, old, from: i) {
            out += s[i..<f]
            out += new
            i = f + old.count
            done += 1
        }
        out += s[i...]
        return out
    }

    /// `str.split(sep, maxsplit)`; `sep` nil splits on runs of whitespace and drops empty parts.
    static func split(_ s: Scalars, sep: Scalars?, maxsplit: Int = -1) -> [Scalars] {
        var parts: [Scalars] = []
        guard let sep else {
            var i = 0
            while true {
                while i < s.count, isSpace(s[i]) { i += 1 }
                if i >= s.count { break }
                if maxsplit >= 0 && parts.count == maxsplit {
                    parts.append(Array(s[i...]))
                    break
                }
                var e = i
                while e < s.count, !isSpace(s[e]) { e += 1 }
                parts.append(Array(s[i..<e]))
                i = e
            }
            return parts
        }
        var i = 0
        while maxsplit < 0 || parts.count < maxsplit, let f = find(s, sep, from: i) {
            parts.append(Array(s[i..<f]))
            i = f + sep.count
        }
        parts.append(Array(s[i...]))
        return parts
    }

    /// `str.rsplit(sep, maxsplit)`.
    static func rsplit(_ s: Scalars, sep: Scalars?, maxsplit: Int = -1) -> [Scalars] {
        if maxsplit < 0 { return split(s, sep: sep) }
        let reversedParts = split(Array(s.reversed()), sep: sep.map { Array($0.reversed()) }, maxsplit: maxsplit)
        return reversedParts.reversed().map { Array($0.reversed()) }
    }

    /// `str.splitlines(keepends)`.
    static func splitlines(_ s: Scalars, keepends: Bool = false) -> [Scalars] {
        var lines: [Scalars] = []
        var i = 0, start = 0
        while i < s.count {
            if isLineBreak(s[i]) {
                var e = i + 1
                if s[i] == "\r", e < s.count, s[e] == "\n" { e += 1 }
                lines.append(Array(s[start..<(keepends ? e : i)]))
                start = e
                i = e
            } else { i += 1 }
        }
        if start < s.count { lines.append(Array(s[start...])) }
        return lines
    }

    static func upper(_ s: String) -> String { s.uppercased() }
    static func lower(_ s: String) -> String { s.lowercased() }

    static func isCased(_ c: Unicode.Scalar) -> Bool { c.properties.isCased }

    /// Python's `str.title()`: a cased character after an uncased one is title-cased, others lowered.
    static func title(_ s: Scalars) -> Scalars {
        var out: Scalars = []
        var previousCased = false
        for c in s {
            let mapped = previousCased ? c.properties.lowercaseMapping : c.properties.titlecaseMapping
            out += mapped.unicodeScalars
            previousCased = isCased(c)
        }
        return out
    }

    /// Python's `str.capitalize()`: the first character title-cased, the rest lowered.
    static func capitalize(_ s: Scalars) -> Scalars {
        guard let first = s.first else { return [] }
        return Array(first.properties.titlecaseMapping.unicodeScalars) + Array(string(s.dropFirst()).lowercased().unicodeScalars)
    }

    static func swapcase(_ s: Scalars) -> Scalars {
        s.flatMap { c -> Scalars in
            if c.properties.isUppercase { return Array(c.properties.lowercaseMapping.unicodeScalars) }
            if c.properties.isLowercase { return Array(c.properties.uppercaseMapping.unicodeScalars) }
            return [c]
        }
    }

    /// markupsafe's `escape`: `& < > " '` as HTML entities.
    static func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Whether Python's `str.isprintable()` holds for one character (repr escapes the others).
    static func isPrintable(_ c: Unicode.Scalar) -> Bool {
        if c == " " { return true }
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
            return false
        default: return true
        }
    }

    /// Python's `repr()` of a string.
    static func repr(_ s: String) -> String {
        let hasSingle = s.unicodeScalars.contains("'"), hasDouble = s.unicodeScalars.contains("\"")
        let quote: Unicode.Scalar = hasSingle && !hasDouble ? "\"" : "'"
        var out = String(quote)
        for c in s.unicodeScalars {
            switch c {
            case quote, "\\": out += "\\" + String(c)
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if isPrintable(c) { out.unicodeScalars.append(c) }
                else if c.value < 0x100 { out += "\\x" + hex(c.value, 2) }
                else if c.value < 0x10000 { out += "\\u" + hex(c.value, 4) }
                else { out += "\\U" + hex(c.value, 8) }
            }
        }
        out.unicodeScalars.append(quote)
        return out
    }

    static func hex(_ v: UInt32, _ width: Int) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - h.count)) + h
    }

    /// jinja2's string literal decoding: Python's `unicode-escape` codec applied after non-ASCII
    /// characters were written as `\x`/`\u`/`\U` escapes (`encode("ascii", "backslashreplace")`).
    static func unicodeEscapeDecode(_ body: Scalars, line: Int) throws -> String {
        var ascii: Scalars = []
        for c in body {
            if c.value < 0x80 { ascii.append(c); continue }
            let escape = c.value < 0x100 ? "\\x" + hex(c.value, 2) : c.value < 0x10000 ? "\\u" + hex(c.value, 4) : "\\U" + hex(c.value, 8)
            ascii += escape.unicodeScalars
        }
        var out = String.UnicodeScalarView()
        var i = 0
        func bad(_ what: String) -> ChatTemplateError { ChatTemplateError(.syntax, line: line, what) }
        while i < ascii.count {
            let c = ascii[i]
            i += 1
            guard c == "\\" else { out.append(c); continue }
            guard i < ascii.count else { throw bad("\\ at end of string") }
            let e = ascii[i]
            i += 1
            switch e {
            case "\n": break
            case "\\": out.append("\\")
            case "'": out.append("'")
            case "\"": out.append("\"")
            case "a": out.append("\u{7}")
            case "b": out.append("\u{8}")
            case "f": out.append("\u{c}")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "v": out.append("\u{b}")
            case "0"..."7":
                var v = e.value - 0x30, n = 1
                while n < 3, i < ascii.count, ("0"..."7").contains(ascii[i]) { v = v * 8 + ascii[i].value - 0x30; i += 1; n += 1 }
                out.append(Unicode.Scalar(v)!)
            case "x", "u", "U":
                let width = e == "x" ? 2 : e == "u" ? 4 : 8
                guard i + width <= ascii.count, let v = UInt32(string(ascii[i..<(i + width)]), radix: 16),
                      string(ascii[i..<(i + width)]).allSatisfy(\.isHexDigit) else {
                    throw bad("truncated \\\(e)\(String(repeating: "X", count: width)) escape")
                }
                guard let scalar = Unicode.Scalar(v) else { throw bad("illegal Unicode character") }
                out.append(scalar)
                i += width
            case "N": throw ChatTemplateError(.unsupported, line: line, "\\N{...} escapes in string literals")
            default: out.append("\\"); out.append(e)
            }
        }
        return String(out)
    }
}
