/// jinja2's expression grammar, loosest first: inline `if`, `or`, `and`, `not`, comparisons (`in`,
/// `not in`), `+ -`, `~`, `* / // %`, `**`, unary `- +`, then primaries with `.attr`, `[sub]`, calls,
/// `|filters` and `is tests` (filters bind tighter than every operator: `'a' + x | trim` trims x only).
extension JinjaParser {
    mutating func parseExpression(withCondExpr: Bool = true) throws -> Expr {
        withCondExpr ? try parseCondExpr() : try parseOr()
    }

    mutating func parseCondExpr() throws -> Expr {
        var line = current.line
        var expr = try parseOr()
        while skipIfName("if") {
            let saved = soft
            soft = true
            defer { soft = saved }
            let test = try parseOr()
            let otherwise: Expr? = skipIfName("else") ? try parseCondExpr() : nil
            expr = Expr(.condExpr(test: test, then: expr, else: otherwise), line: line)
            line = current.line
        }
        return expr
    }

    mutating func parseOr() throws -> Expr {
        var left = try parseAnd()
        while current.isName("or") {
            let line = current.line
            advance()
            left = Expr(.or(left, try parseAnd()), line: line)
        }
        return left
    }

    mutating func parseAnd() throws -> Expr {
        var left = try parseNot()
        while current.isName("and") {
            let line = current.line
            advance()
            left = Expr(.and(left, try parseNot()), line: line)
        }
        return left
    }

    mutating func parseNot() throws -> Expr {
        nesting += 1
        defer { nesting -= 1 }
        if nesting > Self.maxNesting { throw fail("expression nested more than \(Self.maxNesting) deep") }
        if current.isName("not") {
            let line = current.line
            advance()
            return Expr(.not(try parseNot()), line: line)
        }
        return try parseCompare()
    }

    mutating func parseCompare() throws -> Expr {
        let line = current.line
        let expr = try parseMath1()
        var ops: [(String, Expr)] = []
        while true {
            if case .op(let o) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                advance()
                ops.append((o, try parseMath1()))
            } else if skipIfName("in") {
                ops.append(("in", try parseMath1()))
            } else if current.isName("not") && peek().isName("in") {
                advance(); advance()
                ops.append(("notin", try parseMath1()))
            } else { break }
        }
        return ops.isEmpty ? expr : Expr(.compare(expr, ops), line: line)
    }

    mutating func parseMath1() throws -> Expr {
        var left = try parseConcat()
        while case .op(let o) = current.kind, o == "+" || o == "-" {
            let line = current.line
            advance()
            left = Expr(.binary(o, left, try parseConcat()), line: line)
        }
        return left
    }

    mutating func parseConcat() throws -> Expr {
        let line = current.line
        var args = [try parseMath2()]
        while current.isOp("~") {
            advance()
            args.append(try parseMath2())
        }
        return args.count == 1 ? args[0] : Expr(.concat(args), line: line)
    }

    mutating func parseMath2() throws -> Expr {
        var left = try parsePow()
        while case .op(let o) = current.kind, ["*", "/", "//", "%"].contains(o) {
            let line = current.line
            advance()
            left = Expr(.binary(o, left, try parsePow()), line: line)
        }
        return left
    }

    mutating func parsePow() throws -> Expr {
        var left = try parseUnary()
        while current.isOp("**") {
            let line = current.line
            advance()
            left = Expr(.binary("**", left, try parseUnary()), line: line)
        }
        return left
    }

    mutating func parseUnary(withFilter: Bool = true) throws -> Expr {
        nesting += 1
        defer { nesting -= 1 }
        if nesting > Self.maxNesting { throw fail("expression nested more than \(Self.maxNesting) deep") }
        let line = current.line
        var node: Expr
        if current.isOp("-") {
            advance()
            node = Expr(.neg(try parseUnary(withFilter: false)), line: line)
        } else if current.isOp("+") {
            advance()
            node = Expr(.pos(try parseUnary(withFilter: false)), line: line)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    mutating func parsePrimary() throws -> Expr {
        let token = current
        let line = token.line
        switch token.kind {
        case .name(let n):
            advance()
            switch n {
            case "true", "True": return Expr(.bool(true), line: line)
            case "false", "False": return Expr(.bool(false), line: line)
            case "none", "None": return Expr(.none, line: line)
            default:
                if !referenced.isEmpty { referenced[referenced.count - 1].insert(n) }
                return Expr(.name(n), line: line)
            }
        case .string(var s):
            advance()
            while case .string(let more) = current.kind { s += more; advance() }
            return Expr(.string(s), line: line)
        case .integer(let i): advance(); return Expr(.int(i), line: line)
        case .float(let d): advance(); return Expr(.float(d), line: line)
        case .op("("):
            advance()
            let inner = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return inner
        case .op("["):
            advance()
            var items: [Expr] = []
            while !current.isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if current.isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return Expr(.list(items), line: line)
        case .op("{"):
            advance()
            var pairs: [(Expr, Expr)] = []
            while !current.isOp("}") {
                if !pairs.isEmpty { try expectOp(",") }
                if current.isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                pairs.append((key, try parseExpression()))
            }
            try expectOp("}")
            return Expr(.dict(pairs), line: line)
        default:
            throw fail("unexpected '\(token.describe)'", line: line)
        }
    }

    /// Comma-separated expressions: a tuple when there is a comma, else the one expression.
    mutating func parseTuple(withCondExpr: Bool = true, extraEnd: [String] = [], explicitParentheses: Bool = false) throws -> Expr {
        let line = current.line
        var items: [Expr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            items.append(try parseExpression(withCondExpr: withCondExpr))
            if current.isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let only = items.first { return only }
            if !explicitParentheses { throw fail("Expected an expression, got '\(current.describe)'") }
        }
        return Expr(.tuple(items), line: line)
    }

    mutating func parsePostfix(_ start: Expr) throws -> Expr {
        var node = start
        while true {
            if current.isOp(".") || current.isOp("[") { node = try parseSubscript(node) }
            else if current.isOp("(") { node = try parseCallExpr(node) }
            else { return node }
        }
    }

    mutating func parseFilterExpr(_ start: Expr) throws -> Expr {
        var node = start
        while true {
            if current.isOp("|") { node = try parseFilter(node)! }
            else if current.isName("is") { node = try parseTest(node) }
            else if current.isOp("(") { node = try parseCallExpr(node) }
            else { return node }
        }
    }

    mutating func parseSubscript(_ node: Expr) throws -> Expr {
        let token = current
        advance()
        if token.isOp(".") {
            let attr = current
            advance()
            switch attr.kind {
            case .name(let n): return Expr(.getattr(node, n), line: token.line)
            case .integer(let i): return Expr(.getitem(node, Expr(.int(i), line: attr.line)), line: token.line)
            default: throw fail("expected name or number", line: attr.line)
            }
        }
        var args: [Expr] = []
        while !current.isOp("]") {
            if !args.isEmpty { try expectOp(",") }
            args.append(try parseSubscribed())
        }
        try expectOp("]")
        let arg = args.count == 1 ? args[0] : Expr(.tuple(args), line: token.line)
        return Expr(.getitem(node, arg), line: token.line)
    }

    mutating func parseSubscribed() throws -> Expr {
        let line = current.line
        var parts: [Expr?] = []
        if current.isOp(":") {
            advance()
            parts = [nil]
        } else {
            let node = try parseExpression()
            guard current.isOp(":") else { return node }
            advance()
            parts = [node]
        }
        if current.isOp(":") { parts.append(nil) }
        else if !current.isOp("]") && !current.isOp(",") { parts.append(try parseExpression()) }
        else { parts.append(nil) }
        if current.isOp(":") {
            advance()
            parts.append(!current.isOp("]") && !current.isOp(",") ? try parseExpression() : nil)
        } else { parts.append(nil) }
        return Expr(.slice(parts[0], parts[1], parts[2]), line: line)
    }
}
