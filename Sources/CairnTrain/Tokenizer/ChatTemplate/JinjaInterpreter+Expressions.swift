/// Expressions: names, literals, attribute and item access through jinja2's sandbox, calls, and
/// Python's operators.
extension JinjaInterpreter {
    func eval(_ e: Expr, _ scope: Scope) throws -> Value {
        do {
            return try evalUnlocated(e, scope)
        } catch let error as JinjaRuntimeError {
            throw ChatTemplateError(error.kind, line: e.line, error.message)
        }
    }

    /// One case per expression kind, in one switch: long because it is the evaluator's table, each
    /// case a few lines read on its own.
    private func evalUnlocated(_ e: Expr, _ scope: Scope) throws -> Value {
        switch e.kind {
        case .none: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .float(let d): return .float(d)
        case .string(let s): return .string(s)
        case .name(let n): return scope.lookup(n) ?? .undefined(Undefined(message: "'\(n)' is undefined"))
        case .list(let items): return .list(try items.map { try eval($0, scope) })
        case .tuple(let items): return .tuple(try items.map { try eval($0, scope) })
        case .dict(let pairs):
            var d = PyDict()
            for (k, v) in pairs {
                let key = try eval(k, scope)
                try d.set(key, try eval(v, scope))
            }
            return .dict(d)
        case .getattr(let obj, let name):
            return try getattr(try eval(obj, scope), name)
        case .getitem(let obj, let key):
            let target = try eval(obj, scope)
            if case .slice(let a, let b, let c) = key.kind {
                let bounds = try [a, b, c].map { try $0.map { try eval($0, scope) } ?? Value.none }
                return try slice(target, bounds[0], bounds[1], bounds[2])
            }
            return try getitem(target, try eval(key, scope))
        case .slice:
            throw JinjaRuntimeError.unsupported("a slice outside a subscript")
        case .call(let calleeExpr, let call):
            let callee = try eval(calleeExpr, scope)
            return try callValue(callee, try evalArguments(call, scope, line: e.line))
        case .filter(let value, let name, let call):
            let input = try value.map { try eval($0, scope) } ?? Value.none
            return try applyFilter(name, input, try evalArguments(call, scope, line: e.line), scope: scope)
        case .test(let value, let name, let call):
            let input = try eval(value, scope)
            return .bool(try applyTest(name, input, try evalArguments(call, scope, line: e.line)))
        case .not(let x): return .bool(!(try eval(x, scope).truthy))
        case .neg(let x):
            switch try eval(x, scope) {
            case .undefined(let u): throw JinjaRuntimeError.undefined(u.message)
            case let v:
                guard let n = v.number else { throw JinjaRuntimeError.type("bad operand type for unary -: '\(v.typeName)'") }
                if case .int(let i) = n {
                    guard i != Int.min else { throw JinjaRuntimeError.unsupported("integers beyond 64 bits") }
                    return .int(-i)
                }
                return .float(-n.double)
            }
        case .pos(let x):
            let v = try eval(x, scope)
            if case .undefined(let u) = v { throw JinjaRuntimeError.undefined(u.message) }
            guard let n = v.number else { throw JinjaRuntimeError.type("bad operand type for unary +: '\(v.typeName)'") }
            if case .int(let i) = n { return .int(i) }
            return .float(n.double)
        case .binary(let op, let a, let b):
            let left = try eval(a, scope)
            return try PyOps.binary(op, left, try eval(b, scope))
        case .and(let a, let b):
            let left = try eval(a, scope)
            return left.truthy ? try eval(b, scope) : left
        case .or(let a, let b):
            let left = try eval(a, scope)
            return left.truthy ? left : try eval(b, scope)
        case .concat(let parts):
            var out = ""
            for p in parts { out += try PyFormat.str(try eval(p, scope)) }
            return .string(out)
        case .compare(let first, let ops):
            var left = try eval(first, scope)
            for (op, rightExpr) in ops {
                let right = try eval(rightExpr, scope)
                if !(try PyOps.compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .condExpr(let test, let then, let otherwise):
            if try eval(test, scope).truthy { return try eval(then, scope) }
            if let otherwise { return try eval(otherwise, scope) }
            return .undefined(Undefined(message: "the inline if-expression on line \(e.line) evaluated to false and no else section was defined."))
        }
    }

    func evalArguments(_ call: Call, _ scope: Scope, line: Int) throws -> Arguments {
        var args = Arguments(line: line)
        for a in call.args { args.positional.append(try eval(a, scope)) }
        for (k, v) in call.kwargs { args.keywords.append((k, try eval(v, scope))) }
        if let dyn = call.dynArgs {
            args.positional += try located(line) { try iterate(try eval(dyn, scope)) }
        }
        if let dyn = call.dynKwargs {
            guard case .dict(let d) = try eval(dyn, scope) else {
                throw ChatTemplateError(.runtime, line: line, "TypeError: argument after ** must be a mapping")
            }
            for (k, v) in d.pairs {
                guard let key = k.stringValue else { throw ChatTemplateError(.runtime, line: line, "TypeError: keywords must be strings") }
                args.keywords.append((key, v))
            }
        }
        return args
    }

    func callValue(_ callee: Value, _ args: Arguments) throws -> Value {
        switch callee {
        case .function(let f): return try f.body(self, args)
        case .loop(let loop):
            guard let recurse = loop.recurse else {
                throw JinjaRuntimeError.type("Tried to call non recursive loop.  Maybe you forgot the 'recursive' modifier.")
            }
            guard args.positional.count == 1, args.keywords.isEmpty else { throw JinjaRuntimeError.type("loop() takes exactly one argument") }
            return try recurse(self, args.positional[0])
        case .undefined(let u):
            if u.security { throw JinjaRuntimeError.security(u.message) }
            throw JinjaRuntimeError.undefined(u.message)
        default: throw JinjaRuntimeError.type("'\(callee.typeName)' object is not callable")
        }
    }

    /// How jinja2 names an object in undefined messages (`'dict object' has no attribute 'x'`).
    static func objectName(_ v: Value) -> String {
        if case .none = v { return "None" }
        return "\(v.typeName) object"
    }

    static func noAttribute(_ obj: Value, _ name: String) -> Value {
        .undefined(Undefined(message: "'\(objectName(obj))' has no attribute '\(name)'"))
    }

    /// The sandbox's `getattr`: a Python attribute (a dict's `items`, a string's `strip`) first, then
    /// the item of that name; mutating methods are refused.
    func getattr(_ obj: Value, _ name: String) throws -> Value {
        if case .undefined(let u) = obj {
            if u.security { throw JinjaRuntimeError.security(u.message) }
            throw JinjaRuntimeError.undefined(u.message)
        }
        if let attribute = try pythonAttribute(obj, name) { return attribute }
        switch obj {
        case .dict(let d): return d.get(string: name) ?? Self.noAttribute(obj, name)
        default: return Self.noAttribute(obj, name)
        }
    }

    /// The sandbox's `getitem`: the item first, then for string keys the attribute of that name.
    func getitem(_ obj: Value, _ key: Value) throws -> Value {
        if case .undefined(let u) = obj { throw JinjaRuntimeError.undefined(u.message) }
        switch obj {
        case .dict(let d):
            if let v = try? d.get(key) { return v }
        case .list(let items), .tuple(let items):
            if let i = Self.index(key) {
                let j = i < 0 ? i + items.count : i
                if j >= 0 && j < items.count { return items[j] }
            }
        case .string(let s), .markup(let s):
            if let i = Self.index(key) {
                let scalars = Array(s.unicodeScalars)
                let j = i < 0 ? i + scalars.count : i
                if j >= 0 && j < scalars.count {
                    let c = String(scalars[j])
                    if case .markup = obj { return .markup(c) }
                    return .string(c)
                }
            }
        case .view(.range, let items):
            if let i = Self.index(key) {
                let j = i < 0 ? i + items.count : i
                if j >= 0 && j < items.count { return items[j] }
            }
        default: break
        }
        if let name = key.stringValue {
            if let attribute = try pythonAttribute(obj, name) { return attribute }
            return Self.noAttribute(obj, name)
        }
        let keyText = (try? PyFormat.repr(key)) ?? key.typeName
        return .undefined(Undefined(message: "\(Self.objectName(obj)) has no element \(keyText)"))
    }

    static func index(_ key: Value) -> Int? {
        switch key {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// `obj[a:b:c]`: jinja2 compiles slices to Python subscripts, bypassing the sandbox's getitem.
    func slice(_ obj: Value, _ start: Value, _ stop: Value, _ step: Value) throws -> Value {
        if case .undefined(let u) = obj { throw JinjaRuntimeError.undefined(u.message) }
        func bound(_ v: Value) throws -> Int? {
            if case .none = v { return nil }
            guard let i = Self.index(v) else {
                throw JinjaRuntimeError.type("slice indices must be integers or None or have an __index__ method")
            }
            return i
        }
        let (a, b, s) = (try bound(start), try bound(stop), try bound(step) ?? 1)
        guard s != 0 else { throw JinjaRuntimeError.value("slice step cannot be zero") }
        func indices(_ n: Int) -> [Int] {
            func adjust(_ v: Int?, _ def: Int) -> Int {
                guard var v else { return def }
                if v < 0 { v += n; if v < 0 { v = s < 0 ? -1 : 0 } } else if v >= n { v = s < 0 ? n - 1 : n }
                return v
            }
            let lo = adjust(a, s < 0 ? n - 1 : 0), hi = adjust(b, s < 0 ? -1 : n)
            return Array(stride(from: lo, to: hi, by: s))
        }
        switch obj {
        case .list(let items): return .list(indices(items.count).map { items[$0] })
        case .tuple(let items): return .tuple(indices(items.count).map { items[$0] })
        case .string(let str), .markup(let str):
            let scalars = Array(str.unicodeScalars)
            let text = PyString.string(indices(scalars.count).map { scalars[$0] })
            if case .markup = obj { return .markup(text) }
            return .string(text)
        case .view(.range(let r0, _, let rs), let items):
            let picked = indices(items.count)
            let newStart = r0 + (picked.first ?? 0) * rs, newStep = rs * s
            return .view(.range(newStart, newStart + picked.count * newStep, newStep), picked.map { items[$0] })
        case .dict: throw JinjaRuntimeError.type("unhashable type: 'slice'")
        default: throw JinjaRuntimeError.type("'\(obj.typeName)' object is not subscriptable")
        }
    }
}
