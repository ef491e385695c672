import Foundation

/// Linear warmup, then linear or cosine decay (or constant), as transformers' schedulers:
/// the rate used at optimizer step s (0-based) is base · factor(s).
public struct LearningRateSchedule: Equatable, Sendable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable { case linear, cosine, constant }

    public var kind: Kind
    public var baseRate: Double
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(kind: Kind, baseRate: Double, warmupSteps: Int, totalSteps: Int) {
        self.kind = kind; self.baseRate = baseRate; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }

    /// transformers' warmup steps for a ratio: ⌈ratio · total⌉.
    public static func warmupSteps(ratio: Double, totalSteps: Int) -> Int {
        Int((ratio * Double(totalSteps)).rounded(.up))
    }

    /// The learning rate of optimizer step `step` (0-based).
    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return baseRate * Double(step) / Double(max(1, warmupSteps)) }
        switch kind {
        case .constant:
            return baseRate
        case .linear:
            return baseRate * max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        case .cosine:
            let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            return baseRate * max(0, 0.5 * (1 + cos(Double.pi * 0.5 * 2 * progress)))
        }
    }
}
