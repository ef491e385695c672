import Foundation

/// Which projections get LoRA, and how: PEFT's LoraConfig in Cairn's terms.
public struct LoRASpec: Equatable, Sendable {
    public var rank: Int
    public var alpha: Double
    public var dropout: Double
    public var targets: [String]
    public var useRSLoRA: Bool

    /// Every projection LoRA can target: PEFT's module names (`PEFTKey.modules`).
    public static var allTargets: [String] { PEFTKey.modules }

    public init(rank: Int, alpha: Double, dropout: Double = 0, targets: [String] = PEFTKey.attentionModules,
                useRSLoRA: Bool = false) throws {
        guard rank > 0 else { throw ModelError("LoRA rank r must be positive, not \(rank)") }
        guard (0..<1).contains(dropout) else { throw ModelError("lora_dropout must be in [0, 1), not \(dropout)") }
        for t in targets where !Self.allTargets.contains(t) {
            throw ModelError("LoRA target module \"\(t)\" is not one of \(Self.allTargets.joined(separator: ", "))")
        }
        self.rank = rank; self.alpha = alpha; self.dropout = dropout; self.targets = targets; self.useRSLoRA = useRSLoRA
    }

    /// alpha / r, or alpha / √r with rsLoRA.
    public var scaling: Double { useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank) }
}

/// The two low-rank factors of one projection: ΔW = scaling · B · A. A is (r, in), B is (out, r).
final class LoRAFactors {
    let A: Tensor
    let B: Tensor
    let scaling: Float
    let dropout: Float

    init(A: Tensor, B: Tensor, scaling: Float, dropout: Float) {
        self.A = A; self.B = B; self.scaling = scaling; self.dropout = dropout
    }

    /// PEFT's initialisation: A kaiming-uniform with a = √5 (bound 1/√in), B zeros.
    static func initialised(inFeatures: Int, outFeatures: Int, spec: LoRASpec, rng: inout RandomGenerator) -> LoRAFactors {
        let A = Tensor(shape: [spec.rank, inFeatures])
        let bound = 1 / Float(inFeatures).squareRoot()
        for i in 0..<A.count { A[i] = rng.uniform(-bound, bound) }
        return LoRAFactors(A: A, B: Tensor(shape: [outFeatures, spec.rank]), scaling: Float(spec.scaling), dropout: Float(spec.dropout))
    }
}

/// One worker's gradients: a tensor per trainable parameter, found by the parameter tensor's
/// identity (so tied embeddings share one gradient). Workers of a data-parallel step each
/// accumulate into their own set; the sets are summed in a fixed order afterwards.
final class GradientBuffers {
    private var grads: [ObjectIdentifier: Tensor] = [:]
    /// The parameters in a fixed order, for summing and zeroing.
    private(set) var parameters: [Tensor] = []

    init(parameters: [Tensor]) {
        for p in parameters where grads[ObjectIdentifier(p)] == nil {
            grads[ObjectIdentifier(p)] = Tensor(shape: p.shape)
            self.parameters.append(p)
        }
    }

    /// The gradient of `parameter`, or nil when it does not train.
    @inline(__always) func of(_ parameter: Tensor?) -> Tensor? {
        parameter.flatMap { grads[ObjectIdentifier($0)] }
    }

    func zero() { for g in grads.values { g.zero() } }

    /// self += other, parameter by parameter.
    func add(_ other: GradientBuffers) {
        for p in parameters {
            let a = grads[ObjectIdentifier(p)]!, b = other.of(p)!
            for i in 0..<a.count { a[i] += b[i] }
        }
    }
}

/// Where dropout masks come from: one generator per (projection, row), derived from the step's
/// generator, so a mask does not depend on how the batch is split between workers.
struct DropoutStream {
    let base: RandomGenerator
    /// Global index of the first row this call sees.
    let firstRow: Int
}
