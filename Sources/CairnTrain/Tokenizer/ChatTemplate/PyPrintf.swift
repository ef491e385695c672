import Foundation

/// Python's string formatting: `'%s: %d' % args` (and the `format` filter) and `str.format()` as the
/// sandbox runs it. Markup escapes the arguments it formats, as markupsafe does.
enum PyPrintf {
    private static func argumentError(_ m: String) -> JinjaRuntimeError { .type(m) }

    /// `fmt % args`. One pass over the format string whose state (the next argument, the mapping,
    /// flags, width, precision) lives in locals shared by every conversion; kept in one piece rather
    /// than passing that state between pieces.
    static func format(_ fmt: String, _ args: Value, markup: Bool) throws -> String {
        let f = Array(fmt.unicodeScalars)
        var positional: [Value]
        var mapping: PyDict? = nil
        switch args {
        case .tuple(let items): positional = items
        case .dict(let d): positional = [args]; mapping = d
        default: positional = [args]
        }
        var next = 0
        var usedMapping = false
        var out = ""
        var i = 0
        func take() throws -> Value {
            guard next < positional.count else { throw argumentError("not enough arguments for format string") }
            defer { next += 1 }
            return positional[next]
        }
        while i < f.count {
            let c = f[i]
            i += 1
            guard c == "%" else { out.unicodeScalars.append(c); continue }
            guard i < f.count else { throw JinjaRuntimeError.value("incomplete format") }
            var value: Value? = nil
            if f[i] == "(" {
                guard let close = f[i...].firstIndex(of: ")") else { throw JinjaRuntimeError.value("incomplete format key") }
                let key = PyString.string(f[(i + 1)..<close])
                guard let mapping else { throw argumentError("format requires a mapping") }
                guard let v = mapping.get(string: key) else { throw JinjaRuntimeError.unsupported("a missing %(\(key))s key (KeyError)") }
                value = v
                usedMapping = true
                i = close + 1
            }
            var flags = Set<Unicode.Scalar>()
            while i < f.count, "-+ #0".unicodeScalars.contains(f[i]) { flags.insert(f[i]); i += 1 }
            var width = 0, precision: Int? = nil
            if i < f.count, f[i] == "*" { width = try intArg(try take()); i += 1 }
            while i < f.count, ("0"..."9").contains(f[i]) { width = width * 10 + Int(f[i].value - 48); i += 1 }
            if i < f.count, f[i] == "." {
                i += 1
                var p = 0
                if i < f.count, f[i] == "*" { p = try intArg(try take()); i += 1 }
                while i < f.count, ("0"..."9").contains(f[i]) { p = p * 10 + Int(f[i].value - 48); i += 1 }
                precision = p
            }
            while i < f.count, "hlL".unicodeScalars.contains(f[i]) { i += 1 }
            guard i < f.count else { throw JinjaRuntimeError.value("incomplete format") }
            let conversion = f[i]
            i += 1
            if conversion == "%" { out += "%"; continue }
            let v = try value ?? take()
            var text: String
            var numeric = false
            switch conversion {
            case "s":
                text = try PyFormat.str(v)
                if markup, !(v.isMarkup) { text = PyString.htmlEscape(text) }
                if let precision { text = PyString.string(text.unicodeScalars.prefix(precision)) }
            case "r", "a":
                text = try PyFormat.repr(v)
                if markup { text = PyString.htmlEscape(text) }
                if let precision { text = PyString.string(text.unicodeScalars.prefix(precision)) }
            case "d", "i", "u", "x", "X", "o":
                numeric = true
                guard let n = v.number else {
                    throw argumentError("%\(conversion) format: a \(conversion == "d" || conversion == "i" || conversion == "u" ? "real number" : "number") is required, not \(v.typeName)")
                }
                let int: Int
                switch n {
                case .int(let x): int = x
                case .float(let d):
                    guard "diu".unicodeScalars.contains(conversion) else { throw argumentError("%\(conversion) format: an integer is required, not float") }
                    guard d.isFinite, abs(d) < 9.2e18 else { throw JinjaRuntimeError.unsupported("formatting that float as an integer") }
                    int = Int(d)
                }
                let radix = conversion == "o" ? 8 : (conversion == "x" || conversion == "X") ? 16 : 10
                var digits = String(int.magnitude, radix: radix, uppercase: conversion == "X")
                if let precision, digits.count < precision { digits = String(repeating: "0", count: precision - digits.count) + digits }
                if flags.contains("#") && radix != 10 { digits = (radix == 8 ? "0o" : conversion == "X" ? "0X" : "0x") + digits }
                text = (int < 0 ? "-" : flags.contains("+") ? "+" : flags.contains(" ") ? " " : "") + digits
            case "f", "F", "e", "E", "g", "G":
                numeric = true
                guard let n = v.number else { throw argumentError("must be real number, not \(v.typeName)") }
                let d = n.double
                let spec = "%" + (flags.contains("#") ? "#" : "") + ".\(precision ?? 6)" + String(conversion)
                var body = String(format: spec, abs(d))
                if d.isNaN { body = conversion.properties.isUppercase ? "NAN" : "nan" }
                else if d.isInfinite { body = conversion.properties.isUppercase ? "INF" : "inf" }
                text = (d.sign == .minus && !d.isNaN ? "-" : flags.contains("+") ? "+" : flags.contains(" ") ? " " : "") + body
            case "c":
                if case .int(let x) = v, let s = Unicode.Scalar(UInt32(clamping: max(0, x))) { text = String(s) }
                else if let s = v.stringValue, s.unicodeScalars.count == 1 { text = s }
                else { throw argumentError("%c requires an int or a unicode character, not \(v.typeName)") }
            default:
                throw JinjaRuntimeError.value("unsupported format character '\(conversion)' (0x\(String(conversion.value, radix: 16))) at index \(i - 1)")
            }
            out += pad(text, width: width, left: flags.contains("-"), zero: numeric && flags.contains("0") && !flags.contains("-"))
        }
        // A single argument that is not used is an error unless Python sees a mapping (anything with
        // __getitem__ but a str): a list, a dict, an Undefined.
        let lenient: Bool
        switch args {
        case .list, .dict, .undefined, .view(.range, _): lenient = true
        default: lenient = false
        }
        if !usedMapping && next < positional.count && !lenient {
            throw argumentError("not all arguments converted during string formatting")
        }
        return out
    }

    private static func intArg(_ v: Value) throws -> Int {
        guard case .int(let i) = v else { throw JinjaRuntimeError.type("* wants int") }
        return i
    }

    static func pad(_ text: String, width: Int, left: Bool, zero: Bool) -> String {
        let n = text.unicodeScalars.count
        guard width > n else { return text }
        let fill = width - n
        if left { return text + String(repeating: " ", count: fill) }
        if zero {
            var scalars = Array(text.unicodeScalars)
            var prefix: [Unicode.Scalar] = []
            if let first = scalars.first, "+- ".unicodeScalars.contains(first) { prefix = [first]; scalars.removeFirst() }
            return PyString.string(prefix) + String(repeating: "0", count: fill) + PyString.string(scalars)
        }
        return String(repeating: " ", count: fill) + text
    }
}

extension Value {
    var isMarkup: Bool { if case .markup = self { return true } else { return false } }
}
