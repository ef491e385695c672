import Foundation
import Testing
@testable import CairnTrain

@Suite("PEFT LoRA adapters")
struct PEFTAdapterTests {
    typealias F = FormatFixtures

    /// The tiny Llama of make_fixtures.py: hidden 32, intermediate 64. (in, out) per module.
    static let dims: [String: (input: Int, output: Int)] = [
        "q_proj": (32, 32), "k_proj": (32, 32), "v_proj": (32, 32), "o_proj": (32, 32),
        "gate_proj": (32, 64), "up_proj": (32, 64), "down_proj": (64, 32),
    ]

    @Test func readsTheAdapterPEFTSaved() throws {
        let adapter = try PEFTAdapter.read(directory: F.path("adapter"))
        let c = adapter.config
        #expect(c.r == 4)
        #expect(c.loraAlpha == 8)
        #expect(c.loraDropout == 0.05)
        #expect(Set(c.targetModules) == Set(PEFTKey.modules))
        #expect(c.bias == "none")
        #expect(!c.useRslora)
        #expect(c.baseModelNameOrPath == "cairn/tiny-llama")
        #expect(c.peftType == "LORA")
        #expect(c.taskType == "CAUSAL_LM")
        #expect(!c.fanInFanOut)
        #expect(c.inferenceMode)
        #expect(c.scaling == 2)

        #expect(adapter.weights.count == 2 * 7 * 2)
        for layer in 0..<2 {
            for module in PEFTKey.modules {
                let (input, output) = Self.dims[module]!
                let a = try #require(adapter.weights[PEFTKey.name(layer: layer, module: module, matrix: "lora_A")])
                let b = try #require(adapter.weights[PEFTKey.name(layer: layer, module: module, matrix: "lora_B")])
                #expect(a.shape == [4, input])
                #expect(b.shape == [output, 4])
                #expect(a.isBorrowed)
                // make_fixtures.py set B[i] = (i % 17 - 8) / 64.
                let wantB: [Float] = (0..<b.count).map { i in Float(i % 17 - 8) / 64 }
                #expect(b.toArray() == wantB, "\(module)")
                #expect(a.toArray().contains { $0 != 0 })
            }
        }
    }

    @Test func keyNamesMatchPEFTAndParseBack() throws {
        #expect(PEFTKey.name(layer: 0, module: "q_proj", matrix: "lora_A") == "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
        #expect(PEFTKey.name(layer: 13, module: "down_proj", matrix: "lora_B") == "base_model.model.model.layers.13.mlp.down_proj.lora_B.weight")
        // Every key PEFT wrote is one PEFTKey makes.
        let st = try SafeTensorsFile(path: F.path("adapter/adapter_model.safetensors"))
        var made: [String] = []
        for layer in 0..<2 { for m in PEFTKey.modules { for x in ["lora_A", "lora_B"] { made.append(PEFTKey.name(layer: layer, module: m, matrix: x)) } } }
        #expect(made.sorted() == st.names)
        for key in st.names {
            let p = try #require(PEFTKey.parse(key))
            #expect(PEFTKey.name(layer: p.layer, module: p.module, matrix: p.matrix) == key)
        }
        for bad in ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight",
                    "base_model.model.model.layers.0.mlp.q_proj.lora_A.weight",
                    "base_model.model.model.layers.0.self_attn.gate_proj.lora_A.weight",
                    "base_model.model.model.layers.01.self_attn.q_proj.lora_A.weight",
                    "base_model.model.model.layers.-1.self_attn.q_proj.lora_A.weight",
                    "base_model.model.model.layers.0.self_attn.q_proj.lora_C.weight",
                    "base_model.model.model.layers.0.self_attn.q_proj.lora_A.bias",
                    "base_model.model.model.layers.0.self_attn.q_proj.bias",
                    "model.layers.0.self_attn.q_proj.lora_A.weight",
                    "base_model.model.model.layers..self_attn.q_proj.lora_A.weight"] {
            #expect(PEFTKey.parse(bad) == nil, "\(bad)")
        }
    }

    /// An adapter for the tiny Llama, made from scratch with PEFTKey names.
    static func makeAdapter(r: Int = 4) -> PEFTAdapter {
        var weights: [String: Tensor] = [:]
        var seed: UInt32 = 1
        for layer in 0..<2 {
            for module in PEFTKey.modules {
                let (input, output) = dims[module]!
                let a = Tensor(shape: [r, input]), b = Tensor(shape: [output, r])
                for t in [a, b] {
                    for i in 0..<t.count {
                        seed = seed &* 1_664_525 &+ 1_013_904_223
                        t[i] = Float(Int(seed >> 8) % 2001 - 1000) / 4096
                    }
                }
                weights[PEFTKey.name(layer: layer, module: module, matrix: "lora_A")] = a
                weights[PEFTKey.name(layer: layer, module: module, matrix: "lora_B")] = b
            }
        }
        let config = LoRAAdapterConfig(r: r, loraAlpha: 8, loraDropout: 0.05, baseModelNameOrPath: "cairn/tiny-llama")
        return PEFTAdapter(config: config, weights: weights)
    }

    @Test func writeReadRoundTrip() throws {
        let adapter = Self.makeAdapter()
        try F.withTemporaryDirectory { dir in
            let out = dir + "/nested/adapter"
            try adapter.write(to: out)
            #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["adapter_config.json", "adapter_model.safetensors"])
            let back = try PEFTAdapter.read(directory: out)
            #expect(back.config == adapter.config)
            #expect(back.weights.keys.sorted() == adapter.weights.keys.sorted())
            for (k, t) in adapter.weights {
                #expect(back.weights[k]!.shape == t.shape)
                #expect(back.weights[k]!.toArray() == t.toArray(), "\(k)")
            }
            // Overwriting in place works, and the tensors read before stay valid (the old file is mapped).
            var changed = back
            changed.config.r = 4
            changed.weights = back.weights.mapValues { $0.copy() }
            for t in changed.weights.values { t[0] = 1 }
            try changed.write(to: out)
            #expect(try PEFTAdapter.read(directory: out).weights.values.allSatisfy { $0[0] == 1 })
            #expect(back.weights.values.allSatisfy { $0[0] != 1 })

            if let export = F.exportDirectory { try adapter.write(to: export + "/adapter") }
        }
    }

    @Test func configHasPEFTsKeySet() throws {
        let peftKeys = Set(try F.json("adapter/adapter_config.json").keys)
        try F.withTemporaryDirectory { dir in
            try Self.makeAdapter().write(to: dir)
            let data = try #require(FileManager.default.contents(atPath: dir + "/adapter_config.json"))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            #expect(Set(object.keys) == peftKeys.subtracting(["peft_version"]))
            #expect(object["lora_alpha"] as? Int == 8)
            #expect(object["target_modules"] as? [String] == PEFTKey.modules)
            #expect(object["inference_mode"] as? Bool == true)
            #expect(object["base_model_name_or_path"] as? String == "cairn/tiny-llama")
            #expect(String(decoding: data, as: UTF8.self).contains("cairn/tiny-llama"))
        }
    }

    @Test func configReadingIgnoresUnknownKeysAndComputesScaling() throws {
        let json = #"{"peft_type": "LORA", "r": 16, "lora_alpha": 32, "use_rslora": true, "target_modules": "all-linear", "some_future_key": [1, {"x": null}]}"#
        let c = try JSONDecoder().decode(LoRAAdapterConfig.self, from: Data(json.utf8))
        #expect(c.r == 16)
        #expect(c.scaling == 8)  // 32 / √16
        #expect(c.targetModules == ["all-linear"])
        #expect(c.bias == "none")
        #expect(LoRAAdapterConfig(r: 8, loraAlpha: 16).scaling == 2)
    }

    // MARK: - Errors name the file and key

    @Test func refusesANonLoRAAdapter() throws {
        try F.withTemporaryDirectory { dir in
            try Self.makeAdapter().write(to: dir)
            try Self.editConfig(dir) { $0["peft_type"] = "LOHA" }
            let e = #expect(throws: FormatError.self) { _ = try PEFTAdapter.read(directory: dir) }
            #expect(e?.description == "\(dir)/adapter_config.json: key 'peft_type' is \"LOHA\"; Cairn reads LORA adapters only")
        }
    }

    @Test func refusesPickledWeights() throws {
        try F.withTemporaryDirectory { dir in
            try Self.makeAdapter().write(to: dir)
            try FileManager.default.moveItem(atPath: dir + "/adapter_model.safetensors", toPath: dir + "/adapter_model.bin")
            let e = #expect(throws: FormatError.self) { _ = try PEFTAdapter.read(directory: dir) }
            #expect(e?.file == dir + "/adapter_model.bin")
            #expect(e?.description.contains("Cairn reads only adapter_model.safetensors") == true)
        }
    }

    @Test func missingConfigOrRIsNamed() throws {
        try F.withTemporaryDirectory { dir in
            let e = #expect(throws: FormatError.self) { _ = try PEFTAdapter.read(directory: dir) }
            #expect(e?.file == dir + "/adapter_config.json")
            try Self.makeAdapter().write(to: dir)
            try Self.editConfig(dir) { $0["r"] = nil }
            let r = #expect(throws: FormatError.self) { _ = try PEFTAdapter.read(directory: dir) }
            #expect(r?.description == "\(dir)/adapter_config.json: key 'r' is missing")
        }
    }

    @Test func unknownKeyIsNamed() throws {
        try F.withTemporaryDirectory { dir in
            var adapter = Self.makeAdapter()
            let key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"
            adapter.weights[key] = Tensor(shape: [4, 32])
            let w = #expect(throws: FormatError.self) { try adapter.write(to: dir) }
            #expect(w?.name == key)
            // The same file written behind Cairn's back is refused on read.
            try SafeTensorsWriter.write(adapter.weights.map { ($0.key, $0.value) }, to: dir + "/adapter_model.safetensors")
            try Self.makeAdapter().config.jsonData().write(to: URL(fileURLWithPath: dir + "/adapter_config.json"))
            let e = #expect(throws: FormatError.self) { _ = try PEFTAdapter.read(directory: dir) }
            #expect(e?.name == key)
            #expect(e?.file == dir + "/adapter_model.safetensors")
        }
    }

    @Test func shapesMustAgreeWithR() throws {
        var adapter = Self.makeAdapter()
        adapter.config.r = 8
        let key = PEFTKey.name(layer: 0, module: "down_proj", matrix: "lora_A")
        let e = #expect(throws: FormatError.self) { try F.withTemporaryDirectory { try adapter.write(to: $0) } }
        #expect(e?.name == key)  // the first key in sorted order
        #expect(e?.description.contains("has shape [4, 64] but r is 8: A is (r, in)") == true)

        var unpaired = Self.makeAdapter()
        unpaired.weights[PEFTKey.name(layer: 1, module: "v_proj", matrix: "lora_B")] = nil
        let p = #expect(throws: FormatError.self) { try F.withTemporaryDirectory { try unpaired.write(to: $0) } }
        #expect(p?.name == PEFTKey.name(layer: 1, module: "v_proj", matrix: "lora_A"))
        #expect(p?.description.contains("has no partner") == true)

        var inconsistent = Self.makeAdapter()
        inconsistent.weights[PEFTKey.name(layer: 1, module: "q_proj", matrix: "lora_A")] = Tensor(shape: [4, 48])
        let i = #expect(throws: FormatError.self) { try F.withTemporaryDirectory { try inconsistent.write(to: $0) } }
        #expect(i?.name == PEFTKey.name(layer: 1, module: "q_proj", matrix: "lora_A"))

        var untargeted = Self.makeAdapter()
        untargeted.config.targetModules = ["q_proj", "v_proj"]
        let u = #expect(throws: FormatError.self) { try F.withTemporaryDirectory { try untargeted.write(to: $0) } }
        #expect(u?.description.contains("which target_modules") == true)
    }

    static func editConfig(_ dir: String, _ edit: (inout [String: Any]) -> Void) throws {
        let path = dir + "/adapter_config.json"
        let data = try #require(FileManager.default.contents(atPath: path))
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    }
}

extension PEFTAdapterTests {
    /// PEFT may write a pattern in target_modules; loading such an adapter names the file and key.
    @Test func aPatternInTargetModulesIsNamedWhenLoaded() throws {
        try F.withTemporaryDirectory { dir in
            try Self.makeAdapter().write(to: dir)
            try Self.editConfig(dir) { $0["target_modules"] = ".*" }
            let model = try tinyModel(.llama, tied: false, kv: 2)
            let e = #expect(throws: FormatError.self) { try model.loadAdapter(directory: dir) }
            #expect(e?.file == dir + "/adapter_config.json" && e?.name == "target_modules", "\(String(describing: e))")
            #expect(e?.description.contains("'.*' is not one of q_proj") == true, "\(String(describing: e))")
        }
    }
}
