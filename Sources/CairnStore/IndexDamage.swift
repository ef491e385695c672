/// What can be wrong with a store's index (or its journal) when the store is opened. Every
/// command refuses such a store with one line naming the problem and the repair, and writes
/// nothing; `cairn fsck` reports it as an error finding.
public enum IndexDamage: Equatable, Sendable {
    case missing(String)
    case unreadable(String, detail: String)
    case empty(String)
    case tooOld(String, version: Int)
    case missingTable(String, table: String)
    case noJournalState(String)
    case otherStore(String, indexStore: String, store: String)
    case aheadOfJournal(String, journal: String)
    case mismatch(String, journal: String)
    case behindJournal(String, records: Int)
    case journalMissing(String)
    case journalOfOtherStore(String)

    /// How fsck names it.
    public var finding: Finding.Kind {
        switch self {
        case .behindJournal: return .indexBehindJournal
        case .journalMissing, .journalOfOtherStore, .aheadOfJournal: return .damagedJournal
        default: return .damagedIndex
        }
    }

    /// The subject: the index or journal file concerned.
    public var subject: String {
        switch self {
        case .missing(let p), .unreadable(let p, _), .empty(let p), .tooOld(let p, _), .missingTable(let p, _),
             .noJournalState(let p), .otherStore(let p, _, _), .behindJournal(let p, _), .aheadOfJournal(let p, _),
             .mismatch(let p, _), .journalMissing(let p), .journalOfOtherStore(let p):
            return p
        }
    }

    /// What is wrong, in one clause.
    public var problem: String {
        switch self {
        case .missing(let p): return "the store index '\(p)' is missing"
        case .unreadable(let p, let d): return "the store index '\(p)' cannot be read (\(d))"
        case .empty(let p): return "the store index '\(p)' is empty"
        case .tooOld(let p, let v): return "the store index '\(p)' has schema version \(v), from before this store's journal (an old copy of index.db?)"
        case .missingTable(let p, let t): return "the store index '\(p)' has no table '\(t)'"
        case .noJournalState(let p): return "the store index '\(p)' does not say how much of the journal it holds"
        case .otherStore(let p, let other, let mine): return "the store index '\(p)' belongs to another store (\(other), this store is \(mine))"
        case .aheadOfJournal(let p, let j): return "the store index '\(p)' holds more than the journal '\(j)' (the journal was cut short or replaced)"
        case .mismatch(let p, let j): return "the store index '\(p)' does not match the journal '\(j)' (an index.db or journal copied from elsewhere?)"
        case .behindJournal(let p, let n): return "the store index '\(p)' is \(n) transaction(s) behind the store's journal (a lost index.db-wal, or an older copy of index.db)"
        case .journalMissing(let j): return "the store's journal '\(j)' is missing"
        case .journalOfOtherStore(let j): return "the store's journal '\(j)' belongs to another store, or its first record is damaged"
        }
    }

    /// The command that repairs it, and what it does.
    public var repair: String {
        switch self {
        case .journalMissing: return "run `cairn fsck --repair` to write a new journal from the index"
        case .journalOfOtherStore, .aheadOfJournal: return "restore the journal from a backup; `cairn fsck --repair` can only rebuild the index from it"
        default: return "run `cairn fsck --repair` to rebuild it from the journal"
        }
    }

    public var message: String { problem + "; nothing was changed — " + repair }

    public var error: StoreError { StoreError(.damagedIndex, message) }
}
