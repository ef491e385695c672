/// Python's `==`, `<` and `in` on template values.
enum PyCompare {
    static func equal(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.undefined, _), (_, .undefined), (.none, _), (_, .none): return false
        default: break
        }
        if let x = a.number, let y = b.number {
            switch (x, y) {
            case let (.int(i), .int(j)): return i == j
            default: return x.double == y.double
            }
        }
        if let s = a.stringValue, let t = b.stringValue { return s.unicodeScalars.elementsEqual(t.unicodeScalars) }
        switch (a, b) {
        case let (.list(x), .list(y)), let (.tuple(x), .tuple(y)):
            return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case let (.dict(x), .dict(y)):
            guard x.count == y.count else { return false }
            for (k, v) in x.pairs {
                guard let other = try? y.get(k), equal(v, other) else { return false }
            }
            return true
        case let (.view(k1, x), .view(k2, y)):
            switch (k1, k2) {
            case (.range, .range): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
            case (.keys, .keys), (.items, .items):
                return x.count == y.count && x.allSatisfy { item in y.contains { equal(item, $0) } }
            default: return false
            }
        case let (.namespace(x), .namespace(y)): return x === y
        case let (.function(x), .function(y)): return x === y
        case let (.iterator(x), .iterator(y)): return x === y
        case let (.loop(x), .loop(y)): return x === y
        default: return false
        }
    }

    /// Python's `a < b`, with its TypeError for types it does not order.
    static func less(_ a: Value, _ b: Value) throws -> Bool {
        try order(a, b, "<") < 0
    }

    /// -1, 0 or 1 for types Python orders; a TypeError naming `op` otherwise.
    static func order(_ a: Value, _ b: Value, _ op: String) throws -> Int {
        if case .undefined(let u) = a { throw JinjaRuntimeError.undefined(u.message) }
        if case .undefined(let u) = b { throw JinjaRuntimeError.undefined(u.message) }
        if let x = a.number, let y = b.number {
            if case let (.int(i), .int(j)) = (x, y) { return i < j ? -1 : i > j ? 1 : 0 }
            let (p, q) = (x.double, y.double)
            return p < q ? -1 : p > q ? 1 : 0
        }
        if let s = a.stringValue, let t = b.stringValue {
            for (c, d) in zip(s.unicodeScalars, t.unicodeScalars) where c != d { return c.value < d.value ? -1 : 1 }
            let (m, n) = (s.unicodeScalars.count, t.unicodeScalars.count)
            return m < n ? -1 : m > n ? 1 : 0
        }
        switch (a, b) {
        case let (.list(x), .list(y)), let (.tuple(x), .tuple(y)):
            for (p, q) in zip(x, y) where !equal(p, q) { return try order(p, q, op) }
            return x.count < y.count ? -1 : x.count > y.count ? 1 : 0
        default:
            throw JinjaRuntimeError.type("'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
        }
    }

    /// Python's `item in container`.
    static func contains(_ container: Value, _ item: Value) throws -> Bool {
        switch container {
        case .undefined: return false
        case .string(let s), .markup(let s):
            guard let sub = item.stringValue else {
                throw JinjaRuntimeError.type("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return PyString.find(Array(s.unicodeScalars), Array(sub.unicodeScalars)) != nil
        case .list(let items), .tuple(let items): return items.contains { equal($0, item) }
        case .view(let kind, let items):
            if case .values = kind { return items.contains { equal($0, item) } }
            if case .keys = kind { _ = try HashKey(item) }
            return items.contains { equal($0, item) }
        case .dict(let d): return try d.get(item) != nil
        case .iterator(let it):
            while let v = it.next() { if equal(v, item) { return true } }
            return false
        default:
            throw JinjaRuntimeError.type("argument of type '\(container.typeName)' is not iterable")
        }
    }
}
