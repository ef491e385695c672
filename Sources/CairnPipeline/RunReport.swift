import CairnStore
import Foundation

/// `cairn report RUN`: one self-contained HTML page (no scripts, no external files) with each
/// training stage's loss curve drawn as SVG, every gate's table, the stage timings, and the
/// lineage of the run's final artifact.
public enum RunReport {
    /// A series of (step, value) points.
    public typealias Series = [(x: Double, y: Double)]

    /// The loss (and, for DPO, reward accuracy) per logged step of a metrics.jsonl.
    public static func series(metricsJSONL text: String, key: String) -> Series {
        text.split(separator: "\n").compactMap { line in
            guard let v = JSONValue.parse(String(line)), let s = v["step"]?.numberValue, let y = v[key]?.numberValue, y.isFinite else { return nil }
            return (s, y)
        }
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func fmt(_ v: Double) -> String {
        if v == 0 { return "0" }
        return abs(v) >= 100 || abs(v) < 0.01 ? String(format: "%.3g", v) : String(format: "%.3f", v)
    }

    /// A line chart: axes with 5 ticks each, the polyline, the last value labelled.
    public static func svg(_ series: Series, title: String, yLabel: String, width: Double = 560, height: Double = 240) -> String {
        guard !series.isEmpty else { return "<p class=\"muted\">no logged steps</p>" }
        let left = 56.0, right = 16.0, top = 28.0, bottom = 36.0
        let xs = series.map(\.x), ys = series.map(\.y)
        let x0 = xs.min()!, x1 = max(xs.max()!, x0 + 1)
        var y0 = ys.min()!, y1 = ys.max()!
        if y1 - y0 < 1e-9 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (width - left - right) }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(esc(title))\">"
        s += "<text x=\"\(left)\" y=\"18\" class=\"t\">\(esc(title))</text>"
        for i in 0...4 {
            let yv = y0 + (y1 - y0) * Double(i) / 4, y = py(yv)
            s += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(y)\" y2=\"\(y)\" class=\"g\"/><text x=\"\(left - 6)\" y=\"\(y + 4)\" class=\"a\" text-anchor=\"end\">\(fmt(yv))</text>"
            let xv = x0 + (x1 - x0) * Double(i) / 4, x = px(xv)
            s += "<text x=\"\(x)\" y=\"\(height - bottom + 16)\" class=\"a\" text-anchor=\"middle\">\(Int(xv.rounded()))</text>"
        }
        s += "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 4)\" class=\"a\" text-anchor=\"middle\">step</text>"
        s += "<text x=\"12\" y=\"\((top + height - bottom) / 2)\" class=\"a\" text-anchor=\"middle\" transform=\"rotate(-90 12 \((top + height - bottom) / 2))\">\(esc(yLabel))</text>"
        let points = series.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
        s += "<polyline points=\"\(points)\" class=\"l\"/>"
        let last = series.last!
        s += "<circle cx=\"\(px(last.x))\" cy=\"\(py(last.y))\" r=\"3\" class=\"d\"/><text x=\"\(px(last.x) - 4)\" y=\"\(py(last.y) - 8)\" class=\"a\" text-anchor=\"end\">\(fmt(last.y))</text>"
        return s + "</svg>"
    }

    /// The page for run `id`.
    public static func html(store: ArtifactStore, run id: Int64) throws -> String {
        guard let run = try store.run(id) else { throw ConfigError(file: "run \(id)", line: nil, "no such run") }
        let status = try Orchestrator.effectiveStatus(run)
        let stages = try store.stages(run: id)
        var body = "<h1>Run \(id): \(esc(run.pipeline)) <span class=\"s \(status.rawValue)\">\(status.rawValue)</span></h1>"
        body += "<p>Started \(esc(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: run.startedAt))))"
        if let f = run.finishedAt { body += String(format: ", took %.1f s", f - run.startedAt) }
        if let c = run.commit { body += ", commit <code>\(esc(c))</code>" + (run.branch.map { " on \(esc($0))" } ?? "") }
        body += ".</p>"

        body += "<h2>Stages</h2><table><tr><th>stage</th><th>attempt</th><th>status</th><th>time</th><th>outputs</th><th>error</th></tr>"
        for s in stages {
            let outs = try store.edges(execution: s.id, .generated).filter { $0.role != "log" }.map { "\(esc($0.role)) <code>\(esc($0.artifact.short))</code>" }
            body += "<tr><td>\(esc(s.stage))</td><td>\(s.attempt)</td><td><span class=\"s \(s.status.rawValue)\">\(s.status.rawValue)</span></td>"
            body += "<td>" + (s.finishedAt.map { String(format: "%.1f s", $0 - s.startedAt) } ?? "–") + "</td>"
            body += "<td>\(outs.joined(separator: "<br>"))</td><td>\(esc(s.error ?? ""))</td></tr>"
        }
        body += "</table>"

        body += try curvesSection(store, stages) + gatesSection(stages)
        if let final = run.metadata["final_artifact"]?.stringValue.flatMap(ArtifactID.init) {
            body += "<h2>Lineage of the final model</h2><p><code>\(esc(final.description))</code></p>"
            body += "<pre>\(esc(try store.ancestors(of: final).renderTree()))</pre>"
        }
        let css = """
            body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1d232a}
            h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #dde;padding-bottom:.2em}
            table{border-collapse:collapse;width:100%;font-size:.92em}td,th{border:1px solid #dde;padding:.3em .5em;text-align:left;vertical-align:top}
            th{background:#f4f6f8}code,pre{font:13px ui-monospace,monospace}pre{background:#f6f8fa;padding:1em;overflow:auto}
            .s{padding:.05em .45em;border-radius:.6em;font-size:.85em}.succeeded,.cached{background:#dcf5e3;color:#14532d}
            .failed,.rejected,.interrupted{background:#fde2e2;color:#7f1d1d}.running,.queued{background:#e0ecff;color:#1e3a8a}
            .charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}.muted{color:#777}
            svg .g{stroke:#e5e7eb}svg .a{font-size:11px;fill:#555}svg .t{font-size:13px;font-weight:600;fill:#1d232a}
            svg .l{fill:none;stroke:#2563eb;stroke-width:2}svg .d{fill:#2563eb}
            """
        return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cairn run \(id): \(esc(run.pipeline))</title><style>\(css)</style></head><body>\(body)</body></html>\n"
    }

    /// Training loss (and DPO's reward margin) of each training stage, from its stored metrics.jsonl.
    static func curvesSection(_ store: ArtifactStore, _ stages: [StageExecutionRecord]) throws -> String {
        var body = ""
        body += "<h2>Training curves</h2><div class=\"charts\">"
        var drawn = Set<String>()
        for s in stages where ["pretrain", "sft", "dpo"].contains(s.stage) && [.succeeded, .cached].contains(s.status) && !drawn.contains(s.stage) {
            guard let m = try store.edges(execution: s.id, .generated).first(where: { $0.role == "metrics" }) else { continue }
            let text = (try? store.readFile(m.artifact, path: "metrics.jsonl")).map { String(decoding: $0, as: UTF8.self) } ?? ""
            body += "<figure>" + svg(series(metricsJSONL: text, key: "loss"), title: "\(s.stage): training loss", yLabel: "loss") + "</figure>"
            if s.stage == "dpo" {
                body += "<figure>" + svg(series(metricsJSONL: text, key: "rewards/margins"), title: "dpo: reward margin", yLabel: "margin") + "</figure>"
            }
            drawn.insert(s.stage)
        }
        body += "</div>"

        return body
    }

    /// Each gate's checks as a table.
    static func gatesSection(_ stages: [StageExecutionRecord]) -> String {
        var body = ""
        body += "<h2>Gates</h2>"
        for s in stages {
            guard let g = GateReport(json: s.gateReport) else { continue }
            body += "<h3>After \(esc(s.stage)) <span class=\"s \(g.passed ? "succeeded" : "rejected")\">\(g.passed ? "passed" : "failed")</span></h3>"
            body += "<table><tr><th>check</th><th>result</th><th>mode</th><th>value</th><th>time</th><th>details</th></tr>"
            for c in g.results {
                let st = c.status.rawValue
                body += "<tr><td>\(esc(c.name))</td><td><span class=\"s \(c.passed ? "succeeded" : "rejected")\">\(esc(st))</span></td>"
                body += "<td>\(c.blocking ? "blocking" : "parallel")</td><td>\(c.value.map(fmt) ?? "")</td>"
                body += "<td>\(String(format: "%.2f s", c.seconds))</td><td>\(esc(c.details))</td></tr>"
            }
            body += "</table>"
        }

        return body
    }
}
