import CairnStore
import Foundation

/// Sample replies the gates kept: the same prompts before training (the base model), after SFT
/// and after DPO, side by side; and the red-team prompts with their replies.
extension RunReport {
    /// The check `name` of the gate after `stage`, if that gate ran it.
    static func check(_ gates: [(stage: String, report: GateReport)], stage: String, _ name: String) -> CheckResult? {
        gates.last { $0.stage == stage }?.report.results.first { $0.name == name }
    }

    /// A fraction (0…1) as a whole percentage, "–" when not measured.
    static func percent(_ v: Double?) -> String { v.map { String(format: "%.0f%%", $0 * 100) } ?? "–" }

    /// A reply in a monospace cell, marked valid or invalid (nil: not judged by the gate, as in
    /// reports stored before the gate judged the base model's replies; one that does not even
    /// parse as JSON is marked invalid).
    static func replyCell(_ reply: String?, ok: Bool?, marks: (yes: String, no: String) = ("valid", "invalid")) -> String {
        guard let reply else { return "<td class=\"muted\">–</td>" }
        let judged = ok ?? (JSONValue.parse(reply.trimmingCharacters(in: .whitespacesAndNewlines)).map { _ in nil } ?? false)
        let mark = judged.map { $0 ? "<span class=\"s succeeded\">\(marks.yes)</span>" : "<span class=\"s rejected\">\(marks.no)</span>" }
            ?? "<span class=\"s muted\">not checked</span>"
        return "<td>\(mark)<pre class=\"reply\">\(esc(reply))</pre></td>"
    }

    /// The headline and the before/after table of `output_format_valid`, and the red-team table
    /// of `no_harmful_content`; empty when no gate kept samples.
    static func samplesSection(_ gates: [(stage: String, report: GateReport)]) -> String {
        let sft = check(gates, stage: "sft", "output_format_valid"), dpo = check(gates, stage: "dpo", "output_format_valid")
        var html = ""
        if sft?.samples != nil || dpo?.samples != nil {
            html += "<h2>Sample replies, before and after</h2>"
            html += "<p class=\"headline\">valid JSON: base model <b>\(percent(sft?.baseline))</b> → after SFT <b>\(percent(sft?.value))</b>"
                + (dpo != nil ? " → after DPO <b>\(percent(dpo?.value))</b>" : "") + "</p>"
            html += beforeAfterTable(sft: sft?.samples ?? [], dpo: dpo?.samples ?? [])
        }
        let red = gates.compactMap { g in g.report.results.first { $0.name == "no_harmful_content" && $0.samples != nil }.map { (g.stage, $0) } }
        if let (stage, c) = red.last {
            html += "<h3>Red-team prompts (after \(esc(stage)))</h3><table class=\"samples\"><tr><th>prompt</th><th>reply</th></tr>"
            for s in c.samples ?? [] {
                html += "<tr><td><pre class=\"reply\">\(esc(s.prompt))</pre></td>"
                    + replyCell(s.reply, ok: s.ok, marks: ("harmless", "flagged")) + "</tr>"
            }
            html += "</table>"
        }
        return html
    }

    /// prompt | base model (before) | after SFT | after DPO, one row per prompt (matched by text,
    /// in the order the SFT gate kept them, then any only the DPO gate has); no DPO column when
    /// the DPO gate kept no replies (a run rejected before DPO).
    static func beforeAfterTable(sft: [ReplySample], dpo: [ReplySample]) -> String {
        var prompts: [String] = []
        for p in sft.map(\.prompt) + dpo.map(\.prompt) where !prompts.contains(p) { prompts.append(p) }
        var html = "<table class=\"samples\"><tr><th>prompt</th><th>base model (before)</th><th>after SFT</th>"
            + (dpo.isEmpty ? "" : "<th>after DPO</th>") + "</tr>"
        for p in prompts {
            let a = sft.first { $0.prompt == p }, b = dpo.first { $0.prompt == p }
            html += "<tr><td><pre class=\"reply\">\(esc(p))</pre></td>" + replyCell(a?.baseline, ok: a?.baselineOK)
                + replyCell(a?.reply, ok: a?.ok) + (dpo.isEmpty ? "" : replyCell(b?.reply, ok: b?.ok)) + "</tr>"
        }
        return html + "</table>"
    }
}
