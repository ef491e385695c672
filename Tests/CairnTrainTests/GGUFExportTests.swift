import CairnTestSupport
import Foundation
import Testing
@testable import CairnTrain

/// `cairn model export --format gguf`: what llama.cpp's converter writes for the same model
/// (Fixtures/gguf/model/*/layout.json), and export then import gives the model back.
@Suite("GGUF export: llama.cpp's layout, export then import")
struct GGUFExportTests {
    static func source(_ arch: String) throws -> (TransformerModel, Tokenizer) {
        let file = try GGUFFile(path: fixturePath("gguf/model/\(arch)/mixed.gguf"))
        return (try GGUFModel.load(file), try Tokenizer(gguf: file.metadata))
    }

    static func exported(_ arch: String, _ type: GGMLType) throws -> GGUFFile {
        let (model, tok) = try source(arch)
        let path = GGUFFileTests.scratch("export-\(arch)-\(type).gguf")
        try GGUFModel.export(model, tokenizer: tok, type: type, name: "hf", to: path)
        return try GGUFFile(path: path)
    }

    @Test(arguments: ["llama", "qwen2"])
    func f32ExportThenImportGivesTheSameTensorsAndLogits(arch: String) throws {
        let (model, _) = try Self.source(arch)
        let back = try GGUFModel.load(try Self.exported(arch, .f32))
        #expect(back.config == model.config)
        let a = model.namedParameters(), b = back.namedParameters()
        #expect(a.map(\.name) == b.map(\.name))
        for (x, y) in zip(a, b) { #expect(x.tensor.toArray() == y.tensor.toArray(), "\(x.name)") }
        let ids = [[3, 17, 42, 99, 5, 250, 7, 1]]
        // Same weights; the mapped copy may sit at another alignment, so BLAS may sum in another order.
        let d = try model.logits(inputIDs: ids).maxAbsDifference(try back.logits(inputIDs: ids))
        #expect(d < 1e-5, "logits max |Δ| \(d)")
    }

    @Test(arguments: [GGMLType.f16, .q8_0])
    func roundedExportsStayWithinTheirRounding(type: GGMLType) throws {
        let (model, _) = try Self.source("llama")
        let back = try GGUFModel.load(try Self.exported("llama", type))
        for (x, y) in zip(model.namedParameters(), back.namedParameters()) {
            let t = x.tensor
            let oneD = t.shape.count == 1
            for i in 0..<t.count {
                // f16: half an ulp (2^-11 relative); q8_0: half a step of its block's amax/127.
                let block = (i / 32) * 32
                let amax = (block..<min(block + 32, t.count)).map { abs(t[$0]) }.max()!
                let tol: Float = oneD ? 0 : type == .f16 ? abs(t[i]) * 0x1p-11 + 0x1p-25 : amax / 127 * 0.5001 + amax * 0x1p-11
                #expect(abs(y.tensor[i] - t[i]) <= tol, "\(x.name)[\(i)]: \(y.tensor[i]) vs \(t[i])")
                if abs(y.tensor[i] - t[i]) > tol { break }
            }
        }
    }

    struct Layout: Decodable {
        var metadata: [[JSONStringOrList]]
        var tensors: [[JSONStringOrList]]
    }
    enum JSONStringOrList: Decodable {
        case s(String), l([String]), n(Int), ns([Int])
        init(from d: Decoder) throws {
            let c = try d.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .s(s) } else if let l = try? c.decode([String].self) { self = .l(l) }
            else if let n = try? c.decode(Int.self) { self = .n(n) } else { self = .ns(try c.decode([Int].self)) }
        }
        var string: String { if case .s(let s) = self { return s }; return "" }
        var list: [String] { if case .l(let l) = self { return l }; return [] }
        var ints: [Int] { if case .ns(let n) = self { return n }; return [] }
    }

    /// The type names gguf-py lists for a value: `["UINT32"]`, `["ARRAY", "STRING"]`.
    static func typeNames(_ v: GGUFValue) -> [String] {
        let name = { (t: GGUFValueType) in t.description.uppercased() }
        if case .array(let element, _) = v { return [name(.array), name(element)] }
        return [name(v.type)]
    }

    @Test(arguments: ["llama", "qwen2"], ["f32", "f16", "q8_0"])
    func layoutIsWhatLlamaCppsConverterWrites(arch: String, type: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("gguf/model/\(arch)/layout.json")))
        let ref = try JSONDecoder().decode([String: Layout].self, from: data)[type]!
        let f = try Self.exported(arch, GGMLType.writable.first { $0.description.lowercased() == type }!)
        // Every key the converter writes, with the same value type; Cairn may add tokenizer.ggml.add_*_token.
        for entry in ref.metadata {
            let key = entry[0].string
            #expect(f.metadata[key].map(Self.typeNames) == entry[1].list, "\(key)")
        }
        let refKeys = Set(ref.metadata.map { $0[0].string })
        let extra = f.metadata.keys.filter { !refKeys.contains($0) }
        #expect(extra.allSatisfy { $0.hasPrefix("tokenizer.ggml.add_") }, "keys the converter does not write: \(extra)")
        // The same tensors in the same order, types and ggml dimensions.
        #expect(f.tensors.map(\.name) == ref.tensors.map { $0[0].string })
        for (t, r) in zip(f.tensors, ref.tensors) {
            #expect(t.type.description == r[1].string, "\(t.name): \(t.type) vs \(r[1].string)")
            #expect(t.dimensions == r[2].ints, "\(t.name)")
        }
    }

    @Test func sizeLabelsAsGGUFPyWritesThem() {
        #expect(GGUFModel.sizeLabel(parameters: 134_515_008) == "135M")
        #expect(GGUFModel.sizeLabel(parameters: 951_552) == "952K")
        #expect(GGUFModel.sizeLabel(parameters: 1_543_714_304) == "1.5B")
        #expect(GGUFModel.sizeLabel(parameters: 7_241_732_096) == "7.2B")
    }

    @Test func aModelWithAnAdapterIsRefused() throws {
        let (model, tok) = try Self.source("qwen2")
        model.addLoRA(try LoRASpec(rank: 4, alpha: 8, dropout: 0, targets: ["q_proj"], useRSLoRA: false), seed: 1)
        #expect(throws: FormatError.self) {
            try GGUFModel.export(model, tokenizer: tok, type: .f32, name: "x", to: GGUFFileTests.scratch("lora.gguf"))
        }
    }

    @Test func cliErrorsExitTwoNamingWhatIsWrong() throws {
        let cairn = TestProcess.cairn(release: false)
        let dir = GGUFFileTests.scratch("cli-model")
        var r = try TestProcess.run(cairn, ["model", "import", fixturePath("gguf/model/qwen2/mixed.gguf"), "--out", dir])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestProcess.run(cairn, ["model", "export", dir, "--type", "q4_k", "--out", dir + ".gguf"])
        #expect(r.status == 2 && r.stderr.contains("--type must be one of f32, f16, q8_0"))
        r = try TestProcess.run(cairn, ["model", "import", fixturePath("formats/f32.safetensors"), "--out", dir + "-2"])
        #expect(r.status == 2 && r.stderr.contains("is not a GGUF file"), "\(r.stderr)")
        r = try TestProcess.run(cairn, ["model", "export", dir, "--type", "q8_0", "--out", dir + ".gguf"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestProcess.run(cairn, ["model", "import", dir + ".gguf", "--out", dir + "-back", "--dtype", "bf16"])
        #expect(r.status == 0 && r.stdout.contains("Q8_0"), "\(r.stdout) \(r.stderr)")
        // A SentencePiece tokenizer ("llama") is refused before any weight is converted, naming the key.
        let src = try GGUFFile(path: dir + ".gguf")
        var m = src.metadata
        m["tokenizer.ggml.model"] = .string("llama")
        let spm = GGUFFileTests.scratch("spm.gguf")
        try GGUFWriter.write(metadata: m, tensors: try src.tensors.map { GGUFWriter.Entry(name: $0.name, tensor: try src.tensor($0.name), type: .f32) }, to: spm)
        r = try TestProcess.run(cairn, ["model", "import", spm, "--out", dir + "-spm"])
        #expect(r.status == 2 && r.stderr.contains("tokenizer.ggml.model") && r.stderr.contains("llama"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "-spm/model.safetensors"))
    }
}
