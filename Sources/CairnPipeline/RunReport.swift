import CairnStore
import CairnSystem
import Foundation

/// `cairn report RUN`: one self-contained HTML page (no scripts, no external files) per run: why
/// it stopped (when it did), what it did to the aliases, the stages, the lineage graph, training
/// and held-out loss per training stage, sample replies before and after, every gate's table.
/// Every drawing is also written as a standalone .svg next to the page (README images).
public enum RunReport {
    /// A series of (step, value) points.
    public typealias Series = [(x: Double, y: Double)]

    /// A run's page, its drawings (also written as `run-N-<name>.svg`), and the runs it links to.
    public struct Page: Sendable {
        public let run: Int64
        public let html: String
        public let drawings: [Drawing]
        public let linkedRuns: [Int64]
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func fmt(_ v: Double) -> String {
        if v == 0 { return "0" }
        return abs(v) >= 100 || abs(v) < 0.01 ? String(format: "%.3g", v) : String(format: "%.3f", v)
    }

    /// The page of run `id`.
    public static func html(store: ArtifactStore, run id: Int64) throws -> String { try page(store: store, run: id).html }

    /// Writes the page of run `id` and its drawings into `dir`, then the pages of the runs it
    /// links to (the alias chain), and theirs, each once. Returns the paths written, the first
    /// run's page first.
    public static func write(store: ArtifactStore, run id: Int64, to dir: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var queue = [id], done = Set<Int64>(), paths: [String] = []
        while !queue.isEmpty {
            let r = queue.removeFirst()
            guard done.insert(r).inserted else { continue }
            let p = try page(store: store, run: r)
            paths.append(dir + "/run-\(r).html")
            try AtomicFile.write(p.html, to: paths.last!)
            for d in p.drawings {
                paths.append(dir + "/run-\(r)-\(d.name).svg")
                try AtomicFile.write(svgDocument(d.svg), to: paths.last!)
            }
            queue += p.linkedRuns.filter { !done.contains($0) }
        }
        return paths
    }

    /// The page of run `id`, with its drawings and the runs it links to.
    public static func page(store: ArtifactStore, run id: Int64) throws -> Page {
        guard let run = try store.run(id) else { throw ConfigError(file: "run \(id)", line: nil, "no such run") }
        let status = try Orchestrator.effectiveStatus(run)
        let stages = try store.stages(run: id)
        let gates = gateReports(stages)
        let stories = try aliasStories(store, run: id)
        var body = "<h1>Run \(id): \(esc(run.pipeline)) <span class=\"s \(status.rawValue)\">\(status.rawValue)</span></h1>"
        body += banner(status: status, run: run, stages: stages)
        body += "<p>Started \(esc(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: run.startedAt))))"
        if let f = run.finishedAt { body += String(format: ", took %.1f s", f - run.startedAt) }
        if let c = run.commit { body += ", commit <code>\(esc(c))</code>" + (run.branch.map { " on \(esc($0))" } ?? "") }
        body += ".</p>"
        body += aliasSection(stories)
        body += try stagesSection(store, stages)
        let (lineageHTML, lineage) = try lineageSection(store, run: run, stages: stages)
        let (curvesHTML, curves) = try curvesSection(store, stages)
        body += lineageHTML + curvesHTML + samplesSection(gates) + gatesSection(gates)
        let drawings = (lineage.map { [$0] } ?? []) + curves
        let html = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">"
            + "<title>Cairn run \(id): \(esc(run.pipeline))</title><style>\(css)</style></head><body>\(body)</body></html>\n"
        var linked: [Int64] = []
        for r in stories.flatMap(\.linkedRuns) where r != id && !linked.contains(r) { linked.append(r) }
        return Page(run: id, html: html, drawings: drawings, linkedRuns: linked)
    }

    /// Each stage execution: attempt, status, time, outputs, error.
    static func stagesSection(_ store: ArtifactStore, _ stages: [StageExecutionRecord]) throws -> String {
        var body = "<h2>Stages</h2><table><tr><th>stage</th><th>attempt</th><th>status</th><th>time</th><th>outputs</th><th>error</th></tr>"
        for s in stages {
            let outs = try store.edges(execution: s.id, .generated).filter { $0.role != "log" }.map { "\(esc($0.role)) <code>\(esc($0.artifact.short))</code>" }
            body += "<tr><td>\(esc(s.stage))</td><td>\(s.attempt)</td><td><span class=\"s \(s.status.rawValue)\">\(s.status.rawValue)</span></td>"
            body += "<td>" + (s.finishedAt.map { String(format: "%.1f s", $0 - s.startedAt) } ?? "–") + "</td>"
            body += "<td>\(outs.joined(separator: "<br>"))</td><td>\(esc(s.error ?? ""))</td></tr>"
        }
        return body + "</table>"
    }

    /// Roles of a stage's outputs that are records of the stage, not what it made.
    static let recordRoles: Set<String> = ["log", "metrics", "gate_report"]

    /// The lineage graph of the run's final artifact or, when it has none (rejected, failed), of
    /// the last thing its stages made; the indented tree below it, folded.
    static func lineageSection(_ store: ArtifactStore, run: RunRecord, stages: [StageExecutionRecord]) throws -> (String, Drawing?) {
        var html: String, subject: ArtifactID
        if let final = run.metadata["final_artifact"]?.stringValue.flatMap(ArtifactID.init) {
            html = "<h2>Lineage of the final model</h2><p><code>\(esc(final.description))</code></p>"
            subject = final
        } else if let (stage, out) = try lastOutput(store, stages) {
            html = "<h2>Lineage of the last output</h2><p>This run has no final model; this is the lineage of what its last stage made: "
                + "\(esc(out.role)) of \(esc(stage)), <code>\(esc(out.artifact.description))</code>.</p>"
            subject = out.artifact
        } else {
            return ("<h2>Lineage</h2><p class=\"muted\">This run made no artifact, so there is no lineage to draw.</p>", nil)
        }
        let graph = try store.ancestors(of: subject)
        let svg = lineageSVG(graph)
        html += "<figure class=\"wide\">\(svg)</figure><p class=\"muted\">Drawn in <a href=\"run-\(run.id)-lineage.svg\">run-\(run.id)-lineage.svg</a>.</p>"
        html += "<details><summary>As a tree</summary><pre>\(esc(graph.renderTree()))</pre></details>"
        return (html, Drawing(name: "lineage", svg: svg))
    }

    /// The last artifact a stage of the run generated that is not a log, metrics or gate report.
    static func lastOutput(_ store: ArtifactStore, _ stages: [StageExecutionRecord]) throws -> (String, (role: String, artifact: ArtifactID))? {
        for s in stages.reversed() {
            if let out = try store.edges(execution: s.id, .generated).first(where: { !recordRoles.contains($0.role) }) { return (s.stage, out) }
        }
        return nil
    }

    static let css = """
        body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1d232a}
        h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #dde;padding-bottom:.2em}
        table{border-collapse:collapse;width:100%;font-size:.92em}td,th{border:1px solid #dde;padding:.3em .5em;text-align:left;vertical-align:top}
        th{background:#f4f6f8}code,pre{font:13px ui-monospace,monospace}pre{background:#f6f8fa;padding:1em;overflow:auto}
        .s{padding:.05em .45em;border-radius:.6em;font-size:.85em;white-space:nowrap}.succeeded,.cached{background:#dcf5e3;color:#14532d}
        .failed,.rejected,.interrupted{background:#fde2e2;color:#7f1d1d}.running,.queued{background:#e0ecff;color:#1e3a8a}
        .charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figure svg{max-width:100%;height:auto;display:block}
        figure.wide{overflow-x:auto}.muted{color:#777}
        .banner{background:#fde2e2;border:1px solid #f5a3a3;color:#7f1d1d;padding:.7em 1em;border-radius:.4em;margin:1em 0}
        .banner ul{margin:.4em 0 0;padding-left:1.4em}.headline{font-size:1.1em}
        table.samples{table-layout:fixed}
        pre.reply{margin:.3em 0 0;padding:.4em;white-space:pre-wrap;word-break:break-word;font-size:12px}
        td.details{word-break:break-word}td.num{white-space:nowrap}details{margin-top:.6em}summary{cursor:pointer;color:#555}
        """
}
