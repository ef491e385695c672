import Foundation

/// A JSONL file read line by line: each non-blank line must be a JSON object.
struct JSONLines {
    let file: String
    /// (line number, object) for every non-blank line.
    let records: [(line: Int, object: [String: Any])]

    /// `maxLineBytes`: a longer line is refused before it is parsed (nil: no limit).
    init(file: String, maxLineBytes: Int? = nil) throws {
        self.file = file
        guard let data = FileManager.default.contents(atPath: file) else { throw DatasetError(file: file, "no such file or it cannot be read") }
        guard let text = String(data: data, encoding: .utf8) else { throw DatasetError(file: file, "it is not UTF-8 text") }
        var out: [(Int, [String: Any])] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if let limit = maxLineBytes, line.utf8.count > limit {
                throw DatasetError(file: file, line: i + 1, "the line is \(line.utf8.count) bytes, over the limit of \(limit) bytes for one line")
            }
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw DatasetError(file: file, line: i + 1, "not a JSON object (invalid JSON)")
            }
            out.append((i + 1, obj))
        }
        guard !out.isEmpty else { throw DatasetError(file: file, data.isEmpty ? "the file is empty" : "the file has no examples") }
        records = out
    }

    func string(_ obj: [String: Any], _ key: String, line: Int, allowEmpty: Bool = false) throws -> String {
        guard let v = obj[key] else { throw DatasetError(file: file, line: line, key: key, "missing key \"\(key)\"") }
        guard let s = v as? String else { throw DatasetError(file: file, line: line, key: key, "key \"\(key)\" must be a string") }
        if !allowEmpty && s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw DatasetError(file: file, line: line, key: key, "key \"\(key)\" is empty")
        }
        return s
    }

    func messages(_ v: Any?, key: String, line: Int) throws -> [ChatMessage] {
        guard let list = v as? [[String: Any]], !list.isEmpty else {
            throw DatasetError(file: file, line: line, key: key, "key \"\(key)\" must be a non-empty list of {\"role\", \"content\"} messages")
        }
        return try list.enumerated().map { i, m in
            guard let role = m["role"] as? String, ["system", "user", "assistant"].contains(role) else {
                throw DatasetError(file: file, line: line, key: "\(key)[\(i)].role", "\(key)[\(i)] needs a \"role\" of system, user or assistant")
            }
            guard let content = m["content"] as? String else {
                throw DatasetError(file: file, line: line, key: "\(key)[\(i)].content", "\(key)[\(i)] needs a string \"content\"")
            }
            return ChatMessage(role: role, content: content)
        }
    }
}
