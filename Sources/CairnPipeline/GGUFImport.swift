import CairnStore
import CairnTrain
import Foundation

/// Bringing a GGUF model into the store: the file itself is stored (kind `gguf`) and the Hugging Face
/// directory imported from it (kind `base-model`) is recorded as made from it, so that lineage of
/// every model trained on it ends at the GGUF.
public enum GGUFImport {
    public struct Result: Sendable {
        public let gguf: ArtifactRecord
        public let model: ArtifactRecord
        /// False when this GGUF had already been imported with this dtype (nothing was converted).
        public let imported: Bool
    }

    /// Stores `path` and the model imported from it. Idempotent: a GGUF already imported with the
    /// same dtype returns the earlier model without converting again.
    public static func run(_ path: String, store: ArtifactStore, name: String?, dtype: DType) throws -> Result {
        // The header (architecture, tokenizer) is checked before anything is stored.
        let file = try GGUFFile(path: path)
        _ = try GGUFModel.config(of: file)
        let displayName = try name ?? file.metadata.optionalString("general.name") ?? URL(fileURLWithPath: path).lastPathComponent
        let gguf = try store.addByHand(path: path, kind: .gguf, name: URL(fileURLWithPath: path).lastPathComponent, used: []).artifact
        for node in try store.descendants(of: gguf.id).nodes where node.kind == ArtifactKind.baseModel.rawValue {
            if let record = try store.artifact(node.id), record.collectedAt == nil,
               record.metadata["imported_from"]?.stringValue == gguf.id.description,
               record.metadata["dtype"]?.stringValue == dtype.rawValue {
                return Result(gguf: gguf, model: record, imported: false)
            }
        }
        let tmp = NSTemporaryDirectory() + "cairn-import-\(gguf.id.hex.prefix(12))-\(getpid())"
        try? FileManager.default.removeItem(atPath: tmp)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let summary = try GGUFModel.importModel(file, to: tmp, dtype: dtype)
        let metadata: JSONValue = .object([
            "imported_from": .string(gguf.id.description), "gguf_file": .string(URL(fileURLWithPath: path).lastPathComponent),
            "architecture": .string(summary.architecture), "parameters": .number(Double(summary.parameters)),
            "dtype": .string(dtype.rawValue),
            "gguf_tensor_types": .object(summary.tensorTypes.mapValues { .number(Double($0)) }),
        ])
        let model = try store.addByHand(path: tmp, kind: .baseModel, name: displayName, metadata: metadata,
                                        used: [(role: "gguf", artifact: gguf.id)], pipeline: "import", stage: "gguf").artifact
        return Result(gguf: gguf, model: model, imported: true)
    }
}
