import Foundation

/// jinja2's built-in filters with transformers' `tojson`, as the sandbox runs them without autoescape.
extension JinjaInterpreter {
    static let implementedFilters: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "first",
        "float", "forceescape", "format", "indent", "int", "items", "join", "last", "length", "list", "lower", "map",
        "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "slice",
        "sort", "string", "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "wordcount",
    ]

    /// Binds filter arguments to parameter names as Python does (positional first, then by keyword).
    static func bind(_ args: Arguments, _ params: [String], _ filter: String) throws -> [Value?] {
        if args.positional.count > params.count {
            throw JinjaRuntimeError.type("\(filter)() takes at most \(params.count + 1) positional arguments")
        }
        var bound: [Value?] = params.indices.map { $0 < args.positional.count ? args.positional[$0] : nil }
        for (k, v) in args.keywords {
            guard let i = params.firstIndex(of: k) else { throw JinjaRuntimeError.type("\(filter)() got an unexpected keyword argument '\(k)'") }
            if bound[i] != nil { throw JinjaRuntimeError.type("\(filter)() got multiple values for argument '\(k)'") }
            bound[i] = v
        }
        return bound
    }

    /// Applies the filters of a `{% filter %}` or `{% set x | f %}` chain to the block's text.
    func applyFilterChain(_ e: Expr, to value: Value, _ scope: Scope) throws -> Value {
        guard case .filter(let inner, let name, let call) = e.kind else { return value }
        let input = try inner.map { try applyFilterChain($0, to: value, scope) } ?? value
        let args = try evalArguments(call, scope, line: e.line)
        return try located(e.line) { try applyFilter(name, input, args, scope: scope) }
    }

    /// `soft_str`: Markup stays Markup, anything else becomes `str()`.
    static func softStr(_ v: Value) throws -> Value {
        if case .markup = v { return v }
        return .string(try PyFormat.str(v))
    }

    static func mapString(_ v: Value, _ f: ([Unicode.Scalar]) -> [Unicode.Scalar]) throws -> Value {
        let s = try softStr(v)
        let r = PyString.string(f(Array(s.stringValue!.unicodeScalars)))
        return s.isMarkup ? .markup(r) : .string(r)
    }

    static func length(_ v: Value) throws -> Int {
        switch v {
        case .undefined: return 0
        case .string(let s), .markup(let s): return s.unicodeScalars.count
        case .list(let a), .tuple(let a), .view(_, let a): return a.count
        case .dict(let d): return d.count
        case .namespace: throw JinjaRuntimeError.type("object of type 'Namespace' has no len()")
        default: throw JinjaRuntimeError.type("object of type '\(v.typeName)' has no len()")
        }
    }

    /// `make_attrgetter`: looks `attribute` up item by item (dots nest, digit parts are indexes).
    func attributeGetter(_ attribute: Value?, default def: Value? = nil, lower: Bool = false) -> (Value) throws -> Value {
        var parts: [Value] = []
        if let attribute, let s = attribute.stringValue {
            parts = s.split(separator: ".", omittingEmptySubsequences: false).map { p in
                p.allSatisfy(\.isNumber) && !p.isEmpty ? .int(Int(p) ?? 0) : .string(String(p))
            }
        } else if let attribute, !(attribute.isNone) { parts = [attribute] }
        return { item in
            var v = item
            for p in parts {
                v = try self.getitem(v, p)
                if let def, !(def.isNone), v.isUndefined { v = def }
            }
            if lower, let s = v.stringValue { return v.isMarkup ? .markup(s.lowercased()) : .string(s.lowercased()) }
            return v
        }
    }

    /// One case per filter, in one switch: the function is long because it is the table of jinja2's
    /// scalar and text filters, each case a few lines read on its own (collections: +Collections).
    func applyFilter(_ name: String, _ value: Value, _ args: Arguments, scope: Scope) throws -> Value {
        func p(_ params: [String]) throws -> [Value?] { try Self.bind(args, params, name) }
        switch name {
        case "abs":
            guard let n = value.number else { throw JinjaRuntimeError.type("bad operand type for abs(): '\(value.typeName)'") }
            if case .int(let i) = n { return .int(abs(i)) }
            return .float(abs(n.double))
        case "attr":
            let a = try p(["name"])
            guard let attrName = a[0]?.stringValue else { throw JinjaRuntimeError.type("attribute name must be string") }
            if case .undefined(let u) = value { throw JinjaRuntimeError.undefined(u.message) }
            return try pythonAttribute(value, attrName) ?? Self.noAttribute(value, attrName)
        case "capitalize": return try Self.mapString(value, PyString.capitalize)
        case "center":
            let a = try p(["width"])
            let s = try Self.softStr(value)
            return try strMethod(s, "center", Arguments(positional: [a[0] ?? .int(80)]))
        case "count", "length": return .int(try Self.length(value))
        case "d", "default":
            let a = try p(["default_value", "boolean"])
            if value.isUndefined || (a[1]?.truthy ?? false) && !value.truthy { return a[0] ?? .string("") }
            return value
        case "dictsort":
            let a = try p(["case_sensitive", "by", "reverse"])
            guard case .dict(let d) = value else { throw JinjaRuntimeError.type("dictsort() expects a mapping, got \(value.typeName)") }
            let by = a[1]?.stringValue ?? "key"
            guard by == "key" || by == "value" else { throw JinjaRuntimeError.value("You can only sort by either 'key' or 'value'") }
            let lower = !(a[0]?.truthy ?? false)
            let pairs: [Value] = d.pairs.map { .tuple([$0, $1]) }
            return .list(try Self.sorted(pairs, reverse: a[2]?.truthy ?? false) { item in
                guard case .tuple(let kv) = item else { return item }
                let v = kv[by == "key" ? 0 : 1]
                if lower, let s = v.stringValue { return .string(s.lowercased()) }
                return v
            })
        case "e", "escape":
            if case .markup = value { return value }
            return .markup(PyString.htmlEscape(try PyFormat.str(value)))
        case "forceescape": return .markup(PyString.htmlEscape(try PyFormat.str(value)))
        case "safe": return value.isMarkup ? value : .markup(try PyFormat.str(value))
        case "first":
            switch value {
            case .undefined: return .undefined(Undefined(message: "No first item, sequence was empty."))
            case .iterator(let it): return it.next() ?? .undefined(Undefined(message: "No first item, sequence was empty."))
            default: return try iterate(value).first ?? .undefined(Undefined(message: "No first item, sequence was empty."))
            }
        case "last":
            if case .iterator = value { throw JinjaRuntimeError.type("'generator' object is not reversible") }
            return try iterate(value).last ?? .undefined(Undefined(message: "No last item, sequence was empty."))
        case "float", "int":
            if case .undefined(let u) = value { throw JinjaRuntimeError.undefined(u.message) }
            return try applyNumberFilter(name, value, try p(name == "float" ? ["default"] : ["default", "base"]))
        case "format":
            guard let fmt = try Self.softStr(value).stringValue else { return value }
            if !args.positional.isEmpty && !args.keywords.isEmpty {
                throw JinjaRuntimeError.value("can't handle positional and keyword arguments at the same time")
            }
            let operand: Value = args.keywords.isEmpty ? .tuple(args.positional) : .dict(PyDict(strings: args.keywords))
            return value.isMarkup ? .markup(try PyPrintf.format(fmt, operand, markup: true)) : .string(try PyPrintf.format(fmt, operand, markup: false))
        case "indent":
            let a = try p(["width", "first", "blank"])
            return try Self.indent(value, width: a[0] ?? .int(4), first: a[1]?.truthy ?? false, blank: a[2]?.truthy ?? false)
        case "items":
            if case .undefined = value { return .iterator(PyIterator([])) }
            guard case .dict(let d) = value else { throw JinjaRuntimeError.type("Can only get item pairs from a mapping.") }
            return .iterator(PyIterator(d.pairs.map { .tuple([$0, $1]) }))
        case "join":
            let a = try p(["d", "attribute"])
            var items = try iterate(value)
            if let attr = a[1], !attr.isNone { let get = attributeGetter(attr); items = try items.map(get) }
            return .string(try items.map(PyFormat.str).joined(separator: try PyFormat.str(a[0] ?? .string(""))))
        case "list": return .list(try iterate(value))
        case "lower": return try Self.mapString(value) { Array(PyString.lower(PyString.string($0)).unicodeScalars) }
        case "upper": return try Self.mapString(value) { Array(PyString.upper(PyString.string($0)).unicodeScalars) }
        case "title": return .string(PyString.string(Self.jinjaTitle(Array(try PyFormat.str(value).unicodeScalars))))
        case "trim":
            let a = try p(["chars"])
            let chars = try Self.stringArgument(a[0], "strip")
            return try Self.mapString(value) { PyString.strip($0, chars: chars, left: true, right: true) }
        case "replace":
            let a = try p(["old", "new", "count"])
            let s = Array(try PyFormat.str(value).unicodeScalars)
            let old = Array(try PyFormat.str(a[0] ?? .string("")).unicodeScalars), new = Array(try PyFormat.str(a[1] ?? .string("")).unicodeScalars)
            let count = a[2].flatMap { $0.isNone ? nil : Self.index($0) } ?? -1
            return .string(PyString.string(PyString.replace(s, old, new, count: count)))
        case "string": return try Self.softStr(value)
        case "tojson":
            let a = try p(["ensure_ascii", "indent", "separators", "sort_keys"])
            var indent: String? = nil
            switch a[1] {
            case .int(let n)?: indent = String(repeating: " ", count: max(0, n))
            case .bool(let b)?: indent = b ? " " : ""
            case .string(let s)?, .markup(let s)?: indent = s
            case nil, .none?: indent = nil
            default: throw JinjaRuntimeError.type("indent must be an int or a string")
            }
            var separators: (String, String)? = nil
            if let sep = a[2], !sep.isNone {
                let parts = try iterate(sep)
                guard parts.count == 2, let i = parts[0].stringValue, let k = parts[1].stringValue else {
                    throw JinjaRuntimeError.value("separators must be a pair of strings")
                }
                separators = (i, k)
            }
            return .string(try PyFormat.json(value, ensureASCII: a[0]?.truthy ?? false, indent: indent, separators: separators,
                                             sortKeys: a[3]?.truthy ?? false))
        default:
            return try applyCollectionFilter(name, value, args, scope: scope)
        }
    }

    func applyNumberFilter(_ name: String, _ value: Value, _ a: [Value?]) throws -> Value {
        if name == "float" { return Self.toFloat(value) ?? a[0] ?? .float(0) }
        return try Self.toInt(value, base: a[1] ?? .int(10)) ?? a[0] ?? .int(0)
    }

    static func sorted(_ items: [Value], reverse: Bool, key: (Value) throws -> Value) throws -> [Value] {
        let keyed = try items.map { (try key($0), $0) }
        var failure: Error? = nil
        // Python's sort is stable, and reverse=True keeps equal items in their original order.
        let order = keyed.indices.sorted { i, j in
            do {
                let c = try PyCompare.order(keyed[i].0, keyed[j].0, "<")
                if c != 0 { return reverse ? c > 0 : c < 0 }
                return i < j
            } catch { failure = error; return false }
        }
        if let failure { throw failure }
        return order.map { keyed[$0].1 }
    }
}

extension Value {
    var isNone: Bool { if case .none = self { return true } else { return false } }
}
