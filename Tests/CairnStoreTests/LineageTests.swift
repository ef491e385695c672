import Foundation
import Testing
@testable import CairnStore

/// The reference pipeline recorded through the run API: base + data → sft → adapter;
/// base + adapter → merge → merged; merged + preferences → dpo → aligned.
struct PipelineFixture {
    let t = TempDir()
    let store: ArtifactStore
    var ids: [String: ArtifactID] = [:]
    var run: Int64 = 0

    init() throws {
        store = try t.makeStore()
        func add(_ name: String, _ kind: ArtifactKind) throws -> ArtifactID {
            try store.add(path: t.write("in/\(name)", "content of \(name)"), kind: kind).artifact.id
        }
        ids["base"] = try add("base", .baseModel)
        ids["sft.jsonl"] = try add("sft.jsonl", .dataset)
        ids["pref.jsonl"] = try add("pref.jsonl", .dataset)
        ids["unrelated"] = try add("unrelated", .dataset)
        run = try store.beginRun(RunInfo(pipeline: "task-api", repo: "/repos/train", branch: "main", commit: "4f2e1a9c0ffee"))
        let sft = try store.beginStage(run: run, stage: "sft")
        try store.record(execution: sft, .used, ids["base"]!, role: "base_model")
        try store.record(execution: sft, .used, ids["sft.jsonl"]!, role: "data")
        ids["adapter"] = try store.addGenerated(path: t.write("out/adapter", "adapter bytes"), kind: .adapter, execution: sft).artifact.id
        try store.finishStage(execution: sft, status: .succeeded, metrics: .object(["final_loss": .number(0.82)]))
        let merge = try store.beginStage(run: run, stage: "merge")
        try store.record(execution: merge, .used, ids["base"]!, role: "base_model")
        try store.record(execution: merge, .used, ids["adapter"]!, role: "adapter")
        ids["merged"] = try store.addGenerated(path: t.write("out/merged", "merged bytes"), kind: .mergedModel, execution: merge).artifact.id
        try store.finishStage(execution: merge, status: .succeeded)
        let dpo = try store.beginStage(run: run, stage: "dpo")
        try store.record(execution: dpo, .used, ids["merged"]!, role: "model")
        try store.record(execution: dpo, .used, ids["pref.jsonl"]!, role: "data")
        ids["aligned"] = try store.addGenerated(path: t.write("out/aligned", "aligned bytes"), kind: .alignedModel, execution: dpo).artifact.id
        try store.finishStage(execution: dpo, status: .succeeded, metrics: .object(["final_loss": .number(0.34)]),
                              gateReport: .object(["passed": .bool(true)]))
        try store.finishRun(run, status: .succeeded)
    }
}

@Suite("Lineage and runs")
struct LineageTests {
    @Test func ancestorsOfTheFinalModelShowTheWholeChain() throws {
        let f = try PipelineFixture()
        let g = try f.store.ancestors(of: f.ids["aligned"]!)
        let names = Set(g.nodes.map(\.name))
        #expect(names == ["aligned", "merged", "adapter", "base", "sft.jsonl", "pref.jsonl"])
        #expect(g.edges.count == 6)
        #expect(g.edges.contains { $0.input == f.ids["pref.jsonl"]! && $0.output == f.ids["aligned"]! && $0.role == "data" })
        let aligned = g.nodes.first { $0.id == f.ids["aligned"]! }!
        #expect(aligned.producer?.stage == "dpo")
        #expect(aligned.producer?.commit == "4f2e1a9c0ffee")
        #expect(g.nodes.first { $0.name == "base" }?.producer == nil)

        let tree = g.renderTree()
        let lines = tree.split(separator: "\n").map(String.init)
        #expect(lines[0].hasPrefix("aligned-model  \(f.ids["aligned"]!.short)  aligned  ← run \(f.run) task-api/dpo @ 4f2e1a9c0f"))
        #expect(lines.contains { $0.contains("├─ dataset  \(f.ids["pref.jsonl"]!.short)  pref.jsonl  (as data)") })
        #expect(lines.contains { $0.contains("└─ merged-model") && $0.contains("(as model)") })
        // base is reached twice (by sft and by merge): shown in full once.
        #expect(lines.filter { $0.contains("base-model") }.count == 2)
        #expect(!tree.contains("unrelated"))

        let dot = g.renderDot()
        #expect(dot.hasPrefix("digraph lineage {"))
        #expect(dot.contains("\"\(f.ids["adapter"]!.hex.prefix(16))\" -> \"\(f.ids["merged"]!.hex.prefix(16))\" [label=\"adapter\"]"))
    }

    @Test func descendantsOfADatasetAreEverythingTrainedFromIt() throws {
        let f = try PipelineFixture()
        let g = try f.store.descendants(of: f.ids["sft.jsonl"]!)
        #expect(Set(g.nodes.map(\.name)) == ["sft.jsonl", "adapter", "merged", "aligned"])
        let p = try f.store.descendants(of: f.ids["pref.jsonl"]!)
        #expect(Set(p.nodes.map(\.name)) == ["pref.jsonl", "aligned"])
        #expect(try f.store.descendants(of: f.ids["unrelated"]!).nodes.count == 1)
        #expect(try f.store.descendantCount(of: f.ids["sft.jsonl"]!) == 3)
        #expect(try f.store.descendantCount(of: f.ids["aligned"]!) == 0)
        let tree = g.renderTree()
        #expect(tree.contains("└─ adapter  \(f.ids["adapter"]!.short)  adapter"))
    }

    @Test func runsAndStagesAreRecorded() throws {
        let f = try PipelineFixture()
        let run = try #require(try f.store.run(f.run))
        #expect(run.status == .succeeded)
        #expect(run.commit == "4f2e1a9c0ffee")
        #expect(run.finishedAt != nil)
        let stages = try f.store.stages(run: f.run)
        #expect(stages.map(\.stage) == ["sft", "merge", "dpo"])
        #expect(stages[0].metrics["final_loss"]?.numberValue == 0.82)
        #expect(stages[2].gateReport?["passed"] == .bool(true))
        #expect(try f.store.edges(execution: stages[1].id, .used).map(\.role) == ["adapter", "base_model"])
        #expect(throws: StoreError.self) { try f.store.beginStage(run: 999, stage: "x") }
        #expect(throws: StoreError.self) { try f.store.finishRun(999, status: .failed) }
    }

    @Test func lineageByHandThroughTheCLI() throws {
        let t = TempDir()
        let store = t.sub("store")
        #expect(try cairn(store, "init").status == 0)
        let data = try cairn(store, "add", t.write("d.jsonl", "{}"), "--kind", "dataset").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let base = try cairn(store, "add", t.write("base.bin", "weights"), "--kind", "base-model").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let r = try cairn(store, "add", t.write("adapter.bin", "lora"), "--kind", "adapter", "--used", "data=\(data)", "--used", "base_model=\(base.prefix(15))")
        #expect(r.status == 0, "\(r.stderr)")
        let adapter = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let tree = try cairn(store, "lineage", adapter)
        #expect(tree.status == 0)
        #expect(tree.stdout.contains("added by hand"))
        #expect(tree.stdout.contains("d.jsonl  (as data)") && tree.stdout.contains("base.bin  (as base_model)"))
        let json = try cairn(store, "lineage", adapter, "--json")
        let graph = try JSONDecoder().decode(LineageGraph.self, from: Data(json.stdout.utf8))
        #expect(graph.nodes.count == 3 && graph.edges.count == 2)
        let dot = try cairn(store, "descendants", data, "--dot")
        #expect(dot.stdout.contains("->"))
        let desc = try cairn(store, "descendants", data, "--json")
        #expect(try JSONDecoder().decode(LineageGraph.self, from: Data(desc.stdout.utf8)).nodes.map(\.name).contains("adapter.bin"))
        #expect(try cairn(store, "add", t.write("x", "x"), "--kind", "adapter", "--used", "data").status == 2)
        #expect(try cairn(store, "add", t.write("y", "y"), "--kind", "adapter", "--used", "data=ffffffffff").status == 2)
    }

    @Test func queueIsUniquePerPipelineAndCommit() throws {
        let t = TempDir()
        let store = try t.makeStore()
        let a = try store.enqueue(pipeline: "task-api", commit: "abc", branch: "main")
        let again = try store.enqueue(pipeline: "task-api", commit: "abc", branch: "main")
        let other = try store.enqueue(pipeline: "base", commit: "abc")
        #expect(a.inserted && !again.inserted && other.inserted)
        #expect(again.entry.id == a.entry.id)
        try store.updateQueue(a.entry.id, state: "running")
        #expect(try store.queue(state: "pending").map(\.pipeline) == ["base"])
        // It survives reopening (another process, a restart).
        let reopened = try ArtifactStore(root: store.root)
        #expect(try reopened.queue().count == 2)
    }
}
