import Foundation

/// jinja2's tests (`is defined`, `is string`…) and the globals of transformers' environment.
extension JinjaInterpreter {
    static let implementedTests: Set<String> = JinjaParser.knownTests

    /// One case per test, in one switch: the function is long because it is the table of jinja2's tests.
    func applyTest(_ name: String, _ v: Value, _ args: Arguments) throws -> Bool {
        func arg() throws -> Value {
            guard let a = args.positional.first ?? args.keywords.first?.1 else {
                throw JinjaRuntimeError.type("test '\(name)' takes an argument")
            }
            return a
        }
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": return v.isNone
        case "boolean": return v.isBoolLike
        case "true": if case .bool(true) = v { return true } else { return false }
        case "false": if case .bool(false) = v { return true } else { return false }
        case "integer": if case .int = v { return true } else { return false }
        case "float": if case .float = v { return true } else { return false }
        case "number": return v.number != nil
        case "string": return v.isString
        case "mapping": if case .dict = v { return true } else { return false }
        case "iterable":
            switch v {
            case .undefined, .string, .markup, .list, .tuple, .dict, .view, .iterator: return true
            default: return false
            }
        case "sequence":
            switch v {
            case .undefined, .string, .markup, .list, .tuple, .dict, .view(.range, _): return true
            default: return false
            }
        case "callable":
            switch v {
            case .function, .undefined: return true
            default: return false
            }
        case "escaped": return v.isMarkup
        case "lower", "upper":
            return Self.strPredicate(name == "lower" ? "islower" : "isupper", Array(try PyFormat.str(v).unicodeScalars))
        case "even", "odd":
            let r = try PyOps.binary("%", v, .int(2))
            return PyCompare.equal(r, .int(name == "even" ? 0 : 1))
        case "divisibleby": return PyCompare.equal(try PyOps.binary("%", v, try arg()), .int(0))
        case "eq", "equalto", "==": return PyCompare.equal(v, try arg())
        case "ne", "!=": return !PyCompare.equal(v, try arg())
        case "lt", "lessthan", "<": return try PyOps.compare("<", v, try arg())
        case "le", "<=": return try PyOps.compare("<=", v, try arg())
        case "gt", "greaterthan", ">": return try PyOps.compare(">", v, try arg())
        case "ge", ">=": return try PyOps.compare(">=", v, try arg())
        case "in": return try PyCompare.contains(try arg(), v)
        case "filter": return v.stringValue.map { JinjaParser.knownFilters.contains($0) } ?? false
        case "test": return v.stringValue.map { JinjaParser.knownTests.contains($0) } ?? false
        case "sameas":
            let other = try arg()
            switch (v, other) {
            case (.none, .none): return true
            case let (.bool(a), .bool(b)): return a == b
            case let (.int(a), .int(b)) where (-5...256).contains(a) && (-5...256).contains(b): return a == b
            case let (.namespace(a), .namespace(b)): return a === b
            case let (.function(a), .function(b)): return a === b
            case (.none, _), (_, .none), (.bool, _), (_, .bool): return false
            default: throw JinjaRuntimeError.unsupported("the 'sameas' test on \(v.typeName) values (Python object identity)")
            }
        default:
            if JinjaParser.knownTests.contains(name) { throw JinjaRuntimeError.unsupported("the '\(name)' test") }
            throw JinjaRuntimeError.template("No test named '\(name)' found.")
        }
    }

    /// jinja2's default globals as transformers sets them: `range` (capped by the sandbox), `dict`,
    /// `namespace`, `raise_exception`, `strftime_now`, `joiner`.
    func makeGlobals() -> [String: Value] {
        var g: [String: Value] = [:]
        g["range"] = .function(Function("range") { _, args in
            let ints = try args.positional.map { v -> Int in
                guard let i = Self.index(v) else { throw JinjaRuntimeError.type("'\(v.typeName)' object cannot be interpreted as an integer") }
                return i
            }
            let (start, stop, step): (Int, Int, Int)
            switch ints.count {
            case 1: (start, stop, step) = (0, ints[0], 1)
            case 2: (start, stop, step) = (ints[0], ints[1], 1)
            case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
            default: throw JinjaRuntimeError.type("range expected at most 3 arguments, got \(ints.count)")
            }
            guard step != 0 else { throw JinjaRuntimeError.value("range() arg 3 must not be zero") }
            let items = Array(stride(from: start, to: stop, by: step))
            if items.count > 100_000 {
                throw JinjaRuntimeError.value("OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).")
            }
            return .view(.range(start, stop, step), items.map { .int($0) })
        })
        g["dict"] = .function(Function("dict") { interp, args in
            .dict(try interp.makeDict(args, name: "dict"))
        })
        g["namespace"] = .function(Function("namespace") { interp, args in
            let ns = Namespace()
            let d = try interp.makeDict(args, name: "namespace")
            for (k, v) in d.pairs {
                if let key = k.stringValue { try Self.checkNamespaceName(key) }
                try ns.attrs.set(k, v)
            }
            return .namespace(ns)
        })
        g["raise_exception"] = .function(Function("raise_exception") { _, args in
            guard let message = args.positional.first ?? args.keywords.first(where: { $0.0 == "message" })?.1 else {
                throw JinjaRuntimeError.type("raise_exception() missing 1 required positional argument: 'message'")
            }
            throw JinjaRuntimeError.raised(try PyFormat.str(message))
        })
        g["strftime_now"] = .function(Function("strftime_now") { interp, args in
            guard let format = args.positional.first?.stringValue else {
                throw JinjaRuntimeError.type("strftime_now() takes a format string")
            }
            return .string(Self.formatTime(format, interp.now()))
        })
        g["joiner"] = .function(Function("joiner") { _, args in
            let sep = args.positional.first ?? args.keywords.first(where: { $0.0 == "sep" })?.1 ?? .string(", ")
            var used = false
            return .function(Function("joiner") { _, _ in
                if !used { used = true; return .string("") }
                return sep
            })
        })
        for name in ["cycler", "lipsum"] {
            g[name] = .function(Function(name) { _, _ in throw JinjaRuntimeError.unsupported("the '\(name)' global") })
        }
        return g
    }

    /// `dict(*args, **kwargs)`: a mapping or pairs, then keywords.
    func makeDict(_ args: Arguments, name: String) throws -> PyDict {
        var d = PyDict()
        if args.positional.count > 1 { throw JinjaRuntimeError.type("\(name) expected at most 1 argument, got \(args.positional.count)") }
        if let source = args.positional.first {
            if case .dict(let m) = source { d = m } else {
                for item in try iterate(source) {
                    let pair = try iterate(item)
                    guard pair.count == 2 else { throw JinjaRuntimeError.value("dictionary update sequence element has length \(pair.count); 2 is required") }
                    try d.set(pair[0], pair[1])
                }
            }
        }
        for (k, v) in args.keywords { d.setString(k, v) }
        return d
    }

    /// C's `strftime` in local time, as Python's `datetime.now().strftime` calls it.
    static func formatTime(_ format: String, _ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        localtime_r(&t, &parts)
        var buffer = [Int8](repeating: 0, count: 1024)
        let n = strftime(&buffer, buffer.count, format, &parts)
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
