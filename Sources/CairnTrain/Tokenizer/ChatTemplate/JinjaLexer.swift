/// One token of a template, as jinja2's lexer makes them.
struct JinjaToken {
    enum Kind: Equatable {
        case data(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case op(String)
        case eof
    }
    var kind: Kind
    var line: Int

    func isName(_ n: String) -> Bool { kind == .name(n) }
    func isOp(_ o: String) -> Bool { kind == .op(o) }

    /// How jinja2 describes the token in errors.
    var describe: String {
        switch kind {
        case .data: return "template data"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .name(let n): return n
        case .string(let s): return "'\(s)'"
        case .integer(let i): return String(i)
        case .float(let d): return String(d)
        case .op(let o): return o
        case .eof: return "end of template"
        }
    }
}

/// jinja2's lexer with transformers' settings: `trim_blocks` (the first newline after a block or
/// comment tag is removed), `lstrip_blocks` (spaces and tabs before a block or comment tag at the start
/// of a line are removed), `-`/`+` whitespace control, `{% raw %}`, newlines normalised to `\n` and one
/// trailing newline of the source dropped (`keep_trailing_newline=False`).
struct JinjaLexer {
    private var src: [Unicode.Scalar] = []
    private var lineStarts: [Int] = [0]
    private var tokens: [JinjaToken] = []
    private var pos = 0
    private var lineStarting = true

    static func tokenize(_ source: String) throws -> [JinjaToken] {
        var lexer = JinjaLexer()
        lexer.src = normalizeNewlines(source)
        for (i, c) in lexer.src.enumerated() where c == "\n" { lexer.lineStarts.append(i + 1) }
        try lexer.run()
        return lexer.tokens
    }

    /// `\r\n`, `\r` and `\n` become `\n`; one final newline is dropped.
    private static func normalizeNewlines(_ source: String) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(source.unicodeScalars.count)
        var previousCR = false
        for c in source.unicodeScalars {
            if c == "\r" { out.append("\n"); previousCR = true; continue }
            if c == "\n" && previousCR { previousCR = false; continue }
            previousCR = false
            out.append(c)
        }
        if out.last == "\n" { out.removeLast() }
        return out
    }

    private func line(at p: Int) -> Int {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= p { lo = mid } else { hi = mid - 1 }
        }
        return lo + 1
    }

    private func fail(_ message: String, at p: Int) -> ChatTemplateError {
        ChatTemplateError(.syntax, line: line(at: p), message)
    }

    private func starts(_ s: String, at p: Int) -> Bool {
        var i = p
        for c in s.unicodeScalars {
            guard i < src.count, src[i] == c else { return false }
            i += 1
        }
        return true
    }

    private func skipSpace(from p: Int) -> Int {
        var i = p
        while i < src.count, PyString.isSpace(src[i]) { i += 1 }
        return i
    }

    private func text(_ a: Int, _ b: Int) -> String { String(String.UnicodeScalarView(src[a..<b])) }

    /// The data before a tag, stripped as the tag's sign and `lstrip_blocks` say.
    private func stripped(_ a: Int, _ b: Int, sign: Unicode.Scalar?, lstrip: Bool) -> (Int, Int) {
        if sign == "-" {
            var e = b
            while e > a, PyString.isSpace(src[e - 1]) { e -= 1 }
            return (a, e)
        }
        guard sign != "+", lstrip else { return (a, b) }
        var lineStart = a
        if let nl = src[a..<b].lastIndex(of: "\n") { lineStart = nl + 1 }
        guard lineStart > a || lineStarting else { return (a, b) }
        if lineStart < b, src[lineStart..<b].allSatisfy(PyString.isSpace) { return (a, lineStart) }
        return (a, b)
    }

    private mutating func emitData(_ a: Int, _ b: Int) {
        if b > a { tokens.append(JinjaToken(kind: .data(text(a, b)), line: line(at: a))) }
    }

    /// The end of a block tag at `p` (`+%}`, `-%}` plus whitespace, `%}` plus one newline), or nil.
    private func blockEnd(at p: Int) -> Int? {
        if starts("+%}", at: p) { return p + 3 }
        if starts("-%}", at: p) { return skipSpace(from: p + 3) }
        if starts("%}", at: p) { return p + 2 < src.count && src[p + 2] == "\n" ? p + 3 : p + 2 }
        return nil
    }

    private mutating func run() throws {
        while pos < src.count {
            var open = pos
            while open + 1 < src.count, !(src[open] == "{" && ["{", "%", "#"].contains(src[open + 1])) { open += 1 }
            if open + 1 >= src.count { emitData(pos, src.count); return }
            let kind = src[open + 1]
            var after = open + 2
            var sign: Unicode.Scalar? = nil
            if after < src.count, src[after] == "-" || src[after] == "+" { sign = src[after]; after += 1 }
            let (a, b) = stripped(pos, open, sign: sign, lstrip: kind != "{")
            emitData(a, b)
            if kind == "%", let rawEnd = rawBegin(at: after) {
                pos = rawEnd
                lineStarting = src[rawEnd - 1] == "\n"
                try readRaw(from: open)
                continue
            }
            if kind == "#" {
                try skipComment(from: after, open: open)
                continue
            }
            tokens.append(JinjaToken(kind: kind == "%" ? .blockBegin : .variableBegin, line: line(at: open)))
            lineStarting = false
            pos = after
            try readTag(block: kind == "%", open: open)
        }
    }

    private func rawBegin(at p: Int) -> Int? {
        let i = skipSpace(from: p)
        guard starts("raw", at: i) else { return nil }
        let j = skipSpace(from: i + 3)
        if starts("-%}", at: j) { return skipSpace(from: j + 3) }
        if starts("%}", at: j) { return j + 2 }
        return nil
    }

    private mutating func readRaw(from open: Int) throws {
        var p = pos
        while p + 1 < src.count {
            if src[p] == "{" && src[p + 1] == "%" {
                var q = p + 2
                var sign: Unicode.Scalar? = nil
                if q < src.count, src[q] == "-" || src[q] == "+" { sign = src[q]; q += 1 }
                q = skipSpace(from: q)
                if starts("endraw", at: q), let end = blockEnd(at: skipSpace(from: q + 6)) {
                    let (a, b) = stripped(pos, p, sign: sign, lstrip: true)
                    emitData(a, b)
                    pos = end
                    lineStarting = src[end - 1] == "\n"
                    return
                }
            }
            p += 1
        }
        throw fail("Missing end of raw directive", at: open)
    }

    private mutating func skipComment(from p: Int, open: Int) throws {
        var i = p
        while i < src.count {
            if starts("+#}", at: i) { pos = i + 3; break }
            if starts("-#}", at: i) { pos = skipSpace(from: i + 3); break }
            if starts("#}", at: i) { pos = i + 2 < src.count && src[i + 2] == "\n" ? i + 3 : i + 2; break }
            i += 1
        }
        if i >= src.count { throw fail("Missing end of comment tag", at: open) }
        lineStarting = src[pos - 1] == "\n"
    }

    private mutating func readTag(block: Bool, open: Int) throws {
        var balance: [Unicode.Scalar] = []
        while true {
            guard pos < src.count else {
                throw fail("unexpected end of template, expected '\(block ? "%}" : "}}")'", at: open)
            }
            if balance.isEmpty {
                var end: Int? = nil
                if block { end = blockEnd(at: pos) }
                else if starts("-}}", at: pos) { end = skipSpace(from: pos + 3) }
                else if starts("}}", at: pos) { end = pos + 2 }
                if let end {
                    tokens.append(JinjaToken(kind: block ? .blockEnd : .variableEnd, line: line(at: pos)))
                    pos = end
                    lineStarting = src[end - 1] == "\n"
                    return
                }
            }
            let c = src[pos]
            if PyString.isSpace(c) { pos = skipSpace(from: pos); continue }
            let start = pos
            if let (kind, end) = try number(at: pos) {
                tokens.append(JinjaToken(kind: kind, line: line(at: start)))
                pos = end
            } else if c == "_" || c.properties.isAlphabetic || PyString.isWordChar(c) {
                var e = pos
                while e < src.count, PyString.isWordChar(src[e]) { e += 1 }
                let name = text(pos, e)
                guard let first = name.unicodeScalars.first, first == "_" || first.properties.isXIDStart else {
                    throw fail("Invalid character in identifier", at: pos)
                }
                tokens.append(JinjaToken(kind: .name(name), line: line(at: start)))
                pos = e
            } else if c == "'" || c == "\"" {
                var e = pos + 1
                while e < src.count, src[e] != c { e += src[e] == "\\" ? 2 : 1 }
                guard e < src.count else { throw fail("unexpected char '\(c)' at \(pos)", at: pos) }
                let value = try PyString.unicodeEscapeDecode(Array(src[(pos + 1)..<e]), line: line(at: start))
                tokens.append(JinjaToken(kind: .string(value), line: line(at: start)))
                pos = e + 1
            } else {
                let ops = ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")",
                           "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"]
                guard let op = ops.first(where: { starts($0, at: pos) }) else {
                    throw fail("unexpected char '\(c)' at \(pos)", at: pos)
                }
                switch op {
                case "{": balance.append("}")
                case "(": balance.append(")")
                case "[": balance.append("]")
                case "}", ")", "]":
                    guard let expected = balance.popLast() else { throw fail("unexpected '\(op)'", at: pos) }
                    if String(expected) != op { throw fail("unexpected '\(op)', expected '\(expected)'", at: pos) }
                default: break
                }
                tokens.append(JinjaToken(kind: .op(op), line: line(at: start)))
                pos += op.unicodeScalars.count
            }
        }
    }

    /// A float or integer literal at `p` (jinja2's float_re, then integer_re), or nil.
    private func number(at p: Int) throws -> (JinjaToken.Kind, Int)? {
        func digits(_ i: Int) -> Int? {  // (\d+_)*\d+
            var e = i
            guard e < src.count, ("0"..."9").contains(src[e]) else { return nil }
            while true {
                while e < src.count, ("0"..."9").contains(src[e]) { e += 1 }
                if e + 1 < src.count, src[e] == "_", ("0"..."9").contains(src[e + 1]) { e += 1; continue }
                return e
            }
        }
        guard p < src.count, ("0"..."9").contains(src[p]) else { return nil }
        if p == 0 || src[p - 1] != ".", let intEnd = digits(p) {
            var e = intEnd
            var isFloat = false
            if e < src.count, src[e] == ".", let f = digits(e + 1) { e = f; isFloat = true }
            if e < src.count, src[e] == "e" || src[e] == "E" {
                var x = e + 1
                if x < src.count, src[x] == "+" || src[x] == "-" { x += 1 }
                if let xe = digits(x) { e = xe; isFloat = true } else if !isFloat { e = intEnd }
            }
            if isFloat {
                let t = text(p, e).replacingOccurrences(of: "_", with: "")
                guard let d = Double(t) else { throw fail("malformed number \(t)", at: p) }
                return (.float(d), e)
            }
        }
        // integer_re: 0b/0o/0x prefixes, [1-9](_?\d)*, 0(_?0)*
        if src[p] == "0", p + 1 < src.count, let radix = ["b": 2, "B": 2, "o": 8, "O": 8, "x": 16, "X": 16][String(src[p + 1])] {
            var e = p + 2
            var body = ""
            while e < src.count {
                if src[e] == "_", e + 1 < src.count, Int(String(src[e + 1]), radix: radix) != nil { e += 1; continue }
                guard Int(String(src[e]), radix: radix) != nil else { break }
                body.unicodeScalars.append(src[e])
                e += 1
            }
            if !body.isEmpty {
                guard let v = Int(body, radix: radix) else { throw fail("integer \(body) is too large", at: p) }
                return (.integer(v), e)
            }
        }
        var e = p + 1
        let zero = src[p] == "0"
        while e < src.count {
            if src[e] == "_", e + 1 < src.count, zero ? src[e + 1] == "0" : ("0"..."9").contains(src[e + 1]) { e += 1; continue }
            guard zero ? src[e] == "0" : ("0"..."9").contains(src[e]) else { break }
            e += 1
        }
        let t = text(p, e).replacingOccurrences(of: "_", with: "")
        guard let v = Int(t) else { throw fail("integer \(t) is too large for Cairn (64-bit)", at: p) }
        return (.integer(v), e)
    }
}
