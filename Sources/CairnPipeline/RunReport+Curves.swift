import CairnStore
import Foundation

/// The training curves: per training stage, the training loss and the held-out loss on one chart
/// (and DPO's reward margin), from the stage's stored metrics.
extension RunReport {
    /// A drawing of the page that is also written as a file of its own, `run-N-<name>.svg`.
    public struct Drawing: Sendable, Equatable {
        public let name: String
        public let svg: String
    }

    static let trainingStages: Set<String> = ["pretrain", "sft", "dpo"]
    static let trainColor = "#2563eb", heldOutColor = "#ea580c", marginColor = "#7c3aed"

    /// The (step, `key`) points of a metrics.jsonl, one per line that has both. Training keys
    /// skip the evaluation lines (those carrying `eval_loss`), which may repeat training keys.
    public static func series(metricsJSONL text: String, key: String) -> Series {
        text.split(separator: "\n").compactMap { line in
            guard let v = JSONValue.parse(String(line)), let s = v["step"]?.numberValue, let y = v[key]?.numberValue, y.isFinite,
                  key.hasPrefix("eval_") || v["eval_loss"] == nil else { return nil }
            return (s, y)
        }
    }

    /// Held-out loss per evaluation: the metrics.jsonl lines with `eval_loss`, then the final
    /// one from the stage's summary (`eval_loss` at `total_steps`) unless a line already has it.
    public static func heldOut(metricsJSONL text: String, summary: JSONValue?) -> Series {
        var points = series(metricsJSONL: text, key: "eval_loss")
        if let loss = summary?["eval_loss"]?.numberValue, loss.isFinite,
           let step = summary?["total_steps"]?.numberValue ?? points.last?.x ?? series(metricsJSONL: text, key: "loss").last?.x,
           !points.contains(where: { $0.x == step }) {
            points.append((step, loss))
        }
        return points.sorted { $0.x < $1.x }
    }

    /// The loss chart of one training stage: training loss, and held-out loss when measured.
    public static func lossChart(stage: String, metricsJSONL text: String, summary: JSONValue?) -> String? {
        var lines = [ChartSeries(label: "training loss", points: series(metricsJSONL: text, key: "loss"), color: trainColor)]
        let held = heldOut(metricsJSONL: text, summary: summary)
        if !held.isEmpty {
            lines.append(ChartSeries(label: "held-out loss", points: held, color: heldOutColor, dots: true, dashed: true))
        }
        return chart(lines, title: "\(stage): " + (held.isEmpty ? "training loss" : "training and held-out loss"), yLabel: "loss")
    }

    /// The charts of every training stage that finished (once per stage name), with the
    /// drawings to write as files: `<stage>-loss` and `dpo-margin`.
    static func curvesSection(_ store: ArtifactStore, _ stages: [StageExecutionRecord]) throws -> (html: String, drawings: [Drawing]) {
        var html = "<h2>Training curves</h2>", drawings: [Drawing] = []
        var drawn = Set<String>()
        for s in stages where trainingStages.contains(s.stage) && [.succeeded, .cached].contains(s.status) && !drawn.contains(s.stage) {
            drawn.insert(s.stage)
            let (text, summary) = try metrics(store, s)
            if let svg = lossChart(stage: s.stage, metricsJSONL: text, summary: summary) {
                drawings.append(Drawing(name: "\(s.stage)-loss", svg: svg))
            }
            if s.stage == "dpo", let svg = chart([ChartSeries(label: "reward margin", points: series(metricsJSONL: text, key: "rewards/margins"), color: marginColor)],
                                                 title: "dpo: reward margin (chosen − rejected)", yLabel: "margin") {
                drawings.append(Drawing(name: "dpo-margin", svg: svg))
            }
        }
        if drawings.isEmpty { return (html + "<p class=\"muted\">No training stage finished in this run.</p>", []) }
        html += "<div class=\"charts\">" + drawings.map { "<figure>\($0.svg)</figure>" }.joined() + "</div>"
        return (html, drawings)
    }

    /// A stage's metrics.jsonl (empty when not stored) and its summary: the stage record's
    /// metrics, or the stored metrics.json when the record has no `eval_loss`.
    private static func metrics(_ store: ArtifactStore, _ s: StageExecutionRecord) throws -> (String, JSONValue?) {
        guard let m = try store.edges(execution: s.id, .generated).first(where: { $0.role == "metrics" }) else { return ("", s.metrics) }
        let text = (try? store.readFile(m.artifact, path: "metrics.jsonl")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        if s.metrics["eval_loss"] != nil { return (text, s.metrics) }
        let file = (try? store.readFile(m.artifact, path: "metrics.json")).flatMap { JSONValue.parse(String(decoding: $0, as: UTF8.self)) }
        return (text, file ?? s.metrics)
    }
}
