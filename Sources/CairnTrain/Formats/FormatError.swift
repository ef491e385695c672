/// A model or adapter file that Cairn cannot read or write. The description names the file and,
/// where it applies, the tensor or key, and says what is wrong:
/// `model.safetensors: tensor 'model.layers.0.mlp.up_proj.weight' ends at byte 123456 but the data
/// section has 1000 bytes (truncated file?)`.
public struct FormatError: Error, CustomStringConvertible, Sendable {
    /// The file (or directory) as the caller named it.
    public let file: String
    /// The tensor or key the problem is about, if any.
    public let name: String?
    /// What is wrong, without the file and name.
    public let message: String
    private let noun: String

    /// A problem with one tensor of a file.
    public init(file: String, tensor: String?, _ message: String) {
        self.file = file
        name = tensor
        self.message = message
        noun = "tensor"
    }

    /// A problem with one key of a file (a JSON key, an adapter weight name).
    public init(file: String, key: String, _ message: String) {
        self.file = file
        name = key
        self.message = message
        noun = "key"
    }

    /// A problem with the file as a whole.
    public init(file: String, _ message: String) {
        self.init(file: file, tensor: nil, message)
    }

    /// `file: tensor 'name' message`, `file: key 'name' message` or `file: message`.
    public var description: String {
        if let name { return "\(file): \(noun) '\(name)' \(message)" }
        return "\(file): \(message)"
    }
}
