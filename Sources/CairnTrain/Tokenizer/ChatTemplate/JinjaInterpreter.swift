import Foundation

/// Variables visible at one point of a template: a loop iteration, a macro call, a `with` block,
/// or the template's top level, each reading through to the one it is nested in.
final class Scope {
    var vars: [String: Value] = [:]
    let parent: Scope?

    init(parent: Scope?) { self.parent = parent }

    func lookup(_ name: String) -> Value? {
        var scope: Scope? = self
        while let s = scope {
            if let v = s.vars[name] { return v }
            scope = s.parent
        }
        return nil
    }
}

/// Renders a parsed template as jinja2's compiled code would, with transformers' environment.
///
/// Output goes to a stack of buffers (macros, `set` blocks, `filter` blocks and `generation` bodies
/// render into their own); `generation` records its span at the position of the top-level output,
/// as transformers' AssistantTracker measures it.
final class JinjaInterpreter {
    enum Flow { case normal, breakLoop, continueLoop }

    private var buffers: [String] = [""]
    /// UTF-8 ranges of the text `{% generation %}` blocks rendered, in the top-level output.
    private(set) var generationSpans: [Range<Int>] = []
    /// The time `strftime_now` formats (the current time unless a test fixes it).
    var now: () -> Date = { Date() }
    /// Macro calls and recursive loops in progress; Python stops runaway recursion with a
    /// RecursionError, Cairn at `maxCallDepth`.
    private var callDepth = 0
    static let maxCallDepth = 100

    func enterCall() throws {
        callDepth += 1
        if callDepth > Self.maxCallDepth {
            callDepth -= 1
            throw JinjaRuntimeError.value("RecursionError: macros or recursive loops nested more than \(Self.maxCallDepth) deep")
        }
    }

    func leaveCall() { callDepth -= 1 }

    static func implemented(_ kind: String, _ name: String) -> Bool {
        kind == "filter" ? implementedFilters.contains(name) : implementedTests.contains(name)
    }

    /// Renders `body` with `variables` (transformers' render kwargs) over the environment's globals.
    func render(_ body: [Stmt], variables: [String: Value]) throws -> String {
        let globals = Scope(parent: nil)
        globals.vars = makeGlobals()
        let root = Scope(parent: globals)
        root.vars = variables
        buffers = [""]
        generationSpans = []
        _ = try exec(body, root)
        return buffers[0]
    }

    func emit(_ s: String) { buffers[buffers.count - 1] += s }

    /// Renders `body` into its own buffer and returns the text.
    func capture(_ body: () throws -> Void) throws -> String {
        buffers.append("")
        do {
            try body()
        } catch {
            buffers.removeLast()
            throw error
        }
        return buffers.removeLast()
    }

    func located<T>(_ line: Int, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as JinjaRuntimeError {
            throw ChatTemplateError(e.kind, line: line, e.message)
        }
    }

    func exec(_ body: [Stmt], _ scope: Scope) throws -> Flow {
        for stmt in body {
            let flow = try exec(stmt, scope)
            if flow != .normal { return flow }
        }
        return .normal
    }

    /// One case per statement kind, in one switch: long because it is the interpreter's table, each
    /// case a few lines read on its own.
    func exec(_ stmt: Stmt, _ scope: Scope) throws -> Flow {
        switch stmt.kind {
        case .output(let parts):
            for part in parts {
                switch part {
                case .data(let s): emit(s)
                case .expr(let e):
                    let v = try eval(e, scope)
                    emit(try located(e.line) { try PyFormat.str(v) })
                }
            }
        case .forLoop(let loop):
            return try execFor(loop, scope, line: stmt.line)
        case .ifChain(let branches, let elseBody):
            for (test, body) in branches {
                if try eval(test, scope).truthy { return try exec(body, scope) }
            }
            return try exec(elseBody, scope)
        case .set(let target, let expr):
            let value = try eval(expr, scope)
            try located(stmt.line) { try assign(target, value, scope) }
        case .setBlock(let target, let filter, let body):
            let inner = Scope(parent: scope)
            var value: Value = .string(try capture { _ = try exec(body, inner) })
            if let filter { value = try applyFilterChain(filter, to: value, scope) }
            try located(stmt.line) { try assign(target, value, scope) }
        case .macro(let def):
            scope.vars[def.name] = .function(makeMacro(def, definedIn: scope))
        case .callBlock(let callExpr, let callerDef):
            guard case .call(let calleeExpr, let call) = callExpr.kind else { break }
            let callee = try eval(calleeExpr, scope)
            var args = try evalArguments(call, scope, line: callExpr.line)
            args.keywords.append(("caller", .function(makeMacro(callerDef, definedIn: scope))))
            let result = try located(callExpr.line) { try callValue(callee, args) }
            emit(try located(stmt.line) { try PyFormat.str(result) })
        case .filterBlock(let filter, let body):
            let inner = Scope(parent: scope)
            let text = try capture { _ = try exec(body, inner) }
            emit(try located(stmt.line) { try PyFormat.str(try applyFilterChain(filter, to: .string(text), scope)) })
        case .with(let assignments, let body):
            let inner = Scope(parent: scope)
            for (target, expr) in assignments {
                let value = try eval(expr, scope)
                try located(stmt.line) { try assign(target, value, inner) }
            }
            return try exec(body, inner)
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        case .generation(let body):
            let inner = Scope(parent: scope)
            let text = try capture { _ = try exec(body, inner) }
            let start = buffers[0].utf8.count
            generationSpans.append(start..<(start + text.utf8.count))
            emit(text)
        case .unsupported(let what):
            throw ChatTemplateError(.unsupported, line: stmt.line, what)
        }
        return .normal
    }

    /// A `for` loop; a recursive loop's `loop(items)` renders the body again one level deeper.
    private func execFor(_ loop: ForLoop, _ scope: Scope, line: Int, iterable given: Value? = nil, depth0: Int = 0) throws -> Flow {
        let iterable = try given ?? eval(loop.iter, scope)
        let items = try located(loop.iter.line) { try iterate(iterable) }
        var accept: ((Value) throws -> Bool)? = nil
        if let filter = loop.filter {
            accept = { item in
                let probe = Scope(parent: scope)
                try self.located(line) { try self.assign(loop.target, item, probe) }
                return try self.eval(filter, probe).truthy
            }
        }
        let context = LoopContext(items: items, accept: accept, depth0: depth0)
        if loop.recursive {
            context.recurse = { interp, inner in
                try interp.enterCall()
                defer { interp.leaveCall() }
                return .string(try interp.capture { _ = try interp.execFor(loop, scope, line: line, iterable: inner, depth0: depth0 + 1) })
            }
        }
        var iterated = false
        while let item = try context.advance() {
            iterated = true
            let inner = Scope(parent: scope)
            try located(line) { try assign(loop.target, item, inner) }
            inner.vars["loop"] = .loop(context)
            if try exec(loop.body, inner) == .breakLoop { break }
        }
        if !iterated { return try exec(loop.elseBody, Scope(parent: scope)) }
        return .normal
    }

    /// Binds a value to a `set`/`for`/`with` target, unpacking tuples as Python does.
    func assign(_ target: Target, _ value: Value, _ scope: Scope) throws {
        switch target {
        case .name(let n):
            scope.vars[n] = value
        case .tuple(let targets):
            let items = try iterate(value)
            if items.count > targets.count { throw JinjaRuntimeError.value("too many values to unpack (expected \(targets.count))") }
            if items.count < targets.count {
                throw JinjaRuntimeError.value("not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            for (t, v) in zip(targets, items) { try assign(t, v, scope) }
        case .namespaceAttr(let name, let attr):
            guard case .namespace(let ns) = scope.lookup(name) ?? Value.none else {
                throw JinjaRuntimeError.type("cannot assign attribute on non-namespace object")
            }
            try Self.checkNamespaceName(attr)
            ns.attrs.setString(attr, value)
        }
    }

    /// transformers' TemplateNamespace refuses names starting with an underscore.
    static func checkNamespaceName(_ name: String) throws {
        if name.hasPrefix("_") {
            throw JinjaRuntimeError.security("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '\(name)'. Please rename the attribute.")
        }
    }

    /// The items Python's `iter()` gives: list items, string characters, dict keys.
    func iterate(_ v: Value) throws -> [Value] {
        switch v {
        case .undefined: return []
        case .list(let items), .tuple(let items), .view(_, let items): return items
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .markup(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .dict(let d): return d.keys
        case .iterator(let it): return it.drain()
        default: throw JinjaRuntimeError.type("'\(v.typeName)' object is not iterable")
        }
    }

    /// A macro (or a call block's `caller`) as a callable closing over the scope it was defined in.
    func makeMacro(_ def: MacroDef, definedIn scope: Scope) -> Function {
        Function(def.name, isMacro: true) { interp, args in
            try interp.enterCall()
            defer { interp.leaveCall() }
            let frame = Scope(parent: scope)
            var positional = args.positional
            var extra: [Value] = []
            if positional.count > def.params.count {
                guard def.usesVarargs else {
                    throw JinjaRuntimeError.type("macro '\(def.name)' takes not more than \(def.params.count) argument(s)")
                }
                extra = Array(positional[def.params.count...])
                positional = Array(positional[..<def.params.count])
            }
            var given: [String: Value] = [:]
            for (p, v) in zip(def.params, positional) { given[p] = v }
            var kwargs = PyDict()
            for (k, v) in args.keywords {
                if def.params.contains(k) {
                    if given[k] != nil { throw JinjaRuntimeError.type("macro '\(def.name)' got multiple values for argument '\(k)'") }
                    given[k] = v
                } else if k == "caller" {
                    frame.vars["caller"] = v
                } else if def.usesKwargs {
                    kwargs.setString(k, v)
                } else {
                    throw JinjaRuntimeError.type("macro '\(def.name)' takes no keyword argument '\(k)'")
                }
            }
            let firstDefault = def.params.count - def.defaults.count
            for (i, p) in def.params.enumerated() {
                if let v = given[p] { frame.vars[p] = v }
                else if i >= firstDefault { frame.vars[p] = try interp.eval(def.defaults[i - firstDefault], frame) }
                else { frame.vars[p] = .undefined(Undefined(message: "parameter '\(p)' was not provided")) }
            }
            if def.usesVarargs { frame.vars["varargs"] = .tuple(extra) }
            if def.usesKwargs { frame.vars["kwargs"] = .dict(kwargs) }
            if frame.vars["caller"] == nil && def.usesCaller {
                frame.vars["caller"] = .undefined(Undefined(message: "No caller defined"))
            }
            return .string(try interp.capture { _ = try interp.exec(def.body, frame) })
        }
    }
}
