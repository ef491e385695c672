import Foundation

/// The BPE model of a byte-level tokenizer: vocabulary, merge ranks, and the merge loop that turns one
/// pre-token (raw bytes) into ids.
///
/// Symbols start as the ids of single bytes; the adjacent pair with the lowest merge rank is merged
/// (leftmost first among equal ranks) until no pair has a rank, as HF `tokenizers` does. Results are
/// cached per pre-token.
final class BPEModel: @unchecked Sendable {
    /// One merge rule: `(left, right)` becomes `result`, earlier rules (lower rank) first.
    struct Merge {
        var rank: Int32
        var result: Int32
    }

    /// Token spelling → id, in the vocabulary's byte-level spelling (`Ġhello`).
    let vocab: [String: Int]
    /// `idOfByte[b]`: the id of the single-byte token for byte b, or -1 when the vocabulary lacks it
    /// (HF drops such bytes: there is no unknown token in byte-level BPE).
    let idOfByte: [Int32]
    /// Keyed by `left << 32 | right`.
    let merges: [UInt64: Merge]
    /// Llama-3's `ignore_merges`: a pre-token that is itself a vocabulary token is not merged.
    let ignoreMerges: Bool
    /// Raw bytes → id, for `ignoreMerges`.
    private let idOfBytes: [ByteKey: Int]

    private var cache: [ByteKey: [Int32]] = [:]
    private let cacheLimit = 200_000
    private let lock = NSLock()

    init(vocab: [String: Int], merges: [(String, String)], ignoreMerges: Bool, file: String) throws {
        self.vocab = vocab
        self.ignoreMerges = ignoreMerges
        var idOfByte = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            if let id = vocab[String(Character(ByteLevel.scalarOfByte[b]))] { idOfByte[b] = Int32(id) }
        }
        self.idOfByte = idOfByte
        var table: [UInt64: Merge] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            guard let left = vocab[a] else {
                throw TokenizerError(file: file, "model.merges[\(rank)] uses \"\(a)\", which is not in model.vocab")
            }
            guard let right = vocab[b] else {
                throw TokenizerError(file: file, "model.merges[\(rank)] uses \"\(b)\", which is not in model.vocab")
            }
            guard let result = vocab[a + b] else {
                throw TokenizerError(file: file, "model.merges[\(rank)] makes \"\(a + b)\", which is not in model.vocab")
            }
            let key = UInt64(left) << 32 | UInt64(right)
            if table[key] == nil { table[key] = Merge(rank: Int32(rank), result: Int32(result)) }
        }
        self.merges = table
        var idOfBytes: [ByteKey: Int] = [:]
        if ignoreMerges {
            for (token, id) in vocab {
                if let bytes = ByteLevel.decode(token) { idOfBytes[ByteKey(bytes[...])] = id }
            }
        }
        self.idOfBytes = idOfBytes
    }

    /// Appends the ids of the pre-token `bytes[range]` to `ids`.
    func encode(_ bytes: [UInt8], _ range: Range<Int>, into ids: inout [Int]) {
        let key = ByteKey(bytes[range])
        if ignoreMerges, let id = idOfBytes[key] {
            ids.append(id)
            return
        }
        lock.lock()
        let cached = cache[key]
        lock.unlock()
        if let cached {
            for id in cached { ids.append(Int(id)) }
            return
        }
        var symbols: [Int32] = []
        symbols.reserveCapacity(range.count)
        for i in range where idOfByte[Int(bytes[i])] >= 0 { symbols.append(idOfByte[Int(bytes[i])]) }
        let merged = symbols.count > 48 ? mergeWithHeap(symbols) : mergeByScanning(symbols)
        lock.lock()
        if cache.count >= cacheLimit { cache.removeAll(keepingCapacity: true) }
        cache[ByteKey(ArraySlice(Array(bytes[range])))] = merged
        lock.unlock()
        for id in merged { ids.append(Int(id)) }
    }

    @inline(__always)
    private func merge(_ a: Int32, _ b: Int32) -> Merge? {
        merges[UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))]
    }

    /// The merge loop for short words: find the lowest-ranked pair, merge all its occurrences left to
    /// right, repeat. O(n²) in the word length.
    func mergeByScanning(_ input: [Int32]) -> [Int32] {
        var symbols = input
        while symbols.count > 1 {
            var best: Merge? = nil
            var bestLeft: Int32 = 0, bestRight: Int32 = 0
            for i in 0..<(symbols.count - 1) {
                if let m = merge(symbols[i], symbols[i + 1]), m.rank < best?.rank ?? .max {
                    best = m
                    bestLeft = symbols[i]
                    bestRight = symbols[i + 1]
                }
            }
            guard let best else { break }
            var out: [Int32] = []
            out.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count && symbols[i] == bestLeft && symbols[i + 1] == bestRight {
                    out.append(best.result)
                    i += 2
                } else {
                    out.append(symbols[i])
                    i += 1
                }
            }
            symbols = out
        }
        return symbols
    }

    /// The merge loop for long words (as HF does it): a min-heap of candidate merges by (rank, position)
    /// over a linked list of symbols; stale candidates are skipped. O(n log n).
    func mergeWithHeap(_ input: [Int32]) -> [Int32] {
        let n = input.count
        var id = input
        var prev = (0..<n).map { $0 - 1 }
        var next = (0..<n).map { $0 + 1 < n ? $0 + 1 : -1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap<Candidate>()
        func push(_ pos: Int) {
            let nx = next[pos]
            guard pos >= 0, nx >= 0, let m = merge(id[pos], id[nx]) else { return }
            heap.push(Candidate(rank: m.rank, pos: Int32(pos), left: id[pos], right: id[nx], result: m.result))
        }
        for i in 0..<(n - 1) { push(i) }
        while let c = heap.pop() {
            let pos = Int(c.pos)
            guard alive[pos], id[pos] == c.left else { continue }
            let nx = next[pos]
            guard nx >= 0, id[nx] == c.right else { continue }
            id[pos] = c.result
            alive[nx] = false
            next[pos] = next[nx]
            if next[nx] >= 0 { prev[next[nx]] = pos }
            if prev[pos] >= 0 { push(prev[pos]) }
            push(pos)
        }
        var out: [Int32] = []
        var i = 0
        while i >= 0 && i < n {
            out.append(id[i])
            i = next[i]
        }
        return out
    }

    private struct Candidate: Comparable {
        var rank: Int32, pos: Int32, left: Int32, right: Int32, result: Int32
        static func < (a: Candidate, b: Candidate) -> Bool { a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos }
    }
}

/// Bytes as a dictionary key, hashed in one call rather than byte by byte.
struct ByteKey: Hashable {
    var bytes: ArraySlice<UInt8>
    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }
    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
    static func == (a: ByteKey, b: ByteKey) -> Bool { a.bytes.elementsEqual(b.bytes) }
}

/// A binary min-heap.
struct MinHeap<Element: Comparable> {
    private(set) var elements: [Element] = []

    var isEmpty: Bool { elements.isEmpty }

    mutating func push(_ e: Element) {
        elements.append(e)
        var i = elements.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard elements[i] < elements[parent] else { break }
            elements.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard !elements.isEmpty else { return nil }
        let top = elements[0]
        let last = elements.removeLast()
        if !elements.isEmpty {
            elements[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < elements.count && elements[l] < elements[m] { m = l }
                if r < elements.count && elements[r] < elements[m] { m = r }
                if m == i { break }
                elements.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
