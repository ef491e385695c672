/// The syntax tree of a template: jinja2's nodes for what chat templates use.
struct Expr {
    indirect enum Kind {
        case none
        case bool(Bool)
        case int(Int)
        case float(Double)
        case string(String)
        case name(String)
        case list([Expr])
        case tuple([Expr])
        case dict([(Expr, Expr)])
        case getattr(Expr, String)
        case getitem(Expr, Expr)
        /// `a:b:c` inside a subscript.
        case slice(Expr?, Expr?, Expr?)
        case call(Expr, Call)
        /// A filter applied to a value (nil inside `{% filter %}` and `{% set x | f %}`, where the block's
        /// text is the value).
        case filter(Expr?, String, Call)
        case test(Expr, String, Call)
        case not(Expr)
        case neg(Expr)
        case pos(Expr)
        case binary(String, Expr, Expr)
        case and(Expr, Expr)
        case or(Expr, Expr)
        case concat([Expr])
        case compare(Expr, [(String, Expr)])
        case condExpr(test: Expr, then: Expr, else: Expr?)
    }
    var kind: Kind
    var line: Int

    init(_ kind: Kind, line: Int) {
        self.kind = kind
        self.line = line
    }
}

/// The arguments of a call, filter or test.
struct Call {
    var args: [Expr] = []
    var kwargs: [(String, Expr)] = []
    var dynArgs: Expr? = nil
    var dynKwargs: Expr? = nil
}

/// What `set`, `for` and `with` assign to.
indirect enum Target {
    case name(String)
    case tuple([Target])
    /// `ns.attr` (only `set` allows it).
    case namespaceAttr(String, String)

    var names: [String] {
        switch self {
        case .name(let n): return [n]
        case .tuple(let ts): return ts.flatMap(\.names)
        case .namespaceAttr: return []
        }
    }
}

/// A macro or a call block's body with its signature.
final class MacroDef {
    let name: String
    let params: [String]
    let defaults: [Expr]
    let body: [Stmt]
    let usesCaller: Bool, usesVarargs: Bool, usesKwargs: Bool

    init(name: String, params: [String], defaults: [Expr], body: [Stmt], referenced: Set<String>) {
        self.name = name
        self.params = params
        self.defaults = defaults
        self.body = body
        usesCaller = referenced.contains("caller")
        usesVarargs = referenced.contains("varargs")
        usesKwargs = referenced.contains("kwargs")
    }
}

struct ForLoop {
    var target: Target
    var iter: Expr
    var filter: Expr?
    var body: [Stmt]
    var elseBody: [Stmt]
    var recursive: Bool
}

struct Stmt {
    indirect enum Kind {
        /// Template text and `{{ }}` expressions between two block tags (jinja2's Output node).
        case output([OutputPart])
        case forLoop(ForLoop)
        case ifChain([(Expr, [Stmt])], elseBody: [Stmt])
        case set(Target, Expr)
        case setBlock(Target, filter: Expr?, body: [Stmt])
        case macro(MacroDef)
        case callBlock(call: Expr, caller: MacroDef)
        case filterBlock(Expr, body: [Stmt])
        case with([(Target, Expr)], body: [Stmt])
        case breakLoop
        case continueLoop
        /// transformers' `{% generation %}` (AssistantTracker): renders its body and records its span.
        case generation([Stmt])
        /// Valid jinja2 that Cairn does not render (`block`, `extends`, `include`, `import`,
        /// `autoescape`, recursive loops): an error naming the construct when reached.
        case unsupported(String)
    }
    var kind: Kind
    var line: Int

    init(_ kind: Kind, line: Int) {
        self.kind = kind
        self.line = line
    }
}

enum OutputPart {
    case data(String)
    case expr(Expr)
}
