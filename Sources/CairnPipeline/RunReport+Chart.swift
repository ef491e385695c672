import Foundation

/// Line charts as SVG. Every drawing carries its own presentation attributes (fill, stroke,
/// font-size, font-family) and a white background, so the same bytes work inline in the page
/// and as a standalone .svg file (a README image), where the page's CSS does not reach.
extension RunReport {
    /// One series of a chart: (step, value) points, a CSS colour, and how to draw it.
    public struct ChartSeries: Sendable {
        public var label: String
        public var points: [Point]
        public var color: String
        /// A dot on every point (held-out evaluations are few and far apart); otherwise only the
        /// last point has one.
        public var dots: Bool
        public var dashed: Bool

        public init(label: String, points: Series, color: String, dots: Bool = false, dashed: Bool = false) {
            self.label = label; self.points = points.map { Point(x: $0.x, y: $0.y) }; self.color = color
            self.dots = dots; self.dashed = dashed
        }
    }

    /// A point in data units (x: step, y: the measure).
    public struct Point: Sendable, Equatable { public var x: Double; public var y: Double }

    /// The fonts of every drawing (system UI fonts; no web fonts, the page loads nothing).
    static let fontFamily = "system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"
    static let monoFamily = "ui-monospace,SFMono-Regular,Menlo,Consolas,monospace"

    /// The opening tag of a drawing of `width`×`height` px with a white background. Inline, the
    /// page's CSS lets it shrink to the column (max-width: 100%).
    static func svgOpen(width: Double, height: Double, label: String) -> String {
        let w = Int(width.rounded(.up)), h = Int(height.rounded(.up))
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" role=\"img\" "
            + "aria-label=\"\(esc(label))\" font-family=\"\(fontFamily)\" font-size=\"12\">"
            + "<title>\(esc(label))</title><rect width=\"\(w)\" height=\"\(h)\" fill=\"#ffffff\"/>"
    }

    /// A drawing as a file of its own: the XML declaration, then the SVG as in the page.
    public static func svgDocument(_ svg: String) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg + "\n"
    }

    /// A number with one decimal, for coordinates (stable bytes, small files).
    static func c(_ v: Double) -> String { String(format: "%.1f", v) }

    /// A line chart of N series on shared axes, in px: 5 ticks on each axis, a legend when there
    /// is more than one series, each series' last value labelled. Nil when no series has a point.
    public static func chart(_ series: [ChartSeries], title: String, yLabel: String,
                             width: Double = 540, height: Double = 270) -> String? {
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { return nil }
        let left = 58.0, right = 20.0, top = series.count > 1 ? 50.0 : 34.0, bottom = 38.0
        let x0 = all.map(\.x).min()!, x1 = max(all.map(\.x).max()!, x0 + 1)
        var y0 = all.map(\.y).min()!, y1 = all.map(\.y).max()!
        if y1 - y0 < 1e-9 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.06
        y0 -= pad; y1 += pad
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (width - left - right) }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom) }

        var s = svgOpen(width: width, height: height, label: title)
        s += "<text x=\"\(c(left))\" y=\"20\" font-size=\"14\" font-weight=\"600\" fill=\"#1d232a\">\(esc(title))</text>"
        s += axes(x0: x0, x1: x1, y0: y0, y1: y1, px: px, py: py, left: left, right: right, top: top, bottom: bottom,
                  width: width, height: height, yLabel: yLabel)
        if series.count > 1 { s += legend(series, x: left, y: 38) }
        for (i, line) in series.enumerated() where !line.points.isEmpty { s += draw(line, labelBelow: i > 0, px: px, py: py) }
        return s + "</svg>"
    }

    /// Grid lines, tick labels and axis titles (px: the data-to-pixel maps of the chart).
    private static func axes(x0: Double, x1: Double, y0: Double, y1: Double, px: (Double) -> Double, py: (Double) -> Double,
                             left: Double, right: Double, top: Double, bottom: Double, width: Double, height: Double,
                             yLabel: String) -> String {
        var s = ""
        for i in 0...4 {
            let yv = y0 + (y1 - y0) * Double(i) / 4, y = py(yv)
            s += "<line x1=\"\(c(left))\" x2=\"\(c(width - right))\" y1=\"\(c(y))\" y2=\"\(c(y))\" stroke=\"#e5e7eb\"/>"
            s += "<text x=\"\(c(left - 6))\" y=\"\(c(y + 4))\" font-size=\"11\" fill=\"#555555\" text-anchor=\"end\">\(fmt(yv))</text>"
            let xv = x0 + (x1 - x0) * Double(i) / 4
            s += "<text x=\"\(c(px(xv)))\" y=\"\(c(height - bottom + 16))\" font-size=\"11\" fill=\"#555555\" text-anchor=\"middle\">\(Int(xv.rounded()))</text>"
        }
        s += "<line x1=\"\(c(left))\" x2=\"\(c(left))\" y1=\"\(c(top))\" y2=\"\(c(height - bottom))\" stroke=\"#9ca3af\"/>"
        s += "<text x=\"\(c((left + width - right) / 2))\" y=\"\(c(height - 5))\" font-size=\"11\" fill=\"#555555\" text-anchor=\"middle\">step</text>"
        let my = c((top + height - bottom) / 2)
        s += "<text x=\"13\" y=\"\(my)\" font-size=\"11\" fill=\"#555555\" text-anchor=\"middle\" transform=\"rotate(-90 13 \(my))\">\(esc(yLabel))</text>"
        return s
    }

    /// One swatch and label per series, left to right from (x, y) (y: the text baseline).
    private static func legend(_ series: [ChartSeries], x: Double, y: Double) -> String {
        var s = "", at = x
        for line in series {
            s += "<line x1=\"\(c(at))\" x2=\"\(c(at + 22))\" y1=\"\(c(y - 4))\" y2=\"\(c(y - 4))\" stroke=\"\(line.color)\" stroke-width=\"2\"\(line.dashed ? " stroke-dasharray=\"5 3\"" : "")/>"
            if line.dots { s += "<circle cx=\"\(c(at + 11))\" cy=\"\(c(y - 4))\" r=\"3.5\" fill=\"\(line.color)\"/>" }
            s += "<text x=\"\(c(at + 28))\" y=\"\(c(y))\" font-size=\"12\" fill=\"#333333\">\(esc(line.label))</text>"
            at += 40 + Double(line.label.count) * 7
        }
        return s
    }

    /// The polyline of one series, its dots, and its last value (above the last point, or below
    /// it for the second and later series, so that two series ending together stay readable).
    private static func draw(_ line: ChartSeries, labelBelow: Bool, px: (Double) -> Double, py: (Double) -> Double) -> String {
        var s = ""
        if line.points.count > 1 {
            let points = line.points.map { "\(c(px($0.x))),\(c(py($0.y)))" }.joined(separator: " ")
            s += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"2\"\(line.dashed ? " stroke-dasharray=\"5 3\"" : "")/>"
        }
        for p in line.dots ? line.points : [line.points.last!] {
            s += "<circle cx=\"\(c(px(p.x)))\" cy=\"\(c(py(p.y)))\" r=\"3.5\" fill=\"\(line.color)\"/>"
        }
        let last = line.points.last!
        s += "<text x=\"\(c(px(last.x) - 5))\" y=\"\(c(py(last.y) + (labelBelow ? 17 : -8)))\" font-size=\"11\" font-weight=\"600\" fill=\"\(line.color)\" text-anchor=\"end\">\(fmt(last.y))</text>"
        return s
    }
}
