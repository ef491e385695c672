import CairnSystem
import Foundation

/// A trainer that runs optimizer steps and can be checkpointed and resumed exactly.
public protocol ResumableTrainer: AnyObject {
    var step: Int { get }
    var stepsTotal: Int { get }
    var isFinished: Bool { get }
    var history: [LoggedMetrics] { get }
    @discardableResult func trainStep() throws -> LoggedMetrics
    /// Adds held-out measurements (eval_loss, …) to the newest logged step, so they are logged,
    /// checkpointed and restored with it.
    func record(evaluation values: [String: Double])
    /// Everything a resumed run needs: trainable weights, AdamW moments and step, the dropout
    /// generator, the step (which fixes the position in the seeded data order) and the metrics.
    func checkpointState() -> TrainerCheckpoint
    func restore(_ checkpoint: TrainerCheckpoint) throws
}

/// The state of a trainer between two steps.
public struct TrainerCheckpoint {
    public var step: Int
    public var optimizerStep: Int
    public var dropoutRNG: RandomGenerator?
    public var history: [LoggedMetrics]
    /// The trainable tensors and the AdamW moments, in the trainer's parameter order.
    public var names: [String]
    public var parameters: [Tensor]
    public var expAvg: [Tensor]
    public var expAvgSq: [Tensor]

    struct StateFile: Codable {
        var format = "cairn-trainer-checkpoint 1"
        var step: Int
        var optimizerStep: Int
        var dropoutRNG: RandomGenerator?
        var history: [LoggedMetrics]
        var names: [String]
    }

    /// Writes DIR/checkpoint-<step>/ atomically: into a temp directory beside it, fsynced,
    /// then renamed. A directory named checkpoint-N is always complete.
    public func write(into directory: String) throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let final = directory + "/checkpoint-\(step)"
        let temp = directory + "/.checkpoint-\(step).tmp-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.removeItem(atPath: temp)
        try FileManager.default.createDirectory(atPath: temp, withIntermediateDirectories: false)
        var tensors: [(name: String, tensor: Tensor)] = []
        for (i, n) in names.enumerated() {
            tensors += [("param." + n, parameters[i]), ("exp_avg." + n, expAvg[i]), ("exp_avg_sq." + n, expAvgSq[i])]
        }
        try SafeTensorsWriter.write(tensors, to: temp + "/state.safetensors")
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try enc.encode(StateFile(step: step, optimizerStep: optimizerStep, dropoutRNG: dropoutRNG, history: history, names: names))
        try AtomicFile.write(json, to: temp + "/trainer_state.json")
        try? FileManager.default.removeItem(atPath: final)
        try FileManager.default.moveItem(atPath: temp, toPath: final)
        try FileSystem.syncDirectory(directory)
        return final
    }

    /// Reads a checkpoint directory.
    public static func read(_ path: String) throws -> TrainerCheckpoint {
        guard let data = FileManager.default.contents(atPath: path + "/trainer_state.json"),
              let state = try? JSONDecoder().decode(StateFile.self, from: data), state.format == "cairn-trainer-checkpoint 1" else {
            throw TrainingError(step: nil, "'\(path)' is not a Cairn checkpoint (trainer_state.json missing or unreadable)")
        }
        let file = try SafeTensorsFile(path: path + "/state.safetensors")
        func t(_ name: String) throws -> Tensor { try file.tensor(name).copy() }
        return TrainerCheckpoint(step: state.step, optimizerStep: state.optimizerStep, dropoutRNG: state.dropoutRNG, history: state.history,
                                 names: state.names, parameters: try state.names.map { try t("param." + $0) },
                                 expAvg: try state.names.map { try t("exp_avg." + $0) }, expAvgSq: try state.names.map { try t("exp_avg_sq." + $0) })
    }

    /// The complete checkpoints in DIR, oldest first.
    public static func list(in directory: String) -> [(step: Int, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { n -> (Int, String)? in
            guard n.hasPrefix("checkpoint-"), let s = Int(n.dropFirst("checkpoint-".count)) else { return nil }
            return (s, directory + "/" + n)
        }.sorted { $0.0 < $1.0 }
    }

    /// Removes all but the newest `keep` checkpoints and any temp directory left by a crash.
    static func prune(_ directory: String, keep: Int) {
        for c in list(in: directory).dropLast(max(keep, 1)) { try? FileManager.default.removeItem(atPath: c.path) }
        for n in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where n.hasPrefix(".checkpoint-") {
            try? FileManager.default.removeItem(atPath: directory + "/" + n)
        }
    }
}

/// SFTTrainer's and DPOTrainer's checkpoints: the trainable tensors, the AdamW moments, the
/// step, the metrics and the dropout generator (see `OptimizedTrainer`).
extension OptimizedTrainer {
    public func checkpointState() -> TrainerCheckpoint {
        let trainable = model.trainableParameters()
        return TrainerCheckpoint(step: step, optimizerStep: optimizer.step, dropoutRNG: dropoutRNG, history: history,
                                 names: trainable.map(\.name), parameters: trainable.map(\.tensor),
                                 expAvg: optimizer.expAvg, expAvgSq: optimizer.expAvgSq)
    }

    public func restore(_ c: TrainerCheckpoint) throws {
        let trainable = model.trainableParameters()
        try restoreTrainer(c, names: trainable.map(\.name), parameters: trainable.map(\.tensor), optimizer: optimizer)
        step = c.step
        history = c.history
        dropoutRNG = c.dropoutRNG
    }
}

/// Restores trainable tensors, moments and counters from a checkpoint.
func restoreTrainer(_ c: TrainerCheckpoint, names: [String], parameters: [Tensor], optimizer: AdamW) throws {
    guard c.names == names else {
        throw TrainingError(step: c.step, "the checkpoint's tensors (\(c.names.count)) are not this run's trainable parameters (\(names.count))")
    }
    for (dst, src) in zip(parameters, c.parameters) {
        guard dst.shape == src.shape else { throw TrainingError(step: c.step, "a checkpoint tensor has shape \(src.shape), expected \(dst.shape)") }
        dst.data.update(from: src.data, count: dst.count)
    }
    try optimizer.restore(step: c.optimizerStep, expAvg: c.expAvg, expAvgSq: c.expAvgSq)
}
