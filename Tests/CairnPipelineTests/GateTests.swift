import Foundation
import Testing
@testable import CairnPipeline

/// The gate runner on its own: parallel non-blocking checks, blocking ones in order, timeouts,
/// every result collected in the order given.
@Suite("Gates")
struct GateTests {
    func sleeper(_ name: String, _ seconds: Double, blocking: Bool, status: CheckResult.Status = .passed, log: Log? = nil) -> GateTask {
        GateTask(name: name, blocking: blocking, timeoutSeconds: 30, work: .inline {
            log?.append("start \(name)")
            Thread.sleep(forTimeInterval: seconds)
            log?.append("end \(name)")
            return [CheckResult(name: name, status: status, details: "slept \(seconds) s")]
        })
    }

    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var lines: [String] = []
        func append(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    }

    @Test func nonBlockingChecksRunInParallelAndBlockingOnesInOrder() {
        let log = Log()
        let start = Date()
        let report = Gate.run(stage: "sft", tasks: [
            sleeper("format", 0.6, blocking: false, log: log),
            sleeper("loss", 0.2, blocking: true, log: log),
            sleeper("size", 0.6, blocking: false, log: log),
            sleeper("nan", 0.2, blocking: true, status: .failed, log: log),
            sleeper("safety", 0.2, blocking: true, log: log),
        ])
        let took = Date().timeIntervalSince(start)
        // Sequential would be 1.8 s; the two parallel ones overlap the three blocking ones.
        #expect(took < 1.2, "took \(took) s")
        #expect(report.results.map(\.name) == ["format", "loss", "size", "nan", "safety"])
        #expect(!report.passed)
        // A failed blocking check does not stop the ones after it: every result is collected.
        #expect(report.results.map(\.status) == [.passed, .passed, .passed, .failed, .passed])
        #expect(report.results.map(\.blocking) == [false, true, false, true, true])
        let blockingOrder = log.lines.filter { ["loss", "nan", "safety"].contains(String($0.split(separator: " ")[1])) }
        #expect(blockingOrder == ["start loss", "end loss", "start nan", "end nan", "start safety", "end safety"])
        #expect(report.table.contains("FAILED") && report.table.contains("nan"))
    }

    @Test func aCheckProcessPastItsTimeoutIsStoppedAndReported() throws {
        let dir = NSTemporaryDirectory() + "cairn-gate-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A "check" that never answers: sh ignores SIGTERM, so the group gets SIGKILL after the grace.
        let stuck = GateTask(name: "stuck", blocking: false, timeoutSeconds: 0.5,
                             work: .process(arguments: ["/bin/sh", "-c", "trap '' TERM; sleep 30; exit 0", "sh"], result: dir + "/r.json", log: dir + "/log"))
        let quick = GateTask(name: "quick", blocking: true, timeoutSeconds: 5,
                             work: .process(arguments: ["/bin/sh", "-c", "printf '[{\"name\":\"quick\",\"status\":\"passed\",\"blocking\":true,\"details\":\"ok\",\"seconds\":0}]' > \"$2\"", "sh"],
                                            result: dir + "/q.json", log: dir + "/qlog"))
        let start = Date()
        let report = Gate.run(stage: "dpo", tasks: [stuck, quick])
        let took = Date().timeIntervalSince(start)
        #expect(took < 0.5 + 5, "took \(took) s")
        #expect(report.results.map(\.name) == ["stuck", "quick"])
        #expect(report.results[0].status == .timedOut && report.results[1].status == .passed)
    }

    /// Asked to stop, the gate stops its running check processes (SIGTERM) instead of waiting
    /// out their timeouts, and starts none of the blocking checks still to come.
    @Test func aStopRequestStopsRunningChecksAndStartsNoMore() throws {
        let dir = NSTemporaryDirectory() + "cairn-gate-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let long = { (name: String, blocking: Bool) in
            GateTask(name: name, blocking: blocking, timeoutSeconds: 60,
                     work: .process(arguments: ["/bin/sh", "-c", "touch \(dir)/\(name).started; sleep 60", "sh"], result: dir + "/\(name).json", log: dir + "/\(name).log"))
        }
        let start = Date()
        let report = Gate.run(stage: "sft", tasks: [long("format", false), long("first", true), long("second", true)],
                              stopRequested: { Date().timeIntervalSince(start) > 1 })
        let took = Date().timeIntervalSince(start)
        #expect(took < 10, "took \(took) s")
        #expect(report.results.map(\.name) == ["format", "first", "second"])
        #expect(FileManager.default.fileExists(atPath: dir + "/first.started") && !FileManager.default.fileExists(atPath: dir + "/second.started"))
        #expect(report.results[2].details.contains("not run"))
    }
}
