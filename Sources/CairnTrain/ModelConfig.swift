import Foundation

/// An error in a model's files or shapes; names the file and the key or tensor.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The architecture hyper-parameters of a Llama or Qwen2 causal LM, read from Hugging Face's
/// config.json (transformers 4 and 5 spellings).
public struct ModelConfig: Equatable, Sendable {
    public enum Architecture: String, Sendable, CaseIterable {
        case llama = "LlamaForCausalLM"
        case qwen2 = "Qwen2ForCausalLM"
        public var modelType: String { self == .llama ? "llama" : "qwen2" }
    }

    public var architecture: Architecture
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var numKVHeads: Int
    public var headDim: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var tieWordEmbeddings: Bool
    /// q, k and v projections have a bias (Qwen2 always; Llama with attention_bias).
    public var qkvBias: Bool
    /// o_proj has a bias (Llama with attention_bias).
    public var oBias: Bool
    /// MLP projections have a bias (Llama with mlp_bias).
    public var mlpBias: Bool
    public var maxPositionEmbeddings: Int
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]
    public var padTokenID: Int?

    public init(architecture: Architecture, vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numLayers: Int,
                numHeads: Int, numKVHeads: Int? = nil, headDim: Int? = nil, rmsNormEps: Double = 1e-6,
                ropeTheta: Double = 10000, tieWordEmbeddings: Bool = false, attentionBias: Bool = false, mlpBias: Bool = false,
                maxPositionEmbeddings: Int = 2048, bosTokenID: Int? = nil, eosTokenIDs: [Int] = [], padTokenID: Int? = nil) {
        self.architecture = architecture; self.vocabSize = vocabSize; self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize; self.numLayers = numLayers; self.numHeads = numHeads
        self.numKVHeads = numKVHeads ?? numHeads; self.headDim = headDim ?? hiddenSize / numHeads
        self.rmsNormEps = rmsNormEps; self.ropeTheta = ropeTheta; self.tieWordEmbeddings = tieWordEmbeddings
        self.qkvBias = architecture == .qwen2 || attentionBias
        self.oBias = architecture == .llama && attentionBias
        self.mlpBias = architecture == .llama && mlpBias
        self.maxPositionEmbeddings = maxPositionEmbeddings; self.bosTokenID = bosTokenID
        self.eosTokenIDs = eosTokenIDs; self.padTokenID = padTokenID
    }

    /// Reads DIR/config.json or a config file.
    public static func load(path: String) throws -> ModelConfig {
        var isDir: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue ? path + "/config.json" : path
        guard let data = FileManager.default.contents(atPath: file) else { throw ModelError("cannot read '\(file)'") }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError("'\(file)' is not a JSON object")
        }
        return try ModelConfig(json: obj, file: file)
    }

    /// config.json's first `architectures` entry, or else its `model_type`.
    private static func architecture(_ json: [String: Any], file: String) throws -> Architecture {
        if let a = (json["architectures"] as? [String] ?? []).first {
            guard let known = Architecture(rawValue: a) else {
                throw ModelError("\(file): architecture \"\(a)\" is not supported (supported: LlamaForCausalLM, Qwen2ForCausalLM)")
            }
            return known
        } else if let t = json["model_type"] as? String, let known = Architecture.allCases.first(where: { $0.modelType == t }) {
            return known
        }
        throw ModelError("\(file): missing key \"architectures\" (or a model_type of llama or qwen2)")
    }

    public init(json: [String: Any], file: String = "config.json") throws {
        func int(_ key: String) throws -> Int {
            guard let v = json[key] else { throw ModelError("\(file): missing key \"\(key)\"") }
            guard let n = v as? Int ?? (v as? Double).flatMap({ $0 == $0.rounded() ? Int($0) : nil }), n > 0 else {
                throw ModelError("\(file): key \"\(key)\" must be a positive integer, not \(v)")
            }
            return n
        }
        func optInt(_ key: String) throws -> Int? { json[key] == nil || json[key] is NSNull ? nil : try int(key) }
        func number(_ key: String, in dict: [String: Any]? = nil) throws -> Double? {
            guard let v = (dict ?? json)[key], !(v is NSNull) else { return nil }
            guard let d = v as? Double ?? (v as? Int).map(Double.init) else { throw ModelError("\(file): key \"\(key)\" must be a number, not \(v)") }
            return d
        }
        func bool(_ key: String, _ d: Bool) throws -> Bool {
            guard let v = json[key], !(v is NSNull) else { return d }
            guard let b = v as? Bool else { throw ModelError("\(file): key \"\(key)\" must be true or false, not \(v)") }
            return b
        }
        let arch = try Self.architecture(json, file: file)
        if let act = json["hidden_act"] as? String, act != "silu" {
            throw ModelError("\(file): hidden_act \"\(act)\" is not supported (only silu)")
        }
        // Rope: transformers 5 writes rope_parameters {rope_theta, rope_type}; 4 writes rope_theta and rope_scaling.
        let ropeParams = json["rope_parameters"] as? [String: Any]
        for (key, dict) in [("rope_scaling", json["rope_scaling"] as? [String: Any]), ("rope_parameters", ropeParams)] {
            if let d = dict, let type = (d["rope_type"] ?? d["type"]) as? String, type != "default" {
                throw ModelError("\(file): \(key) type \"\(type)\" is not supported (only default rope)")
            }
        }
        let theta = try number("rope_theta", in: ropeParams) ?? number("rope_theta") ?? 10000
        func tokenIDs(_ key: String) throws -> [Int] {
            guard let v = json[key], !(v is NSNull) else { return [] }
            switch v {
            case let i as Int: return [i]
            case let a as [Int]: return a
            default: throw ModelError("\(file): key \"\(key)\" must be a token id or a list of them, not \(v)")
            }
        }
        let eos = try tokenIDs("eos_token_id")
        for key in ["bos_token_id", "pad_token_id"] where try tokenIDs(key).count > 1 {
            throw ModelError("\(file): key \"\(key)\" must be one token id")
        }
        self.init(architecture: arch, vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
                  intermediateSize: try int("intermediate_size"), numLayers: try int("num_hidden_layers"),
                  numHeads: try int("num_attention_heads"), numKVHeads: try optInt("num_key_value_heads"),
                  headDim: try optInt("head_dim"), rmsNormEps: try number("rms_norm_eps") ?? 1e-6, ropeTheta: theta,
                  tieWordEmbeddings: try bool("tie_word_embeddings", false), attentionBias: try bool("attention_bias", false),
                  mlpBias: try bool("mlp_bias", false), maxPositionEmbeddings: try optInt("max_position_embeddings") ?? 2048,
                  bosTokenID: try tokenIDs("bos_token_id").first, eosTokenIDs: eos, padTokenID: try tokenIDs("pad_token_id").first)
        try validate(file: file)
    }

    /// config.json as transformers writes it (rope_theta at the top level, which 4.x and 5.x both read).
    public func jsonObject() -> [String: Any] {
        var o: [String: Any] = [
            "architectures": [architecture.rawValue], "model_type": architecture.modelType,
            "vocab_size": vocabSize, "hidden_size": hiddenSize, "intermediate_size": intermediateSize,
            "num_hidden_layers": numLayers, "num_attention_heads": numHeads, "num_key_value_heads": numKVHeads,
            "head_dim": headDim, "rms_norm_eps": rmsNormEps, "rope_theta": ropeTheta, "hidden_act": "silu",
            "tie_word_embeddings": tieWordEmbeddings, "max_position_embeddings": maxPositionEmbeddings,
            "torch_dtype": "float32", "initializer_range": 0.02, "use_cache": true,
        ]
        if architecture == .llama { o["attention_bias"] = qkvBias; o["mlp_bias"] = mlpBias }
        if architecture == .qwen2 { o["use_sliding_window"] = false; o["attention_dropout"] = 0.0 }
        if let b = bosTokenID { o["bos_token_id"] = b }
        if eosTokenIDs.count == 1 { o["eos_token_id"] = eosTokenIDs[0] } else if !eosTokenIDs.isEmpty { o["eos_token_id"] = eosTokenIDs }
        if let p = padTokenID { o["pad_token_id"] = p }
        return o
    }

    /// Number of parameters (tied embeddings counted once).
    public var parameterCount: Int {
        let C = hiddenSize, I = intermediateSize, q = numHeads * headDim, kv = numKVHeads * headDim
        var layer = C * q + 2 * C * kv + q * C + 3 * C * I + 2 * C
        if qkvBias { layer += q + 2 * kv }
        if oBias { layer += C }
        if mlpBias { layer += 2 * I + C }
        return vocabSize * C * (tieWordEmbeddings ? 1 : 2) + numLayers * layer + C
    }
}
