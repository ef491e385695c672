/// Why a chat template cannot be parsed or rendered, with the template line it happened on.
///
/// `description` reads `chat template line 3: unsupported filter 'groupby'`; an error the template
/// raised itself with `raise_exception('...')` has kind `.raised` and `message` exactly as the template
/// gave it, as transformers' `TemplateError` carries it.
public struct ChatTemplateError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable {
        /// The template is not valid Jinja (jinja2 rejects it too).
        case syntax
        /// Valid Jinja that Cairn's interpreter does not implement: never rendered approximately.
        case unsupported
        /// `raise_exception(message)` was called by the template.
        case raised
        /// jinja2 would fail too while rendering: undefined attribute access, a type error, a sandbox
        /// violation, a bad argument.
        case runtime
        /// The values given to the template (malformed JSON, messages that are not objects).
        case input
        /// Assistant spans cannot be derived (the template re-renders earlier turns differently).
        case spans
    }

    public var kind: Kind
    /// The 1-based line of the template (0 when the error is not about a template line).
    public var line: Int
    public var message: String

    public init(_ kind: Kind, line: Int, _ message: String) {
        self.kind = kind
        self.line = line
        self.message = message
    }

    public var description: String {
        let place = line > 0 ? "chat template line \(line)" : "chat template"
        switch kind {
        case .raised: return "\(place): raise_exception: \(message)"
        case .unsupported: return "\(place): unsupported by Cairn's chat template interpreter: \(message)"
        default: return "\(place): \(message)"
        }
    }
}
