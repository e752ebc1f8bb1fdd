-- Schema version 3: every version of a DSL strategy ever run or saved. `strategies` holds the
-- latest (its `version` counts changes); `strategy_versions` keeps each distinct document by
-- content hash, so any past backtest can be traced to the exact text it ran.
CREATE TABLE strategy_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    strategy_id INTEGER NOT NULL REFERENCES strategies(id),
    version INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    dsl_config JSON NOT NULL,
    source_text TEXT,
    created_at TEXT DEFAULT (datetime('now')),
    UNIQUE (strategy_id, sha256),
    UNIQUE (strategy_id, version)
);
