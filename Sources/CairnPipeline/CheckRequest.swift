import CairnTrain
import Foundation

/// What one `cairn check` process is asked to do: the check, its inputs, its settings. The
/// orchestrator builds it from the pipeline's configs and hands it over as a file
/// (`--request FILE`); a person gives the same fields as flags (`--max-seq-length 1024`).
/// Every default is the configs' own, defined once there.
public struct CheckRequest: Codable, Sendable, Equatable {
    public var name: String
    public var model: String?
    public var adapter: String?
    public var merged: String?
    public var export: String?
    public var data: String?
    public var schema: String?
    public var blocklist: String?
    public var threshold = CheckConfig.defaultThreshold
    public var minAccuracy = ValidationConfig().minAccuracy
    public var tolerance = ValidationConfig().mergeTolerance
    public var beta = TrainingConfig().beta
    public var maxNewTokens = CheckConfig.defaultMaxNewTokens
    public var maxSeqLength = TrainingConfig().maxSeqLength
    /// output_format_valid: also measure the model without the adapter (where training started).
    public var baseline = false

    enum CodingKeys: String, CodingKey {
        case name, model, adapter, merged, export, data, schema, blocklist, threshold, beta, tolerance, baseline
        case minAccuracy = "min_accuracy", maxNewTokens = "max_new_tokens", maxSeqLength = "max_seq_length"
    }

    public init(name: String) { self.name = name }

    /// From `cairn check NAME --FLAG VALUE…`: the flags are the keys with `-` for `_`.
    public init(name: String, flags: [String: String]) throws {
        self.name = name
        var o = flags
        func take(_ k: String) -> String? { o.removeValue(forKey: k) }
        func number(_ k: String) throws -> Double? {
            guard let s = take(k) else { return nil }
            guard let v = Double(s), v.isFinite else { throw PipelineError("check \(name): --\(k) wants a number, not '\(s)'") }
            return v
        }
        func whole(_ k: String) throws -> Int? {
            guard let s = take(k) else { return nil }
            guard let v = Int(s), v > 0 else { throw PipelineError("check \(name): --\(k) wants a positive whole number, not '\(s)'") }
            return v
        }
        model = take("model"); adapter = take("adapter"); merged = take("merged"); export = take("export")
        data = take("data"); schema = take("schema"); blocklist = take("blocklist")
        if let v = try number("threshold") { threshold = v }
        if let v = try number("min-accuracy") { minAccuracy = v }
        if let v = try number("tolerance") { tolerance = v }
        if let v = try number("beta") { beta = v }
        if let v = try whole("max-new-tokens") { maxNewTokens = v }
        if let v = try whole("max-seq-length") { maxSeqLength = v }
        if let s = take("baseline") {
            guard let b = Bool(s) else { throw PipelineError("check \(name): --baseline wants true or false, not '\(s)'") }
            baseline = b
        }
        if let k = o.keys.sorted().first { throw PipelineError("check \(name): unknown option --\(k)") }
    }

    /// Reads a request written by the orchestrator.
    public static func read(_ path: String) throws -> CheckRequest {
        guard let d = FileManager.default.contents(atPath: path) else { throw PipelineError("cannot read the check request '\(path)'") }
        do { return try JSONDecoder().decode(CheckRequest.self, from: d) } catch {
            throw PipelineError("the check request '\(path)' is not one: \(error)")
        }
    }

    /// The request as the file `--request` reads.
    public var bytes: Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? enc.encode(self)) ?? Data()
    }

    /// The input a check cannot go without, named as its flag.
    func need(_ value: String?, _ flag: String) throws -> String {
        guard let v = value else { throw PipelineError("check \(name) needs --\(flag)") }
        return v
    }
}

extension CheckConfig {
    /// The settings a custom check's config gives its request (the rest keep their defaults).
    func apply(to r: inout CheckRequest) {
        if let t = threshold { r.threshold = t }
        if let m = maxNewTokens { r.maxNewTokens = m }
    }
}
