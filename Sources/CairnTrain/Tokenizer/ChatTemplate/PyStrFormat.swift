import Foundation

/// `str.format()` as jinja2's sandboxed formatter runs it: `{}`, `{0}`, `{name}`, `{0.attr}`,
/// `{0[key]}`, `!r`/`!s`, and format specs `[[fill]align][sign][0][width][.precision][type]` for
/// strings, ints and floats. Anything else is an unsupported-construct error.
enum PyStrFormat {
    static func format(_ f: [Unicode.Scalar], _ args: Arguments, markup: Bool) throws -> String {
        var out = ""
        var i = 0
        var auto = 0
        while i < f.count {
            let c = f[i]
            if c == "}" {
                guard i + 1 < f.count, f[i + 1] == "}" else { throw JinjaRuntimeError.value("Single '}' encountered in format string") }
                out += "}"
                i += 2
                continue
            }
            guard c == "{" else { out.unicodeScalars.append(c); i += 1; continue }
            if i + 1 < f.count, f[i + 1] == "{" { out += "{"; i += 2; continue }
            guard let close = f[i...].firstIndex(of: "}") else { throw JinjaRuntimeError.value("expected '}' before end of string") }
            let field = Array(f[(i + 1)..<close])
            if field.contains("{") { throw JinjaRuntimeError.unsupported("nested replacement fields in str.format") }
            i = close + 1
            var spec: [Unicode.Scalar] = [], conversion: Unicode.Scalar? = nil, name = field
            if let colon = name.firstIndex(of: ":") { spec = Array(name[(colon + 1)...]); name = Array(name[..<colon]) }
            if let bang = name.firstIndex(of: "!") {
                guard bang + 1 < name.count else { throw JinjaRuntimeError.value("end of string while looking for conversion specifier") }
                conversion = name[bang + 1]
                name = Array(name[..<bang])
            }
            var head = name, rest: [Unicode.Scalar] = []
            if let cut = name.firstIndex(where: { $0 == "." || $0 == "[" }) { head = Array(name[..<cut]); rest = Array(name[cut...]) }
            var value: Value
            let key = PyString.string(head)
            if head.isEmpty {
                guard auto < args.positional.count else { throw JinjaRuntimeError.unsupported("str.format with a missing argument (IndexError)") }
                value = args.positional[auto]
                auto += 1
            } else if let n = Int(key) {
                guard n < args.positional.count else { throw JinjaRuntimeError.unsupported("str.format with a missing argument (IndexError)") }
                value = args.positional[n]
            } else {
                guard let v = args.keywords.first(where: { $0.0 == key })?.1 else {
                    throw JinjaRuntimeError.unsupported("str.format with a missing argument '\(key)' (KeyError)")
                }
                value = v
            }
            if !rest.isEmpty { throw JinjaRuntimeError.unsupported("attribute or item lookups inside str.format fields") }
            var text: String
            switch conversion {
            case nil: text = try formatValue(value, spec)
            case "s": text = try formatValue(.string(try PyFormat.str(value)), spec)
            case "r": text = try formatValue(.string(try PyFormat.repr(value)), spec)
            default: throw JinjaRuntimeError.value("Unknown conversion specifier \(conversion!)")
            }
            if markup && !value.isMarkup { text = PyString.htmlEscape(text) }
            out += text
        }
        return out
    }

    /// Python's `format(value, spec)`: the spec parsed left to right (fill, align, sign, #, 0, width,
    /// grouping, precision, type) and applied, in one piece as the mini-language reads.
    static func formatValue(_ v: Value, _ spec: [Unicode.Scalar]) throws -> String {
        if spec.isEmpty { return try PyFormat.str(v) }
        var i = 0
        var fill: Unicode.Scalar = " ", align: Unicode.Scalar? = nil
        if spec.count >= 2, "<>=^".unicodeScalars.contains(spec[1]) { fill = spec[0]; align = spec[1]; i = 2 }
        else if "<>=^".unicodeScalars.contains(spec[0]) { align = spec[0]; i = 1 }
        var sign: Unicode.Scalar = "-"
        if i < spec.count, "+- ".unicodeScalars.contains(spec[i]) { sign = spec[i]; i += 1 }
        if i < spec.count, spec[i] == "#" { throw JinjaRuntimeError.unsupported("the '#' format option") }
        if i < spec.count, spec[i] == "0" { if align == nil { fill = "0"; align = "=" }; i += 1 }
        var width = 0
        while i < spec.count, ("0"..."9").contains(spec[i]) { width = width * 10 + Int(spec[i].value - 48); i += 1 }
        if i < spec.count, spec[i] == "," || spec[i] == "_" { throw JinjaRuntimeError.unsupported("digit grouping in format specs") }
        var precision: Int? = nil
        if i < spec.count, spec[i] == "." {
            i += 1
            var p = 0
            while i < spec.count, ("0"..."9").contains(spec[i]) { p = p * 10 + Int(spec[i].value - 48); i += 1 }
            precision = p
        }
        let type: Unicode.Scalar? = i < spec.count ? spec[i] : nil
        if i + (type == nil ? 0 : 1) != spec.count { throw JinjaRuntimeError.value("Invalid format specifier") }
        var body: String, negative = false, numeric = true
        switch v {
        case .string(let s), .markup(let s):
            guard type == nil || type == "s" else { throw JinjaRuntimeError.value("Unknown format code '\(type!)' for object of type 'str'") }
            body = precision.map { PyString.string(s.unicodeScalars.prefix($0)) } ?? s
            numeric = false
        case .int, .bool, .float:
            let n = v.number!
            var t = type
            if case .int = n, t == nil || t == "d" {
                guard precision == nil else { throw JinjaRuntimeError.value("Precision not allowed in integer format specifier") }
                if case .bool(let b) = v, type == nil { body = b ? "True" : "False"; numeric = false; break }
                let x = { if case .int(let x) = n { return x } else { return 0 } }()
                negative = x < 0
                body = String(x.magnitude)
                break
            }
            if case .int(let x) = n, let tt = t, "xXob".unicodeScalars.contains(tt) {
                negative = x < 0
                body = String(x.magnitude, radix: tt == "o" ? 8 : tt == "b" ? 2 : 16, uppercase: tt == "X")
                break
            }
            if t == nil {
                guard precision == nil else { throw JinjaRuntimeError.unsupported("float format specs with a precision and no type") }
                let d = n.double
                negative = d.sign == .minus
                body = PyFormat.float(abs(d))
                break
            }
            if t == "%" { t = "f" }
            guard let tt = t, "eEfFgG".unicodeScalars.contains(tt) else {
                throw JinjaRuntimeError.value("Unknown format code '\(t.map(String.init) ?? "")' for object of type '\(v.typeName)'")
            }
            var d = n.double
            if type == "%" { d *= 100 }
            negative = d.sign == .minus && !d.isNaN
            body = d.isNaN ? "nan" : d.isInfinite ? "inf" : String(format: "%.\(precision ?? 6)" + String(tt), abs(d))
            if tt.properties.isUppercase { body = body.uppercased() }
            if type == "%" { body += "%" }
        default:
            throw JinjaRuntimeError.type("unsupported format string passed to \(v.typeName).__format__")
        }
        let signText = numeric ? (negative ? "-" : sign == "+" ? "+" : sign == " " ? " " : "") : ""
        let length = signText.unicodeScalars.count + body.unicodeScalars.count
        guard width > length else { return signText + body }
        let padding = width - length
        let f = String(fill)
        switch align ?? (numeric ? ">" : "<") {
        case "<": return signText + body + String(repeating: f, count: padding)
        case "^": return String(repeating: f, count: padding / 2) + signText + body + String(repeating: f, count: padding - padding / 2)
        case "=": return signText + String(repeating: f, count: padding) + body
        default: return String(repeating: f, count: padding) + signText + body
        }
    }
}
