import CairnPipeline
import CairnStore
import CairnTrain
import Foundation

/// `cairn model import` and `cairn model export`: GGUF in and out.
extension ModelCommands {
    static func importGGUF(_ a: Arguments) throws -> Int32 {
        let path = a.positionals[0]
        let out = try a.required("out")
        let dtype = try parseDType(try a.option("dtype") ?? "f32")
        let start = Date()
        let s = try GGUFModel.importModel(from: path, to: out, dtype: dtype)
        let seconds = Date().timeIntervalSince(start)
        if a.has("json") {
            struct Out: Encodable { let out: String; let architecture: String; let name: String?; let parameters: Int; let tensor_types: [String: Int]; let files: [String]; let seconds: Double }
            try Output.json(Out(out: out, architecture: s.architecture, name: s.name, parameters: s.parameters,
                                tensor_types: s.tensorTypes, files: s.files, seconds: seconds))
        } else {
            let types = s.tensorTypes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            Output.out("\(out): \(s.architecture) \(s.name.map { "'\($0)' " } ?? "")with \(s.parameters) parameters from \(path) (tensors: \(types)) as \(dtype.rawValue) in \(String(format: "%.1f", seconds)) s")
        }
        return 0
    }

    static func exportGGUF(_ a: Arguments) throws -> Int32 {
        let format = try a.option("format") ?? "gguf"
        guard format == "gguf" else { throw UsageError(message: "--format must be gguf, not '\(format)'") }
        let typeName = try a.required("type")
        guard let type = GGMLType.writable.first(where: { $0.description.lowercased() == typeName.lowercased() }) else {
            throw UsageError(message: "--type must be one of \(GGMLType.writable.map { $0.description.lowercased() }.joined(separator: ", ")), not '\(typeName)'")
        }
        let out = try a.required("out")
        let (model, tok, _, cleanup) = try loadModel(a)
        defer { cleanup() }
        let name = try a.option("name") ?? URL(fileURLWithPath: out).deletingPathExtension().lastPathComponent
        let start = Date()
        try GGUFModel.export(model, tokenizer: tok, type: type, name: name, to: out)
        let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        Output.out("\(out): \(model.config.architecture.modelType) as \(type) GGUF, \(Output.size(Int64(size))) in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        return 0
    }

    /// `cairn add FILE.gguf --kind base-model --import`: the GGUF and the model imported from it.
    static func addImported(_ a: Arguments, store: ArtifactStore, kind: ArtifactKind) throws -> Int32 {
        guard kind == .baseModel else { throw UsageError(message: "--import makes a base-model; give --kind base-model") }
        guard a.options["used"] == nil else { throw UsageError(message: "--import records its own lineage (the GGUF); --used does not go with it") }
        let dtype = try parseDType(try a.option("dtype") ?? "f32")
        let start = Date()
        let r = try GGUFImport.run(a.positionals[0], store: store, name: try a.option("name"), dtype: dtype)
        if a.has("json") {
            struct Out: Encodable { let gguf: ArtifactRecord; let model: ArtifactRecord; let imported: Bool }
            try Output.json(Out(gguf: r.gguf, model: r.model, imported: r.imported))
        } else {
            Output.out(r.model.id.description)
            Output.note(r.imported
                ? "stored gguf \(r.gguf.id.short) '\(r.gguf.name)' and base-model '\(r.model.name)' imported from it (\(Output.size(r.model.size)), \(String(format: "%.1f", Date().timeIntervalSince(start))) s)"
                : "already imported: base-model '\(r.model.name)' from gguf \(r.gguf.id.short)")
        }
        return 0
    }

    static func parseDType(_ s: String) throws -> DType {
        guard let d = DType.allCases.first(where: { $0.rawValue.lowercased() == s.lowercased() }) else {
            throw UsageError(message: "--dtype must be f32, f16 or bf16, not '\(s)'")
        }
        return d
    }
}
