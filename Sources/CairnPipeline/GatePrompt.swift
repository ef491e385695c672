import CairnStore
import CairnTrain
import Foundation

/// A prompt the gates give a model: raw text (the reference's `{"prompt": "…"}`), or a conversation
/// rendered with the model's own chat template and its generation prompt.
public enum GatePrompt: Equatable, Sendable {
    case text(String)
    case chat([ChatMessage])

    /// The text the model continues.
    public func rendered(with tokenizer: Tokenizer) throws -> String {
        switch self {
        case .text(let s): return s
        case .chat(let m): return try tokenizer.renderChat(m, addGenerationPrompt: true)
        }
    }

    /// What a person reads as the prompt: the text, or the conversation's last user turn.
    public var userText: String {
        switch self {
        case .text(let s): return s
        case .chat(let m): return m.last(where: { $0.role == "user" })?.content ?? m.last?.content ?? ""
        }
    }

    /// One JSONL line that `GatePrompt.read` reads back as this prompt.
    public var jsonLine: String {
        switch self {
        case .text(let s): return "{\"prompt\": \(jsonQuoted(s))}"
        case .chat(let m):
            let data = (try? JSONEncoder().encode(["messages": m])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// The prompts of a file, one per line: plain text; `{"prompt": "…"}`; `{"prompt": [messages]}`
    /// (a conversational DPO pair's prompt); or `{"messages": [...]}` — the conversation up to its
    /// final assistant turn when it ends with one (an SFT example), else all of it.
    public static func read(_ file: String) throws -> [GatePrompt] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ConfigError(file: file, line: nil, "cannot read the prompts file") }
        var out: [GatePrompt] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard line.hasPrefix("{") else { out.append(.text(String(line))); continue }
            let bad = ConfigError(file: file, line: i + 1, "expected a JSON object with \"prompt\" (a string or a list of messages) or \"messages\"")
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { throw bad }
            if let p = o["prompt"] as? String {
                out.append(.text(p))
            } else if let list = (o["prompt"] ?? o["messages"]) as? [Any] {
                var messages: [ChatMessage] = []
                for item in list {
                    guard let m = item as? [String: Any], let role = m["role"] as? String, let content = m["content"] as? String else {
                        throw ConfigError(file: file, line: i + 1, "every message needs a string \"role\" and \"content\"")
                    }
                    messages.append(ChatMessage(role: role, content: content))
                }
                if o["prompt"] == nil, messages.count > 1, messages.last?.role == "assistant" { messages.removeLast() }
                guard !messages.isEmpty else { throw bad }
                out.append(.chat(messages))
            } else {
                throw bad
            }
        }
        return out
    }
}
