import CairnTrain
import Foundation

/// `cairn model chat-template`: how a model's template renders a conversation, for debugging data.
extension ModelCommands {
    static func chatTemplate(_ a: Arguments) throws -> Int32 {
        let (dir, cleanup) = try modelDirectory(a.positionals[0], a)
        defer { cleanup() }
        let tok = try Tokenizer(directory: dir)
        func read(_ option: String) throws -> JinjaValue? {
            guard let path = try a.option(option) else { return nil }
            guard let data = FileManager.default.contents(atPath: path) else { throw UsageError(message: "cannot read --\(option) file '\(path)'") }
            do { return try JinjaValue(jsonData: data) } catch { throw ModelError("\(path): \(error)") }
        }
        guard let given = try read("messages") else { throw UsageError(message: "give --messages FILE.json (a list of messages, or {\"messages\": [...]})") }
        guard let messages = (given["messages"] ?? given).arrayValue else {
            throw ModelError("\(try a.required("messages")): expected a JSON list of messages or an object with \"messages\"")
        }
        let tools = try read("tools")?.arrayValue
        let generation = a.has("add-generation-prompt")
        if !tok.hasChatTemplate { Output.note("note: \(dir) declares no chat template; rendering ChatML") }
        let text = try tok.renderChat(messages: messages, addGenerationPrompt: generation, tools: tools)
        if a.has("json") {
            struct Out: Encodable { let text: String; let ids: [Int] }
            try Output.json(Out(text: text, ids: tok.encode(text)))
        } else if a.has("ids") {
            Output.out(tok.encode(text).map(String.init).joined(separator: " "))
        } else {
            Output.raw(text)
        }
        return 0
    }
}
