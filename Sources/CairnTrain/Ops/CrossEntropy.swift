import Foundation

/// Softmax cross-entropy over the vocabulary with an ignore mask.
/// logits are (N, V); targets are (N), −100 meaning "no loss here".
enum CrossEntropyOp {
    static let ignoreIndex = -100

    /// Returns Σ −log softmax(logits)[target] over the rows that have a target, and, when
    /// `dlogits` is given, writes (softmax − onehot) · gradScale into it (zero on ignored rows).
    /// dlogits may be the logits buffer itself: each row is read before it is overwritten.
    /// One exp per logit (VectorExp, 16 lanes); lane sums in float, row sums in double.
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
            let m = VectorExp.max(row, count: V)
            let target = row[t]
            let sum: Double
            if let d = dlogits {
                let e = d + n * V
                if e != UnsafeMutablePointer(mutating: row) { e.update(from: row, count: V) }
                sum = VectorExp.expInPlace(e, count: V, shift: m)
            } else {
                sum = VectorExp.expSum(row, count: V, shift: m)
            }
            total += Foundation.log(sum) - Double(target - m)
            if let d = dlogits {
                let e = d + n * V
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
            let m = VectorExp.max(row, count: V)
            let sum = VectorExp.expSum(row, count: V, shift: m)
            return Double(row[t]) - (Double(m) + Foundation.log(sum))
        }
    }
}
