/// One turn of a conversation, as in a chat dataset's `messages` list.
public struct ChatMessage: Codable, Equatable, Sendable {
    /// `system`, `user` or `assistant` (any string is rendered as given).
    public var role: String
    /// The text of the turn.
    public var content: String

    /// A turn by `role` saying `content`.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}
