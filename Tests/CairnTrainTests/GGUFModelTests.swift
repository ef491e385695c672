import Foundation
import Testing
@testable import CairnTrain

/// The per-token log-probs of `ids` under `model` (position t scored on ids[t + 1]).
func tokenLogProbs(_ model: TransformerModel, _ ids: [Int]) throws -> [Double] {
    let logits = try model.logits(inputIDs: [ids])
    let V = model.config.vocabSize
    return (0..<ids.count - 1).map { t in
        let row = logits.data + t * V
        var m = -Double.infinity
        for v in 0..<V { m = max(m, Double(row[v])) }
        var s = 0.0
        for v in 0..<V { s += exp(Double(row[v]) - m) }
        return Double(row[ids[t + 1]]) - m - log(s)
    }
}

/// Tiny Llama and Qwen2 models written by llama.cpp's converter, each matrix in another ggml type,
/// against transformers' GGUF loader (Fixtures/gguf/model/make_fixtures.py).
@Suite("GGUF models: import against transformers, layout against llama.cpp's converter")
struct GGUFModelTests {
    struct Expected: Decodable {
        struct TensorStats: Decodable {
            var shape: [Int]
            var sum: Double
            var sum_sq: Double
            var samples: [[Double]]
        }
        var config: [String: JSONScalar]
        var tensors: [String: TensorStats]
        var sequences: [[Int]]
        var logprobs: [[Double]]
        var types: [String: String]
    }

    enum JSONScalar: Decodable {
        case number(Double), bool(Bool)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .bool(b) } else { self = .number(try c.decode(Double.self)) }
        }
        var number: Double? { if case .number(let d) = self { return d } else { return nil } }
    }

    static func expected(_ arch: String) throws -> Expected {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("gguf/model/\(arch)/expected.json")))
        return try JSONDecoder().decode(Expected.self, from: data)
    }

    @Test(arguments: ["llama", "qwen2"])
    func everyTypeDequantisesAsTransformersLoadsIt(arch: String) throws {
        let file = try GGUFFile(path: fixturePath("gguf/model/\(arch)/mixed.gguf"))
        let e = try Self.expected(arch)
        // Every type Cairn reads is in the file.
        let types = Set(file.tensors.map(\.type))
        #expect(Set(GGMLType.readable).isSubset(of: types), "types in the fixture: \(types)")

        let model = try GGUFModel.load(file)
        let c = model.config
        #expect(c.architecture.modelType == arch)
        #expect(Double(c.vocabSize) == e.config["vocab_size"]?.number)
        #expect(Double(c.hiddenSize) == e.config["hidden_size"]?.number)
        #expect(Double(c.intermediateSize) == e.config["intermediate_size"]?.number)
        #expect(Double(c.numLayers) == e.config["num_hidden_layers"]?.number)
        #expect(Double(c.numHeads) == e.config["num_attention_heads"]?.number)
        #expect(Double(c.numKVHeads) == e.config["num_key_value_heads"]?.number)
        #expect(abs(c.rmsNormEps - e.config["rms_norm_eps"]!.number!) < 1e-12)
        #expect(c.ropeTheta == e.config["rope_theta"]?.number)
        #expect(c.tieWordEmbeddings == (arch == "qwen2"))

        let params = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor) })
        #expect(Set(params.keys) == Set(e.tensors.keys))
        for (name, stats) in e.tensors {
            guard let t = params[name] else { continue }
            #expect(t.shape == stats.shape, "\(name)")
            // Fixed samples bit for bit; the sums catch a wrong element anywhere (rows un-permuted, blocks).
            for s in stats.samples {
                #expect(t[Int(s[0])] == Float(s[1]), "\(arch) \(name)[\(Int(s[0]))]: \(t[Int(s[0])]) vs \(s[1])")
            }
            var sum = 0.0, sumSq = 0.0
            for i in 0..<t.count { sum += Double(t[i]); sumSq += Double(t[i]) * Double(t[i]) }
            #expect(abs(sum - stats.sum) <= 1e-9 * max(1, stats.sum_sq), "\(name) sum \(sum) vs \(stats.sum)")
            #expect(abs(sumSq - stats.sum_sq) <= 1e-9 * max(1, stats.sum_sq), "\(name) sum_sq \(sumSq) vs \(stats.sum_sq)")
        }
    }

    @Test(arguments: ["llama", "qwen2"])
    func logProbsMatchTransformers(arch: String) throws {
        let model = try GGUFModel.load(try GGUFFile(path: fixturePath("gguf/model/\(arch)/mixed.gguf")))
        let e = try Self.expected(arch)
        for (ids, ref) in zip(e.sequences, e.logprobs) {
            let lp = try tokenLogProbs(model, ids)
            let diff = zip(lp, ref).map { abs($0 - $1) }.max() ?? 0
            #expect(diff < 1e-4, "\(arch): max |Δ log p| \(diff)")
        }
    }

    @Test func permutationIsInvertedAndMatchesLlamaCpp() {
        // (heads · d, 3) with d = 4: GGUF row 2i + j of a head is transformers row j·d/2 + i.
        let t = Tensor(shape: [8, 3], values: (0..<24).map(Float.init))
        let p = GGUFModel.permute(t, heads: 2)
        let rowsOf = { (x: Tensor) in (0..<8).map { Int(x[$0 * 3]) / 3 } }
        #expect(rowsOf(p) == [0, 2, 1, 3, 4, 6, 5, 7])
        #expect(GGUFModel.unpermute(p, heads: 2).toArray() == t.toArray())
    }

    @Test func namesMapBothWays() {
        let pairs = [("model.embed_tokens.weight", "token_embd.weight"), ("lm_head.weight", "output.weight"),
                     ("model.norm.weight", "output_norm.weight"), ("model.layers.12.self_attn.k_proj.bias", "blk.12.attn_k.bias"),
                     ("model.layers.0.post_attention_layernorm.weight", "blk.0.ffn_norm.weight"),
                     ("model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight")]
        for (hf, g) in pairs {
            #expect(GGUFModel.ggufName(hf) == g)
            #expect(GGUFModel.huggingFaceName(g) == hf)
        }
        #expect(GGUFModel.ggufName("model.layers.x.mlp.up_proj.weight") == nil)
        #expect(GGUFModel.huggingFaceName("rope_freqs.weight") == nil)
    }
}
