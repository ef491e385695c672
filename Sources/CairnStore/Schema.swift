/// The index schema, versioned with `PRAGMA user_version`. Migration N takes a database from
/// version N-1 to N inside one write transaction; an index newer than this Cairn is refused.
enum Schema {
    static let migrations: [String] = [
        // 1: artifacts, runs, stage executions, lineage, aliases with history, run queue.
        """
        CREATE TABLE artifacts(
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            size INTEGER NOT NULL,
            file_count INTEGER NOT NULL,
            created_at REAL NOT NULL,
            created_by TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            pinned INTEGER NOT NULL DEFAULT 0,
            collected_at REAL
        );
        CREATE INDEX artifacts_kind ON artifacts(kind, created_at);
        CREATE TABLE artifact_files(
            artifact INTEGER NOT NULL REFERENCES artifacts(seq),
            path TEXT NOT NULL,
            blob TEXT NOT NULL,
            size INTEGER NOT NULL,
            executable INTEGER NOT NULL,
            PRIMARY KEY(artifact, path)
        ) WITHOUT ROWID;
        CREATE INDEX artifact_files_blob ON artifact_files(blob);
        CREATE TABLE runs(
            id INTEGER PRIMARY KEY,
            pipeline TEXT NOT NULL,
            repo TEXT, branch TEXT, commit_sha TEXT, author TEXT, message TEXT,
            status TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            metadata TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX runs_status ON runs(status);
        CREATE TABLE stage_executions(
            id INTEGER PRIMARY KEY,
            run INTEGER NOT NULL REFERENCES runs(id),
            stage TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            metrics TEXT NOT NULL DEFAULT '{}',
            gate_report TEXT,
            error TEXT,
            cache_key TEXT
        );
        CREATE INDEX stage_executions_run ON stage_executions(run);
        CREATE INDEX stage_executions_cache ON stage_executions(cache_key);
        CREATE TABLE lineage(
            execution INTEGER NOT NULL REFERENCES stage_executions(id),
            relation TEXT NOT NULL CHECK(relation IN ('used', 'generated')),
            artifact INTEGER NOT NULL REFERENCES artifacts(seq),
            role TEXT NOT NULL DEFAULT '',
            PRIMARY KEY(execution, relation, artifact, role)
        ) WITHOUT ROWID;
        CREATE INDEX lineage_artifact ON lineage(artifact, relation, execution);
        CREATE TABLE aliases(
            name TEXT PRIMARY KEY,
            artifact INTEGER NOT NULL REFERENCES artifacts(seq),
            version INTEGER NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE alias_history(
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            alias TEXT NOT NULL,
            version INTEGER NOT NULL,
            action TEXT NOT NULL,
            from_artifact INTEGER REFERENCES artifacts(seq),
            to_artifact INTEGER NOT NULL REFERENCES artifacts(seq),
            actor TEXT NOT NULL,
            at REAL NOT NULL,
            reason TEXT,
            run INTEGER,
            UNIQUE(alias, version)
        );
        CREATE TRIGGER alias_history_append_only_update BEFORE UPDATE ON alias_history
            BEGIN SELECT RAISE(ABORT, 'alias history is append-only'); END;
        CREATE TRIGGER alias_history_append_only_delete BEFORE DELETE ON alias_history
            BEGIN SELECT RAISE(ABORT, 'alias history is append-only'); END;
        CREATE TABLE alias_blocks(
            alias TEXT NOT NULL,
            artifact INTEGER NOT NULL REFERENCES artifacts(seq),
            history INTEGER NOT NULL REFERENCES alias_history(id),
            PRIMARY KEY(alias, artifact)
        ) WITHOUT ROWID;
        CREATE TABLE run_queue(
            id INTEGER PRIMARY KEY,
            pipeline TEXT NOT NULL,
            commit_sha TEXT NOT NULL,
            repo TEXT, branch TEXT,
            state TEXT NOT NULL DEFAULT 'pending',
            enqueued_at REAL NOT NULL,
            run INTEGER REFERENCES runs(id),
            UNIQUE(pipeline, commit_sha)
        );
        """,
        // 2: the trigger: queue entries get their process and times; the last branch tips seen.
        """
        ALTER TABLE run_queue ADD COLUMN started_at REAL;
        ALTER TABLE run_queue ADD COLUMN finished_at REAL;
        ALTER TABLE run_queue ADD COLUMN pid INTEGER;
        ALTER TABLE run_queue ADD COLUMN error TEXT;
        CREATE INDEX run_queue_state ON run_queue(state, id);
        CREATE TABLE watch_state(
            repo TEXT NOT NULL,
            branch TEXT NOT NULL,
            tip TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY(repo, branch)
        );
        """,
        // 3: the journal: which store this index belongs to and the last journal record it holds.
        """
        CREATE TABLE journal_state(
            one INTEGER PRIMARY KEY CHECK(one = 1),
            store TEXT NOT NULL,
            seq INTEGER NOT NULL,
            line_start INTEGER NOT NULL,
            line_end INTEGER NOT NULL
        );
        """,
    ]

    /// The first version with the journal: an index older than this belongs to a store made before it.
    static let journalVersion = 3

    static var version: Int { migrations.count }

    /// Brings the database to the current version.
    static func migrate(_ db: Database, path: String) throws {
        let current = Int(try db.query("PRAGMA user_version")[0].int(0) ?? 0)
        if current > version {
            throw StoreError(.badStore, "store index '\(path)' has schema version \(current), newer than this cairn (\(version)); upgrade cairn")
        }
        if current == version { return }
        try db.writeTransaction {
            // Re-read inside the write lock: another process may have migrated meanwhile.
            let now = Int(try db.query("PRAGMA user_version")[0].int(0) ?? 0)
            for v in now..<version {
                try db.execute(migrations[v])
                try db.execute("PRAGMA user_version = \(v + 1)")
            }
        }
    }
}
