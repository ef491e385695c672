import CairnStore
import Foundation

/// The lineage graph drawn as SVG (see `LineageLayout` for where things go).
extension RunReport {
    /// Fill and stroke of a box by artifact kind (dataset, config, base-model, adapter, …-model,
    /// export/gguf; anything else grey).
    static func kindColors(_ kind: String) -> (fill: String, stroke: String) {
        let k = kind.lowercased()
        if k.contains("dataset") || k.contains("data") { return ("#e0f2fe", "#0369a1") }
        if k.contains("config") { return ("#fef3c7", "#b45309") }
        if k.contains("base") { return ("#ede9fe", "#6d28d9") }
        if k.contains("adapter") { return ("#dcfce7", "#15803d") }
        if k.contains("export") || k.contains("gguf") { return ("#ffedd5", "#c2410c") }
        if k.contains("model") { return ("#fce7f3", "#be185d") }
        return ("#f3f4f6", "#4b5563")
    }

    /// At most `n` characters: the tail of a longer one after "…" (a path's end says most).
    static func tail(_ s: String, _ n: Int) -> String { s.count <= n ? s : "…" + s.suffix(n - 1) }

    /// What made an artifact, in a few words: "run 2 · sft @ 568b90a164", "added by hand", "".
    static func madeBy(_ n: LineageNode) -> String {
        if n.collected { return "content removed by gc" }
        guard let p = n.producer else { return "" }
        switch p.pipeline {
        case "manual": return "added by hand (run \(p.run))"
        case "import": return "imported (run \(p.run))"
        default: return "run \(p.run) · \(p.stage)" + (p.commit.map { " @ \($0.prefix(10))" } ?? "")
        }
    }

    /// The ancestors of an artifact as a drawing of its own: a box per artifact (kind, short id,
    /// name, and the run, stage and commit that made it), an arrow per input→output pair
    /// labelled with the role; the graph's root (the artifact itself) outlined thicker.
    public static func lineageSVG(_ graph: LineageGraph) -> String {
        let layout = LineageLayout(graph)
        var s = svgOpen(width: layout.width, height: layout.height, label: "lineage of \(graph.root.short)")
        s += "<defs><marker id=\"cairn-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">"
            + "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#6b7280\"/></marker></defs>"
        for a in layout.arrows { s += arrowPath(a) }
        for b in layout.boxes { s += box(b, root: b.node.id == graph.root) }
        for a in layout.arrows { s += arrowLabel(a) }
        return s + "</svg>"
    }

    /// An arrow as one path: straight through the columns it passes, curved between them.
    private static func arrowPath(_ a: LineageLayout.Arrow) -> String {
        var d = "M\(c(a.points[0].x)),\(c(a.points[0].y))"
        for (p, q) in zip(a.points, a.points.dropFirst()) {
            let mx = c((p.x + q.x) / 2)
            d += p.y == q.y ? " L\(c(q.x)),\(c(q.y))" : " C\(mx),\(c(p.y)) \(mx),\(c(q.y)) \(c(q.x)),\(c(q.y))"
        }
        return "<path d=\"\(d)\" fill=\"none\" stroke=\"#9ca3af\" stroke-width=\"1.4\" marker-end=\"url(#cairn-arrow)\"/>"
    }

    /// The role beside the arrow's head, on a white halo so that crossing lines do not hide it.
    private static func arrowLabel(_ a: LineageLayout.Arrow) -> String {
        let end = a.points.last!
        return "<text x=\"\(c(end.x - 8))\" y=\"\(c(end.y - 4))\" font-size=\"10.5\" fill=\"#374151\" text-anchor=\"end\" "
            + "stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\">\(esc(tail(a.label, 16)))</text>"
    }

    /// One artifact's box: four lines of text, the full details in its tooltip.
    private static func box(_ b: LineageLayout.Box, root: Bool) -> String {
        let n = b.node, color = kindColors(n.kind), x = b.x + 8, made = madeBy(n)
        let tip = "\(n.kind) \(n.id.description)\n\(n.name)" + (made.isEmpty ? "" : "\n\(made)")
        func line(_ k: Double) -> String { c(b.y + 4 + k * LineageLayout.lineHeight) }
        var s = "<g><title>\(esc(tip))</title>"
        s += "<rect data-artifact=\"\(n.id.hex)\" x=\"\(c(b.x))\" y=\"\(c(b.y))\" width=\"\(c(b.width))\" height=\"\(c(b.height))\" rx=\"6\" "
            + "fill=\"\(color.fill)\" stroke=\"\(color.stroke)\" stroke-width=\"\(root ? "2.6" : "1.2")\"/>"
        s += "<text x=\"\(c(x))\" y=\"\(line(1))\" font-size=\"12\" font-weight=\"700\" fill=\"\(color.stroke)\">\(esc(tail(n.kind, 24)))</text>"
        s += "<text x=\"\(c(x))\" y=\"\(line(2))\" font-size=\"11\" font-family=\"\(monoFamily)\" fill=\"#1f2937\">\(esc(n.id.short))</text>"
        s += "<text x=\"\(c(x))\" y=\"\(line(3))\" font-size=\"11.5\" fill=\"#111827\">\(esc(tail(n.name, 25)))</text>"
        if !made.isEmpty { s += "<text x=\"\(c(x))\" y=\"\(line(4))\" font-size=\"10.5\" fill=\"#4b5563\">\(esc(tail(made, 30)))</text>" }
        return s + "</g>"
    }
}
