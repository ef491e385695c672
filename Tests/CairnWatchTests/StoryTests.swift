import Foundation
import Testing
import CairnTestSupport

/// The product's story end to end on the tiny model (scripts/demo-gitops.sh): a real git
/// repository with Cairn's hooks and a watcher; a commit that trains and promotes; a harmful
/// commit rejected by a named gate with the alias left where it was; a DPO-only commit whose SFT
/// and merge come from the stage cache; a rollback; lineage back to the commit.
@Suite("The GitOps story")
struct StoryTests {
    @Test func aCommitTrainsAGateRejectsACacheServesAndProductionRollsBack() throws {
        let dir = NSTemporaryDirectory() + "cairn-story-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let started = Date()
        let r = try shell(TestProcess.repositoryRoot + "/scripts/demo-gitops.sh", [],
                          env: ["DEMO_DIR": dir, "CAIRN": cairnBinary(), "MODEL": "tiny"])
        #expect(r.status == 0, "\(r.out)\n\(r.err.suffix(3000))")
        #expect(Date().timeIntervalSince(started) < 180)
        let head = try shell("/usr/bin/git", ["-C", dir + "/task-api-repo", "log", "--format=%H %s"]).out.split(separator: "\n")
        #expect(head.count == 3)
        let first = String(head.last!.prefix(10))
        // Lineage of production goes back to the first commit.
        #expect(r.out.contains("task-api-v1.0/dpo @ \(first)"))
        #expect(r.out.contains("commit \(first) on main of \(dir)/task-api-repo"), "\(r.out.prefix(4000))")
        #expect(r.out.contains("by Ada Lovelace <ada@example.com>") && r.out.contains("\"task-api v1: the pipeline on task-api-base@latest\""))
        // The harmful commit: rejected by the gate after SFT, naming the checks that failed.
        #expect(r.out.contains("gate: FAILED") && r.out.contains("output_format_valid    failed"))
        #expect(r.err.contains("task-api@production did not move"))
        // The good second version: SFT and merge from the cache, DPO run again.
        #expect(r.out.contains("sft (execution 6, attempt 1): cached") && r.out.contains("merge (execution 7, attempt 1): cached"))
        // Rollback, and the history with every move.
        let history = r.out.split(separator: "\n").filter { $0.contains("task-api@production") || $0.contains("rollback") }
        #expect(r.out.contains("(rollback, version 3)"), "\(history)")
        #expect(FileManager.default.fileExists(atPath: dir + "/reports/run-4.html"))
        // Where training started and where it ended, from the gates' own measurements.
        #expect(r.err.contains("valid JSON replies on 24 held-out prompts: base model 0% -> after SFT 100%"), "\(r.err.suffix(2000))")
        // The watcher kept no working files of the runs that reached a verdict (the store has them).
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: dir + "/store-work/checkouts").filter { $0.hasSuffix("/run-3") || $0.hasSuffix("/run-4") }
        #expect(leftovers.isEmpty, "\(leftovers)")

        // Again, on the kept store: every stage and gate from the cache, the story told again.
        let again = Date()
        let r2 = try shell(TestProcess.repositoryRoot + "/scripts/demo-gitops.sh", [],
                           env: ["DEMO_DIR": dir, "CAIRN": cairnBinary(), "MODEL": "tiny"])
        #expect(r2.status == 0, "\(r2.out)\n\(r2.err.suffix(3000))")
        #expect(Date().timeIntervalSince(again) < 60)
        let trained = r2.out.split(separator: "\n").filter { ($0.hasPrefix("sft (") || $0.hasPrefix("dpo (")) && $0.contains("): succeeded") }
        #expect(trained.isEmpty, "\(trained)")
        // The last demo rolled production back from the second version: no pipeline promotes it again, a person does.
        #expect(r2.err.contains("Cairn never promotes a rolled-back model by itself"))
        #expect(r2.out.contains("(rollback, version 5)"))
        // The kept store holds the same artifacts made again by cached executions: the lineage
        // still shows each input of an artifact once.
        let out2 = r2.out.split(separator: "\n", omittingEmptySubsequences: false)
        let top = out2.firstIndex { $0.hasPrefix("aligned-model") } ?? out2.endIndex
        let rows = out2[top...].prefix { !$0.isEmpty }.filter { $0.contains("(as ") }
        #expect(!rows.isEmpty && Set(rows).count == rows.count, "\(rows.joined(separator: "\n"))")
    }
}
