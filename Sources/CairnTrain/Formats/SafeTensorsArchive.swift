import Foundation

/// A model's weights, in one or more safetensors files: `DIR/model.safetensors`, or
/// `DIR/model.safetensors.index.json` with the shards its `weight_map` names, or a single
/// `*.safetensors` / `*.safetensors.index.json` given as a path. Every file is mapped and its
/// header checked when the archive is opened.
public final class SafeTensorsArchive {
    /// The path as given.
    public let path: String
    private let shardOf: [String: SafeTensorsFile]
    /// The tensor names of every shard, sorted.
    public let names: [String]

    /// Opens a model directory, an index or a single file, mapping and checking every shard; an
    /// index entry whose shard is missing or does not hold the tensor is an error naming it.
    public init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FormatError(file: path, "no such file or directory")
        }
        if isDirectory.boolValue {
            let index = (path as NSString).appendingPathComponent("model.safetensors.index.json")
            let single = (path as NSString).appendingPathComponent("model.safetensors")
            if FileManager.default.fileExists(atPath: index) {
                shardOf = try SafeTensorsArchive.openIndex(index)
            } else if FileManager.default.fileExists(atPath: single) {
                shardOf = try SafeTensorsArchive.openSingle(single)
            } else {
                throw FormatError(file: path, "has neither model.safetensors nor model.safetensors.index.json")
            }
        } else if path.hasSuffix(".index.json") {
            shardOf = try SafeTensorsArchive.openIndex(path)
        } else {
            shardOf = try SafeTensorsArchive.openSingle(path)
        }
        names = shardOf.keys.sorted()
    }

    /// The tensor's shape; nil when no shard has it.
    public func shape(_ name: String) -> [Int]? { shardOf[name]?.shape(name) }

    /// The tensor's dtype; nil when no shard has it or its dtype is not one Cairn converts.
    public func dtype(_ name: String) -> DType? { shardOf[name]?.dtype(name) }

    /// The tensor as fp32 (aligned F32 borrowed from the mapping, the rest converted once).
    public func tensor(_ name: String) throws -> Tensor {
        guard let file = shardOf[name] else {
            throw FormatError(file: path, tensor: name, "is not in the model (\(names.count) tensors)")
        }
        return try file.tensor(name)
    }

    /// The tensor, checked against the shape the model config implies.
    public func tensor(_ name: String, expectedShape: [Int]) throws -> Tensor {
        guard let file = shardOf[name], let shape = file.shape(name) else {
            throw FormatError(file: path, tensor: name, "is not in the model (expected shape \(expectedShape))")
        }
        guard shape == expectedShape else {
            throw FormatError(file: file.path, tensor: name, "has shape \(shape) but the model config expects \(expectedShape)")
        }
        return try file.tensor(name)
    }

    private static func openSingle(_ path: String) throws -> [String: SafeTensorsFile] {
        let file = try SafeTensorsFile(path: path)
        return Dictionary(uniqueKeysWithValues: file.names.map { ($0, file) })
    }

    private struct Index: Decodable {
        let weightMap: [String: String]
        enum CodingKeys: String, CodingKey { case weightMap = "weight_map" }
    }

    private static func openIndex(_ indexPath: String) throws -> [String: SafeTensorsFile] {
        guard let data = FileManager.default.contents(atPath: indexPath) else {
            throw FormatError(file: indexPath, "cannot be read")
        }
        let index: Index
        do {
            index = try JSONDecoder().decode(Index.self, from: data)
        } catch {
            throw FormatError(file: indexPath, "is not a safetensors index (want {\"weight_map\": {tensor: shard file}}): \(error)")
        }
        let directory = (indexPath as NSString).deletingLastPathComponent
        var shards: [String: SafeTensorsFile] = [:]
        var result: [String: SafeTensorsFile] = [:]
        for (name, shardName) in index.weightMap.sorted(by: { $0.key < $1.key }) {
            guard !shardName.contains("/"), !shardName.isEmpty else {
                throw FormatError(file: indexPath, tensor: name, "maps to \"\(shardName)\"; a shard must be a file name beside the index")
            }
            let shard: SafeTensorsFile
            if let s = shards[shardName] {
                shard = s
            } else {
                let shardPath = (directory as NSString).appendingPathComponent(shardName)
                guard FileManager.default.fileExists(atPath: shardPath) else {
                    throw FormatError(file: indexPath, tensor: name, "maps to shard '\(shardName)', which does not exist")
                }
                shard = try SafeTensorsFile(path: shardPath)
                shards[shardName] = shard
            }
            guard shard.shape(name) != nil else {
                throw FormatError(file: indexPath, tensor: name, "maps to shard '\(shardName)', which does not hold it")
            }
            result[name] = shard
        }
        return result
    }
}
