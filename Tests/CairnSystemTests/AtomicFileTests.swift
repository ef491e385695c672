import CairnSystem
import Foundation
import Testing

/// A fresh directory under the system's temp directory, removed at the end of the test.
final class Scratch {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "cairn-system-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func names() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
    func read(_ name: String) -> String? { try? String(contentsOfFile: path + "/" + name, encoding: .utf8) }
}

@Suite struct AtomicFileTests {
    @Test func writesAndReplacesWholeFilesLeavingNoTemp() throws {
        let d = Scratch()
        try AtomicFile.write("first", to: d.path + "/config.json")
        #expect(d.read("config.json") == "first")
        try AtomicFile.write(Data("second, longer".utf8), to: d.path + "/config.json")
        try AtomicFile.write(Array("bytes".utf8), to: d.path + "/other.bin")
        #expect(d.read("config.json") == "second, longer")
        #expect(d.read("other.bin") == "bytes")
        #expect(d.names() == ["config.json", "other.bin"])
    }

    @Test func leavesTheDestinationUntouchedUntilCommitAndRemovesTheTempWhenAbandoned() throws {
        let d = Scratch()
        try AtomicFile.write("old", to: d.path + "/metrics.json")
        do {
            let w = try AtomicFile(path: d.path + "/metrics.json")
            try w.write(Array("new".utf8))
            #expect(d.read("metrics.json") == "old")
            #expect(d.names().count == 2)  // the temp file beside it
        }  // never committed
        #expect(d.read("metrics.json") == "old")
        #expect(d.names() == ["metrics.json"])
    }

    @Test func failsWithTheCallAndPathWhenTheDirectoryIsMissing() throws {
        let d = Scratch()
        #expect {
            try AtomicFile.write("x", to: d.path + "/missing/config.json")
        } throws: { e in
            guard let e = e as? SystemError else { return false }
            return e.function == "open" && e.path.hasPrefix(d.path + "/missing/.config.json.tmp-") && e.isNotFound
        }
        #expect(d.names().isEmpty)
    }

    @Test func replacesASymlinkAtTheDestinationInsteadOfWritingThroughIt() throws {
        let d = Scratch()
        try AtomicFile.write("target", to: d.path + "/target")
        try FileManager.default.createSymbolicLink(atPath: d.path + "/link", withDestinationPath: d.path + "/target")
        try AtomicFile.write("written", to: d.path + "/link")
        #expect(d.read("target") == "target")
        #expect(d.read("link") == "written")
        #expect(try FileSystem.lstatInfo(d.path + "/link")?.kind == .file)
    }
}
