// cairn: the command line. Parses arguments, calls the libraries, prints; nothing else.
import CairnStore
import Foundation

let commands = StoreCommands.specs

func printHelp() {
    Output.out("usage: cairn COMMAND [ARGS] [--store DIR]\n\nCommands:")
    for c in commands { Output.out("  " + c.name.padding(toLength: 12, withPad: " ", startingAt: 0) + c.summary) }
    Output.out("\nThe store is --store DIR, else $CAIRN_STORE, else the nearest ./store. `cairn COMMAND --help` for details.")
}

func main() -> Int32 {
    var args = Array(CommandLine.arguments.dropFirst())
    guard let name = args.first, !["--help", "-h", "help"].contains(name) else {
        printHelp()
        return args.isEmpty ? 2 : 0
    }
    args.removeFirst()
    guard let spec = commands.first(where: { $0.name == name }) else {
        Output.note("cairn: unknown command '\(name)' (see `cairn --help`)")
        return 2
    }
    do {
        let parsed = try Arguments(args, spec: spec)
        if parsed.has("help") {
            Output.out("usage: \(spec.usage)\n\n\(spec.summary)")
            return 0
        }
        return try StoreCommands.run(name, parsed)
    } catch let e as UsageError {
        Output.note("cairn \(name): \(e.message)\nusage: \(spec.usage)")
        return 2
    } catch let e as StoreError {
        Output.note("cairn \(name): \(e.message)")
        return e.exitCode
    } catch {
        Output.note("cairn \(name): \(error)")
        return 1
    }
}

exit(main())
