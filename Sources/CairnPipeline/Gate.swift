import CairnStore
import Foundation

/// One check of a gate: run in this process (cheap file checks) or as a `cairn check` child
/// process (anything that loads a model), with a timeout.
public struct GateTask: @unchecked Sendable {
    public enum Work {
        case inline(() -> [CheckResult])
        /// Arguments of a `cairn check` process; it writes its results as JSON to `result`.
        case process(arguments: [String], result: String, log: String)
        /// A shell command allowed by --allow-commands: exit 0 passes.
        case command(String, environment: [String: String], log: String)
    }
    public var name: String
    public var blocking: Bool
    public var timeoutSeconds: Double
    public var work: Work

    public init(name: String, blocking: Bool, timeoutSeconds: Double, work: Work) {
        self.name = name; self.blocking = blocking; self.timeoutSeconds = timeoutSeconds; self.work = work
    }
}

/// A gate's verdict: every check's result, collected even after a failure.
public struct GateReport: Sendable {
    public var stage: String
    public var results: [CheckResult]
    public var passed: Bool { results.allSatisfy(\.passed) }
    public var seconds: Double

    /// The report as stored: stage, verdict, time and every check.
    public var json: JSONValue {
        .object(["stage": .string(stage), "passed": .bool(passed), "seconds": .number(seconds),
                 "checks": .array(results.map { r in
                     var o: [String: JSONValue] = ["name": .string(r.name), "status": .string(r.status.rawValue), "blocking": .bool(r.blocking),
                                                   "details": .string(r.details), "seconds": .number(r.seconds)]
                     if let v = r.value, v.isFinite { o["value"] = .number(v) }
                     return .object(o)
                 })])
    }

    /// The gate table for the terminal.
    public var table: String {
        let w = max(20, results.map(\.name.count).max() ?? 0)
        var lines = ["gate after \(stage): \(passed ? "PASSED" : "FAILED")"]
        for r in results {
            let mark = r.status == .passed ? "pass" : r.status == .skipped ? "skip" : r.status == .timedOut ? "TIMEOUT" : r.status == .error ? "ERROR" : "FAIL"
            lines.append("  " + r.name.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + mark.padding(toLength: 7, withPad: " ", startingAt: 0)
                         + (r.blocking ? "blocking " : "parallel ") + String(format: "%6.2fs  ", r.seconds) + r.details)
        }
        return lines.joined(separator: "\n")
    }
}

/// Runs a gate: non-blocking checks start at once, in parallel, each on its own thread;
/// blocking checks run one after another on the calling thread. Each has its deadline; a
/// check process past it is stopped and reported as timed out. Results come back in the
/// order the tasks were given.
public enum Gate {
    public static func run(stage: String, tasks: [GateTask]) -> GateReport {
        let start = Date()
        final class Slots: @unchecked Sendable { var results: [[CheckResult]?]; init(_ n: Int) { results = Array(repeating: nil, count: n) } }
        let slots = Slots(tasks.count)
        let lock = NSLock()
        let group = DispatchGroup()
        for (i, t) in tasks.enumerated() where !t.blocking {
            group.enter()
            Thread {
                let r = execute(t)
                lock.lock(); slots.results[i] = r; lock.unlock()
                group.leave()
            }.start()
        }
        for (i, t) in tasks.enumerated() where t.blocking {
            let r = execute(t)
            lock.lock(); slots.results[i] = r; lock.unlock()
        }
        group.wait()
        return GateReport(stage: stage, results: slots.results.flatMap { $0 ?? [] }, seconds: Date().timeIntervalSince(start))
    }

    static func execute(_ t: GateTask) -> [CheckResult] {
        let start = Date()
        var out: [CheckResult]
        switch t.work {
        case .inline(let f):
            out = f()
        case .command(let script, let env, let log):
            do {
                var e = ProcessInfo.processInfo.environment
                for (k, v) in env { e[k] = v }
                let p = try Subprocess(["/bin/sh", "-c", script], environment: e, logPath: log, echo: false)
                let o = p.wait(deadline: start.addingTimeInterval(t.timeoutSeconds))
                let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").last.map(String.init) ?? ""
                out = [CheckResult(name: t.name, status: o.timedOut ? .timedOut : o.succeeded ? .passed : .failed,
                                   details: "`\(script)`: \(o.description)" + (tail.isEmpty ? "" : " — \(tail)"))]
            } catch {
                out = [CheckResult(name: t.name, status: .error, details: "\(error)")]
            }
        case .process(let args, let resultFile, let log):
            try? FileManager.default.removeItem(atPath: resultFile)
            do {
                let p = try Subprocess(args + ["--result", resultFile], logPath: log, echo: false)
                let o = p.wait(deadline: start.addingTimeInterval(t.timeoutSeconds))
                if o.timedOut {
                    out = [CheckResult(name: t.name, status: .timedOut, details: String(format: "stopped after its timeout of %g s", t.timeoutSeconds))]
                } else if let d = FileManager.default.contents(atPath: resultFile), let r = try? JSONDecoder().decode([CheckResult].self, from: d) {
                    out = r
                } else {
                    let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(2).joined(separator: " | ") ?? ""
                    out = [CheckResult(name: t.name, status: .error, details: "check process ended with \(o.description): \(tail)")]
                }
            } catch {
                out = [CheckResult(name: t.name, status: .error, details: "\(error)")]
            }
        }
        let seconds = Date().timeIntervalSince(start)
        return out.map { var r = $0; r.blocking = t.blocking; if r.seconds == 0 { r.seconds = seconds / Double(out.count) }; return r }
    }
}
