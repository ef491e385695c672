import CairnStore
import Foundation
import Testing
@testable import CairnPipeline

/// Sweeps on the tiny task-api pipeline: the file checked before any run, the variants, shared
/// stages run once, the comparison, the best promoted.
@Suite("Sweeps", .serialized)
struct SweepTests {
    func write(_ ws: Workspace, _ text: String, name: String = "sweep.yaml") throws -> String {
        let path = ws.pipeline + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The issue's 2×2 grid: LoRA rank (alpha twice it) × DPO beta, best by held-out accuracy then margin.
    static func grid(_ id: String) -> String {
        """
        sweep_id: \(id)
        pipeline: .
        space:
          sft.lora_r: [16, 24]
          sft.lora_alpha: "2*lora_r"
          dpo.beta: [0.1, 0.3]
        objective: {metric: dpo.eval_accuracy, then: {metric: dpo.eval_margin, goal: maximize}}

        """
    }

    @Test(arguments: [
        ("pipeline: .\nspace:\n  sft.learning_rte: [1e-3]\nobjective: sft.eval_loss\n", 3, "unknown key 'sft.learning_rte' — did you mean 'sft.learning_rate'?"),
        ("pipeline: .\nspace: {}\nobjective: sft.eval_loss\n", 2, "key 'space' is empty"),
        ("pipeline: .\nspace:\n  sft.lora_r: []\nobjective: sft.eval_loss\n", 3, "'sft.lora_r' has no values"),
        ("pipeline: .\nspace:\n  sft.lora_r: [8, eight]\nobjective: sft.eval_loss\n", 3, "key 'lora_r' must be a whole number, not 'eight'"),
        ("pipeline: .\nspace:\n  sft.learning_rate: [-1]\nobjective: sft.eval_loss\n", 3, "learning_rate"),
        ("pipeline: .\nspace:\n  sft.lora_r: [8]\nobjective: sft.eval_accuracy\n", 4, "objective 'sft.eval_accuracy' is not a metric a stage writes"),
        ("pipeline: .\nspace:\n  sft.lora_r: [8]\nobjective: pretrain.eval_loss\n", 4, "the pipeline has no pretrain stage"),
        ("pipeline: .\nspace:\n  merge.lora_r: [8]\nobjective: sft.eval_loss\n", 3, "STAGE one of the pipeline's training stages (sft, dpo)"),
        ("pipeline: .\nspace:\n  dpo.beta: {uniform: [0.1, 0.2]}\nobjective: sft.eval_loss\n", 3, "needs strategy random"),
        ("pipeline: .\nstrategy: random\nspace:\n  dpo.beta: [0.1]\nobjective: sft.eval_loss\n", 1, "strategy random needs 'n'"),
        ("pipeline: ../..\nspace:\n  dpo.beta: [0.1]\nobjective: sft.eval_loss\n", 1, "leaves the repository"),
        ("pipeline: .\nspace:\n  dpo.beta: [0.1]\nobjective: sft.eval_loss\nparalel: 2\n", 5, "unknown key 'paralel' — did you mean 'parallel'?"),
        ("pipeline: .\nspace:\n  sft.lora_alpha: \"2*lora_rank\"\nobjective: sft.eval_loss\n", 3, "an expression names a key of the same stage config"),
    ])
    func badSweepFilesNameFileAndLineBeforeAnyRun(text: String, line: Int, message: String) throws {
        let ws = try Workspace()
        let file = try write(ws, text)
        let r = try cairn(["sweep", file], store: ws.store)
        #expect(r.status == 2, "\(r.err)")
        #expect(r.err.contains("sweep.yaml:\(line):") && r.err.contains(message), "\(r.err)")
        let store = try ws.openStore()
        #expect(try store.runs().isEmpty, "a run started")
    }

    @Test func randomStrategyDrawsTheSameVariantsForTheSameSeedInsideTheirRanges() throws {
        let ws = try Workspace()
        let text = "pipeline: .\nstrategy: random\nn: 6\nseed: 3\nspace:\n  sft.learning_rate: {loguniform: [1.0e-4, 1.0e-2]}\n"
            + "  sft.lora_r: {int: [4, 16]}\n  sft.lora_alpha: \"2*lora_r\"\n  dpo.beta: [0.1, 0.2]\nobjective: dpo.eval_accuracy\n"
        let file = try write(ws, text)
        let a = try SweepConfig.load(file).variants(), b = try SweepConfig.load(file).variants()
        #expect(a == b && a.count == 6)
        for v in a {
            let d = Dictionary(uniqueKeysWithValues: v.values.map { ($0.name, $0.text) })
            let lr = try #require(Double(d["sft.learning_rate"]!)), r = try #require(Int(d["sft.lora_r"]!))
            #expect(lr >= 1e-4 && lr <= 1e-2 && (4...16).contains(r) && ["0.1", "0.2"].contains(d["dpo.beta"]!))
            #expect(d["sft.lora_alpha"] == nil)  // follows from lora_r
        }
        let other = try SweepConfig.load(try write(ws, text.replacingOccurrences(of: "seed: 3", with: "seed: 4"), name: "other.yaml")).variants()
        #expect(other != a)
        // The expression is applied: lora_alpha = 2 × the variant's lora_r, in the SFT config it writes.
        let sweep = try SweepConfig.load(file)
        let config = try a[0].apply(to: sweep, directory: ws.root + "/v0")
        let training = try #require(config.stage(.sft)?.training)
        #expect(training.loraAlpha == 2 * Double(training.loraR))
        #expect(config.promoteTo == nil)  // only the sweep's best moves an alias
    }

    /// The issue's 2×2 grid: lora_r × beta. SFT (and merge) run twice, not four times; DPO four
    /// times; four rows; the best (highest held-out accuracy, then margin) promoted.
    @Test func aTwoByTwoGridRunsSFTTwiceComparesFourRowsAndPromotesTheBest() throws {
        let ws = try Workspace()
        let file = try write(ws, Self.grid("rank-beta") + "promote_best_to: task-api@sweep-best\n")
        // The alias points somewhere before the sweep (so that it can be rolled back below).
        #expect(try cairn(["init"], store: ws.store).status == 0)
        let before = try cairn(["add", ws.pipeline + "/schema.json", "--kind", "dataset"], store: ws.store).out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try cairn(["alias", "set", "task-api@sweep-best", before], store: ws.store).status == 0)
        let r = try cairn(["sweep", file, "--quiet"], store: ws.store)
        #expect(r.status == 0, "\(r.err.suffix(3000))")
        let store = try ws.openStore()
        let runs = try store.runs().filter { $0.metadata["sweep"]?["id"]?.stringValue == "rank-beta" }
        #expect(runs.count == 4)
        var trained: [String: Int] = [:], cached: [String: Int] = [:]
        for run in runs {
            for s in try store.stages(run: run.id) {
                if s.status == .succeeded { trained[s.stage, default: 0] += 1 }
                if s.status == .cached { cached[s.stage, default: 0] += 1 }
            }
        }
        #expect(trained["sft"] == 2 && cached["sft"] == 2, "sft: \(trained["sft"] ?? 0) trained, \(cached["sft"] ?? 0) cached")
        #expect(trained["merge"] == 2 && cached["merge"] == 2)
        #expect(trained["dpo"] == 4)

        // The comparison: four rows, the best the one a person would pick from the numbers.
        let json = try cairn(["compare", "rank-beta", "--json"], store: ws.store)
        let rows = try JSONDecoder().decode([SweepOutcome.Row].self, from: Data(json.out.utf8))
        #expect(rows.count == 4 && Set(rows.map(\.label)).count == 4)
        let passed = rows.filter { $0.status == "succeeded" }
        let expected = passed.max { a, b in
            let x = (a.metrics["dpo.eval_accuracy"] ?? -1, a.metrics["dpo.eval_margin"] ?? -1), y = (b.metrics["dpo.eval_accuracy"] ?? -1, b.metrics["dpo.eval_margin"] ?? -1)
            return x < y || (x == y && a.run > b.run)
        }
        #expect(rows.filter(\.best).map(\.run) == expected.map { [$0.run] } ?? [])
        if let best = expected {
            #expect(try store.resolve("task-api@sweep-best").description == best.finalArtifact)
            // Its lineage names the sweep and the values that made it.
            let lineage = try cairn(["lineage", "task-api@sweep-best"], store: ws.store)
            #expect(lineage.out.split(separator: "\n").first?.contains("[sweep rank-beta: \(best.label)]") == true, "\(lineage.out)")
            let history = try store.history("task-api@sweep-best")
            #expect(history.last?.run == best.run && history.last?.reason?.contains("sweep rank-beta: best by dpo.eval_accuracy") == true)
        }
        // The sweep's page: the table with the best row marked, a line per variant in the
        // parallel-coordinates plot, the objective against each parameter.
        let rep = try cairn(["report", "rank-beta", "--out", ws.root + "/report"], store: ws.store)
        #expect(rep.status == 0, "\(rep.err)")
        let page = try String(contentsOfFile: ws.root + "/report/sweep-rank-beta.html", encoding: .utf8)
        #expect(page.components(separatedBy: "<tr class=\"best\">").count - 1 == 1 && page.contains("dpo.eval_accuracy against sft.lora_r"))
        let parallel = try String(contentsOfFile: ws.root + "/report/sweep-rank-beta-parallel.svg", encoding: .utf8)
        #expect(parallel.components(separatedBy: "<polyline").count - 1 == 4 && !page.contains("<script"))
        // No variant moved the pipeline's own alias.
        #expect((try? store.resolve("task-api@production")) == nil)
        for format in ["--csv", "--markdown"] {
            let t = try cairn(["compare", file, format], store: ws.store)
            #expect(t.status == 0 && t.out.split(separator: "\n").count == (format == "--csv" ? 5 : 6), "\(t.out)")
        }

        // Production rolled back from the best: started again, the sweep runs nothing, finds the
        // same best, and does not promote a model that was rolled back from.
        #expect(try cairn(["rollback", "task-api@sweep-best", "--reason", "test"], store: ws.store).status == 0)
        let again = try cairn(["sweep", file, "--quiet"], store: ws.store)
        #expect(again.status == r.status)
        #expect(try store.runs().filter { $0.metadata["sweep"]?["id"]?.stringValue == "rank-beta" }.count == 4)
        #expect(again.err.components(separatedBy: "from an earlier start").count - 1 == 4)
        #expect(again.out.contains("task-api@sweep-best not moved") && again.out.contains("rolled back from"), "\(again.out)")
        #expect(try store.resolve("task-api@sweep-best").description == before)
    }

    /// SIGKILL in the middle of a sweep (the second variant training DPO), then `cairn sweep`
    /// again: the finished variant is reused, the killed one resumed, the missing ones run; the
    /// same four models as a sweep never interrupted, and the same best.
    @Test func aSweepKilledMidwayFinishesOnlyWhatIsMissingWithTheSameModels() throws {
        let text = Self.grid("kill")
        func models(_ ws: Workspace) throws -> [String: String] {
            let rows = try JSONDecoder().decode([SweepOutcome.Row].self, from: Data(try cairn(["compare", "kill", "--json"], store: ws.store).out.utf8))
            return Dictionary(uniqueKeysWithValues: rows.map { ($0.label + ($0.best ? " (best)" : ""), $0.finalArtifact ?? "-") })
        }
        let reference = try Workspace()
        #expect(try cairn(["sweep", try write(reference, text), "--quiet"], store: reference.store).status == 0)

        let ws = try Workspace()
        let file = try write(ws, text)
        let p = try ws.start(["sweep", file, "--quiet"])
        let trigger = ws.pipeline + "/artifacts/run-2/dpo/train"
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: trigger) && p.isRunning && Date() < deadline { usleep(5_000) }
        #expect(p.isRunning, "the sweep ended before the second variant's DPO started")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let store = try ws.openStore()
        #expect(try store.runs().count == 2)

        let again = try cairn(["sweep", file, "--quiet"], store: ws.store)
        #expect(again.status == 0, "\(again.err.suffix(2000))")
        #expect(again.err.contains("run 1 (succeeded) from an earlier start") && again.err.contains("resuming run 2"), "\(again.err.suffix(2000))")
        #expect(try store.runs().count == 4)
        #expect(try models(ws) == models(reference))
    }

    /// Successive halving over four learning rates: every variant pauses at step 20 with its
    /// held-out loss recorded; the worst two stop there (their records say why, with the value);
    /// of the two left the worse stops at step 40; the last trains to the end and is the best.
    @Test func successiveHalvingStopsTheWorstAtEachRungAndSaysWhy() throws {
        let ws = try Workspace()
        let file = try write(ws, """
            sweep_id: halving
            pipeline: .
            space:
              sft.learning_rate: [1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3]
            objective: {metric: dpo.eval_accuracy, then: sft.eval_loss}
            early_stop: {strategy: successive_halving, metric: sft.eval_loss, min_steps: 20, reduction_factor: 2}

            """)
        let r = try cairn(["sweep", file, "--quiet"], store: ws.store)
        #expect(r.status == 0, "\(r.err.suffix(3000))")
        #expect(r.err.contains("paused at sft step 20 (a rung of successive halving)"))
        let store = try ws.openStore()
        let runs = try store.runs().filter { $0.metadata["sweep"]?["id"]?.stringValue == "halving" }
        #expect(runs.count == 4)
        func rung(_ run: RunRecord, _ step: String) -> Double? { run.metadata["sweep"]?["rungs"]?[step]?.numberValue }
        // Every variant reached the first rung and has its value there.
        #expect(runs.allSatisfy { rung($0, "20") != nil }, "\(runs.map(\.metadata))")
        let first = runs.filter { $0.metadata["sweep"]?["stopped"]?["rung"]?.numberValue == 1 }
        let second = runs.filter { $0.metadata["sweep"]?["stopped"]?["rung"]?.numberValue == 2 }
        let rest = runs.filter { $0.status != .stopped }
        #expect(first.count == 2 && second.count == 1 && rest.count == 1)
        #expect(runs.filter { $0.status == .stopped }.count == 3)
        // Those stopped first had the two worst held-out losses at step 20.
        let worst = first.compactMap { rung($0, "20") }.min()!, kept = (second + rest).compactMap { rung($0, "20") }.max()!
        #expect(worst >= kept)
        for run in first {
            let why = run.metadata["sweep"]?["stopped"]?["reason"]?.stringValue ?? ""
            #expect(why.contains("stopped at rung 1 (step 20): sft.eval_loss ") && run.metadata["sweep"]?["stopped"]?["value"]?.numberValue == rung(run, "20"))
        }
        // The survivor trained to the end from its checkpoints, is the best, and stopped runs are never resumed.
        #expect(rest.first?.status == .succeeded)
        let rows = try JSONDecoder().decode([SweepOutcome.Row].self, from: Data(try cairn(["compare", "halving", "--json"], store: ws.store).out.utf8))
        #expect(rows.filter(\.best).map(\.run) == rest.map(\.id))
        #expect(try cairn(["resume", String(first[0].id)], store: ws.store).status == 2)
    }

    /// Two variants at once that need the same SFT: one computes it, the other waits for it and
    /// takes it from the cache (SFT and merge computed twice for four variants, not four times).
    @Test func parallelVariantsWaitForAStageBeingComputedInsteadOfStartingItTwice() throws {
        let ws = try Workspace()
        let file = try write(ws, Self.grid("both") + "parallel: 2\n")
        let r = try cairn(["sweep", file, "--quiet"], store: ws.store)
        #expect(r.status == 0, "\(r.err.suffix(3000))")
        #expect(r.err.contains("2 runs at once") && r.err.contains("another run is computing this stage with the same inputs; waiting for it"))
        let store = try ws.openStore()
        let runs = try store.runs().filter { $0.metadata["sweep"]?["id"]?.stringValue == "both" }
        #expect(runs.count == 4)
        var trained: [String: Int] = [:]
        for run in runs { for s in try store.stages(run: run.id) where s.status == .succeeded { trained[s.stage, default: 0] += 1 } }
        #expect(trained["sft"] == 2 && trained["merge"] == 2 && trained["dpo"] == 4, "\(trained)")
        // They ran at once: some two runs' times overlap.
        let spans = runs.map { ($0.startedAt, $0.finishedAt ?? .infinity) }
        #expect(spans.contains { a in spans.contains { b in a != b && a.0 < b.1 && b.0 < a.1 } })
    }

    /// SIGTERM (Ctrl-C, a daemon stopping): the running variant checkpoints and stops, nothing is
    /// promoted from the half-done sweep, and `cairn sweep` again finishes it and promotes the best.
    @Test func aSweepStoppedWithSIGTERMPromotesNothingUntilItIsFinished() throws {
        let ws = try Workspace()
        let file = try write(ws, Self.grid("term") + "promote_best_to: task-api@term-best\n")
        let out = ws.root + "/sweep.err"
        FileManager.default.createFile(atPath: out, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: cairnBinary())
        p.arguments = ["sweep", file, "--quiet"]
        p.environment = ProcessInfo.processInfo.environment.merging(["CAIRN_STORE": ws.store]) { _, new in new }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: out)
        try p.run()
        let trigger = ws.pipeline + "/artifacts/run-2/dpo/train"
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: trigger) && p.isRunning && Date() < deadline { usleep(5_000) }
        #expect(p.isRunning)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let err = try String(contentsOfFile: out, encoding: .utf8)
        #expect(p.terminationStatus == 1 && err.contains("sweep term stopped on request"), "\(err.suffix(1500))")
        let store = try ws.openStore()
        #expect((try? store.resolve("task-api@term-best")) == nil)
        #expect(try store.runs().count == 2)
        let again = try cairn(["sweep", file, "--quiet"], store: ws.store)
        #expect(again.status == 0 && again.err.contains("resuming run 2"), "\(again.err.suffix(1500))")
        #expect(try store.runs().count == 4)
        #expect((try? store.resolve("task-api@term-best")) != nil)
    }

    /// When no variant passes every gate, nothing is promoted and the sweep says why (exit 1).
    @Test func aSweepWhoseVariantsAllFailAGatePromotesNothing() throws {
        let ws = try Workspace(quick: true)
        let file = try write(ws, "sweep_id: strict\npipeline: .\nspace:\n  validation.max_loss: [0.001]\nobjective: sft.eval_loss\npromote_best_to: task-api@strict\n")
        let r = try cairn(["sweep", file, "--quiet"], store: ws.store)
        #expect(r.status == 1 && r.out.contains("task-api@strict not moved: no variant passed every gate"), "\(r.out)")
        #expect(r.out.contains("rejected") && r.out.contains("sft: loss_acceptable"), "\(r.out)")
        #expect((try? ws.openStore().resolve("task-api@strict")) == nil)
    }

    /// A random sweep runs exactly the variants its seed draws, each with the values it drew.
    @Test func aRandomSweepRunsTheVariantsItsSeedDraws() throws {
        let ws = try Workspace()
        let file = try write(ws, "sweep_id: drawn\npipeline: .\nstrategy: random\nn: 3\nseed: 11\nspace:\n"
            + "  sft.lora_r: {int: [16, 24]}\n  sft.lora_alpha: \"2*lora_r\"\n  dpo.beta: {loguniform: [0.1, 0.3]}\nobjective: dpo.eval_accuracy\n")
        let drawn = try SweepConfig.load(file).variants()
        let r = try cairn(["sweep", file, "--quiet"], store: ws.store)
        #expect(r.status == 0, "\(r.err.suffix(2000))")
        let rows = try JSONDecoder().decode([SweepOutcome.Row].self, from: Data(try cairn(["compare", "drawn", "--json"], store: ws.store).out.utf8))
        #expect(rows.map(\.label) == drawn.map { v in v.values.sorted { $0.name < $1.name }.map { "\($0.name)=\($0.text)" }.joined(separator: " ") })
        #expect(rows.filter(\.best).count == 1)
    }
}
