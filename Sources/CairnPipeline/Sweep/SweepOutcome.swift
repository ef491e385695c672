import CairnStore
import Foundation

/// A sweep's runs side by side: one row per variant (its values, its metrics, its verdict, its
/// time), the best marked. `cairn compare` prints it as a table, CSV, JSON or Markdown.
public struct SweepOutcome: Sendable {
    public struct Row: Codable, Sendable {
        public var run: Int64
        public var variant: String
        public var label: String
        public var params: [String: String]
        public var status: String
        /// `stage.key` → value, from each stage's metrics.json (the newest attempt that succeeded).
        public var metrics: [String: Double]
        /// Why a rejected or failed run stopped: "sft: output_format_valid (0/24 …)".
        public var verdict: String
        public var seconds: Double?
        public var finalArtifact: String?
        public var best = false

        enum CodingKeys: String, CodingKey {
            case run, variant, label, params, status, metrics, verdict, seconds, best
            case finalArtifact = "final_artifact"
        }
    }

    public var sweepID: String
    public var key: String
    public var objectives: [SweepConfig.Objective]
    public var rows: [Row]
    /// The run with the best objective among those that passed every gate.
    public var best: Int64? { rows.first(where: \.best)?.run }
    /// What promote_best_to did.
    public var promotion: String?
    /// Stopped on request before every variant ran: nothing was promoted.
    public var interrupted = false

    /// The newest run of each variant of sweep `key`.
    static func runs(_ store: ArtifactStore, key: String) throws -> [String: RunRecord] {
        var out: [String: RunRecord] = [:]
        for r in try store.runs(whereMetadata: "$.sweep.key", is: key) {
            if let v = r.metadata["sweep"]?["variant"]?.stringValue, out[v] == nil { out[v] = r }
        }
        return out
    }

    /// The runs of sweep `key`, ranked by the objectives its runs recorded.
    public init(store: ArtifactStore, sweepID: String, key: String) throws {
        let runs = try Self.runs(store, key: key).values.sorted {
            ($0.metadata["sweep"]?["index"]?.numberValue ?? 0, $0.id) < ($1.metadata["sweep"]?["index"]?.numberValue ?? 0, $1.id)
        }
        try self.init(store: store, sweepID: sweepID, key: key, runs: runs)
    }

    /// Runs named by number, ranked by the objectives of the sweep the first one belongs to.
    public init(store: ArtifactStore, runs ids: [Int64]) throws {
        let runs = try ids.map { id in
            guard let r = try store.run(id) else { throw ConfigError(file: "run \(id)", line: nil, "no such run") }
            return r
        }
        try self.init(store: store, sweepID: runs.first?.metadata["sweep"]?["id"]?.stringValue ?? "", key: "", runs: runs)
    }

    init(store: ArtifactStore, sweepID: String, key: String, runs: [RunRecord]) throws {
        self.sweepID = sweepID; self.key = key
        objectives = runs.lazy.compactMap { $0.metadata["sweep"]?["objective"]?.stringValue }.first.map(Self.objectives(from:)) ?? []
        rows = try runs.map { try Self.row(store, $0) }
        let ranked = rows.indices.filter { rows[$0].status == RunStatus.succeeded.rawValue }.sorted { a, b in
            for o in objectives {
                let x = rows[a].metrics[o.name], y = rows[b].metrics[o.name]
                if o.better(x, y) { return true }
                if o.better(y, x) { return false }
            }
            return a < b
        }
        if let first = ranked.first, let o = objectives.first, rows[first].metrics[o.name] != nil { rows[first].best = true }
    }

    /// Objectives as a run records them: `dpo.eval_accuracy max, sft.eval_loss min`.
    static func text(_ objectives: [SweepConfig.Objective]) -> String {
        objectives.map { "\($0.name) \($0.maximize ? "max" : "min")" }.joined(separator: ", ")
    }

    static func objectives(from text: String) -> [SweepConfig.Objective] {
        text.components(separatedBy: ", ").compactMap { item in
            let w = item.split(separator: " ").map(String.init)
            let parts = w.first?.split(separator: ".", maxSplits: 1).map(String.init) ?? []
            guard w.count == 2, parts.count == 2 else { return nil }
            return SweepConfig.Objective(stage: parts[0], key: parts[1], maximize: w[1] == "max")
        }
    }

    /// A sweep's latest key in the store: the runs tagged with `sweepID`, newest first.
    public static func latestKey(_ store: ArtifactStore, sweepID: String) throws -> String? {
        try store.runs(whereMetadata: "$.sweep.id", is: sweepID).first?.metadata["sweep"]?["key"]?.stringValue
    }

    /// A check's details up to its first ';', at most 60 characters.
    static func short(_ details: String) -> String {
        let first = details.split(separator: ";", maxSplits: 1).first.map(String.init) ?? details
        return first.count <= 60 ? first : String(first.prefix(59)) + "…"
    }

    static func row(_ store: ArtifactStore, _ r: RunRecord) throws -> Row {
        var params: [String: String] = [:]
        if case .object(let p)? = r.metadata["sweep"]?["params"] { for (k, v) in p { params[k] = v.stringValue ?? v.description } }
        let label = params.keys.sorted().map { "\($0)=\(params[$0]!)" }.joined(separator: " ")
        var metrics: [String: Double] = [:], verdict = ""
        for s in try store.stages(run: r.id) {
            if [.succeeded, .cached].contains(s.status), case .object(let m) = s.metrics {
                for (k, v) in m { if let x = v.numberValue { metrics["\(s.stage).\(k)"] = x } }
            }
            if let g = GateReport(json: s.gateReport), !g.passed {
                verdict = "\(s.stage): " + g.results.filter { !$0.passed }.map { "\($0.name): \(Self.short($0.details))" }.joined(separator: "; ")
            } else if s.status == .failed, let e = s.error {
                verdict = "\(s.stage): \(e.prefix(80))"
            }
        }
        let status = try Orchestrator.effectiveStatus(r)
        if status == .succeeded { verdict = "every gate passed" }
        if let why = r.metadata["sweep"]?["stopped"]?["reason"]?.stringValue { verdict = why }
        return Row(run: r.id, variant: r.metadata["sweep"]?["variant"]?.stringValue ?? "", label: label, params: params, status: status.rawValue,
                   metrics: metrics, verdict: verdict, seconds: r.finishedAt.map { $0 - r.startedAt },
                   finalArtifact: r.metadata["final_artifact"]?.stringValue)
    }

    // MARK: Rendering

    /// The columns: the parameters, then the objective metrics, then the other losses and accuracies.
    var parameterNames: [String] { Array(Set(rows.flatMap(\.params.keys))).sorted() }
    var metricNames: [String] {
        let shown = ["sft.eval_loss", "sft.final_loss", "dpo.eval_accuracy", "dpo.eval_margin", "dpo.eval_loss", "dpo.final_loss", "pretrain.eval_loss"]
        let present = Set(rows.flatMap(\.metrics.keys))
        var names = objectives.map(\.name).filter { present.contains($0) }
        for n in shown where present.contains(n) && !names.contains(n) { names.append(n) }
        return names
    }

    /// The table as cells, header first.
    public func cells() -> [[String]] {
        let header = ["best", "run"] + parameterNames + metricNames + ["status", "time", "verdict"]
        let params = parameterNames, metrics = metricNames
        return [header] + rows.map { r -> [String] in
            var cells: [String] = [r.best ? "*" : "", String(r.run)]
            cells += params.map { r.params[$0] ?? "" }
            cells += metrics.map { name -> String in r.metrics[name].map { String(format: "%.4g", $0) } ?? "" }
            cells += [r.status, r.seconds.map { String(format: "%.1fs", $0) } ?? "", r.verdict]
            return cells
        }
    }

    public enum Format: String { case table, csv, markdown }

    public func render(_ format: Format) -> String {
        let c = cells()
        switch format {
        case .csv:
            func field(_ s: String) -> String { s.contains(where: { ",\"\n".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
            return c.map { $0.map(field).joined(separator: ",") }.joined(separator: "\n") + "\n"
        case .markdown:
            let esc = { (s: String) in s.replacingOccurrences(of: "|", with: "\\|") }
            var out = "| " + c[0].map(esc).joined(separator: " | ") + " |\n|" + c[0].map { _ in "---|" }.joined() + "\n"
            for row in c.dropFirst() { out += "| " + row.map(esc).joined(separator: " | ") + " |\n" }
            return out
        case .table:
            let widths: [Int] = c[0].indices.map { i in c.map { $0[i].count }.max() ?? 0 }
            var out = ""
            for row in c {
                var cells: [String] = []
                for (i, cell) in row.enumerated() { cells.append(i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)) }
                var line = cells.joined(separator: "  ")
                while line.hasSuffix(" ") { line.removeLast() }
                out += line + "\n"
            }
            return out
        }
    }
}
