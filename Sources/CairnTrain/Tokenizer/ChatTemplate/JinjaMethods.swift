/// The Python attributes templates reach through `.name`: str, dict and list methods (the sandbox
/// refuses the mutating ones), `loop` and namespace attributes.
extension JinjaInterpreter {
    static let strMethods: Set<String> = [
        "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format", "format_map",
        "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric",
        "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans", "partition",
        "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split",
        "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill",
    ]
    static let dictMethods: Set<String> = ["clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem", "setdefault", "update", "values"]
    static let listMethods: Set<String> = ["append", "clear", "copy", "count", "extend", "index", "insert", "pop", "remove", "reverse", "sort"]
    static let mutatingMethods: [String: Set<String>] = [
        "dict": ["clear", "pop", "popitem", "setdefault", "update"],
        "list": ["append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"],
    ]
    static let numberAttributes: Set<String> = [
        "as_integer_ratio", "bit_count", "bit_length", "conjugate", "denominator", "from_bytes", "imag", "numerator",
        "real", "to_bytes", "fromhex", "hex", "is_integer",
    ]

    static func unsafe(_ obj: Value, _ name: String) -> Value {
        .undefined(Undefined(message: "access to attribute '\(name)' of '\(obj.typeName)' object is unsafe.", security: true))
    }

    /// The attribute `name` of `obj` as Python's `getattr` finds it, or nil when there is none.
    func pythonAttribute(_ obj: Value, _ name: String) throws -> Value? {
        if name.hasPrefix("__") && name.hasSuffix("__") && name.count > 4 { return Self.unsafe(obj, name) }
        switch obj {
        case .string, .markup:
            guard Self.strMethods.contains(name) else { return nil }
            return .function(Function("str.\(name)") { interp, args in try interp.strMethod(obj, name, args) })
        case .dict(let d):
            guard Self.dictMethods.contains(name) else { return nil }
            if Self.mutatingMethods["dict"]!.contains(name) { return Self.unsafe(obj, name) }
            return .function(Function("dict.\(name)") { _, args in try Self.dictMethod(d, name, args) })
        case .list(let items), .tuple(let items):
            let isList: Bool = { if case .list = obj { return true } else { return false } }()
            guard isList ? Self.listMethods.contains(name) : ["count", "index"].contains(name) else { return nil }
            if isList && Self.mutatingMethods["list"]!.contains(name) { return Self.unsafe(obj, name) }
            return .function(Function("\(obj.typeName).\(name)") { _, args in try Self.sequenceMethod(items, name, args) })
        case .namespace(let ns):
            return ns.attrs.get(string: name)
        case .loop(let loop):
            return try loop.attribute(name)
        case .int, .float, .bool:
            if Self.numberAttributes.contains(name) { throw JinjaRuntimeError.unsupported("the number attribute '\(name)'") }
            return nil
        case .view:
            if ["mapping", "isdisjoint", "start", "stop", "step", "count", "index"].contains(name) {
                throw JinjaRuntimeError.unsupported("the attribute '\(name)' of \(obj.typeName)")
            }
            return nil
        case .iterator:
            if ["send", "throw", "close"].contains(name) || name.hasPrefix("gi_") {
                throw JinjaRuntimeError.unsupported("the generator attribute '\(name)'")
            }
            return nil
        default:
            return nil
        }
    }

    static func argument(_ args: Arguments, _ i: Int, _ name: String) -> Value? {
        if i < args.positional.count { return args.positional[i] }
        return args.keywords.first(where: { $0.0 == name })?.1
    }

    static func stringArgument(_ v: Value?, _ method: String) throws -> [Unicode.Scalar]? {
        guard let v else { return nil }
        if case .none = v { return nil }
        guard let s = v.stringValue else { throw JinjaRuntimeError.type("\(method) arg must be None or str") }
        return Array(s.unicodeScalars)
    }

    static func intArgument(_ v: Value?, default d: Int) throws -> Int {
        guard let v else { return d }
        guard let i = index(v) else { throw JinjaRuntimeError.type("'\(v.typeName)' object cannot be interpreted as an integer") }
        return i
    }

    /// One case per `str` method, in one switch: the function is long because it is the table of
    /// Python's string methods, each case a few lines read on its own.
    func strMethod(_ obj: Value, _ name: String, _ args: Arguments) throws -> Value {
        let isMarkup = obj.isMarkup
        let s = Array(obj.stringValue!.unicodeScalars)
        // markupsafe escapes string arguments of Markup's methods.
        var args = args
        if isMarkup {
            args.positional = args.positional.map { v in v.isMarkup || v.stringValue == nil ? v : .markup(PyString.htmlEscape(v.stringValue!)) }
        }
        func wrap(_ r: [Unicode.Scalar]) -> Value { isMarkup ? .markup(PyString.string(r)) : .string(PyString.string(r)) }
        func plain(_ r: [Unicode.Scalar]) -> Value { .string(PyString.string(r)) }
        func arg(_ i: Int, _ n: String) -> Value? { Self.argument(args, i, n) }
        switch name {
        case "strip", "lstrip", "rstrip":
            let chars = try Self.stringArgument(arg(0, "chars"), name)
            return wrap(PyString.strip(s, chars: chars, left: name != "rstrip", right: name != "lstrip"))
        case "split", "rsplit":
            let sep = try Self.stringArgument(arg(0, "sep"), name)
            if sep?.isEmpty == true { throw JinjaRuntimeError.value("empty separator") }
            let maxsplit = try Self.intArgument(arg(1, "maxsplit"), default: -1)
            let parts = name == "split" ? PyString.split(s, sep: sep, maxsplit: maxsplit) : PyString.rsplit(s, sep: sep, maxsplit: maxsplit)
            return .list(parts.map(wrap))
        case "splitlines":
            return .list(PyString.splitlines(s, keepends: arg(0, "keepends")?.truthy ?? false).map(wrap))
        case "startswith", "endswith":
            guard let a = arg(0, "prefix") else { throw JinjaRuntimeError.type("\(name)() takes at least 1 argument (0 given)") }
            let n = s.count
            var lo = try Self.intArgument(arg(1, "start"), default: 0), hi = try Self.intArgument(arg(2, "end"), default: n)
            if lo < 0 { lo = max(0, lo + n) }
            if hi < 0 { hi = max(0, hi + n) }
            hi = min(hi, n)
            let window = lo <= hi ? Array(s[min(lo, n)..<hi]) : nil
            let candidates: [Value]
            if case .tuple(let items) = a { candidates = items } else { candidates = [a] }
            for c in candidates {
                guard let t = c.stringValue else {
                    throw JinjaRuntimeError.type("\(name) first arg must be str or a tuple of str, not \(c.typeName)")
                }
                let u = Array(t.unicodeScalars)
                guard let window, u.count <= window.count else { continue }
                if name == "startswith" ? window.starts(with: u) : Array(window.suffix(u.count)) == u { return .bool(true) }
            }
            return .bool(false)
        case "upper": return wrap(Array(PyString.upper(PyString.string(s)).unicodeScalars))
        case "lower": return wrap(Array(PyString.lower(PyString.string(s)).unicodeScalars))
        case "casefold": return plain(Array(PyString.lower(PyString.string(s)).unicodeScalars))
        case "title": return wrap(PyString.title(s))
        case "capitalize": return wrap(PyString.capitalize(s))
        case "swapcase": return wrap(PyString.swapcase(s))
        case "replace":
            guard let old = try Self.stringArgument(arg(0, "old"), name), let new = try Self.stringArgument(arg(1, "new"), name) else {
                throw JinjaRuntimeError.type("replace expected at least 2 arguments")
            }
            return wrap(PyString.replace(s, old, new, count: try Self.intArgument(arg(2, "count"), default: -1)))
        case "find", "rfind", "index", "rindex", "count":
            guard let sub = try Self.stringArgument(arg(0, "sub"), name) else { throw JinjaRuntimeError.type("\(name)() takes at least 1 argument") }
            if args.positional.count > 1 { throw JinjaRuntimeError.unsupported("str.\(name) with start/end arguments") }
            if name == "count" { return .int(PyString.count(s, sub)) }
            let found = name.hasPrefix("r") ? PyString.rfind(s, sub) : PyString.find(s, sub)
            if found == nil && name.hasSuffix("index") { throw JinjaRuntimeError.value("substring not found") }
            return .int(found ?? -1)
        case "join":
            guard let a = arg(0, "iterable") else { throw JinjaRuntimeError.type("str.join() takes exactly one argument (0 given)") }
            var out: [Unicode.Scalar] = []
            for (i, item) in try iterate(a).enumerated() {
                guard let t = item.stringValue else {
                    throw JinjaRuntimeError.type("sequence item \(i): expected str instance, \(item.typeName) found")
                }
                if i > 0 { out += s }
                out += (isMarkup && !item.isMarkup ? PyString.htmlEscape(t) : t).unicodeScalars
            }
            return wrap(out)
        case "center", "ljust", "rjust":
            let width = try Self.intArgument(arg(0, "width"), default: 0)
            let fill = try Self.stringArgument(arg(1, "fillchar"), name) ?? [" "]
            guard fill.count == 1 else { throw JinjaRuntimeError.type("The fill character must be exactly one character long") }
            let total = max(0, width - s.count)
            let left = name == "ljust" ? 0 : name == "rjust" ? total : total / 2 + (total & width & 1)
            return wrap(Array(repeating: fill[0], count: left) + s + Array(repeating: fill[0], count: total - left))
        case "zfill":
            let width = try Self.intArgument(arg(0, "width"), default: 0)
            return wrap(Array(PyPrintf.pad(PyString.string(s), width: width, left: false, zero: true).unicodeScalars))
        case "isalnum", "isalpha", "isdigit", "isdecimal", "isnumeric", "isspace", "isascii", "islower", "isupper", "istitle":
            return .bool(Self.strPredicate(name, s))
        case "partition", "rpartition":
            guard let sep = try Self.stringArgument(arg(0, "sep"), name), !sep.isEmpty else { throw JinjaRuntimeError.value("empty separator") }
            if let f = name == "partition" ? PyString.find(s, sep) : PyString.rfind(s, sep) {
                return .tuple([wrap(Array(s[..<f])), wrap(sep), wrap(Array(s[(f + sep.count)...]))])
            }
            return name == "partition" ? .tuple([wrap(s), wrap([]), wrap([])]) : .tuple([wrap([]), wrap([]), wrap(s)])
        case "removeprefix":
            let p = try Self.stringArgument(arg(0, "prefix"), name) ?? []
            return plain(s.starts(with: p) ? Array(s[p.count...]) : s)
        case "removesuffix":
            let p = try Self.stringArgument(arg(0, "suffix"), name) ?? []
            return plain(!p.isEmpty && s.count >= p.count && Array(s.suffix(p.count)) == p ? Array(s.prefix(s.count - p.count)) : s)
        case "format":
            let text = try PyStrFormat.format(s, args, markup: isMarkup)
            return isMarkup ? .markup(text) : .string(text)
        default:
            throw JinjaRuntimeError.unsupported("the str method '\(name)'")
        }
    }

    static func strPredicate(_ name: String, _ s: [Unicode.Scalar]) -> Bool {
        if name == "isascii" { return s.allSatisfy { $0.isASCII } }
        if name == "islower" || name == "isupper" {
            let cased = s.filter { $0.properties.isCased }
            return !cased.isEmpty && cased.allSatisfy { name == "islower" ? $0.properties.isLowercase : $0.properties.isUppercase }
        }
        if name == "istitle" { return !s.isEmpty && PyString.title(s) == s && s.contains { $0.properties.isCased } }
        guard !s.isEmpty else { return false }
        return s.allSatisfy { c in
            switch name {
            case "isspace": return PyString.isSpace(c)
            case "isalpha": return c.properties.isAlphabetic
            case "isdecimal": return c.properties.numericType == .decimal
            case "isdigit": return c.properties.numericType == .decimal || c.properties.numericType == .digit
            case "isnumeric": return c.properties.numericType != nil
            default: return c.properties.isAlphabetic || c.properties.numericType != nil
            }
        }
    }

    static func dictMethod(_ d: PyDict, _ name: String, _ args: Arguments) throws -> Value {
        switch name {
        case "get":
            guard let key = args.positional.first else { throw JinjaRuntimeError.type("get expected at least 1 argument, got 0") }
            if !args.keywords.isEmpty { throw JinjaRuntimeError.type("dict.get() takes no keyword arguments") }
            return try d.get(key) ?? (args.positional.count > 1 ? args.positional[1] : .none)
        case "items": return .view(.items, d.pairs.map { .tuple([$0, $1]) })
        case "keys": return .view(.keys, d.keys)
        case "values": return .view(.values, d.values)
        case "copy": return .dict(d)
        default: throw JinjaRuntimeError.unsupported("the dict method '\(name)'")
        }
    }

    static func sequenceMethod(_ items: [Value], _ name: String, _ args: Arguments) throws -> Value {
        switch name {
        case "count":
            guard let x = args.positional.first else { throw JinjaRuntimeError.type("count() takes exactly one argument (0 given)") }
            return .int(items.filter { PyCompare.equal($0, x) }.count)
        case "index":
            guard let x = args.positional.first else { throw JinjaRuntimeError.type("index expected at least 1 argument, got 0") }
            if args.positional.count > 1 { throw JinjaRuntimeError.unsupported("index with start/end arguments") }
            guard let i = items.firstIndex(where: { PyCompare.equal($0, x) }) else {
                throw JinjaRuntimeError.value("\((try? PyFormat.repr(x)) ?? "value") is not in list")
            }
            return .int(i)
        case "copy": return .list(items)
        default: throw JinjaRuntimeError.unsupported("the list method '\(name)'")
        }
    }
}
