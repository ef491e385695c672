/// A value while a template renders: the Python objects jinja2 would hold.
enum Value {
    /// jinja2's default `Undefined`: renders as "", is falsy and iterates as empty, but fails on
    /// attribute access, calls, arithmetic and ordering with its message.
    case undefined(Undefined)
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    /// markupsafe's `Markup` (what `safe`, `escape` and `e` return): `+` and `%` escape the other side.
    case markup(String)
    case list([Value])
    case tuple([Value])
    case dict(PyDict)
    /// `dict.items()`/`keys()`/`values()` and `range()`: iterable again and sized, printed as Python does.
    case view(ViewKind, [Value])
    /// A one-shot generator (what `map`, `select`, `unique`… return): always truthy, no length.
    case iterator(PyIterator)
    case namespace(Namespace)
    case function(Function)
    case loop(LoopContext)

    /// Python's type name, as error messages give it.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .markup: return "Markup"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .view(let kind, _): return kind.typeName
        case .iterator: return "generator"
        case .namespace: return "Namespace"
        case .function(let f): return f.isMacro ? "Macro" : "builtin_function_or_method"
        case .loop: return "LoopContext"
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true } else { return false } }
    var isBoolLike: Bool { if case .bool = self { return true } else { return false } }

    /// The text of a `str` or `Markup`.
    var stringValue: String? {
        switch self {
        case .string(let s), .markup(let s): return s
        default: return nil
        }
    }

    var isString: Bool { stringValue != nil }

    /// Python's truth value.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .float(let d): return d != 0
        case .string(let s), .markup(let s): return !s.isEmpty
        case .list(let a), .tuple(let a), .view(_, let a): return !a.isEmpty
        case .dict(let d): return d.count > 0
        case .iterator, .namespace, .function, .loop: return true
        }
    }

    /// Numeric value for arithmetic (bool counts as int, as in Python).
    var number: Number? {
        switch self {
        case .bool(let b): return .int(b ? 1 : 0)
        case .int(let i): return .int(i)
        case .float(let d): return .float(d)
        default: return nil
        }
    }

    enum Number {
        case int(Int)
        case float(Double)
        var double: Double {
            switch self {
            case .int(let i): return Double(i)
            case .float(let d): return d
            }
        }
    }
}

enum ViewKind {
    case items, keys, values
    case range(Int, Int, Int)

    var typeName: String {
        switch self {
        case .items: return "dict_items"
        case .keys: return "dict_keys"
        case .values: return "dict_values"
        case .range: return "range"
        }
    }
}

struct Undefined {
    /// Every Undefined is the same dict key (jinja2 hashes them by type).
    enum Marker {}
    var message: String
    /// A sandbox refusal (`access to attribute 'append' of 'list' object is unsafe.`).
    var security = false
}

/// A Python dict: insertion order, keys compared as Python does (`1 == 1.0 == True`).
struct PyDict {
    private(set) var keys: [Value] = []
    private(set) var values: [Value] = []
    private var index: [HashKey: Int] = [:]

    var count: Int { keys.count }
    var pairs: Zip2Sequence<[Value], [Value]> { zip(keys, values) }

    init() {}

    init(strings: [(String, Value)]) {
        for (k, v) in strings { setString(k, v) }
    }

    mutating func set(_ key: Value, _ value: Value) throws {
        let h = try HashKey(key)
        if let i = index[h] { values[i] = value; return }
        index[h] = keys.count
        keys.append(key)
        values.append(value)
    }

    mutating func setString(_ key: String, _ value: Value) {
        let h = HashKey.string(Array(key.unicodeScalars))
        if let i = index[h] { values[i] = value; return }
        index[h] = keys.count
        keys.append(.string(key))
        values.append(value)
    }

    func get(_ key: Value) throws -> Value? {
        try index[HashKey(key)].map { values[$0] }
    }

    func get(string key: String) -> Value? { index[.string(Array(key.unicodeScalars))].map { values[$0] } }
}

/// What Python hashes a dict key by (strings by code points: Swift's `String` equality would merge
/// canonically equivalent keys that Python keeps apart).
enum HashKey: Hashable {
    case none
    case int(Int)
    case float(UInt64)
    case string([Unicode.Scalar])
    case tuple([HashKey])
    case object(ObjectIdentifier)

    init(_ v: Value) throws {
        switch v {
        case .none: self = .none
        case .bool(let b): self = .int(b ? 1 : 0)
        case .int(let i): self = .int(i)
        case .float(let d):
            if d == d.rounded(), abs(d) < 9.2e18 { self = .int(Int(d)) } else { self = .float(d.bitPattern) }
        case .string(let s), .markup(let s): self = .string(Array(s.unicodeScalars))
        case .tuple(let items): self = .tuple(try items.map(HashKey.init))
        case .namespace(let n): self = .object(ObjectIdentifier(n))
        case .function(let f): self = .object(ObjectIdentifier(f))
        case .undefined: self = .object(ObjectIdentifier(Undefined.Marker.self))
        default: throw JinjaRuntimeError.type("unhashable type: '\(v.typeName)'")
        }
    }
}

/// jinja2's `Namespace`: attributes set with `{% set ns.attr = value %}`, shared by reference.
final class Namespace {
    var attrs = PyDict()
}

/// A one-shot iterator over values computed when it was made.
final class PyIterator {
    private let items: [Value]
    private var position = 0

    init(_ items: [Value]) { self.items = items }

    func next() -> Value? {
        guard position < items.count else { return nil }
        defer { position += 1 }
        return items[position]
    }

    /// Everything not consumed yet, consuming it.
    func drain() -> [Value] {
        defer { position = items.count }
        return Array(items[position...])
    }
}

/// Arguments of a call: positional, then keyword, in order.
struct Arguments {
    var positional: [Value] = []
    var keywords: [(String, Value)] = []
    var line: Int = 0
}

/// Something a template can call: a global, a bound method, a macro, `caller`, `loop.cycle`.
final class Function {
    let name: String
    let isMacro: Bool
    let body: (JinjaInterpreter, Arguments) throws -> Value

    init(_ name: String, isMacro: Bool = false, _ body: @escaping (JinjaInterpreter, Arguments) throws -> Value) {
        self.name = name
        self.isMacro = isMacro
        self.body = body
    }
}

/// Errors raised while evaluating, before the interpreter adds the template line.
enum JinjaRuntimeError: Error {
    case type(String)
    case value(String)
    case undefined(String)
    case security(String)
    case zeroDivision(String)
    case unsupported(String)
    case raised(String)
    /// jinja2's TemplateRuntimeError (an unknown filter or test reached inside an `if`).
    case template(String)

    var kind: ChatTemplateError.Kind {
        switch self {
        case .unsupported: return .unsupported
        case .raised: return .raised
        default: return .runtime
        }
    }

    var message: String {
        switch self {
        case .type(let m): return "TypeError: \(m)"
        case .value(let m): return "ValueError: \(m)"
        case .undefined(let m): return "UndefinedError: \(m)"
        case .security(let m): return "SecurityError: \(m)"
        case .zeroDivision(let m): return "ZeroDivisionError: \(m)"
        case .template(let m): return "TemplateRuntimeError: \(m)"
        case .unsupported(let m), .raised(let m): return m
        }
    }
}
