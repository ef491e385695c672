import CairnSystem
import Foundation
import Testing

@Suite struct SystemErrorTests {
    @Test func theGateNamesTheFunctionThePathAndErrno() throws {
        let d = Scratch()
        #expect {
            _ = try FileDescriptor.openForReading(d.path + "/absent")
        } throws: { e in
            guard let e = e as? SystemError else { return false }
            return e.function == "open" && e.path == d.path + "/absent" && e.errno == ENOENT
                && "\(e)" == "open '\(d.path)/absent': No such file or directory"
        }
        #expect(throws: SystemError.self) { try systemCall("close", "fd 999999") { close(999_999) } }
    }

    @Test func descriptorsReadWriteTruncateAndReadAtOffsets() throws {
        let d = Scratch()
        let f = try FileDescriptor.openAppending(d.path + "/journal", create: true)
        try f.writeAll(Array("hello world".utf8))
        try f.dataSync()
        #expect(try f.read(at: 6, count: 100) == Array("world".utf8))
        try f.truncate(to: 5)
        #expect(try f.info().size == 5)
        let r = try FileDescriptor.openForReading(d.path + "/journal")
        var buf = [UInt8](repeating: 0, count: 16)
        #expect(try buf.withUnsafeMutableBytes { try r.readFully(into: $0) } == 5)
        #expect(Array(buf[0..<5]) == Array("hello".utf8))
    }

    @Test func processesAreAliveUntilTheyAreReaped() throws {
        #expect(Processes.isAlive(Processes.currentID))
        let p = try Subprocess(["/bin/sh", "-c", "exit 0"], logPath: nil, echo: false)
        _ = p.wait()
        #expect(!Processes.isAlive(p.pid))
    }
}
