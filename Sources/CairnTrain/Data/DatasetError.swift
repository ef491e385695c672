/// Bad training data: names the file, the line and the key.
/// "cannot read 'data/sft.jsonl' at line 17: missing key "completion""
public struct DatasetError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int?
    public let key: String?
    public let reason: String

    public init(file: String, line: Int? = nil, key: String? = nil, _ reason: String) {
        self.file = file; self.line = line; self.key = key; self.reason = reason
    }

    public var description: String {
        "cannot read '\(file)'" + (line.map { " at line \($0)" } ?? "") + ": " + reason
    }
}
