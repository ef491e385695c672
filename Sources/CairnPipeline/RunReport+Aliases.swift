import CairnStore
import Foundation

/// What a run did to the aliases: which artifact (made by which run) it replaced, and what
/// replaced it later. The runs named here get pages of their own, so no link is dead.
extension RunReport {
    /// One alias move a run made, the run that made the artifact it replaced, and the moves of
    /// the same alias after it (oldest first).
    struct AliasStory {
        let move: AliasMove
        let previousRun: Int64?
        let later: [AliasMove]

        /// The runs this story links to: the previous one and those of the later moves.
        var linkedRuns: [Int64] { ([previousRun] + later.map(\.run)).compactMap { $0 } }
    }

    /// The moves run `id` made on any alias (by alias name, then version).
    static func aliasStories(_ store: ArtifactStore, run id: Int64) throws -> [AliasStory] {
        var stories: [AliasStory] = []
        for alias in try store.aliases() {
            let history = try store.history(alias.name)
            for m in history where m.run == id {
                stories.append(AliasStory(move: m, previousRun: try previousRun(store, history, before: m),
                                          later: history.filter { $0.version > m.version }))
            }
        }
        return stories
    }

    /// The run that made the artifact `move` replaced: the latest earlier move that set it (its
    /// run), else the artifact's producer; nil when neither names a run that exists.
    static func previousRun(_ store: ArtifactStore, _ history: [AliasMove], before move: AliasMove) throws -> Int64? {
        guard let old = move.from else { return nil }
        let run = history.last { $0.version < move.version && $0.to == old && $0.run != nil }?.run
            ?? (try? store.ancestors(of: old))?.nodes.first { $0.id == old }?.producer?.run
        guard let run, run != move.run, try store.run(run) != nil else { return nil }
        return run
    }

    static func runLink(_ run: Int64) -> String { "<a href=\"run-\(run).html\">run \(run)</a>" }

    /// "promoted task-api@production from sha256:… (made by run 2) to sha256:…", then what came after.
    static func aliasSection(_ stories: [AliasStory]) -> String {
        guard !stories.isEmpty else { return "" }
        var html = "<h2>Aliases</h2><ul class=\"aliases\">"
        for st in stories {
            let m = st.move
            let verb = m.action == .rollback ? "rolled back" : "promoted"
            html += "<li>\(verb) <b>\(esc(m.alias))</b> "
            if let from = m.from {
                html += "from <code>\(esc(from.short))</code>" + (st.previousRun.map { " (made by \(runLink($0)))" } ?? "") + " "
            }
            html += "to <code>\(esc(m.to.short))</code> (version \(m.version))"
            if !st.later.isEmpty { html += "<ul>" + st.later.map { "<li>\(laterMove($0, ours: m.to))</li>" }.joined() + "</ul>" }
            html += "</li>"
        }
        return html + "</ul>"
    }

    /// A later move of the alias, in words: "replaced by run 4 (sha256:…)", "rolled back to … by root: reason".
    static func laterMove(_ m: AliasMove, ours: ArtifactID) -> String {
        let to = "<code>\(esc(m.to.short))</code>" + (m.to == ours ? " (this run's)" : "")
        var s: String
        switch (m.action, m.run) {
        case (.set, let run?): s = "replaced by \(runLink(run)) with \(to)"
        case (.set, nil): s = "set to \(to) by \(esc(m.actor))"
        case (.rollback, _): s = "rolled back to \(to) by \(esc(m.actor))"
        }
        if let r = m.reason, !r.isEmpty { s += ": \(esc(r))" }
        return s + " (version \(m.version))"
    }
}
