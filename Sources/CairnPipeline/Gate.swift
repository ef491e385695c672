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

/// A gate's verdict: every check's result, collected even after a failure. Stored with the
/// stage execution (and as gate.json) in one shape, written by `encode` and read by `init(from:)`
/// alone: `{"stage", "passed", "seconds", "checks": [{"name", "status", "blocking", "details",
/// "seconds", "value"?}], "key"?}`.
public struct GateReport: Codable, Sendable {
    public var stage: String
    public var results: [CheckResult]
    public var passed: Bool { results.allSatisfy(\.passed) }
    public var seconds: Double
    /// The gate's own cache key (the stage's key and the validation settings): a cached stage
    /// reuses the report when the gate is the same.
    public var key: String?

    public init(stage: String, results: [CheckResult], seconds: Double, key: String? = nil) {
        self.stage = stage; self.results = results; self.seconds = seconds; self.key = key
    }

    enum CodingKeys: String, CodingKey { case stage, passed, seconds, checks, key }
    enum CheckKeys: String, CodingKey { case name, status, blocking, details, seconds, value, baseline, samples }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(stage, forKey: .stage)
        try c.encode(passed, forKey: .passed)
        try c.encode(seconds, forKey: .seconds)
        try c.encodeIfPresent(key, forKey: .key)
        var checks = c.nestedUnkeyedContainer(forKey: .checks)
        for r in results {
            var o = checks.nestedContainer(keyedBy: CheckKeys.self)
            try o.encode(r.name, forKey: .name)
            try o.encode(r.status, forKey: .status)
            try o.encode(r.blocking, forKey: .blocking)
            try o.encode(r.details, forKey: .details)
            try o.encode(r.seconds, forKey: .seconds)
            if let v = r.value, v.isFinite { try o.encode(v, forKey: .value) }
            if let v = r.baseline, v.isFinite { try o.encode(v, forKey: .baseline) }
            try o.encodeIfPresent(r.samples, forKey: .samples)
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stage = try c.decode(String.self, forKey: .stage)
        seconds = try c.decodeIfPresent(Double.self, forKey: .seconds) ?? 0
        key = try c.decodeIfPresent(String.self, forKey: .key)
        var checks = try c.nestedUnkeyedContainer(forKey: .checks)
        results = []
        while !checks.isAtEnd {
            let o = try checks.nestedContainer(keyedBy: CheckKeys.self)
            results.append(CheckResult(name: try o.decode(String.self, forKey: .name),
                                       status: (try? o.decode(CheckResult.Status.self, forKey: .status)) ?? .error,
                                       blocking: try o.decodeIfPresent(Bool.self, forKey: .blocking) ?? false,
                                       details: try o.decodeIfPresent(String.self, forKey: .details) ?? "",
                                       value: try o.decodeIfPresent(Double.self, forKey: .value),
                                       seconds: try o.decodeIfPresent(Double.self, forKey: .seconds) ?? 0,
                                       baseline: try o.decodeIfPresent(Double.self, forKey: .baseline),
                                       samples: try o.decodeIfPresent([ReplySample].self, forKey: .samples)))
        }
    }

    /// The report as stored in the index.
    public var json: JSONValue {
        (try? JSONEncoder().encode(self)).flatMap { JSONValue.parse(String(decoding: $0, as: UTF8.self)) } ?? .null
    }

    /// A stored report (a stage execution's gate_report), or nil when it is not one.
    public init?(json: JSONValue?) {
        guard let j = json, let r = try? JSONDecoder().decode(GateReport.self, from: Data(j.description.utf8)) else { return nil }
        self = r
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
    /// Check processes run through `executor` (as cluster jobs named `jobPrefix` + the check's
    /// name, with `environment`).
    /// `stopRequested` saying yes stops the check processes (SIGTERM; a pending check job is
    /// cancelled); their results then mean nothing, and the caller drops the report.
    public static func run(stage: String, tasks: [GateTask], executor: StageExecutor = LocalExecutor(), environment: [String: String] = [:],
                           jobPrefix: String = "gate-", stopRequested: @escaping () -> Bool = { false }) -> GateReport {
        let execute = { (t: GateTask) in Self.execute(t, executor: executor, environment: environment, jobPrefix: jobPrefix, stopRequested: stopRequested) }
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

    static func execute(_ t: GateTask, executor: StageExecutor, environment: [String: String], jobPrefix: String,
                        stopRequested: @escaping () -> Bool = { false }) -> [CheckResult] {
        let start = Date()
        // Asked to stop before this check began (a blocking one after another): not started.
        if stopRequested() { return [CheckResult(name: t.name, status: .error, details: "not run: the run was asked to stop")] }
        var out: [CheckResult]
        switch t.work {
        case .inline(let f):
            out = f()
        case .command(let script, let env, let log):
            do {
                var e = ProcessInfo.processInfo.environment
                for (k, v) in env { e[k] = v }
                let p = try Subprocess(["/bin/sh", "-c", script], environment: e, logPath: log, echo: false)
                let o = p.wait(deadline: start.addingTimeInterval(t.timeoutSeconds), stopRequested: stopRequested)
                let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").last.map(String.init) ?? ""
                out = [CheckResult(name: t.name, status: o.timedOut ? .timedOut : o.succeeded ? .passed : .failed,
                                   details: "`\(script)`: \(o.description)" + (tail.isEmpty ? "" : " — \(tail)"))]
            } catch {
                out = [CheckResult(name: t.name, status: .error, details: "\(error)")]
            }
        case .process(let args, let resultFile, let log):
            try? FileManager.default.removeItem(atPath: resultFile)
            var job = StageJob(name: jobPrefix + t.name, kind: .check, commands: [args + ["--result", resultFile]],
                               directory: resultFile + ".job", log: log, timeLimitSeconds: t.timeoutSeconds, storeRoot: "")
            job.environment = environment
            var control = JobControl()
            control.stopRequested = stopRequested
            let o = executor.run(job, control: control)
            if o.timedOut {
                out = [CheckResult(name: t.name, status: .timedOut, details: String(format: "stopped after its timeout of %g s", t.timeoutSeconds))]
            } else if let d = FileManager.default.contents(atPath: resultFile), let r = try? JSONDecoder().decode([CheckResult].self, from: d) {
                out = r
            } else {
                let tail = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").suffix(2).joined(separator: " | ") ?? ""
                out = [CheckResult(name: t.name, status: .error, details: "check process ended with \(o.description): \(tail)")]
            }
        }
        let seconds = Date().timeIntervalSince(start)
        return out.map { var r = $0; r.blocking = t.blocking; if r.seconds == 0 { r.seconds = seconds / Double(out.count) }; return r }
    }
}
