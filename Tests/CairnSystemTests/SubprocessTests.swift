import CairnSystem
import Foundation
import Testing

@Suite struct SubprocessTests {
    @Test func copiesOutputToTheLogAndReportsTheExitStatus() throws {
        let d = Scratch()
        let log = d.path + "/attempt-1.log"
        let p = try Subprocess(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], logPath: log, echo: false)
        let o = p.wait()
        #expect(o.exitCode == 3 && !o.succeeded && o.description == "exit status 3")
        #expect(d.read("attempt-1.log") == "out\nerr\n")
    }

    @Test func stopsTheWholeGroupAtTheDeadline() throws {
        let p = try Subprocess(["/bin/sh", "-c", "sleep 30 & sleep 30"], logPath: nil, echo: false)
        let o = p.wait(deadline: Date().addingTimeInterval(0.2), grace: 0.2)
        #expect(o.timedOut && o.seconds < 10)
    }

    @Test func aMissingExecutableCannotStart() throws {
        #expect {
            _ = try Subprocess(["/nonexistent/cairn-tool"], logPath: nil, echo: false)
        } throws: { e in
            "\(e)" == "cannot start /nonexistent/cairn-tool: No such file or directory"
        }
    }

    @Test func aDetachedProcessAppendsToItsLog() throws {
        let d = Scratch()
        let log = d.path + "/worker.log"
        try Subprocess.startDetached(["/bin/sh", "-c", "echo started"], environment: [:], logPath: log)
        let deadline = Date().addingTimeInterval(10)
        while d.read("worker.log") != "started\n" && Date() < deadline { usleep(20_000) }
        #expect(d.read("worker.log") == "started\n")
    }
}
