/// jinja2's parser for the statements transformers' environment knows: the built-in tags, `break` and
/// `continue` (loopcontrols) and `generation` (AssistantTracker). Statements jinja2 would reject are
/// syntax errors here too; valid ones Cairn does not render become `.unsupported` nodes, listed in
/// `unsupported`.
struct JinjaParser {
    var tokens: [JinjaToken]
    var index = 0
    /// Inside an `if` or an inline `if`: unknown filters and tests fail only when reached (jinja2's soft frames).
    var soft = false
    var loopDepth = 0
    /// Names read inside each macro being parsed (whether it uses `caller`, `varargs`, `kwargs`).
    var referenced: [Set<String>] = []
    /// Valid constructs Cairn cannot render, with their lines.
    var unsupported: [(line: Int, what: String)] = []
    var hasGeneration = false
    /// How deeply expressions nest (parentheses, unary operators); bounded so that a pathological
    /// template is an error, not a stack overflow.
    var nesting = 0
    static let maxNesting = 100
    private var tagStack: [String] = []

    init(tokens: [JinjaToken]) {
        self.tokens = tokens
        if tokens.last?.kind != .eof { self.tokens.append(JinjaToken(kind: .eof, line: tokens.last?.line ?? 1)) }
    }

    var current: JinjaToken { tokens[index] }
    func peek(_ n: Int = 1) -> JinjaToken { tokens[min(index + n, tokens.count - 1)] }
    mutating func advance() { if index < tokens.count - 1 { index += 1 } }

    func fail(_ message: String, line: Int? = nil) -> ChatTemplateError {
        ChatTemplateError(.syntax, line: line ?? current.line, message)
    }

    mutating func skipIfOp(_ op: String) -> Bool {
        if current.isOp(op) { advance(); return true }
        return false
    }

    mutating func skipIfName(_ n: String) -> Bool {
        if current.isName(n) { advance(); return true }
        return false
    }

    mutating func expectOp(_ op: String) throws {
        guard current.isOp(op) else { throw fail("expected token '\(op)', got '\(current.describe)'") }
        advance()
    }

    mutating func expectName() throws -> String {
        guard case .name(let n) = current.kind else { throw fail("expected token 'name', got '\(current.describe)'") }
        advance()
        return n
    }

    mutating func expectName(_ n: String) throws {
        guard current.isName(n) else { throw fail("expected token '\(n)', got '\(current.describe)'") }
        advance()
    }

    mutating func expect(_ kind: JinjaToken.Kind, _ what: String) throws {
        guard current.kind == kind else { throw fail("expected token '\(what)', got '\(current.describe)'") }
        advance()
    }

    mutating func parseTemplate() throws -> [Stmt] {
        let body = try subparse(endTokens: nil)
        return body
    }

    /// Statements up to one of `endTokens` (left as the current token) or the end of the template.
    mutating func subparse(endTokens: [String]?) throws -> [Stmt] {
        var body: [Stmt] = []
        var parts: [OutputPart] = []
        var partsLine = 0
        func flush() {
            if !parts.isEmpty { body.append(Stmt(.output(parts), line: partsLine)); parts = [] }
        }
        while true {
            let token = current
            switch token.kind {
            case .data(let text):
                if parts.isEmpty { partsLine = token.line }
                parts.append(.data(text))
                advance()
            case .variableBegin:
                if parts.isEmpty { partsLine = token.line }
                advance()
                parts.append(.expr(try parseTuple(withCondExpr: true)))
                try expect(.variableEnd, "end of print statement")
            case .blockBegin:
                flush()
                advance()
                if let endTokens, case .name(let n) = current.kind, endTokens.contains(n) { return body }
                body.append(contentsOf: try parseStatement())
                try expect(.blockEnd, "end of statement block")
            case .eof:
                flush()
                if let endTokens {
                    var message = "Unexpected end of template. Jinja was looking for the following tags: "
                        + endTokens.map { "'\($0)'" }.joined(separator: " or ") + "."
                    if let open = tagStack.last { message += " The innermost block that needs to be closed is '\(open)'." }
                    throw fail(message)
                }
                return body
            default:
                throw fail("internal parsing error at '\(token.describe)'")
            }
        }
    }

    /// A block's body: `%}`, statements, and the end tag (consumed when `dropNeedle`).
    mutating func parseStatements(_ endTokens: [String], dropNeedle: Bool = false) throws -> [Stmt] {
        _ = skipIfOp(":")
        try expect(.blockEnd, "end of statement block")
        let body = try subparse(endTokens: endTokens)
        if current.kind == .eof { throw fail("Unexpected end of template") }
        if dropNeedle { advance() }
        return body
    }

    mutating func parseStatement() throws -> [Stmt] {
        let token = current
        guard case .name(let tag) = token.kind else { throw fail("tag name expected") }
        let line = token.line
        if tagStack.count >= Self.maxNesting { throw fail("blocks nested more than \(Self.maxNesting) deep", line: line) }
        tagStack.append(tag)
        defer { tagStack.removeLast() }
        switch tag {
        case "for": return [try parseFor()]
        case "if": return [try parseIf()]
        case "set": return [try parseSet()]
        case "macro": return [try parseMacro()]
        case "call": return [try parseCallBlock()]
        case "filter":
            advance()
            let filter = try parseFilter(nil, startInline: true)!
            let saved = soft
            soft = false
            defer { soft = saved }
            return [Stmt(.filterBlock(filter, body: try parseStatements(["endfilter"], dropNeedle: true)), line: line)]
        case "with": return [try parseWith()]
        case "print":
            advance()
            var parts: [OutputPart] = []
            while current.kind != .blockEnd {
                if !parts.isEmpty { try expectOp(",") }
                parts.append(.expr(try parseExpression()))
            }
            return [Stmt(.output(parts), line: line)]
        case "break", "continue":
            advance()
            guard loopDepth > 0 else { throw fail("'\(tag)' outside loop", line: line) }
            return [Stmt(tag == "break" ? .breakLoop : .continueLoop, line: line)]
        case "generation":
            advance()
            hasGeneration = true
            let saved = (soft, loopDepth)
            (soft, loopDepth) = (false, 0)
            referenced.append([])
            defer { (soft, loopDepth) = saved; referenced.removeLast() }
            return [Stmt(.generation(try parseStatements(["endgeneration"], dropNeedle: true)), line: line)]
        case "block", "extends", "include", "import", "from", "autoescape":
            return [try parseUnsupported(tag, line: line)]
        default:
            throw fail("Encountered unknown tag '\(tag)'.", line: line)
        }
    }

    func isTupleEnd(_ extraEnd: [String] = []) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .op(")"): return true
        case .name(let n): return extraEnd.contains(n)
        default: return false
        }
    }
}
