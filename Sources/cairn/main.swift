// cairn: the command line. Parses arguments, calls the libraries, prints; nothing else.
import CairnStore
import CairnPipeline
import CairnTrain
import CairnGit
import Foundation

let commands = StoreCommands.specs + ModelCommands.specs + TrainCommands.specs + PipelineCommands.specs + SweepCommands.specs + WatchCommands.specs

func printHelp() { Output.out(Help.overview(commands)) }

func main() -> Int32 {
    Subprocess.dieWithParentIfAsked()
    var args = Array(CommandLine.arguments.dropFirst())
    guard let first = args.first, !["--help", "-h", "help"].contains(first) else {
        printHelp()
        return args.isEmpty ? 2 : 0
    }
    args.removeFirst()
    var name = first
    // Two-word commands: `cairn model init`, `cairn tokenizer train`.
    if let sub = args.first, commands.contains(where: { $0.name == name + " " + sub }) {
        name += " " + sub
        args.removeFirst()
    }
    guard let spec = commands.first(where: { $0.name == name }) else {
        let subs = commands.filter { $0.name.hasPrefix(name + " ") }.map { String($0.name.dropFirst(name.count + 1)) }
        if !subs.isEmpty {
            let hint = args.first.flatMap { Help.nearest($0, in: subs) }.map { " — did you mean `cairn \(name) \($0)`?" } ?? ""
            Output.note("cairn \(name): give one of \(subs.joined(separator: ", "))\(hint) (see `cairn --help`)")
        } else {
            // A mistyped command: the nearest one, as one word or two (`cairn lineag`, `cairn model generat`).
            let typed = ([first] + args.prefix(1)).joined(separator: " ")
            let hint = Help.nearest(typed, in: commands.map(\.name)) ?? Help.nearest(first, in: commands.map(\.name))
            Output.note("cairn: unknown command '\(name)'" + (hint.map { " — did you mean `cairn \($0)`?" } ?? "") + " (see `cairn --help`)")
        }
        return 2
    }
    if (ModelCommands.specs + TrainCommands.specs).contains(where: { $0.name == name }) || name == "check" {
        BLAS.reexecWithPreferredCoreTypeIfNeeded()  // OpenBLAS reads OPENBLAS_CORETYPE only at load time
    }
    do {
        let parsed = try Arguments(args, spec: spec)
        if parsed.has("help") {
            Output.out(Help.command(spec))
            return 0
        }
        if ModelCommands.specs.contains(where: { $0.name == name }) { return try ModelCommands.run(name, parsed) }
        if TrainCommands.specs.contains(where: { $0.name == name }) { return try TrainCommands.run(name, parsed) }
        if PipelineCommands.specs.contains(where: { $0.name == name }) { return try PipelineCommands.run(name, parsed) }
        if WatchCommands.specs.contains(where: { $0.name == name }) { return try WatchCommands.run(name, parsed) }
        if SweepCommands.specs.contains(where: { $0.name == name }) { return try SweepCommands.run(name, parsed) }
        return try StoreCommands.run(name, parsed)
    } catch let e as UsageError {
        Output.note("cairn \(name): \(e.message)\nusage: \(spec.usage)")
        return 2
    } catch {
        Output.note("cairn \(name): \(error)")
        return exitCode(for: error)
    }
}

/// ARCHITECTURE.md's exit codes: 2 for bad usage or bad input (files, configs, data, references),
/// 1 when the operation failed.
func exitCode(for error: Error) -> Int32 {
    switch error {
    case let e as StoreError: return e.exitCode
    case is ModelError, is FormatError, is TokenizerError, is DatasetError, is ConfigError, is GitError, is UnsafePathError: return 2
    default: return 1
    }
}

let status = main()
if ProcessInfo.processInfo.environment["CAIRN_REPORT_PEAK_RSS"] != nil {
    Output.note("peak RSS: \(PeakMemory.residentBytes) bytes")
}
exit(status)
