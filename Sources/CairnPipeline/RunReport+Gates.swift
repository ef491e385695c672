import CairnStore
import Foundation

/// The gates: a banner saying why a run stopped, and each gate's checks as a table.
extension RunReport {
    /// Every stage's gate report that parses, in stage order.
    static func gateReports(_ stages: [StageExecutionRecord]) -> [(stage: String, report: GateReport)] {
        stages.compactMap { s in GateReport(json: s.gateReport).map { (s.stage, $0) } }
    }

    /// The checks that failed in a gate, as "name — details" (details cut to 300 characters).
    static func failures(_ report: GateReport) -> [String] {
        report.results.filter { !$0.passed }.map { c in
            let d = c.details.count > 300 ? c.details.prefix(299) + "…" : c.details[...]
            return "\(c.name) — \(d)"
        }
    }

    /// Why a run that did not succeed stopped, at the top of its page: the stage and the failing
    /// checks of a rejected run, the stage and error of a failed one; empty otherwise.
    static func banner(status: RunStatus, run: RunRecord, stages: [StageExecutionRecord]) -> String {
        switch status {
        case .rejected:
            let failed = gateReports(stages).filter { !$0.report.passed }
            guard let last = failed.last else { return "<div class=\"banner\"><b>Rejected</b> by a gate.</div>" }
            let items = failures(last.report).map { "<li>\(esc($0))</li>" }.joined()
            return "<div class=\"banner\"><b>Rejected after \(esc(last.stage))</b>: the gate failed, no alias was moved.<ul>\(items)</ul></div>"
        case .failed, .interrupted:
            let bad = stages.last { $0.status == status || $0.error != nil }
            let why = bad?.error ?? run.metadata["error"]?.stringValue ?? "no error recorded"
            return "<div class=\"banner\"><b>\(status.rawValue.capitalized)" + (bad.map { " at \(esc($0.stage))" } ?? "")
                + "</b>: \(esc(why))</div>"
        default:
            return ""
        }
    }

    /// Each gate's checks as a table.
    static func gatesSection(_ gates: [(stage: String, report: GateReport)]) -> String {
        var body = "<h2>Gates</h2>"
        for (stage, g) in gates {
            body += "<h3>After \(esc(stage)) <span class=\"s \(g.passed ? "succeeded" : "rejected")\">\(g.passed ? "passed" : "failed")</span></h3>"
            body += "<table><tr><th>check</th><th>result</th><th>mode</th><th>value</th><th>time</th><th>details</th></tr>"
            for c in g.results {
                body += "<tr><td>\(esc(c.name))</td><td><span class=\"s \(c.passed ? "succeeded" : "rejected")\">\(esc(c.status.rawValue))</span></td>"
                body += "<td>\(c.blocking ? "blocking" : "parallel")</td><td>\(c.value.map(fmt) ?? "")</td>"
                body += "<td class=\"num\">\(String(format: "%.2f s", c.seconds))</td><td class=\"details\">\(esc(c.details))</td></tr>"
            }
            body += "</table>"
        }
        return body
    }
}
