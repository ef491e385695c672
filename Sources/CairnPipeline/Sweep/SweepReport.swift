import CairnStore
import CairnSystem
import Foundation

/// `cairn report SWEEP --out DIR`: the sweep's page (DIR/sweep-ID.html, self-contained): the
/// comparison table, the objective against each parameter, and a parallel-coordinates plot of
/// every variant (an axis per parameter and one for the objective; the best drawn on top, stopped
/// and rejected variants grey). Each drawing is also written as a standalone .svg.
public enum SweepReport {
    /// A parameter's values as positions in [0, 1]: numbers on a log scale when they span more
    /// than a factor of 10 (learning rates), else linear; other values in sorted order.
    static func axis(_ values: [String]) -> (position: (String) -> Double, ticks: [String]) {
        let distinct = Array(Set(values)).sorted { (Double($0) ?? .infinity, $0) < (Double($1) ?? .infinity, $1) }
        let numbers = distinct.compactMap(Double.init)
        if numbers.count == distinct.count, let lo = numbers.min(), let hi = numbers.max(), hi > lo {
            let log = lo > 0 && hi / lo > 10
            let f = { (x: Double) in log ? Foundation.log(x) : x }
            return ({ ((Double($0).map(f) ?? f(lo)) - f(lo)) / (f(hi) - f(lo)) }, distinct)
        }
        return ({ v in distinct.count < 2 ? 0.5 : Double(distinct.firstIndex(of: v) ?? 0) / Double(distinct.count - 1) }, distinct)
    }

    static func color(_ row: SweepOutcome.Row) -> String {
        row.best ? "#d97706" : row.status == "succeeded" ? "#2563eb" : "#9ca3af"
    }

    /// Every variant as a line across the axes: the parameters, then the objective.
    static func parallelCoordinates(_ o: SweepOutcome) -> String? {
        guard let objective = o.objectives.first?.name, !o.rows.isEmpty else { return nil }
        let names = o.parameterNames + [objective]
        let columns = names.map { n in o.rows.map { n == objective ? ($0.metrics[n].map { String(format: "%.6g", $0) } ?? "") : ($0.params[n] ?? "") } }
        let axes = columns.map { axis($0.filter { !$0.isEmpty }) }
        let left = 70.0, gap = max(140.0, 560.0 / Double(max(names.count - 1, 1))), top = 40.0, h = 220.0
        let width = left * 2 + gap * Double(names.count - 1), height = top + h + 50
        var s = RunReport.svgOpen(width: width, height: height, label: "sweep \(o.sweepID): parallel coordinates")
        s += "<text x=\"\(RunReport.c(left))\" y=\"20\" font-size=\"13\" font-weight=\"600\" fill=\"#1d232a\">\(RunReport.esc("each variant across its parameters and \(objective)"))</text>"
        func x(_ i: Int) -> Double { left + gap * Double(i) }
        func y(_ p: Double) -> Double { top + (1 - p) * h }
        for (i, n) in names.enumerated() {
            s += "<line x1=\"\(RunReport.c(x(i)))\" x2=\"\(RunReport.c(x(i)))\" y1=\"\(RunReport.c(top))\" y2=\"\(RunReport.c(top + h))\" stroke=\"#9ca3af\"/>"
            s += "<text x=\"\(RunReport.c(x(i)))\" y=\"\(RunReport.c(top + h + 22))\" text-anchor=\"middle\" fill=\"#1d232a\">\(RunReport.esc(n))</text>"
            for t in axes[i].ticks.prefix(8) {
                s += "<text x=\"\(RunReport.c(x(i) - 6))\" y=\"\(RunReport.c(y(axes[i].position(t)) + 4))\" text-anchor=\"end\" font-size=\"10\" fill=\"#555\">\(RunReport.esc(t))</text>"
            }
        }
        // Grey lines first, the best last, so it is on top.
        for (r, row) in o.rows.enumerated().sorted(by: { ($0.1.best ? 1 : 0, $0.0) < ($1.1.best ? 1 : 0, $1.0) }) {
            let points = names.indices.compactMap { i -> String? in
                let v = columns[i][r]
                return v.isEmpty ? nil : "\(RunReport.c(x(i))),\(RunReport.c(y(axes[i].position(v))))"
            }
            s += "<polyline points=\"\(points.joined(separator: " "))\" fill=\"none\" stroke=\"\(color(row))\" stroke-width=\"\(row.best ? 3 : 1.5)\" opacity=\"0.85\">"
                + "<title>run \(row.run): \(RunReport.esc(row.label)) (\(row.status))</title></polyline>"
        }
        return s + "</svg>"
    }

    /// The objective against one parameter: a dot per variant that has the objective.
    static func scatter(_ o: SweepOutcome, parameter: String) -> String? {
        guard let objective = o.objectives.first?.name else { return nil }
        let rows = o.rows.filter { $0.metrics[objective] != nil && $0.params[parameter] != nil }
        guard !rows.isEmpty else { return nil }
        let ax = axis(rows.map { $0.params[parameter]! })
        let ys = rows.map { $0.metrics[objective]! }
        var y0 = ys.min()!, y1 = ys.max()!
        if y1 - y0 < 1e-9 { y0 -= 0.5; y1 += 0.5 }
        let left = 64.0, top = 34.0, w = 300.0, h = 170.0
        var s = RunReport.svgOpen(width: left + w + 20, height: top + h + 44, label: "\(objective) against \(parameter)")
        s += "<text x=\"\(RunReport.c(left))\" y=\"20\" font-size=\"13\" font-weight=\"600\" fill=\"#1d232a\">\(RunReport.esc("\(objective) against \(parameter)"))</text>"
        s += "<rect x=\"\(RunReport.c(left))\" y=\"\(RunReport.c(top))\" width=\"\(RunReport.c(w))\" height=\"\(RunReport.c(h))\" fill=\"none\" stroke=\"#e5e7eb\"/>"
        func px(_ p: Double) -> Double { left + 12 + p * (w - 24) }
        func py(_ v: Double) -> Double { top + 10 + (1 - (v - y0) / (y1 - y0)) * (h - 20) }
        for t in ax.ticks.prefix(8) {
            s += "<text x=\"\(RunReport.c(px(ax.position(t))))\" y=\"\(RunReport.c(top + h + 16))\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">\(RunReport.esc(t))</text>"
        }
        for v in [y0, (y0 + y1) / 2, y1] {
            s += "<text x=\"\(RunReport.c(left - 6))\" y=\"\(RunReport.c(py(v) + 4))\" text-anchor=\"end\" font-size=\"10\" fill=\"#555\">\(RunReport.fmt(v))</text>"
        }
        for row in rows {
            s += "<circle cx=\"\(RunReport.c(px(ax.position(row.params[parameter]!))))\" cy=\"\(RunReport.c(py(row.metrics[objective]!)))\" r=\"\(row.best ? 6 : 4.5)\" "
                + "fill=\"\(color(row))\"><title>run \(row.run): \(RunReport.esc(row.label))</title></circle>"
        }
        return s + "</svg>"
    }

    /// Writes DIR/sweep-ID.html and its drawings; returns the paths, the page first.
    public static func write(_ o: SweepOutcome, to dir: String) throws -> [String] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let safe = String(o.sweepID.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" })
        var drawings: [(String, String)] = []
        if let p = parallelCoordinates(o) { drawings.append(("parallel", p)) }
        for n in o.parameterNames { if let s = scatter(o, parameter: n) { drawings.append((n, s)) } }
        let cells = o.cells()
        var table = "<table><tr>" + cells[0].map { "<th>\(RunReport.esc($0))</th>" }.joined() + "</tr>"
        for (row, c) in zip(o.rows, cells.dropFirst()) {
            table += "<tr\(row.best ? " class=\"best\"" : "")>" + c.map { "<td>\(RunReport.esc($0))</td>" }.joined() + "</tr>"
        }
        table += "</table>"
        let objectives = o.objectives.map { "\($0.name) (\($0.maximize ? "higher" : "lower") is better)" }.joined(separator: ", then ")
        var body = "<h1>Sweep \(RunReport.esc(o.sweepID))</h1><p>\(o.rows.count) variant(s); ranked by \(RunReport.esc(objectives)). "
        body += o.best.map { "The best, marked *, is run \($0)." } ?? "No variant passed every gate."
        body += (o.promotion.map { " " + RunReport.esc($0) + "." } ?? "") + "</p>" + table
        body += "<h2>Every variant</h2>" + drawings.map { "<figure>\($0.1)</figure>" }.joined()
        let css = "body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1d232a}"
            + "table{border-collapse:collapse;font-size:.8em;width:100%}td,th{border:1px solid #dde;padding:.25em .4em;text-align:left;overflow-wrap:anywhere}th{background:#f4f6f8}"
            + "tr.best td{background:#fef3c7}figure{margin:1em 0;display:inline-block}svg{max-width:100%;height:auto}"
        let page = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cairn sweep \(RunReport.esc(o.sweepID))</title>"
            + "<style>\(css)</style></head><body>\(body)</body></html>\n"
        var paths = [dir + "/sweep-\(safe).html"]
        try AtomicFile.write(page, to: paths[0])
        for (name, svg) in drawings {
            let file = dir + "/sweep-\(safe)-\(name.replacingOccurrences(of: ".", with: "-")).svg"
            try AtomicFile.write(RunReport.svgDocument(svg), to: file)
            paths.append(file)
        }
        return paths
    }
}
