/// Call arguments, `|filters` and `is tests`, with jinja2's check of filter and test names.
extension JinjaParser {
    static let knownFilters: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "items", "join",
        "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr",
        "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags",
        "sum", "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount",
        "wordwrap", "xmlattr",
    ]
    static let knownTests: Set<String> = [
        "!=", "<", "<=", "==", ">", ">=", "boolean", "callable", "defined", "divisibleby", "eq", "equalto",
        "escaped", "even", "false", "filter", "float", "ge", "greaterthan", "gt", "in", "integer", "iterable",
        "le", "lessthan", "lower", "lt", "mapping", "ne", "none", "number", "odd", "sameas", "sequence",
        "string", "test", "true", "undefined", "upper",
    ]

    mutating func parseCallArgs() throws -> Call {
        let line = current.line
        try expectOp("(")
        var call = Call()
        var requireComma = false
        func ensure(_ ok: Bool) throws {
            if !ok { throw fail("invalid syntax for function call expression", line: line) }
        }
        while !current.isOp(")") {
            if requireComma {
                try expectOp(",")
                if current.isOp(")") { break }
            }
            if current.isOp("*") {
                try ensure(call.dynArgs == nil && call.dynKwargs == nil)
                advance()
                call.dynArgs = try parseExpression()
            } else if current.isOp("**") {
                try ensure(call.dynKwargs == nil)
                advance()
                call.dynKwargs = try parseExpression()
            } else if case .name(let key) = current.kind, peek().isOp("=") {
                try ensure(call.dynKwargs == nil)
                advance(); advance()
                call.kwargs.append((key, try parseExpression()))
            } else {
                try ensure(call.dynArgs == nil && call.dynKwargs == nil && call.kwargs.isEmpty)
                call.args.append(try parseExpression())
            }
            requireComma = true
        }
        try expectOp(")")
        return call
    }

    mutating func parseCallExpr(_ node: Expr) throws -> Expr {
        let line = current.line
        return Expr(.call(node, try parseCallArgs()), line: line)
    }

    mutating func dottedName() throws -> (String, Int) {
        let line = current.line
        var name = try expectName()
        while current.isOp(".") {
            advance()
            name += "." + (try expectName())
        }
        return (name, line)
    }

    mutating func parseFilter(_ start: Expr?, startInline: Bool = false) throws -> Expr? {
        var node = start
        var inline = startInline
        while current.isOp("|") || inline {
            if !inline { advance() }
            inline = false
            let (name, line) = try dottedName()
            try checkKnown(name, Self.knownFilters, "filter", line: line)
            let call = current.isOp("(") ? try parseCallArgs() : Call()
            node = Expr(.filter(node, name, call), line: line)
        }
        return node
    }

    mutating func parseTest(_ node: Expr) throws -> Expr {
        let line = current.line
        advance()
        let negated = skipIfName("not")
        let (name, nameLine) = try dottedName()
        try checkKnown(name, Self.knownTests, "test", line: nameLine)
        var call = Call()
        if current.isOp("(") {
            call = try parseCallArgs()
        } else if !current.isName("else") && !current.isName("or") && !current.isName("and") {
            switch current.kind {
            case .name, .string, .integer, .float, .op("("), .op("["), .op("{"):
                if current.isName("is") { throw fail("You cannot chain multiple tests with is") }
                call.args = [try parsePostfix(try parsePrimary())]
            default: break
            }
        }
        let test = Expr(.test(node, name, call), line: line)
        return negated ? Expr(.not(test), line: line) : test
    }

    /// jinja2 refuses unknown filter and test names when compiling, except inside `if` (soft frames),
    /// where they fail only when reached.
    mutating func checkKnown(_ name: String, _ known: Set<String>, _ kind: String, line: Int) throws {
        if !known.contains(name) && !soft { throw fail("No \(kind) named '\(name)'.", line: line) }
        if known.contains(name) && !JinjaInterpreter.implemented(kind, name) {
            unsupported.append((line, "the '\(name)' \(kind)"))
        }
    }
}
