import Foundation
import Testing
@testable import CairnTrain

/// Tests/CairnTrainTests/Fixtures/<sub>
func fixturePath(_ sub: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/" + sub).path
}

/// One model fixture made by make_fixtures.py with transformers and PEFT.
struct ModelFixture {
    let dir: String
    let cases: SafeTensorsFile
    let json: [String: Any]
    let batch: TrainingBatch

    init(_ name: String) throws {
        dir = fixturePath("model/" + name)
        cases = try SafeTensorsFile(path: dir + "/cases.safetensors")
        json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/cases.json"))) as! [String: Any]
        let b = json["batch"] as! [String: Any]
        batch = TrainingBatch(inputIDs: b["input_ids"] as! [[Int]], attentionMask: b["attention_mask"] as? [[Int]],
                              labels: b["labels"] as! [[Int]])
    }

    func tensor(_ name: String) throws -> Tensor { try cases.tensor(name) }
    var generate: [String: Any] { json["generate"] as! [String: Any] }
}

/// max |a − b| ≤ tol · max |b| (+ a floor for all-zero references).
func expectClose(_ a: Tensor, _ b: Tensor, relative tol: Float, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(what): \(a.count) vs \(b.count) elements", sourceLocation: sourceLocation)
    guard a.count == b.count else { return }
    var scale: Float = 0
    for i in 0..<b.count { scale = max(scale, abs(b[i])) }
    let diff = a.maxAbsDifference(b)
    #expect(diff <= tol * scale + 1e-6, "\(what): max |Δ| \(diff), max |ref| \(scale)", sourceLocation: sourceLocation)
}

@Suite("Golden: logits and gradients against transformers and PEFT")
struct GoldenModelTests {
    @Test(arguments: ["llama-mha", "qwen2-gqa"])
    func logitsLossAndEveryGradient(fixture name: String) throws {
        let f = try ModelFixture(name)
        let model = try TransformerModel.load(directory: f.dir)
        let logits = try model.logits(inputIDs: f.batch.inputIDs, attentionMask: f.batch.attentionMask)
        let ref = try f.tensor("logits")
        #expect(logits.maxAbsDifference(ref) < 1e-4, "logits max |Δ| \(logits.maxAbsDifference(ref))")

        model.setTrainable(.full)
        var none: RandomGenerator? = nil
        let (sum, n) = try model.forwardBackward(f.batch, rng: &none)
        #expect(n == (f.json["loss"] as! [String: Any])["n_tokens"] as! Int)
        #expect(abs(sum / Double(n) - Double(try f.tensor("loss")[0])) < 1e-5)
        var checked = 0
        for (pname, grad) in model.namedGradients() {
            expectClose(grad, try f.tensor("grad." + pname), relative: 1e-3, "\(name) grad.\(pname)")
            checked += 1
        }
        #expect(checked == f.cases.names.filter { $0.hasPrefix("grad.") }.count)
    }

    @Test(arguments: ["llama-mha", "qwen2-gqa"])
    func peftAdapterLogitsAndLoRAGradients(fixture name: String) throws {
        let f = try ModelFixture(name)
        let model = try TransformerModel.load(directory: f.dir)
        try model.loadAdapter(directory: f.dir + "/lora-adapter")
        let logits = try model.logits(inputIDs: f.batch.inputIDs, attentionMask: f.batch.attentionMask)
        #expect(logits.maxAbsDifference(try f.tensor("lora.logits")) < 1e-4)
        model.setTrainable(.lora)
        var none: RandomGenerator? = nil
        let (sum, n) = try model.forwardBackward(f.batch, rng: &none)
        #expect(abs(sum / Double(n) - Double(try f.tensor("lora.loss")[0])) < 1e-5)
        let grads = model.namedGradients()
        #expect(grads.count == f.cases.names.filter { $0.hasPrefix("lora.grad.") }.count)
        for (key, grad) in grads { expectClose(grad, try f.tensor("lora.grad." + key), relative: 1e-3, "\(name) \(key)") }
    }

    @Test(arguments: ["llama-mha", "qwen2-gqa"])
    func greedyGenerationWithTheKVCache(fixture name: String) throws {
        let f = try ModelFixture(name)
        let model = try TransformerModel.load(directory: f.dir)
        let prompt = (f.generate["prompt"] as! [[Int]])[0]
        let expected = (f.generate["output"] as! [[Int]])[0]
        let out = try model.generate(prompt: prompt, maxNewTokens: expected.count - prompt.count)
        #expect(prompt + out == expected)
        let last = try model.logits(inputIDs: [prompt])
        let V = model.config.vocabSize
        let row = Tensor(shape: [V], values: Array(last.toArray()[((prompt.count - 1) * V)...]))
        #expect(row.maxAbsDifference(try f.tensor("generate.logits_last")) < 1e-4)
    }

    @Test func adapterRoundTripsThroughCairnsWriter() throws {
        let f = try ModelFixture("qwen2-gqa")
        let model = try TransformerModel.load(directory: f.dir)
        try model.loadAdapter(directory: f.dir + "/lora-adapter")
        // CAIRN_EXPORT_DIR keeps the adapter for `make_fixtures.py --check-cairn-adapter`.
        let export = ProcessInfo.processInfo.environment["CAIRN_EXPORT_DIR"]
        let out = export.map { $0 + "/qwen2-gqa-adapter" } ?? NSTemporaryDirectory() + "cairn-adapter-\(UUID().uuidString.prefix(8))"
        defer { if export == nil { try? FileManager.default.removeItem(atPath: out) } }
        try model.saveAdapter(to: out, baseModel: "qwen2-gqa")
        let again = try TransformerModel.load(directory: f.dir)
        try again.loadAdapter(directory: out)
        #expect(try again.logits(inputIDs: f.batch.inputIDs).maxAbsDifference(model.logits(inputIDs: f.batch.inputIDs)) == 0)
        #expect(again.loraSpec == model.loraSpec)
    }
}
