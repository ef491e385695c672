import Foundation

/// exp over 16 floats at a time (Cephes' expf: x = n·ln2 + r, |r| ≤ ln2/2, a degree-6 polynomial
/// for eʳ, then 2ⁿ through the exponent bits). Relative error within 2 ulp of float on
/// [−87.3, 88.7]; below that a denormal or 0 (exactly 0 from −110 down, −∞ included), above it
/// +∞; NaN stays NaN (it fails every comparison and poisons the polynomial).
/// `Foundation.exp` is the naive reference beside it (VectorExpTests).
enum VectorExp {
    typealias V = SIMD16<Float>

    @inline(__always) static func exp(_ x: V) -> V {
        // Clamped so that 2ⁿ underflows to 0 (n = −159) or overflows to ∞ (n = 129).
        // (pointwiseMin/Max and clamped compile to lane-by-lane loops; replace(with:where:) of a
        // comparison compiles to compare-and-blend, so clamping is written that way.)
        let lo: Float = -110, hi: Float = 89.5
        var xc = x
        xc.replace(with: lo, where: x .< lo)
        xc.replace(with: hi, where: x .> hi)
        // n = round(x·log2 e) by the 1.5·2²³ trick: its integer sits in the low mantissa bits.
        let magic: Float = 12582912
        let t = xc * 1.44269504088896341 + magic
        let n = t - magic
        var r = xc - n * 0.693359375
        r = r - n * -2.12194440e-4
        var p = V(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * (r * r) + r + 1
        // 2ⁿ for n in [−159, 129] as two factors 2^⌊n/2⌋·2^(n−⌊n/2⌋), each a normal float.
        let ni = unsafeBitCast(t, to: SIMD16<Int32>.self) &- 0x4B40_0000
        let half = ni &>> 1
        let f1 = unsafeBitCast((half &+ 127) &<< 23, to: V.self)
        let f2 = unsafeBitCast((ni &- half &+ 127) &<< 23, to: V.self)
        return p * f1 * f2
    }

    @inline(__always) static func exp(_ x: Float) -> Float { exp(V(repeating: x))[0] }

    /// p[i] = exp(p[i] − shift) for i < count; returns the sum of the results (float lanes over
    /// at most 256 values each, added up in double).
    @inline(__always) @discardableResult
    static func expInPlace(_ p: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Double {
        var acc = V()
        var sum = 0.0
        var i = 0
        while i + 16 <= count {
            let raw = UnsafeMutableRawPointer(p + i)
            let e = exp(raw.loadUnaligned(as: V.self) - shift)
            raw.storeBytes(of: e, as: V.self)
            acc += e
            i += 16
            if i & 255 == 0 { sum += Double(acc.sum()); acc = V() }
        }
        sum += Double(acc.sum())
        while i < count { let e = exp(p[i] - shift); p[i] = e; sum += Double(e); i += 1 }
        return sum
    }

    /// Σ exp(p[i] − shift), p unchanged.
    @inline(__always) static func expSum(_ p: UnsafePointer<Float>, count: Int, shift: Float) -> Double {
        var acc = V()
        var sum = 0.0
        var i = 0
        while i + 16 <= count {
            acc += exp(UnsafeRawPointer(p + i).loadUnaligned(as: V.self) - shift)
            i += 16
            if i & 255 == 0 { sum += Double(acc.sum()); acc = V() }
        }
        sum += Double(acc.sum())
        while i < count { sum += Double(exp(p[i] - shift)); i += 1 }
        return sum
    }

    /// Largest of p[0..<count] (−∞ for none).
    @inline(__always) static func max(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var m = V(repeating: -.infinity)
        var i = 0
        while i + 16 <= count {
            let x = UnsafeRawPointer(p + i).loadUnaligned(as: V.self)
            m.replace(with: x, where: m .< x)
            i += 16
        }
        var r = -Float.infinity
        for l in 0..<16 where m[l] > r { r = m[l] }
        while i < count { if p[i] > r { r = p[i] }; i += 1 }
        return r
    }
}
