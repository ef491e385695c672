import Foundation

/// Python's binary operators and comparisons on template values (jinja2 leaves them to Python).
enum PyOps {
    static func overflow() -> JinjaRuntimeError { .unsupported("integers beyond 64 bits") }

    static func binary(_ op: String, _ a: Value, _ b: Value) throws -> Value {
        // str.__mod__ accepts any right operand, Undefined included.
        if op == "%", case .string(let s) = a { return .string(try PyPrintf.format(s, b, markup: false)) }
        if op == "%", case .markup(let s) = a { return .markup(try PyPrintf.format(s, b, markup: true)) }
        if case .undefined(let u) = a { throw JinjaRuntimeError.undefined(u.message) }
        if case .undefined(let u) = b { throw JinjaRuntimeError.undefined(u.message) }
        if let x = a.number, let y = b.number { return try arithmetic(op, x, y) }
        switch (op, a, b) {
        case ("+", .string(let s), .string(let t)): return .string(s + t)
        case ("+", .markup(let s), .markup(let t)): return .markup(s + t)
        case ("+", .markup(let s), .string(let t)): return .markup(s + PyString.htmlEscape(t))
        case ("+", .string(let s), .markup(let t)): return .markup(PyString.htmlEscape(s) + t)
        case ("+", .list(let x), .list(let y)): return .list(x + y)
        case ("+", .tuple(let x), .tuple(let y)): return .tuple(x + y)
        case ("*", _, _) where (a.isString || isSequence(a)) && b.number != nil && !isFloat(b):
            return try repeatValue(a, b)
        case ("*", _, _) where (b.isString || isSequence(b)) && a.number != nil && !isFloat(a):
            return try repeatValue(b, a)
        default: break
        }
        if op == "+", a.isString || isSequence(a) {
            let kind = a.isString ? "str" : a.typeName
            throw JinjaRuntimeError.type("can only concatenate \(kind) (not \"\(b.typeName)\") to \(kind)")
        }
        throw JinjaRuntimeError.type("unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
    }

    static func isSequence(_ v: Value) -> Bool {
        switch v {
        case .list, .tuple: return true
        default: return false
        }
    }

    static func isFloat(_ v: Value) -> Bool { if case .float = v { return true } else { return false } }

    static func repeatValue(_ seq: Value, _ count: Value) throws -> Value {
        guard case .int(let n)? = count.number else { throw JinjaRuntimeError.type("can't multiply sequence by non-int") }
        let times = max(0, n)
        switch seq {
        case .string(let s): return .string(String(repeating: s, count: times))
        case .markup(let s): return .markup(String(repeating: s, count: times))
        case .list(let x): return .list(Array(repeating: x, count: times).flatMap { $0 })
        case .tuple(let x): return .tuple(Array(repeating: x, count: times).flatMap { $0 })
        default: throw JinjaRuntimeError.type("can't multiply sequence by non-int")
        }
    }

    /// One case per operator, int then float (Python's rules for each, side by side): a table.
    static func arithmetic(_ op: String, _ x: Value.Number, _ y: Value.Number) throws -> Value {
        if case .int(let i) = x, case .int(let j) = y {
            switch op {
            case "+": let r = i.addingReportingOverflow(j); if r.overflow { throw overflow() }; return .int(r.partialValue)
            case "-": let r = i.subtractingReportingOverflow(j); if r.overflow { throw overflow() }; return .int(r.partialValue)
            case "*": let r = i.multipliedReportingOverflow(by: j); if r.overflow { throw overflow() }; return .int(r.partialValue)
            case "/":
                guard j != 0 else { throw JinjaRuntimeError.zeroDivision("division by zero") }
                return .float(Double(i) / Double(j))
            case "//":
                guard j != 0 else { throw JinjaRuntimeError.zeroDivision("integer division or modulo by zero") }
                guard !(i == Int.min && j == -1) else { throw overflow() }
                var q = i / j
                if i % j != 0 && ((i < 0) != (j < 0)) { q -= 1 }
                return .int(q)
            case "%":
                guard j != 0 else { throw JinjaRuntimeError.zeroDivision("integer modulo by zero") }
                guard !(i == Int.min && j == -1) else { return .int(0) }
                var r = i % j
                if r != 0 && ((r < 0) != (j < 0)) { r += j }
                return .int(r)
            case "**":
                if j < 0 {
                    guard i != 0 else { throw JinjaRuntimeError.zeroDivision("0.0 cannot be raised to a negative power") }
                    return .float(pow(Double(i), Double(j)))  // tiny, never overflows
                }
                var result = 1, base = i, e = j
                while e > 0 {
                    if e & 1 == 1 {
                        let r = result.multipliedReportingOverflow(by: base)
                        if r.overflow { throw overflow() }
                        result = r.partialValue
                    }
                    e >>= 1
                    if e > 0 {
                        let r = base.multipliedReportingOverflow(by: base)
                        if r.overflow { throw overflow() }
                        base = r.partialValue
                    }
                }
                return .int(result)
            default: break
            }
        }
        let (a, b) = (x.double, y.double)
        switch op {
        case "+": return .float(a + b)
        case "-": return .float(a - b)
        case "*": return .float(a * b)
        case "/":
            guard b != 0 else { throw JinjaRuntimeError.zeroDivision("float division by zero") }
            return .float(a / b)
        case "//":
            guard b != 0 else { throw JinjaRuntimeError.zeroDivision("float floor division by zero") }
            return .float(floorDivMod(a, b).0)
        case "%":
            guard b != 0 else { throw JinjaRuntimeError.zeroDivision("float modulo by zero") }
            return .float(floorDivMod(a, b).1)
        case "**":
            if a < 0 && b != b.rounded() { throw JinjaRuntimeError.unsupported("complex results of **") }
            if a == 0 && b < 0 { throw JinjaRuntimeError.zeroDivision("0.0 cannot be raised to a negative power") }
            let r = pow(a, b)
            if r.isInfinite && a.isFinite && b.isFinite { throw JinjaRuntimeError.value("OverflowError: (34, 'Numerical result out of range')") }
            return .float(r)
        default: throw JinjaRuntimeError.unsupported("the operator \(op)")
        }
    }

    /// CPython's float `divmod`.
    static func floorDivMod(_ a: Double, _ b: Double) -> (Double, Double) {
        var mod = fmod(a, b)
        var div = (a - mod) / b
        if mod != 0 {
            if (b < 0) != (mod < 0) { mod += b; div -= 1 }
        } else {
            mod = copysign(0, b)
        }
        var floordiv: Double
        if div != 0 {
            floordiv = div.rounded(.down)
            if div - floordiv > 0.5 { floordiv += 1 }
        } else {
            floordiv = copysign(0, a / b)
        }
        return (floordiv, mod)
    }

    static func compare(_ op: String, _ a: Value, _ b: Value) throws -> Bool {
        switch op {
        case "==": return PyCompare.equal(a, b)
        case "!=": return !PyCompare.equal(a, b)
        case "in": return try PyCompare.contains(b, a)
        case "notin": return !(try PyCompare.contains(b, a))
        case "<": return try PyCompare.order(a, b, op) < 0
        case "<=": return try PyCompare.order(a, b, op) <= 0
        case ">": return try PyCompare.order(a, b, op) > 0
        case ">=": return try PyCompare.order(a, b, op) >= 0
        default: throw JinjaRuntimeError.unsupported("the comparison \(op)")
        }
    }
}
