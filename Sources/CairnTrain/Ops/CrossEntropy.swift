import Foundation

/// Softmax cross-entropy over the vocabulary with an ignore mask.
/// logits are (N, V); targets are (N), −100 meaning "no loss here".
enum CrossEntropyOp {
    static let ignoreIndex = -100

    /// Returns Σ −log softmax(logits)[target] over the rows that have a target, and, when
    /// `dlogits` is given, writes (softmax − onehot) · gradScale into it (zero on ignored rows).
    /// Accumulated in double.
    static func forwardBackward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int>, N: Int, V: Int,
                                dlogits: UnsafeMutablePointer<Float>?, gradScale: Float) -> Double {
        var total = 0.0
        for n in 0..<N {
            let row = logits + n * V
            let t = targets[n]
            if t == ignoreIndex {
                if let d = dlogits { (d + n * V).update(repeating: 0, count: V) }
                continue
            }
            precondition(t >= 0 && t < V, "target \(t) outside the vocabulary of \(V)")
            var m = -Float.infinity
            for j in 0..<V { m = max(m, row[j]) }
            var sum: Double = 0
            for j in 0..<V { sum += Double(Foundation.exp(row[j] - m)) }
            let logZ = Double(m) + Foundation.log(sum)
            total += logZ - Double(row[t])
            if let d = dlogits {
                let g = d + n * V
                for j in 0..<V { g[j] = Float(Foundation.exp(Double(row[j]) - logZ)) * gradScale }
                g[t] -= gradScale
            }
        }
        return total
    }

    /// log softmax(logits)[target] per row (0 where ignored), for log-probabilities of text.
    static func logProbs(logits: UnsafePointer<Float>, targets: [Int], V: Int) -> [Double] {
        targets.enumerated().map { n, t in
            guard t != ignoreIndex else { return 0 }
            let row = logits + n * V
            var m = -Float.infinity
            for j in 0..<V { m = max(m, row[j]) }
            var sum: Double = 0
            for j in 0..<V { sum += Double(Foundation.exp(row[j] - m)) }
            return Double(row[t]) - (Double(m) + Foundation.log(sum))
        }
    }
}
