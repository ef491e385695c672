import Foundation
import Testing
@testable import CairnTrain

@Suite struct VectorExpTests {
    /// Against Foundation.exp (the naive reference) on a dense sweep of the float range that
    /// softmax and the sigmoid use, plus the edges: within 2 ulp, 0 far below the range and for −∞, ∞ above, NaN kept.
    @Test func matchesFoundationExpWithinTwoUlp() {
        var worst: Float = 0
        var x: Float = -87.3
        while x < 88.7 {
            let got = VectorExp.exp(x), want = Foundation.exp(x)
            let ulps = abs(got - want) / want.ulp
            worst = max(worst, ulps)
            #expect(ulps <= 2, "exp(\(x)) = \(got), want \(want)")
            if ulps > 2 { break }
            x += 0.00731
        }
        #expect(worst <= 2)
        #expect(VectorExp.exp(0) == 1)
        #expect(VectorExp.exp(-Float.infinity) == 0)
        #expect(VectorExp.exp(-100) < Float.leastNormalMagnitude)
        #expect(VectorExp.exp(-110) == 0)
        #expect(VectorExp.exp(-1e30) == 0)
        #expect(VectorExp.exp(89) == .infinity)
        #expect(VectorExp.exp(100) == .infinity)
        #expect(VectorExp.exp(.infinity) == .infinity)
        #expect(VectorExp.exp(Float.nan).isNaN)
    }

    /// The strip helpers (16 lanes and a scalar tail) agree with element-wise Foundation.exp.
    @Test func stripHelpersHandleTails() {
        for count in [0, 1, 15, 16, 17, 40] {
            let xs = (0..<count).map { Float($0) * 0.37 - 5 }
            var ys = xs
            let shift: Float = 1.5
            let sum = ys.withUnsafeMutableBufferPointer { VectorExp.expInPlace($0.baseAddress!, count: count, shift: shift) }
            let want = xs.map { Foundation.exp($0 - shift) }
            for i in 0..<count { #expect(abs(ys[i] - want[i]) <= 2 * want[i].ulp) }
            #expect(abs(sum - want.reduce(0.0) { $0 + Double($1) }) <= 1e-5 * max(1, sum))
            let s2 = xs.withUnsafeBufferPointer { VectorExp.expSum($0.baseAddress!, count: count, shift: shift) }
            #expect(abs(s2 - sum) <= 1e-6 * max(1, sum))
            let m = xs.withUnsafeBufferPointer { VectorExp.max($0.baseAddress!, count: count) }
            #expect(m == (xs.max() ?? -.infinity))
        }
    }
}
