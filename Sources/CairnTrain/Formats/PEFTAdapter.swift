import CairnSystem
import Foundation

/// A PEFT LoRA adapter directory: `adapter_config.json` and `adapter_model.safetensors` with PEFT's
/// key names (`PEFTKey`). A is (r, in), B is (out, r); the update to a weight W (out, in) is
/// scaling · B·A. What Cairn writes loads in PEFT with no missing or unexpected keys.
public struct PEFTAdapter {
    /// The configuration's file name in an adapter directory.
    public static let configFile = "adapter_config.json"
    /// The weights' file name in an adapter directory.
    public static let weightsFile = "adapter_model.safetensors"

    /// rank, alpha, targets and the rest of `adapter_config.json`.
    public var config: LoRAAdapterConfig
    /// Keyed by PEFT name, e.g. `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`.
    public var weights: [String: Tensor]

    /// An adapter from its parts (checked when written).
    public init(config: LoRAAdapterConfig, weights: [String: Tensor]) {
        self.config = config
        self.weights = weights
    }

    /// Reads and checks an adapter directory: peft_type LORA, every key a LoRA key of the seven
    /// modules, A (r, in) and B (out, r) in pairs consistent with r. Only safetensors weights are
    /// read (an `adapter_model.bin` is refused with a message saying so). Errors name the file and key.
    public static func read(directory: String) throws -> PEFTAdapter {
        let configPath = (directory as NSString).appendingPathComponent(configFile)
        let weightsPath = (directory as NSString).appendingPathComponent(weightsFile)
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw FormatError(file: configPath, "is missing or unreadable: not a PEFT adapter directory")
        }
        let config: LoRAAdapterConfig
        do {
            config = try JSONDecoder().decode(LoRAAdapterConfig.self, from: data)
        } catch DecodingError.keyNotFound(let key, _) {
            throw FormatError(file: configPath, key: key.stringValue, "is missing")
        } catch DecodingError.dataCorrupted(let ctx) where !ctx.codingPath.isEmpty {
            throw FormatError(file: configPath, key: ctx.codingPath.map(\.stringValue).joined(separator: "."), ctx.debugDescription)
        } catch DecodingError.typeMismatch(_, let ctx) {
            throw FormatError(file: configPath, key: ctx.codingPath.map(\.stringValue).joined(separator: "."), "has the wrong type: \(ctx.debugDescription)")
        } catch {
            throw FormatError(file: configPath, "is not valid JSON: \(error)")
        }
        if !FileManager.default.fileExists(atPath: weightsPath) {
            let bin = (directory as NSString).appendingPathComponent("adapter_model.bin")
            if FileManager.default.fileExists(atPath: bin) {
                throw FormatError(file: bin, "is a pickled PyTorch file; Cairn reads only adapter_model.safetensors (save the adapter with safe_serialization=True)")
            }
            throw FormatError(file: weightsPath, "is missing")
        }
        try check(config, file: configPath)
        let file = try SafeTensorsFile(path: weightsPath)
        var weights: [String: Tensor] = [:]
        var shapes: [String: [Int]] = [:]
        for name in file.names {
            shapes[name] = file.shape(name)
        }
        try check(shapes: shapes, config: config, file: weightsPath)
        for name in file.names { weights[name] = try file.tensor(name) }
        return PEFTAdapter(config: config, weights: weights)
    }

    /// Writes `adapter_model.safetensors` (F32) and `adapter_config.json` into `directory` (made if
    /// missing), each atomically. The adapter is checked as `read` checks it first.
    public func write(to directory: String) throws {
        let configPath = (directory as NSString).appendingPathComponent(PEFTAdapter.configFile)
        let weightsPath = (directory as NSString).appendingPathComponent(PEFTAdapter.weightsFile)
        try PEFTAdapter.check(config, file: configPath)
        try PEFTAdapter.check(shapes: weights.mapValues(\.shape), config: config, file: weightsPath)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw FormatError(file: directory, "cannot be created: \(error)")
        }
        try SafeTensorsWriter.write(weights.map { (name: $0.key, tensor: $0.value) }, to: weightsPath, dtype: .f32)
        let json: Data
        do { json = try config.jsonData() } catch { throw FormatError(file: configPath, "cannot be encoded: \(error)") }
        do {
            let out = try AtomicFile(path: configPath)
            try json.withUnsafeBytes { try out.write($0) }
            try out.commit()
        } catch {
            throw FormatError(file: configPath, "cannot be written: \(error)")
        }
    }

    // MARK: - Checks

    private static func check(_ config: LoRAAdapterConfig, file: String) throws {
        guard config.peftType == "LORA" else {
            throw FormatError(file: file, key: "peft_type", "is \"\(config.peftType)\"; Cairn reads LORA adapters only")
        }
        guard config.r > 0 else {
            throw FormatError(file: file, key: "r", "is \(config.r); the rank must be positive")
        }
        guard config.bias == "none" else {
            throw FormatError(file: file, key: "bias", "is \"\(config.bias)\"; Cairn's adapters carry no bias weights (\"none\")")
        }
    }

    /// Every key a LoRA key; A (r, in) and B (out, r) in pairs; one (in, out) per module across layers;
    /// modules among target_modules when those are plain names.
    private static func check(shapes: [String: [Int]], config: LoRAAdapterConfig, file: String) throws {
        let r = config.r
        let plainTargets = config.targetModules.allSatisfy { $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } }
        var dims: [String: (input: Int, output: Int, key: String)] = [:]
        for key in shapes.keys.sorted() {
            let shape = shapes[key]!
            guard let (layer, module, matrix) = PEFTKey.parse(key) else {
                throw FormatError(file: file, key: key, "is not a LoRA weight Cairn knows (want base_model.model.model.layers.N.{self_attn|mlp}.{\(PEFTKey.modules.joined(separator: "|"))}.lora_{A|B}.weight)")
            }
            if plainTargets, !config.targetModules.contains(module) {
                throw FormatError(file: file, key: key, "is for module \(module), which target_modules \(config.targetModules) does not list")
            }
            guard shape.count == 2 else {
                throw FormatError(file: file, key: key, "has shape \(shape); LoRA matrices are 2-D")
            }
            let isA = matrix == "lora_A"
            guard shape[isA ? 0 : 1] == r else {
                throw FormatError(file: file, key: key, "has shape \(shape) but r is \(r): \(isA ? "A is (r, in)" : "B is (out, r)")")
            }
            let other = PEFTKey.name(layer: layer, module: module, matrix: isA ? "lora_B" : "lora_A")
            guard let pair = shapes[other] else {
                throw FormatError(file: file, key: key, "has no partner '\(other)'")
            }
            let (input, output) = isA ? (shape[1], pair.count == 2 ? pair[0] : -1) : (pair.count == 2 ? pair[1] : -1, shape[0])
            if let seen = dims[module] {
                guard seen.input == input || !isA, seen.output == output || isA else {
                    throw FormatError(file: file, key: key, "has shape \(shape), unlike '\(seen.key)' of the same module (in \(seen.input), out \(seen.output))")
                }
            } else if isA {
                dims[module] = (shape[1], output, key)
            }
        }
    }
}
