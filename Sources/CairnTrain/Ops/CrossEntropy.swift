import Foundation

/// Softmax cross-entropy over the vocabulary with an ignore mask.
/// logits are (N, V); targets are (N), −100 meaning "no loss here".
enum CrossEntropyOp {
    static let ignoreIndex = -100

    /// Returns Σ −log softmax(logits)[target] over the rows that have a target, and, when
    /// `dlogits` is given, writes (softmax − onehot) · gradScale into it (zero on ignored rows).
    /// dlogits may be the logits buffer itself: each row is read before it is overwritten.
    /// One exp per logit; sums in double.
    static func forwardBackward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int>, N: Int, V: Int,
                                dlogits: UnsafeMutablePointer<Float>?, gradScale: Float) -> Double {
        var total = 0.0
        let scratch = dlogits == nil ? UnsafeMutablePointer<Float>.allocate(capacity: V) : nil
        defer { scratch?.deallocate() }
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
            let target = row[t]
            let e = dlogits.map { $0 + n * V } ?? scratch!
            var sum: Double = 0
            for j in 0..<V { let v = Foundation.exp(row[j] - m); e[j] = v; sum += Double(v) }
            total += Foundation.log(sum) - Double(target - m)
            if dlogits != nil {
                let k = Float(1 / sum) * gradScale
                for j in 0..<V { e[j] *= k }
                e[t] -= gradScale
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
