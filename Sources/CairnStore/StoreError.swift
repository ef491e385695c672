/// Every error CairnStore raises: what failed, on which input, and what to do.
/// `exitCode` follows ARCHITECTURE.md: 2 for bad usage or bad input, 1 when the operation failed.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// The input is wrong: unknown kind, bad path, bad name, unknown reference.
        case badInput
        /// A reference matched more than one artifact.
        case ambiguous
        /// The store does not exist or its index cannot be read.
        case badStore
        /// The index does not match the store's journal (lost, emptied, replaced, behind):
        /// nothing is written until `cairn fsck --repair` rebuilds it.
        case damagedIndex
        /// Stored bytes do not match their hash.
        case integrity
        /// The operation was refused by a rule (an alias blocked after a rollback, an existing file).
        case refused
        /// A system call or the database failed.
        case io
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    public var exitCode: Int32 {
        switch kind {
        case .badInput, .ambiguous, .badStore, .damagedIndex: return 2
        case .integrity, .refused, .io: return 1
        }
    }

    static func bad(_ message: String) -> StoreError { StoreError(.badInput, message) }
}

extension StoreError {
    /// Wraps a lower-level error (SQLite, a system call) into a StoreError naming the context.
    static func wrap(_ error: Error, _ context: String) -> StoreError {
        if let e = error as? StoreError { return e }
        if let e = error as? SQLiteError, e.isCorruption || e.message.hasPrefix("no such table") || e.message.hasPrefix("no such column") {
            return StoreError(.damagedIndex, "\(context): the store index is damaged (\(e.message)); nothing was changed — run `cairn fsck --repair` to rebuild it from the journal")
        }
        return StoreError(.io, "\(context): \(error)")
    }
}
