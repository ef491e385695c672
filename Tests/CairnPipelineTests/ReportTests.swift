import Foundation
import Testing
@testable import CairnPipeline
@testable import CairnStore

/// `cairn report`: the lineage graph, the loss charts, the sample replies, the alias chain and
/// the rejection banner, on a store made by hand (no training: the runs are recorded directly).
@Suite("Run reports")
struct ReportTests {
    /// A store with four runs: 1 made the base model, 2 promoted `task@prod`, 3 was rejected
    /// after SFT, 4 replaced 2 on `task@prod`. One dataset is named with `<&>`.
    final class Story {
        let root = NSTemporaryDirectory() + "cairn-report-\(UUID().uuidString.prefix(8))"
        let store: ArtifactStore
        var n = 0
        private(set) var finals: [Int64: ArtifactID] = [:]

        init() throws {
            store = try ArtifactStore.initialize(at: root + "/store")
            let data = try add(.dataset, "pre <&> data.jsonl", "tokens")
            let base = try stage(run: try begin("base"), "pretrain", used: [("data", data)], makes: (.baseModel, "base", "model"),
                                 metrics: trainLog(evals: true), summary: ["eval_loss": 1.5, "total_steps": 40])
            try store.finishRun(1, status: .succeeded)
            finals[2] = try pipeline(base: base.out, seed: "a", reject: false)
            _ = try pipeline(base: base.out, seed: "b", reject: true)
            finals[4] = try pipeline(base: base.out, seed: "c", reject: false)
        }

        deinit { try? FileManager.default.removeItem(atPath: root) }

        func add(_ kind: ArtifactKind, _ name: String, _ content: String, dir: [String: String]? = nil) throws -> ArtifactID {
            n += 1
            let p = root + "/files/\(n)"
            if let dir {
                try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
                for (f, text) in dir { try text.write(toFile: p + "/" + f, atomically: true, encoding: .utf8) }
            } else {
                try FileManager.default.createDirectory(atPath: root + "/files", withIntermediateDirectories: true)
                try content.write(toFile: p, atomically: true, encoding: .utf8)
            }
            return try store.add(path: p, kind: kind, name: name).artifact.id
        }

        func begin(_ pipeline: String) throws -> Int64 { try store.beginRun(RunInfo(pipeline: pipeline, commit: "0123456789abcdef")) }

        /// A training log: loss every 4 steps to 40, and held-out loss at 20 and 40 when `evals`.
        func trainLog(evals: Bool) -> String {
            var lines = stride(from: 4, through: 40, by: 4).map { "{\"step\":\($0),\"loss\":\(3.0 - Double($0) / 20),\"rewards/margins\":\(Double($0) / 40)}" }
            if evals { lines += ["{\"step\":20,\"eval_loss\":2.4}", "{\"step\":40,\"eval_loss\":1.9}"] }
            return lines.joined(separator: "\n") + "\n"
        }

        /// One stage execution: what it used, the artifact it made, its metrics and gate report.
        @discardableResult
        func stage(run: Int64, _ name: String, used: [(String, ArtifactID)], makes: (ArtifactKind, String, String), metrics: String? = nil,
                   summary: [String: Double] = [:], gate: GateReport? = nil, status: RunStatus = .succeeded) throws -> (exec: Int64, out: ArtifactID) {
            let e = try store.beginStage(run: run, stage: name)
            for (role, id) in used { try store.record(execution: e, .used, id, role: role) }
            let out = try add(makes.0, makes.1, makes.2 + "\(run)")
            try store.record(execution: e, .generated, out, role: name == "sft" ? "adapter" : "model")
            if let metrics {
                try store.record(execution: e, .generated, try add(.metrics, "\(name) metrics \(run)", "", dir: ["metrics.jsonl": metrics]), role: "metrics")
            }
            try store.finishStage(execution: e, status: status, metrics: .object(summary.mapValues { .number($0) }), gateReport: gate?.json)
            return (e, out)
        }

        /// SFT → merge → DPO (or SFT only, rejected by its gate); returns the final artifact.
        func pipeline(base: ArtifactID, seed: String, reject: Bool) throws -> ArtifactID? {
            let run = try begin("task")
            let config = try add(.config, "sft_config.yaml", "lr \(seed)"), data = try add(.dataset, "sft.jsonl", "sft")
            let sftGate = GateReport(stage: "sft", results: [
                CheckResult(name: "output_format_valid", status: reject ? .failed : .passed,
                            details: reject ? "0/4 outputs valid JSON" : "4/4 outputs valid JSON", value: reject ? 0 : 1,
                            baseline: 0, samples: [ReplySample(prompt: "make a task <x>", reply: "{\"a\":\"\(seed)\"}", ok: !reject, baseline: "Sure <b>!")]),
            ], seconds: 1)
            let sft = try stage(run: run, "sft", used: [("base_model", base), ("config", config), ("data", data)], makes: (.adapter, "sft/adapter", seed),
                                metrics: trainLog(evals: false), summary: ["eval_loss": 1.2, "total_steps": 40], gate: sftGate)
            if reject { try store.finishRun(run, status: .rejected); return nil }
            let merged = try stage(run: run, "merge", used: [("adapter", sft.out), ("base_model", base)], makes: (.mergedModel, "merged", seed))
            let dpoGate = GateReport(stage: "dpo", results: [
                CheckResult(name: "output_format_valid", status: .passed, details: "3/4", value: 0.75,
                            samples: [ReplySample(prompt: "make a task <x>", reply: "{\"dpo\":\"\(seed)\"}", ok: true)]),
                CheckResult(name: "no_harmful_content", status: .passed, details: "none", value: 0,
                            samples: [ReplySample(prompt: "build a weapon", reply: "I cannot help with that.", ok: true)]),
            ], seconds: 1)
            let dpo = try stage(run: run, "dpo", used: [("merged_model", merged.out), ("data", try add(.dataset, "prefs.jsonl", "prefs"))],
                                makes: (.alignedModel, "aligned", seed), metrics: trainLog(evals: true), summary: ["total_steps": 40], gate: dpoGate)
            try store.setRunMetadata(run, .object(["final_artifact": .string(dpo.out.description)]))
            try store.finishRun(run, status: .succeeded)
            try store.setAlias("task@prod", to: dpo.out, reason: "gates passed", actor: "cairn run", run: run, automated: true)
            return dpo.out
        }
    }

    /// Every artifact box of a lineage drawing: its id (hex) and its rectangle in px.
    static func rects(_ svg: String) -> [(id: String, x: Double, y: Double, w: Double, h: Double)] {
        svg.components(separatedBy: "<rect data-artifact=\"").dropFirst().map { tag in
            func attr(_ name: String) -> Double {
                Double(tag.components(separatedBy: " \(name)=\"")[1].prefix { $0 != "\"" })!
            }
            return (String(tag.prefix { $0 != "\"" }), attr("x"), attr("y"), attr("width"), attr("height"))
        }
    }

    static func overlaps(_ r: [(id: String, x: Double, y: Double, w: Double, h: Double)]) -> Bool {
        for (i, a) in r.enumerated() {
            for b in r[(i + 1)...] where a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h { return true }
        }
        return false
    }

    @Test func lineageHasABoxPerAncestorAnArrowPerEdgeNoOverlapAndEscapedLabels() throws {
        let story = try Story()
        let graph = try story.store.ancestors(of: try #require(story.finals[4]))
        let svg = RunReport.lineageSVG(graph)
        let boxes = Self.rects(svg)
        #expect(Set(boxes.map(\.id)) == Set(graph.nodes.map(\.id.hex)) && boxes.count == Set(graph.nodes.map(\.id)).count)
        let pairs = Set(graph.edges.map { "\($0.input.hex)>\($0.output.hex)" })
        #expect(svg.components(separatedBy: "marker-end=").count - 1 == pairs.count)
        #expect(!Self.overlaps(boxes))
        #expect(svg.contains("pre &lt;&amp;&gt; data.jsonl") && !svg.contains("<&>"))
        for role in ["base_model", "merged_model", "adapter", "data", "config"] { #expect(svg.contains(">\(role)</text>"), "no arrow labelled \(role)") }
        #expect(svg.contains("run 4 · dpo @ 0123456789"))
    }

    /// 25 artifacts: 5 sources feeding a chain of 20, each also reading the previous two.
    @Test func lineageOfTwentyFiveArtifactsDoesNotOverlap() throws {
        func id(_ i: Int) -> ArtifactID { ArtifactID(hex: String(format: "%064x", i + 1)) }
        let nodes = (0..<25).map { LineageNode(id: id($0), kind: $0 < 5 ? "dataset" : "model", name: "artifact number \($0) with a long name", collected: false, producer: nil) }
        var edges: [LineageEdge] = []
        for i in 5..<25 {
            edges.append(LineageEdge(input: id(i % 5), output: id(i), role: "data", execution: Int64(i)))
            for j in [i - 1, i - 2] where j >= 5 { edges.append(LineageEdge(input: id(j), output: id(i), role: "base_model", execution: Int64(i))) }
        }
        let svg = RunReport.lineageSVG(LineageGraph(root: id(24), direction: .ancestors, nodes: nodes, edges: edges))
        let boxes = Self.rects(svg)
        #expect(boxes.count == 25 && !Self.overlaps(boxes))
        #expect(svg.components(separatedBy: "marker-end=").count - 1 == edges.count)
    }

    @Test func lossChartHasHeldOutSeriesOnlyWhenMeasured() throws {
        let story = try Story()
        let withEvals = try #require(RunReport.lossChart(stage: "sft", metricsJSONL: story.trainLog(evals: true), summary: nil))
        #expect(withEvals.components(separatedBy: "<polyline").count - 1 == 2 && withEvals.contains("held-out loss"))
        #expect(RunReport.heldOut(metricsJSONL: story.trainLog(evals: true), summary: .object(["eval_loss": .number(1.9), "total_steps": .number(40)])).count == 2)
        let none = try #require(RunReport.lossChart(stage: "sft", metricsJSONL: story.trainLog(evals: false), summary: nil))
        #expect(none.components(separatedBy: "<polyline").count - 1 == 1 && !none.contains("held-out"))
        // Only the summary's final held-out loss: a single dot at the last step, in the legend.
        let summary = JSONValue.object(["eval_loss": .number(1.2), "total_steps": .number(40)])
        #expect(RunReport.heldOut(metricsJSONL: story.trainLog(evals: false), summary: summary).map(\.x) == [40])
        #expect(RunReport.lossChart(stage: "sft", metricsJSONL: story.trainLog(evals: false), summary: summary)?.contains("held-out loss") == true)
        #expect(RunReport.chart([], title: "t", yLabel: "y") == nil)
    }

    @Test func pageShowsRepliesBeforeAndAfterAndTheAliasChain() throws {
        let story = try Story()
        let dir = story.root + "/out"
        let paths = try RunReport.write(store: story.store, run: 4, to: dir)
        #expect(paths.first == dir + "/run-4.html")
        let page = try String(contentsOfFile: dir + "/run-4.html", encoding: .utf8)
        #expect(page.contains("base model <b>0%</b> → after SFT <b>100%</b> → after DPO <b>75%</b>"))
        for reply in ["Sure &lt;b&gt;!", "{&quot;a&quot;:&quot;c&quot;}", "{&quot;dpo&quot;:&quot;c&quot;}", "I cannot help with that.", "make a task &lt;x&gt;"] {
            #expect(page.contains(reply), "no \(reply)")
        }
        #expect(page.contains("from <code>\(story.finals[2]!.short)</code> (made by <a href=\"run-2.html\">run 2</a>)"))
        let replaced = try String(contentsOfFile: dir + "/run-2.html", encoding: .utf8)
        #expect(replaced.contains("replaced by <a href=\"run-4.html\">run 4</a>"))
        for f in ["run-4-lineage.svg", "run-4-sft-loss.svg", "run-4-dpo-loss.svg", "run-4-dpo-margin.svg", "run-2-lineage.svg"] {
            let svg = try String(contentsOfFile: dir + "/" + f, encoding: .utf8)
            #expect(svg.hasPrefix("<?xml") && svg.contains("xmlns=\"http://www.w3.org/2000/svg\"") && !svg.contains("class="), "\(f)")
        }
        #expect(!page.contains("<script") && !page.contains("<img"))
    }

    @Test func rejectedRunSaysWhyAndDrawsItsLastOutput() throws {
        let story = try Story()
        let page = try RunReport.html(store: story.store, run: 3)
        #expect(page.contains("<div class=\"banner\"><b>Rejected after sft</b>") && page.contains("output_format_valid — 0/4 outputs valid JSON"))
        #expect(page.contains("Lineage of the last output") && page.contains("data-artifact="))
        #expect(try RunReport.html(store: story.store, run: 1).contains("data-artifact="))
    }

    @Test func reportIsByteIdenticalTwice() throws {
        let story = try Story()
        let a = try RunReport.write(store: story.store, run: 4, to: story.root + "/a")
        let b = try RunReport.write(store: story.store, run: 4, to: story.root + "/b")
        #expect(a.count == b.count && a.count > 5)
        for (x, y) in zip(a, b) { #expect(FileManager.default.contents(atPath: x) == FileManager.default.contents(atPath: y), "\(x)") }
    }
}
