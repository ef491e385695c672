import Foundation

/// Filters over sequences (`map`, `select*`, `sort`, `unique`…) and the numeric and text helpers.
extension JinjaInterpreter {
    /// One case per filter, in one switch: the function is long because it is the table of these
    /// filters, each case a few lines read on its own (as jinja2's filters.py is a list of them).
    func applyCollectionFilter(_ name: String, _ value: Value, _ args: Arguments, scope: Scope) throws -> Value {
        func p(_ params: [String]) throws -> [Value?] { try Self.bind(args, params, name) }
        switch name {
        case "map":
            guard value.truthy else { return .iterator(PyIterator([])) }
            var rest = args
            let transform: (Value) throws -> Value
            if rest.positional.isEmpty, let i = rest.keywords.firstIndex(where: { $0.0 == "attribute" }) {
                let attribute = rest.keywords.remove(at: i).1
                var def: Value? = nil
                if let j = rest.keywords.firstIndex(where: { $0.0 == "default" }) { def = rest.keywords.remove(at: j).1 }
                if let extra = rest.keywords.first { throw JinjaRuntimeError.type("Unexpected keyword argument '\(extra.0)'") }
                transform = attributeGetter(attribute, default: def)
            } else {
                guard let filterName = rest.positional.first?.stringValue else { throw JinjaRuntimeError.type("map requires a filter argument") }
                rest.positional.removeFirst()
                try checkFilterName(filterName)
                transform = { try self.applyFilter(filterName, $0, rest, scope: scope) }
            }
            return .iterator(PyIterator(try iterate(value).map(transform)))
        case "select", "reject", "selectattr", "rejectattr":
            guard value.truthy else { return .iterator(PyIterator([])) }
            let lookup = name.hasSuffix("attr")
            var rest = args
            var getter: (Value) throws -> Value = { $0 }
            if lookup {
                guard !rest.positional.isEmpty else { throw JinjaRuntimeError.type("Missing parameter for attribute name") }
                getter = attributeGetter(rest.positional.removeFirst())
            }
            var test: (Value) throws -> Bool = { $0.truthy }
            if let testName = rest.positional.first {
                rest.positional.removeFirst()
                guard let tn = testName.stringValue else { throw JinjaRuntimeError.type("test name must be a string") }
                test = { try self.applyTest(tn, $0, rest) }
            }
            let keep = name.hasPrefix("select")
            return .iterator(PyIterator(try iterate(value).filter { try test(try getter($0)) == keep }))
        case "sort":
            let a = try p(["reverse", "case_sensitive", "attribute"])
            // make_multi_attrgetter: "a,b" sorts by a, then b.
            let attributes: [Value?] = a[2]?.stringValue.map { $0.split(separator: ",", omittingEmptySubsequences: false).map { .string(String($0)) } } ?? [a[2]]
            let getters = attributes.map { attributeGetter($0, lower: !(a[1]?.truthy ?? false)) }
            return .list(try Self.sorted(try iterate(value), reverse: a[0]?.truthy ?? false) { item in .list(try getters.map { try $0(item) }) })
        case "unique":
            let a = try p(["case_sensitive", "attribute"])
            let get = attributeGetter(a[1], lower: !(a[0]?.truthy ?? false))
            var seen = Set<HashKey>()
            var out: [Value] = []
            for item in try iterate(value) where seen.insert(try HashKey(try get(item))).inserted { out.append(item) }
            return .iterator(PyIterator(out))
        case "min", "max":
            let a = try p(["case_sensitive", "attribute"])
            let items = try iterate(value)
            guard var best = items.first else { return .undefined(Undefined(message: "No aggregated item, sequence was empty.")) }
            let get = attributeGetter(a[1], lower: !(a[0]?.truthy ?? false))
            var bestKey = try get(best)
            for item in items.dropFirst() {
                let k = try get(item)
                let c = try PyCompare.order(k, bestKey, name == "min" ? "<" : ">")
                if name == "min" ? c < 0 : c > 0 { best = item; bestKey = k }
            }
            return best
        case "sum":
            let a = try p(["attribute", "start"])
            var total = a[1] ?? .int(0)
            let get = attributeGetter(a[0])
            for item in try iterate(value) { total = try PyOps.binary("+", total, try get(item)) }
            return total
        case "reverse":
            switch value {
            case .string(let s): return .string(PyString.string(s.unicodeScalars.reversed()))
            case .markup(let s): return .markup(PyString.string(s.unicodeScalars.reversed()))
            case .iterator(let it): return .list(it.drain().reversed())
            default: return .iterator(PyIterator(try iterate(value).reversed()))
            }
        case "round":
            let a = try p(["precision", "method"])
            let precision = try Self.intArgument(a[0], default: 0)
            let method = a[1]?.stringValue ?? "common"
            guard ["common", "ceil", "floor"].contains(method) else { throw JinjaRuntimeError.value("method must be common, ceil or floor") }
            guard let n = value.number else { throw JinjaRuntimeError.type("type \(value.typeName) doesn't define __round__ method") }
            guard precision >= 0 else { throw JinjaRuntimeError.unsupported("round with a negative precision") }
            if method == "common" {
                if case .int(let i) = n { return .int(i) }
                return .float(Double(String(format: "%.\(precision)f", n.double)) ?? n.double)
            }
            let scale = pow(10.0, Double(precision))
            let scaled = n.double * scale
            return .float((method == "ceil" ? scaled.rounded(.up) : scaled.rounded(.down)) / scale)
        case "batch", "slice":
            let a = try p([name == "batch" ? "linecount" : "slices", "fill_with"])
            guard let count = a[0].flatMap(Self.index), count > 0 else { throw JinjaRuntimeError.value("\(name) needs a positive count") }
            let items = try iterate(value)
            let fill = a[1].flatMap { $0.isNone ? nil : $0 }
            var groups: [Value] = []
            if name == "batch" {
                var i = 0
                while i < items.count {
                    var g = Array(items[i..<min(i + count, items.count)])
                    if let fill, g.count < count { g += Array(repeating: fill, count: count - g.count) }
                    groups.append(.list(g))
                    i += count
                }
            } else {
                let per = items.count / count, extra = items.count % count
                var offset = 0
                for s in 0..<count {
                    let start = offset + s * per
                    if s < extra { offset += 1 }
                    var g = Array(items[start..<(offset + (s + 1) * per)])
                    if let fill, s >= extra { g.append(fill) }
                    groups.append(.list(g))
                }
            }
            return .iterator(PyIterator(groups))
        case "truncate":
            let a = try p(["length", "killwords", "end", "leeway"])
            let s = Array(try PyFormat.str(value).unicodeScalars)
            let length = try Self.intArgument(a[0], default: 255), end = Array(try PyFormat.str(a[2] ?? .string("...")).unicodeScalars)
            let leeway = try Self.intArgument(a[3].flatMap { $0.isNone ? nil : $0 }, default: 5)
            guard length >= end.count else { throw JinjaRuntimeError.value("expected length >= \(end.count), got \(length)") }
            if s.count <= length + leeway { return .string(PyString.string(s)) }
            let head = Array(s[..<(length - end.count)])
            if a[1]?.truthy ?? false { return .string(PyString.string(head + end)) }
            return .string(PyString.string(PyString.rsplit(head, sep: [" "], maxsplit: 1)[0] + end))
        case "wordcount":
            var count = 0, inWord = false
            for c in try PyFormat.str(value).unicodeScalars {
                let w = PyString.isWordChar(c)
                if w && !inWord { count += 1 }
                inWord = w
            }
            return .int(count)
        default:
            try checkFilterName(name)
            throw JinjaRuntimeError.unsupported("the '\(name)' filter")
        }
    }

    func checkFilterName(_ name: String) throws {
        guard JinjaParser.knownFilters.contains(name) else { throw JinjaRuntimeError.template("No filter named '\(name)' found.") }
        if !Self.implementedFilters.contains(name) { throw JinjaRuntimeError.unsupported("the '\(name)' filter") }
    }

    /// jinja2's `title` filter: the first letter of every word after `-`, whitespace or an opening
    /// bracket upper-cased, the rest lowered.
    static func jinjaTitle(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        var chunk: [Unicode.Scalar] = []
        var chunkIsSeparator = false
        func isSeparator(_ c: Unicode.Scalar) -> Bool { c == "-" || c == "(" || c == "{" || c == "[" || c == "<" || PyString.isSpace(c) }
        func flush() {
            guard let first = chunk.first else { return }
            out += PyString.upper(String(first)).unicodeScalars
            out += PyString.lower(PyString.string(chunk.dropFirst())).unicodeScalars
            chunk = []
        }
        for c in s {
            let sep = isSeparator(c)
            if !chunk.isEmpty && sep != chunkIsSeparator { flush() }
            chunkIsSeparator = sep
            chunk.append(c)
        }
        flush()
        return out
    }

    static func indent(_ value: Value, width: Value, first: Bool, blank: Bool) throws -> Value {
        guard let text = value.stringValue else { throw JinjaRuntimeError.type("can only concatenate str (not \"\(value.typeName)\") to str") }
        let indention: String
        if let w = width.stringValue { indention = w } else { indention = String(repeating: " ", count: max(0, try intArgument(width, default: 4))) }
        let lines = PyString.splitlines(Array((text + "\n").unicodeScalars)).map { PyString.string($0) }
        var rv: String
        if blank {
            rv = lines.joined(separator: "\n" + indention)
        } else {
            rv = lines.first ?? ""
            let rest = lines.dropFirst()
            if !rest.isEmpty { rv += "\n" + rest.map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n") }
        }
        if first { rv = indention + rv }
        return value.isMarkup ? .markup(rv) : .string(rv)
    }

    /// The `float` filter: Python's `float()`, nil where it fails.
    static func toFloat(_ v: Value) -> Value? {
        if let n = v.number { return .float(n.double) }
        guard let s = v.stringValue else { return nil }
        let t = PyString.string(PyString.strip(Array(s.unicodeScalars), chars: nil, left: true, right: true)).replacingOccurrences(of: "_", with: "")
        switch t.lowercased() {
        case "inf", "+inf", "infinity", "+infinity": return .float(.infinity)
        case "-inf", "-infinity": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        guard t.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }), let d = Double(t) else { return nil }
        return .float(d)
    }

    /// The `int` filter: `int(value, base)` for strings, `int(value)` otherwise, then `int(float(value))`.
    static func toInt(_ v: Value, base: Value) throws -> Value? {
        if let n = v.number {
            switch n {
            case .int(let i): return .int(i)
            case .float(let d):
                guard d.isFinite else { return nil }
                guard abs(d) < 9.2e18 else { throw JinjaRuntimeError.unsupported("integers beyond 64 bits") }
                return .int(Int(d))
            }
        }
        guard let s = v.stringValue else { return nil }
        var t = PyString.string(PyString.strip(Array(s.unicodeScalars), chars: nil, left: true, right: true)).replacingOccurrences(of: "_", with: "")
        var radix = try intArgument(base, default: 10)
        var negative = false
        if t.hasPrefix("-") || t.hasPrefix("+") { negative = t.hasPrefix("-"); t.removeFirst() }
        let prefixes = ["0x": 16, "0o": 8, "0b": 2]
        if let (prefix, r) = prefixes.first(where: { t.lowercased().hasPrefix($0.key) }), radix == 0 || radix == r {
            radix = r
            t = String(t.dropFirst(prefix.count))
        } else if radix == 0 { radix = 10 }
        if let i = Int(t, radix: radix), !t.hasPrefix("-"), !t.hasPrefix("+") { return .int(negative ? -i : i) }
        if case .float(let d)? = toFloat(v), d.isFinite {
            guard abs(d) < 9.2e18 else { throw JinjaRuntimeError.unsupported("integers beyond 64 bits") }
            return .int(Int(d))
        }
        return nil
    }
}
