-- Schema version 9: paper and live trading (docs/specs.md#paper-trading-and-live-execution).
-- A paper (or testnet/live) session is one TradingNode run of a resolved backtest config; it writes
-- a status snapshot as it goes, a checkpoint every 60 s and on shutdown, its equity per bar and its
-- fills (both idempotent: a restarted session writes the same rows again), and reads operator
-- commands (halt, resume, close_all, stop) that it applies at a bar boundary and journals.
CREATE TABLE IF NOT EXISTS paper_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mode TEXT NOT NULL,                 -- replay | testnet | live
    config JSON NOT NULL,               -- the resolved BacktestConfig it trades
    feed JSON,                          -- replay: {start, end, speed}; testnet/live: {}
    limits JSON,                        -- live safety applied, fields loosened and the recorded reason
    from_run INTEGER,                   -- backtest_runs.id of the validated run it was started from
    status TEXT NOT NULL DEFAULT 'starting',  -- starting | running | finished | stopped | failed | crashed
    pid INTEGER,
    host TEXT,
    job_id INTEGER,
    error TEXT,
    cursor_ns INTEGER,                  -- feed time of the last bar fully processed
    bars_done INTEGER DEFAULT 0,
    bars_total INTEGER,
    snapshot JSON,                      -- the latest status: equity, positions, orders, strategies, costs
    heartbeat_at TEXT,
    created_at TEXT DEFAULT (datetime('now')),
    finished_at TEXT
);

CREATE TABLE IF NOT EXISTS paper_checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES paper_sessions(id) ON DELETE CASCADE,
    created_at TEXT DEFAULT (datetime('now')),
    reason TEXT NOT NULL,               -- periodic | shutdown | halt | finish
    cursor_ns INTEGER,
    bars_done INTEGER,
    state JSON NOT NULL                 -- positions, open orders, balance, ledger, breakers, strategy states
);
CREATE INDEX IF NOT EXISTS paper_checkpoints_session ON paper_checkpoints(session_id, id);

CREATE TABLE IF NOT EXISTS paper_commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL REFERENCES paper_sessions(id) ON DELETE CASCADE,
    command TEXT NOT NULL,              -- halt | resume | close_all | stop
    target TEXT,                        -- a strategy id, or NULL for every strategy
    reason TEXT,
    requested_by TEXT,
    requested_at TEXT DEFAULT (datetime('now')),
    applied_at TEXT,
    applied_bar INTEGER,                -- bars done when applied: a restarted replay applies it again there
    result TEXT
);

CREATE TABLE IF NOT EXISTS paper_equity (
    session_id INTEGER NOT NULL REFERENCES paper_sessions(id) ON DELETE CASCADE,
    ts_ns INTEGER NOT NULL,
    equity REAL NOT NULL,
    PRIMARY KEY (session_id, ts_ns)
);

CREATE TABLE IF NOT EXISTS paper_fills (
    session_id INTEGER NOT NULL REFERENCES paper_sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,               -- the fill's index in the session's ledger
    ts_ns INTEGER NOT NULL,
    record JSON NOT NULL,               -- vibe_quant.backtest.recorder.FillRecord fields
    PRIMARY KEY (session_id, seq)
);

-- Manual promotion (backtest -> paper -> live): who, when, why and the evidence it rested on.
CREATE TABLE IF NOT EXISTS promotions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES backtest_runs(id),
    stage TEXT NOT NULL,                -- paper | live
    who TEXT NOT NULL,
    why TEXT NOT NULL,
    evidence JSON NOT NULL,             -- filters passed, paper days, divergence figures
    override TEXT,                      -- the recorded reason a failed gate was overridden, else NULL
    created_at TEXT DEFAULT (datetime('now'))
);
