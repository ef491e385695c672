import Foundation

/// A seeded, reproducible generator (SplitMix64). Its whole state is one UInt64, so a training
/// checkpoint can store it and a resumed run draws the same numbers.
public struct RandomGenerator: Sendable, Equatable, Codable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Float { Float(next() >> 40) * (1.0 / Float(1 << 24)) }

    /// Uniform in [low, high).
    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * uniform() }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) * (1.0 / Double(1 << 53)), 1e-300)
        let u2 = Double(next() >> 11) * (1.0 / Double(1 << 53))
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }

    /// An independent generator derived from this one and a label (per layer, per purpose).
    public func derived(_ label: UInt64) -> RandomGenerator {
        var g = RandomGenerator(seed: state ^ (label &* 0xD1B5_4A32_D192_ED03))
        _ = g.next()
        return g
    }
}
