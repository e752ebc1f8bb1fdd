-- Schema version 8: settings kept across restarts (the dashboard's Settings page and the stages that
-- read them): one JSON value per dotted key, e.g. `latency.custom_presets`, `overfitting.defaults`.
-- Number 8, not 7: 0007 is reserved for background jobs. IF NOT EXISTS so the table survives a renumbering.
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value JSON NOT NULL,
    updated_at TEXT DEFAULT (datetime('now'))
);
