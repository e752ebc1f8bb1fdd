-- vibe-quant state database, schema version 1.
-- Tables of docs/specs.md#state-database, verbatim, plus the data stage's own tables
-- (instrument mapping per docs/specs.md#instrument-mapping, raw-lake index, ingest units and runs).

CREATE TABLE strategies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    dsl_config JSON NOT NULL,
    strategy_type TEXT,
    created_at TEXT DEFAULT (datetime('now')),
    updated_at TEXT DEFAULT (datetime('now')),
    is_active BOOLEAN DEFAULT 1,
    version INTEGER DEFAULT 1
);

CREATE TABLE sizing_configs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    method TEXT NOT NULL,
    config JSON NOT NULL,
    created_at TEXT DEFAULT (datetime('now'))
);

CREATE TABLE risk_configs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    strategy_level JSON NOT NULL,
    portfolio_level JSON NOT NULL,
    created_at TEXT DEFAULT (datetime('now'))
);

CREATE TABLE backtest_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    strategy_id INTEGER REFERENCES strategies(id),
    sizing_config_id INTEGER REFERENCES sizing_configs(id),
    risk_config_id INTEGER REFERENCES risk_configs(id),
    run_mode TEXT NOT NULL,
    symbols JSON NOT NULL,
    timeframe TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    parameters JSON NOT NULL,
    latency_preset TEXT,
    status TEXT DEFAULT 'pending',
    pid INTEGER,
    heartbeat_at TEXT,
    started_at TEXT,
    completed_at TEXT,
    error_message TEXT,
    created_at TEXT DEFAULT (datetime('now'))
);

CREATE TABLE backtest_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES backtest_runs(id) ON DELETE CASCADE,
    total_return REAL,
    cagr REAL,
    sharpe_ratio REAL,
    sortino_ratio REAL,
    calmar_ratio REAL,
    max_drawdown REAL,
    max_drawdown_duration_days INTEGER,
    volatility_annual REAL,
    total_trades INTEGER,
    winning_trades INTEGER,
    losing_trades INTEGER,
    win_rate REAL,
    profit_factor REAL,
    avg_win REAL,
    avg_loss REAL,
    largest_win REAL,
    largest_loss REAL,
    avg_trade_duration_hours REAL,
    max_consecutive_wins INTEGER,
    max_consecutive_losses INTEGER,
    total_fees REAL,
    total_funding REAL,
    total_slippage REAL,
    deflated_sharpe REAL,
    walk_forward_efficiency REAL,
    purged_kfold_mean_sharpe REAL,
    execution_time_seconds REAL,
    starting_balance REAL,
    notes TEXT,
    created_at TEXT DEFAULT (datetime('now'))
);

CREATE TABLE trades (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES backtest_runs(id) ON DELETE CASCADE,
    symbol TEXT NOT NULL,
    direction TEXT NOT NULL,
    leverage INTEGER DEFAULT 1,
    entry_time TEXT NOT NULL,
    exit_time TEXT,
    entry_price REAL NOT NULL,
    exit_price REAL,
    quantity REAL NOT NULL,
    entry_fee REAL,
    exit_fee REAL,
    funding_fees REAL,
    slippage_cost REAL,
    gross_pnl REAL,
    net_pnl REAL,
    roi_percent REAL,
    exit_reason TEXT
);

CREATE TABLE sweep_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES backtest_runs(id) ON DELETE CASCADE,
    parameters JSON NOT NULL,
    sharpe_ratio REAL,
    sortino_ratio REAL,
    max_drawdown REAL,
    total_return REAL,
    profit_factor REAL,
    win_rate REAL,
    total_trades INTEGER,
    total_fees REAL,
    total_funding REAL,
    execution_time_seconds REAL,
    is_pareto_optimal BOOLEAN DEFAULT 0,
    passed_deflated_sharpe BOOLEAN,
    passed_walk_forward BOOLEAN,
    passed_purged_kfold BOOLEAN
);

CREATE TABLE background_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER UNIQUE REFERENCES backtest_runs(id) ON DELETE CASCADE,
    pid INTEGER NOT NULL,
    job_type TEXT NOT NULL,
    status TEXT DEFAULT 'running',
    heartbeat_at TEXT,
    started_at TEXT DEFAULT (datetime('now')),
    completed_at TEXT,
    log_file TEXT,
    error_message TEXT
);

CREATE INDEX idx_backtest_runs_strategy ON backtest_runs(strategy_id);
CREATE INDEX idx_backtest_runs_status ON backtest_runs(status);
CREATE INDEX idx_backtest_results_run ON backtest_results(run_id);
CREATE INDEX idx_trades_run ON trades(run_id);
CREATE INDEX idx_sweep_results_run ON sweep_results(run_id);
CREATE INDEX idx_sweep_results_pareto ON sweep_results(is_pareto_optimal);
CREATE INDEX idx_background_jobs_status ON background_jobs(status);

-- Instrument mapping (docs/specs.md#instrument-mapping): venue symbol <-> canonical id, with the spec used.
CREATE TABLE instruments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    canonical_id TEXT NOT NULL UNIQUE,          -- BINANCE:BTCUSDT:PERP
    nautilus_id TEXT NOT NULL UNIQUE,           -- BTCUSDT-PERP.BINANCE
    venue TEXT NOT NULL,                        -- BINANCE
    venue_symbol TEXT NOT NULL,                 -- BTCUSDT
    contract TEXT NOT NULL,                     -- PERP
    base_currency TEXT NOT NULL,
    quote_currency TEXT NOT NULL,
    margin_currency TEXT NOT NULL,
    tick_size TEXT NOT NULL,                    -- decimal strings, exact
    step_size TEXT NOT NULL,
    price_precision INTEGER NOT NULL,
    size_precision INTEGER NOT NULL,
    contract_multiplier TEXT NOT NULL,
    min_notional TEXT NOT NULL,
    maker_fee TEXT NOT NULL,
    taker_fee TEXT NOT NULL,
    margin_tiers JSON NOT NULL,
    listed_date TEXT,
    spec_version TEXT NOT NULL,
    spec_sha256 TEXT NOT NULL,
    updated_at TEXT DEFAULT (datetime('now')),
    UNIQUE (venue, venue_symbol, contract)
);

-- Raw lake index: one row per stored source file (byte-for-byte, content-addressed).
CREATE TABLE raw_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL UNIQUE,
    venue TEXT NOT NULL,
    market TEXT NOT NULL,                       -- futures-um
    dataset TEXT NOT NULL,                      -- klines, fundingRate
    symbol TEXT NOT NULL,
    interval TEXT,                              -- 1m for klines
    period_kind TEXT NOT NULL,                  -- monthly, daily, rest
    period_start_ns INTEGER NOT NULL,           -- [start, end) the file speaks for
    period_end_ns INTEGER NOT NULL,
    original_name TEXT NOT NULL,
    source TEXT NOT NULL,                       -- URL or local path it came from
    archive_path TEXT NOT NULL,                 -- relative to the archive root
    size_bytes INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    first_ts_ns INTEGER,
    last_ts_ns INTEGER,
    downloaded_at TEXT NOT NULL
);
CREATE INDEX idx_raw_files_lookup ON raw_files(dataset, symbol, period_start_ns);

CREATE TABLE ingest_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    arguments JSON NOT NULL,
    code_version TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'running',     -- running, completed, failed
    started_at TEXT DEFAULT (datetime('now')),
    finished_at TEXT,
    error_message TEXT
);

-- A catalog unit: what one ingest step wrote for one dataset/symbol over one period.
-- The catalog is a pure function of these units replayed in id order (rebuild --from-archive).
CREATE TABLE ingest_units (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES ingest_runs(id),
    dataset TEXT NOT NULL,
    symbol TEXT NOT NULL,
    period_start_ns INTEGER NOT NULL,
    period_end_ns INTEGER NOT NULL,
    rows_in INTEGER NOT NULL,
    rows_written INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    created_at TEXT DEFAULT (datetime('now'))
);
CREATE INDEX idx_ingest_units_lookup ON ingest_units(dataset, symbol, period_start_ns);

CREATE TABLE unit_sources (
    unit_id INTEGER NOT NULL REFERENCES ingest_units(id) ON DELETE CASCADE,
    raw_file_id INTEGER NOT NULL REFERENCES raw_files(id),
    ordinal INTEGER NOT NULL,
    PRIMARY KEY (unit_id, ordinal)
);

-- Failed files are remembered so status/manifest can show error counts.
CREATE TABLE ingest_errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES ingest_runs(id),
    dataset TEXT,
    symbol TEXT,
    source TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT DEFAULT (datetime('now'))
);
