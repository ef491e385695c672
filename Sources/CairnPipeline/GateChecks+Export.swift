import CairnTrain
import Foundation

extension GateChecks {
    /// How far an export's logits may be from the model's, relative to the largest logit: f32 is
    /// the same numbers; f16 and q8_0 round every weight. Measured on SmolLM2-135M over the task-api
    /// eval prompts (`cairn check export_matches_model`): f32 8.5e-7, f16 9.4e-4, q8_0 2.3e-2.
    static func exportTolerance(_ type: GGMLType) -> Double {
        switch type {
        case .f32: return 1e-5
        case .f16, .bf16: return 1e-2
        default: return 1e-1
        }
    }

    /// The export gate: the GGUF file reads back (header, every tensor) as the model it was made
    /// from — the same config, the same token ids from its own tokenizer metadata, and logits on
    /// the probe prompts within the rounding of its type.
    public static func exportMatchesModel(model: String, export: String, probes: [GatePrompt]) throws -> [CheckResult] {
        let (source, tok) = try loadModel(model, adapter: nil)
        let file = try GGUFFile(path: export)
        let exported = try GGUFModel.load(file)
        let exportedTok = try Tokenizer(gguf: file.metadata)
        let type = file.tensors.first { $0.name == "blk.0.attn_q.weight" }?.type ?? .f32
        var results: [CheckResult] = []
        let sameConfig = exported.config.hiddenSize == source.config.hiddenSize && exported.config.numLayers == source.config.numLayers
            && exported.config.vocabSize == source.config.vocabSize && exported.config.architecture == source.config.architecture
        var idsDiffer = 0
        var worst = 0.0, scale = 0.0
        for p in probes {
            let text = try p.rendered(with: tok)
            let ids = tok.encode(text)
            if try exportedTok.encode(p.rendered(with: exportedTok)) != ids { idsDiffer += 1 }
            guard !ids.isEmpty, sameConfig else { continue }
            let a = try source.logits(inputIDs: [ids]), b = try exported.logits(inputIDs: [ids])
            worst = max(worst, Double(a.maxAbsDifference(b)))
            for i in 0..<a.count { scale = max(scale, Double(abs(a[i]))) }
        }
        results.append(CheckResult(name: "export_reads_back", status: sameConfig && idsDiffer == 0 ? .passed : .failed,
                                   details: "\(file.tensors.count) tensors (\(type)); " + (sameConfig ? "same architecture and shapes" : "the config differs from the model's")
                                       + (idsDiffer == 0 ? "; its tokenizer gives the model's ids on \(probes.count) prompts" : "; its tokenizer differs on \(idsDiffer) of \(probes.count) prompts")))
        let relative = scale > 0 ? worst / scale : worst
        let tolerance = exportTolerance(type)
        results.append(CheckResult(name: "export_logits_match", status: relative <= tolerance && relative.isFinite ? .passed : .failed,
                                   details: String(format: "max |Δlogit| %.2e (%.2e of the largest logit) over %d probe prompts, tolerance %g for %@",
                                                   worst, relative, probes.count, tolerance, type.description),
                                   value: relative))
        return results
    }
}
