-- Schema version 10: alerts (docs/specs.md#alerts). Every alert the alerts stage was asked to send,
-- whether it went out (sent), was held back by the rate limit and summarised in the next message of
-- its kind (held), could not be delivered after the bounded retries (failed) or had nowhere to go
-- because no Telegram token is configured (unconfigured). The token itself is never stored.
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,           -- ISO 8601 UTC, when the alert was raised
    kind TEXT NOT NULL,                 -- error | strategy_halt | portfolio_halt | kill_switch | circuit_breaker
                                        -- | trade | job_failed | daily_summary | test
    severity TEXT NOT NULL,             -- info | warning | critical
    text TEXT NOT NULL,
    fields JSON,                        -- the event's own fields (strategy, breaker, value, limit, job id, ...)
    status TEXT NOT NULL,               -- sent | held | failed | unconfigured
    sent_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS alerts_kind ON alerts(kind, id);
