import CairnStore

/// A usage error: exit code 2, with the command's usage line.
struct UsageError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// What a command accepts. Options take a value (`--kind K` or `--kind=K`); flags do not.
struct CommandSpec {
    let name: String
    let usage: String
    let summary: String
    var flags: Set<String> = []
    var options: Set<String> = []
    var positionals: ClosedRange<Int> = 0...0
}

/// Parsed arguments of one command.
struct Arguments {
    let spec: CommandSpec
    var positionals: [String] = []
    var options: [String: [String]] = [:]
    var flags: Set<String> = []

    /// `--store` is accepted everywhere; `--help` is handled by the caller.
    init(_ args: [String], spec: CommandSpec) throws {
        self.spec = spec
        var i = 0
        var onlyPositionals = false
        while i < args.count {
            let a = args[i]
            i += 1
            if onlyPositionals || !a.hasPrefix("--") || a == "-" {
                if a.hasPrefix("-") && a.count > 1 && !onlyPositionals && a != "-" {
                    throw UsageError(message: "unknown option '\(a)'")
                }
                positionals.append(a)
                continue
            }
            if a == "--" { onlyPositionals = true; continue }
            var name = String(a.dropFirst(2))
            var value: String?
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            if spec.flags.contains(name) || name == "help" {
                if value != nil { throw UsageError(message: "--\(name) takes no value") }
                flags.insert(name)
            } else if spec.options.contains(name) || name == "store" {
                if value == nil {
                    guard i < args.count else { throw UsageError(message: "--\(name) needs a value") }
                    value = args[i]; i += 1
                }
                options[name, default: []].append(value!)
            } else {
                let known = spec.flags.union(spec.options).union(["store", "help"]).sorted()
                throw UsageError(message: "unknown option '--\(name)'" + (Help.nearest(name, in: known).map { " — did you mean --\($0)?" } ?? ""))
            }
        }
        if flags.contains("help") { return }
        if positionals.count < spec.positionals.lowerBound {
            throw UsageError(message: "missing argument")
        }
        if positionals.count > spec.positionals.upperBound {
            throw UsageError(message: "unexpected argument '\(positionals[spec.positionals.upperBound])'")
        }
    }

    func option(_ name: String) throws -> String? {
        guard let v = options[name] else { return nil }
        if v.count > 1 { throw UsageError(message: "--\(name) given more than once") }
        return v[0]
    }

    func required(_ name: String) throws -> String {
        guard let v = try option(name) else { throw UsageError(message: "missing --\(name)") }
        return v
    }

    func all(_ name: String) -> [String] { options[name] ?? [] }
    func has(_ flag: String) -> Bool { flags.contains(flag) }

    func int(_ name: String, default d: Int) throws -> Int {
        guard let s = try option(name) else { return d }
        guard let v = Int(s), v >= 0 else { throw UsageError(message: "--\(name) wants a whole number, not '\(s)'") }
        return v
    }

    /// The store this command works on: --store, $CAIRN_STORE or the nearest store/.
    func storeRoot() throws -> String { ArtifactStore.locate(explicit: try option("store")) }
    func openStore() throws -> ArtifactStore { try ArtifactStore(root: try storeRoot()) }
}
