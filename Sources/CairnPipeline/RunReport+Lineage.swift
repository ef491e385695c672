import CairnStore
import Foundation

/// A lineage graph laid out left to right, in px: one column per layer, a box per artifact, an
/// arrow per (input, output) pair labelled with its role(s).
///
/// The layer of an artifact is the longest path to it from a source; a source (an artifact made
/// from nothing) sits one column left of its first user, so that a dataset only DPO reads is not
/// drawn four columns away. An arrow that spans several columns passes through a slot in each
/// column between (so it never crosses a box), and each column is ordered by the mean position
/// of its neighbours, sweeping right then left (barycentre heuristic), to keep crossings down.
/// Everything is sorted before use: the same graph gives the same bytes.
struct LineageLayout {
    struct Box { let node: LineageNode; let x, y, width, height: Double }
    /// One arrow: its points from the input's right side to the output's left side.
    struct Arrow { let label: String; let points: [(x: Double, y: Double)] }

    static let boxWidth = 178.0, columnGap = 96.0, slotGap = 18.0, margin = 14.0
    static let lineHeight = 15.0, portSpacing = 19.0, passHeight = 10.0

    private(set) var boxes: [Box] = []
    private(set) var arrows: [Arrow] = []
    private(set) var width = 0.0, height = 0.0

    /// A slot of a column: an artifact (index into nodes) or an arrow passing through.
    private struct Slot { let node: Int?; let layer: Int; var preds: [Int] = []; var succs: [Int] = [] }

    init(_ graph: LineageGraph) {
        let nodes = Self.uniqueNodes(graph)
        let index = Dictionary(uniqueKeysWithValues: nodes.enumerated().map { ($1.id, $0) })
        let links = Self.links(graph, index)
        let layer = Self.layers(count: nodes.count, links: links)
        var slots = nodes.indices.map { Slot(node: $0, layer: layer[$0]) }
        var chains: [(link: (from: Int, to: Int, label: String), path: [Int])] = []
        for l in links {
            var path = [l.from]
            for k in stride(from: layer[l.from] + 1, to: layer[l.to], by: 1) {
                slots.append(Slot(node: nil, layer: k)); path.append(slots.count - 1)
            }
            path.append(l.to)
            for (a, b) in zip(path, path.dropFirst()) { slots[a].succs.append(b); slots[b].preds.append(a) }
            chains.append((l, path))
        }
        let columns = Self.order(slots)
        let heights = slots.map { s in s.node == nil ? Self.passHeight
            : max(4 * Self.lineHeight + 10, Double(max(s.preds.count, s.succs.count) + 1) * Self.portSpacing) }
        var y = [Double](repeating: 0, count: slots.count), x = y
        let columnHeight = columns.map { col in col.map { heights[$0] }.reduce(0, +) + Double(max(col.count - 1, 0)) * Self.slotGap }
        height = (columnHeight.max() ?? 0) + 2 * Self.margin
        for (c, col) in columns.enumerated() {
            var at = Self.margin + ((columnHeight.max() ?? 0) - columnHeight[c]) / 2
            for s in col { x[s] = Self.margin + Double(c) * (Self.boxWidth + Self.columnGap); y[s] = at; at += heights[s] + Self.slotGap }
        }
        width = Double(columns.count) * (Self.boxWidth + Self.columnGap) - Self.columnGap + 2 * Self.margin
        boxes = slots.compactMap { s in s.node.map { n in Box(node: nodes[n], x: x[n], y: y[n], width: Self.boxWidth, height: heights[n]) } }
        // Ports: a box's arrows leave and arrive spread over its height, in the order of the other ends.
        func port(_ s: Int, _ other: Int, _ ends: [Int]) -> Double {
            let sorted = ends.sorted { (y[$0], $0) < (y[$1], $1) }
            return y[s] + heights[s] * Double(sorted.firstIndex(of: other)! + 1) / Double(sorted.count + 1)
        }
        arrows = chains.map { chain in
            let p = chain.path
            var points = [(x[p[0]] + Self.boxWidth, port(p[0], p[1], slots[p[0]].succs))]
            for s in p.dropFirst().dropLast() { let cy = y[s] + heights[s] / 2; points += [(x[s], cy), (x[s] + Self.boxWidth, cy)] }
            points.append((x[p.last!], port(p.last!, p[p.count - 2], slots[p.last!].preds)))
            return Arrow(label: chain.link.label, points: points.map { (x: $0.0, y: $0.1) })
        }
    }

    /// The graph's nodes once each, sorted by kind, name and id.
    private static func uniqueNodes(_ g: LineageGraph) -> [LineageNode] {
        var seen = Set<ArtifactID>()
        return g.nodes.filter { seen.insert($0.id).inserted }.sorted { ($0.kind, $0.name, $0.id.hex) < ($1.kind, $1.name, $1.id.hex) }
    }

    /// One link per (input, output) pair, its label the distinct roles joined; sorted.
    private static func links(_ g: LineageGraph, _ index: [ArtifactID: Int]) -> [(from: Int, to: Int, label: String)] {
        var roles: [Pair: Set<String>] = [:]
        for e in g.edges {
            guard let a = index[e.input], let b = index[e.output], a != b else { continue }
            roles[Pair(a: a, b: b), default: []].insert(e.role)
        }
        return roles.keys.sorted { ($0.a, $0.b) < ($1.a, $1.b) }.map { ($0.a, $0.b, roles[$0]!.sorted().joined(separator: ", ")) }
    }
    private struct Pair: Hashable { let a: Int; let b: Int }

    /// Each node's column: the longest path from a source; sources one left of their first user.
    private static func layers(count: Int, links: [(from: Int, to: Int, label: String)]) -> [Int] {
        var inputs = [[Int]](repeating: [], count: count), outputs = inputs
        for l in links { inputs[l.to].append(l.from); outputs[l.from].append(l.to) }
        var memo = [Int?](repeating: nil, count: count), visiting = Set<Int>()
        func longest(_ n: Int) -> Int {
            if let m = memo[n] { return m }
            guard visiting.insert(n).inserted else { return 0 }  // a cycle: not in a store's lineage, but never loop
            let v = inputs[n].isEmpty ? 0 : 1 + inputs[n].map(longest).max()!
            memo[n] = v
            return v
        }
        var layer = (0..<count).map(longest)
        for n in 0..<count where inputs[n].isEmpty && !outputs[n].isEmpty {
            layer[n] = outputs[n].map { layer[$0] }.min()! - 1
        }
        return layer
    }

    /// The slots of each column, top to bottom: the nodes' sorted order first, then four sweeps
    /// (right, left, right, left) sorting each column by the mean row of its neighbours in the
    /// column just swept (a slot with none keeps its row; ties keep the current order).
    private static func order(_ slots: [Slot]) -> [[Int]] {
        let count = (slots.map(\.layer).max() ?? -1) + 1
        var columns = [[Int]](repeating: [], count: count)
        for (i, s) in slots.enumerated() { columns[s.layer].append(i) }
        var row = [Int](repeating: 0, count: slots.count)
        func number() { for col in columns { for (r, s) in col.enumerated() { row[s] = r } } }
        number()
        func sweep(_ c: Int, _ neighbours: (Slot) -> [Int]) {
            let key = columns[c].map { s -> (Double, Int) in
                let ns = neighbours(slots[s])
                return (ns.isEmpty ? Double(row[s]) : Double(ns.map { row[$0] }.reduce(0, +)) / Double(ns.count), row[s])
            }
            columns[c] = zip(columns[c], key).sorted { ($0.1.0, $0.1.1) < ($1.1.0, $1.1.1) }.map(\.0)
            for (r, s) in columns[c].enumerated() { row[s] = r }
        }
        for _ in 0..<2 {
            for c in columns.indices.dropFirst() { sweep(c, \.preds) }
            for c in columns.indices.dropLast().reversed() { sweep(c, \.succs) }
        }
        return columns
    }
}
