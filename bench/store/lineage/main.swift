// bench-store-lineage: times lineage queries and alias moves through the CairnStore library on a
// synthetic index made by bench/store/gen_lineage_index.py (1,000,000 artifacts by default).
//
//   bench-store-lineage --store DIR [--nodes FILE] [--reps N] [--warmup N]
//
// FILE (default DIR/bench-nodes.tsv) is written by the generator: one line per sampled chain,
// "<root id>\t<id of the node DEPTH levels below the root>\t<depth>", plus "#dataset\t<id>" lines.
// Each repetition uses a different chain, so the repetitions do not all hit the same pages.
// A "#busy-alias\t<name>\t<moves>" line names an alias with a long history, timed too (no goal).
// Goals (from the issue): ancestors/descendants p50 < 10 ms, alias set and rollback < 5 ms.
import CairnStore
import Foundation

struct Options {
    var store = ""
    var nodes: String?
    var reps = 300
    var warmup = 10
    var datasetReps = 20
    var busyReps = 50
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst().makeIterator()
    func value(_ flag: String) -> String {
        guard let v = args.next() else { fail("\(flag) needs a value") }
        return v
    }
    while let a = args.next() {
        switch a {
        case "--store": o.store = value(a)
        case "--nodes": o.nodes = value(a)
        case "--reps": o.reps = Int(value(a)) ?? 0
        case "--warmup": o.warmup = Int(value(a)) ?? 0
        case "--dataset-reps": o.datasetReps = Int(value(a)) ?? 0
        case "--busy-reps": o.busyReps = Int(value(a)) ?? 0
        case "-h", "--help":
            print("usage: bench-store-lineage --store DIR [--nodes FILE] [--reps N] [--warmup N] [--dataset-reps N] [--busy-reps N]")
            exit(0)
        default: fail("unknown argument '\(a)'")
        }
    }
    if o.store.isEmpty { fail("--store DIR is required") }
    if o.reps < 200 { fail("--reps must be at least 200 (the issue asks for >= 200 repetitions)") }
    return o
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("bench-store-lineage: \(message)\n".utf8))
    exit(2)
}

/// Milliseconds taken by `body`.
@inline(never)
func timed(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    // Nearest-rank percentile.
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[max(0, min(sorted.count - 1, rank - 1))]
}

struct Result {
    let name: String
    let samples: [Double]
    let goalMs: Double?
    let note: String
}

func fmt(_ v: Double) -> String { String(format: "%.3f", v) }

let opt = parseOptions()
let nodesPath = opt.nodes ?? opt.store + "/bench-nodes.tsv"
guard let text = try? String(contentsOfFile: nodesPath, encoding: .utf8) else { fail("cannot read \(nodesPath)") }
var chains: [(root: ArtifactID, deep: ArtifactID, depth: Int)] = []
var datasets: [ArtifactID] = []
var busyAlias: (name: String, moves: Int)?
for line in text.split(separator: "\n") {
    let f = line.split(separator: "\t").map(String.init)
    if f.first == "#dataset", f.count == 2, let d = ArtifactID(f[1]) { datasets.append(d); continue }
    if f.first == "#busy-alias", f.count == 3, let n = Int(f[2]) { busyAlias = (f[1], n); continue }
    guard f.count == 3, let r = ArtifactID(f[0]), let d = ArtifactID(f[1]), let depth = Int(f[2]) else { continue }
    chains.append((r, d, depth))
}
if chains.count < 2 || datasets.isEmpty { fail("\(nodesPath) lists \(chains.count) chain(s) and \(datasets.count) dataset(s)") }

do {
    let store = try ArtifactStore(root: opt.store)
    let depth = chains[0].depth
    func chain(_ i: Int) -> (root: ArtifactID, deep: ArtifactID, depth: Int) { chains[i % chains.count] }

    // Correctness first: a node `depth` levels deep has depth+1 chain nodes plus the dataset as
    // ancestors, and 2 used-edges per level; the chain root has depth+1 nodes downstream.
    let a = try store.ancestors(of: chains[0].deep)
    let d = try store.descendants(of: chains[0].root)
    guard a.nodes.count == depth + 2, a.edges.count == 2 * depth, d.nodes.count == depth + 1, d.edges.count == depth else {
        fail("unexpected lineage shape: ancestors \(a.nodes.count) nodes/\(a.edges.count) edges (want \(depth + 2)/\(2 * depth)), descendants \(d.nodes.count)/\(d.edges.count) (want \(depth + 1)/\(depth))")
    }
    print("checked: ancestors(of: depth-\(depth) node) = \(a.nodes.count) nodes, \(a.edges.count) edges; descendants(of: chain root) = \(d.nodes.count) nodes, \(d.edges.count) edges")

    var results: [Result] = []

    // Ancestors of a node `depth` levels deep, a different chain each repetition.
    for i in 0..<opt.warmup { _ = try store.ancestors(of: chain(i + opt.reps).deep) }
    var s: [Double] = []
    for i in 0..<opt.reps { let c = chain(i); s.append(try timed { _ = try store.ancestors(of: c.deep) }) }
    results.append(Result(name: "ancestors(of:) node \(depth) levels deep", samples: s, goalMs: 10,
                          note: "\(a.nodes.count) nodes, \(a.edges.count) edges"))

    // Descendants of a chain's first node.
    for i in 0..<opt.warmup { _ = try store.descendants(of: chain(i + opt.reps).root) }
    s = []
    for i in 0..<opt.reps { let c = chain(i); s.append(try timed { _ = try store.descendants(of: c.root) }) }
    results.append(Result(name: "descendants(of:) chain root", samples: s, goalMs: 10,
                          note: "\(d.nodes.count) nodes, \(d.edges.count) edges"))

    // Alias moves between artifacts of the big index. The alias starts at one artifact; each
    // repetition sets it to the deep node of another chain, then rolls it back (to the start).
    let alias = "bench-\(getpid())@production"
    try store.setAlias(alias, to: chains[0].root, reason: "bench start")
    var setS: [Double] = [], rbS: [Double] = []
    for i in 0..<(opt.warmup + opt.reps) {
        let target = chain(i + 1).deep
        let t1 = try timed { try store.setAlias(alias, to: target, reason: "bench \(i)") }
        let t2 = try timed { try store.rollback(alias, reason: "bench \(i)") }
        if i >= opt.warmup { setS.append(t1); rbS.append(t2) }
    }
    guard try store.resolve(alias) == chains[0].root else { fail("alias \(alias) did not roll back to its first target") }
    let moves = 1 + 2 * (opt.warmup + opt.reps)
    results.append(Result(name: "setAlias(_:to:reason:)", samples: setS, goalMs: 5, note: "alias history grows to \(moves) moves"))
    results.append(Result(name: "rollback(_:)", samples: rbS, goalMs: 5, note: "default target (previous artifact)"))

    // Not a goal: the same moves on an alias that already has a long history.
    if let busy = busyAlias, opt.busyReps > 0 {
        var bs: [Double] = [], br: [Double] = []
        for i in 0..<(opt.warmup + opt.busyReps) {
            let target = chain(i + 7).deep
            let t1 = try timed { try store.setAlias(busy.name, to: target, reason: "bench \(i)") }
            let t2 = try timed { try store.rollback(busy.name, reason: "bench \(i)") }
            if i >= opt.warmup { bs.append(t1); br.append(t2) }
        }
        let note = "alias with \(busy.moves) earlier moves"
        results.append(Result(name: "setAlias(_:to:reason:), long history (no goal)", samples: bs, goalMs: nil, note: note))
        results.append(Result(name: "rollback(_:), long history (no goal)", samples: br, goalMs: nil, note: note))
    }

    // Not a goal: the impact of a shared dataset (every chain that used it), fewer repetitions.
    if opt.datasetReps > 0 {
        let big = try store.descendants(of: datasets[0])
        _ = try store.descendants(of: datasets[1 % datasets.count])
        s = []
        for i in 0..<opt.datasetReps { let ds = datasets[(i + 2) % datasets.count]; s.append(try timed { _ = try store.descendants(of: ds) }) }
        results.append(Result(name: "descendants(of:) shared dataset (no goal)", samples: s, goalMs: nil,
                              note: "\(big.nodes.count) nodes, \(big.edges.count) edges"))
    }

    print("")
    print("| operation | reps | p50 ms | p90 ms | p99 ms | max ms | goal | met | graph |")
    print("|---|---:|---:|---:|---:|---:|---|---|---|")
    var allMet = true
    for r in results {
        let sorted = r.samples.sorted()
        let p50 = percentile(sorted, 50)
        let goal = r.goalMs.map { "p50 < \(Int($0)) ms" } ?? "-"
        let met = r.goalMs.map { p50 < $0 ? "yes" : "NO" } ?? "-"
        if let g = r.goalMs, p50 >= g { allMet = false }
        print("| \(r.name) | \(sorted.count) | \(fmt(p50)) | \(fmt(percentile(sorted, 90))) | \(fmt(percentile(sorted, 99))) | \(fmt(sorted.last!)) | \(goal) | \(met) | \(r.note) |")
    }
    // How alias moves evolve as the alias's history grows (each move reads the whole history).
    let q = max(1, setS.count / 5)
    func med(_ xs: ArraySlice<Double>) -> String { fmt(percentile(xs.sorted(), 50)) }
    print("")
    print("alias moves, p50 ms of the first and last \(q) repetitions: setAlias \(med(setS.prefix(q))) -> \(med(setS.suffix(q))), rollback \(med(rbS.prefix(q))) -> \(med(rbS.suffix(q)))")
    print(allMet ? "all lineage goals met" : "some lineage goals NOT met")
} catch {
    fail("\(error)")
}
