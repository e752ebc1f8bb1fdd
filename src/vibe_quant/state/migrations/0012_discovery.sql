-- Schema version 12: genetic strategy discovery (vibe_quant.discovery). A discovery run searches DSL
-- genomes on a training period, checkpointing each generation (population, RNG state, statistics) so a
-- killed run resumes where it stopped and ends exactly as an uninterrupted one. Every genome evaluated
-- is stored once per run (its key is a hash of its rendered rules: the evaluation cache), with its
-- metrics and daily returns; the guard rails' verdicts on the finalists are stored at the end.
CREATE TABLE IF NOT EXISTS discovery_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,           -- ISO 8601 UTC
    completed_at TEXT,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    config JSON NOT NULL,               -- DiscoveryConfig: market, periods, search, guard rails
    generation INTEGER NOT NULL DEFAULT -1,  -- last checkpointed generation (-1: none yet)
    evaluated INTEGER NOT NULL DEFAULT 0,    -- genomes run (each once): the DSR's number of trials
    cache_hits INTEGER NOT NULL DEFAULT 0,   -- evaluations answered by the cache
    pid INTEGER,
    host TEXT,
    started_at TEXT,
    heartbeat_at TEXT,
    summary JSON,                       -- guard-rail outcome (run level: PBO, trials) once completed
    error_message TEXT
);

CREATE TABLE IF NOT EXISTS discovery_genomes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES discovery_runs(id),
    genome_key TEXT NOT NULL,           -- sha256 (20 hex) of the rendered rules
    role TEXT NOT NULL DEFAULT 'search' CHECK (role IN ('search', 'baseline')),  -- baseline: random genome for the report
    generation INTEGER NOT NULL,        -- first generation that produced it (-1: baselines)
    genome JSON NOT NULL,
    document JSON NOT NULL,             -- the DSL document it renders to
    complexity INTEGER NOT NULL,        -- entry + exit genes
    description TEXT NOT NULL,
    metrics JSON,                       -- training-period metrics (baselines: held-out period); NULL on error
    sharpe_ratio REAL,
    max_drawdown REAL,
    profit_factor REAL,
    total_trades INTEGER,
    feasible BOOLEAN NOT NULL DEFAULT 0, -- passes the hard filters (the search's constraints)
    violation REAL NOT NULL DEFAULT 0,  -- how far from feasible (0 when feasible)
    objectives JSON,                    -- [Sharpe - Occam penalty, 1 - max drawdown, capped profit factor]
    daily_returns BLOB,                 -- float64 little-endian, training period
    engine TEXT,
    error_message TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS discovery_genomes_key ON discovery_genomes(run_id, role, genome_key);

CREATE TABLE IF NOT EXISTS discovery_generations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES discovery_runs(id),
    generation INTEGER NOT NULL,
    population JSON NOT NULL,           -- genome keys, in order
    front JSON NOT NULL,                -- keys of the population's first Pareto front (feasible only)
    stats JSON NOT NULL,                -- per objective: best, mean, worst; feasible share; counters
    rng_state JSON NOT NULL,            -- Python's random state after this generation (resume)
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS discovery_generations_gen ON discovery_generations(run_id, generation);

CREATE TABLE IF NOT EXISTS discovery_finalists (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES discovery_runs(id),
    rank INTEGER NOT NULL,              -- 1 = best training Sharpe among the finalists
    genome_key TEXT NOT NULL,
    holdout_metrics JSON,               -- the held-out period, never seen by the search
    checks JSON NOT NULL,               -- {dsr, walk_forward, pbo, holdout, baseline}: {passed, reason, figures}
    passed BOOLEAN NOT NULL,            -- every guard rail passed
    reasons JSON NOT NULL               -- why it was rejected ([] when passed)
);
CREATE UNIQUE INDEX IF NOT EXISTS discovery_finalists_rank ON discovery_finalists(run_id, rank);
