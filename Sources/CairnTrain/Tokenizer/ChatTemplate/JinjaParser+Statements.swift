/// The statements: `for` (with `else`, an `if` filter, `recursive`), `if`/`elif`/`else`, `set` (and
/// block `set`), `macro`, `call`, `with`, and the targets they assign to.
extension JinjaParser {
    /// Parses a valid statement Cairn does not render, so the rest of the template still parses.
    mutating func parseUnsupported(_ tag: String, line: Int) throws -> Stmt {
        advance()
        unsupported.append((line, "the '\(tag)' tag"))
        switch tag {
        case "block":
            let name = try expectName()
            _ = skipIfName("scoped")
            _ = skipIfName("required")
            _ = try parseStatements(["endblock"], dropNeedle: true)
            _ = skipIfName(name)
        case "autoescape":
            _ = try parseExpression()
            _ = try parseStatements(["endautoescape"], dropNeedle: true)
        default:
            while current.kind != .blockEnd && current.kind != .eof { advance() }
        }
        return Stmt(.unsupported("the '\(tag)' tag"), line: line)
    }

    mutating func parseFor() throws -> Stmt {
        let line = current.line
        advance()
        let target = try parseAssignTarget(extraEnd: ["in"])
        try expectName("in")
        let iter = try parseTuple(withCondExpr: false, extraEnd: ["recursive"])
        var filter: Expr? = nil
        let saved = (soft, loopDepth)
        soft = false
        defer { (soft, loopDepth) = saved }
        if skipIfName("if") { filter = try parseExpression() }
        let recursive = skipIfName("recursive")
        loopDepth += 1
        let body = try parseStatements(["endfor", "else"])
        loopDepth = saved.1
        var elseBody: [Stmt] = []
        let end = try expectName()
        if end == "else" { elseBody = try parseStatements(["endfor"], dropNeedle: true) }
        let loop = ForLoop(target: target, iter: iter, filter: filter, body: body, elseBody: elseBody, recursive: recursive)
        return Stmt(.forLoop(loop), line: line)
    }

    mutating func parseIf() throws -> Stmt {
        let line = current.line
        advance()
        let saved = soft
        soft = true
        defer { soft = saved }
        var branches: [(Expr, [Stmt])] = []
        var elseBody: [Stmt] = []
        while true {
            let test = try parseTuple(withCondExpr: false)
            let body = try parseStatements(["elif", "else", "endif"])
            branches.append((test, body))
            let token = try expectName()
            if token == "elif" { continue }
            if token == "else" { elseBody = try parseStatements(["endif"], dropNeedle: true) }
            break
        }
        return Stmt(.ifChain(branches, elseBody: elseBody), line: line)
    }

    mutating func parseSet() throws -> Stmt {
        let line = current.line
        advance()
        let target = try parseAssignTarget(withNamespace: true)
        if skipIfOp("=") { return Stmt(.set(target, try parseTuple()), line: line) }
        let filter = try parseFilter(nil)
        let saved = soft
        soft = false
        defer { soft = saved }
        return Stmt(.setBlock(target, filter: filter, body: try parseStatements(["endset"], dropNeedle: true)), line: line)
    }

    mutating func parseSignature() throws -> ([String], [Expr]) {
        var params: [String] = [], defaults: [Expr] = []
        try expectOp("(")
        while !current.isOp(")") {
            if !params.isEmpty { try expectOp(",") }
            let line = current.line
            let name = try expectName()
            if ["true", "false", "none", "True", "False", "None"].contains(name) { throw fail("can't assign to 'const'", line: line) }
            if skipIfOp("=") { defaults.append(try parseExpression()) }
            else if !defaults.isEmpty { throw fail("non-default argument follows default argument") }
            params.append(name)
        }
        try expectOp(")")
        return (params, defaults)
    }

    mutating func parseMacro() throws -> Stmt {
        let line = current.line
        advance()
        let name = try expectName()
        let saved = (soft, loopDepth)
        (soft, loopDepth) = (false, 0)
        referenced.append([])
        defer { (soft, loopDepth) = saved }
        let (params, defaults) = try parseSignature()
        let body = try parseStatements(["endmacro"], dropNeedle: true)
        let names = referenced.removeLast()
        return Stmt(.macro(MacroDef(name: name, params: params, defaults: defaults, body: body, referenced: names)), line: line)
    }

    mutating func parseCallBlock() throws -> Stmt {
        let line = current.line
        advance()
        let saved = (soft, loopDepth)
        (soft, loopDepth) = (false, 0)
        referenced.append([])
        defer { (soft, loopDepth) = saved }
        var params: [String] = [], defaults: [Expr] = []
        if current.isOp("(") { (params, defaults) = try parseSignature() }
        let call = try parseExpression()
        guard case .call = call.kind else { throw fail("expected call", line: line) }
        let body = try parseStatements(["endcall"], dropNeedle: true)
        let names = referenced.removeLast()
        return Stmt(.callBlock(call: call, caller: MacroDef(name: "caller", params: params, defaults: defaults, body: body, referenced: names)), line: line)
    }

    mutating func parseWith() throws -> Stmt {
        let line = current.line
        advance()
        var assignments: [(Target, Expr)] = []
        while current.kind != .blockEnd {
            if !assignments.isEmpty { try expectOp(",") }
            let target = try parseAssignTarget()
            try expectOp("=")
            assignments.append((target, try parseExpression()))
        }
        let saved = soft
        soft = false
        defer { soft = saved }
        return Stmt(.with(assignments, body: try parseStatements(["endwith"], dropNeedle: true)), line: line)
    }

    /// A name, a tuple of names, or (for `set`) `ns.attr`.
    mutating func parseAssignTarget(extraEnd: [String] = [], withNamespace: Bool = false) throws -> Target {
        let line = current.line
        var items: [Target] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            items.append(try parseTargetPrimary(withNamespace: withNamespace))
            if current.isOp(",") { isTuple = true } else { break }
        }
        if !isTuple, let only = items.first { return only }
        if items.isEmpty && !isTuple { throw fail("Expected an expression, got '\(current.describe)'", line: line) }
        return .tuple(items)
    }

    private mutating func parseTargetPrimary(withNamespace: Bool) throws -> Target {
        let token = current
        switch token.kind {
        case .name(let n):
            advance()
            if ["true", "false", "none", "True", "False", "None"].contains(n) { throw fail("can't assign to 'const'", line: token.line) }
            if withNamespace && current.isOp(".") {
                advance()
                return .namespaceAttr(n, try expectName())
            }
            return .name(n)
        case .op("("):
            advance()
            let inner = try parseAssignTarget()
            try expectOp(")")
            return inner
        default:
            throw fail("can't assign to '\(token.describe)'", line: token.line)
        }
    }
}
