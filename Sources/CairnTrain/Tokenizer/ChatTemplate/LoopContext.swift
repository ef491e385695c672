/// jinja2's `loop` variable. Items come from the iterable through the loop's `if` filter, which is
/// evaluated lazily as jinja2 does: `loop.last`, `loop.nextitem` and `loop.length` look ahead.
final class LoopContext {
    private let items: [Value]
    private let accept: ((Value) throws -> Bool)?
    private var position = 0
    /// Accepted items looked ahead at and not yet iterated.
    private var ahead: [Value] = []
    private var exhausted = false
    private(set) var index0 = -1
    private var current: Value? = nil
    private var previous: Value? = nil
    private var lastChanged: [Value]? = nil
    let depth0: Int
    /// Renders the loop body over other items (`loop(children)` in a recursive loop).
    var recurse: ((JinjaInterpreter, Value) throws -> Value)? = nil

    init(items: [Value], accept: ((Value) throws -> Bool)?, depth0: Int = 0) {
        self.items = items
        self.accept = accept
        self.depth0 = depth0
    }

    /// The next accepted item of the source, not counting `ahead`.
    private func pull() throws -> Value? {
        while position < items.count {
            let v = items[position]
            position += 1
            if try accept?(v) ?? true { return v }
        }
        exhausted = true
        return nil
    }

    /// Moves to the next item and returns it, or nil at the end.
    func advance() throws -> Value? {
        let next: Value?
        if !ahead.isEmpty { next = ahead.removeFirst() } else { next = try pull() }
        guard let next else { return nil }
        index0 += 1
        previous = current
        current = next
        return next
    }

    private func peek() throws -> Value? {
        if let first = ahead.first { return first }
        guard let v = try pull() else { return nil }
        ahead.append(v)
        return v
    }

    func length() throws -> Int {
        while !exhausted, let v = try pull() { ahead.append(v) }
        return index0 + 1 + ahead.count
    }

    func attribute(_ name: String) throws -> Value? {
        switch name {
        case "index": return .int(index0 + 1)
        case "index0": return .int(index0)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(try peek() == nil)
        case "length": return .int(try length())
        case "revindex": return .int(try length() - index0)
        case "revindex0": return .int(try length() - index0 - 1)
        case "depth": return .int(depth0 + 1)
        case "depth0": return .int(depth0)
        case "previtem": return previous ?? .undefined(Undefined(message: "there is no previous item"))
        case "nextitem": return try peek() ?? .undefined(Undefined(message: "there is no next item"))
        case "cycle":
            return .function(Function("cycle") { _, args in
                guard !args.positional.isEmpty else { throw JinjaRuntimeError.type("no items for cycling given") }
                return args.positional[self.index0 % args.positional.count]
            })
        case "changed":
            return .function(Function("changed") { _, args in
                if let last = self.lastChanged, last.count == args.positional.count,
                   zip(last, args.positional).allSatisfy({ PyCompare.equal($0, $1) }) { return .bool(false) }
                self.lastChanged = args.positional
                return .bool(true)
            })
        default: return nil
        }
    }
}
