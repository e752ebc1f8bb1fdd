-- Schema version 11: the RL model registry (vibe_quant.rl.registry). A model is identified by its
-- content (sha256 of its artifact files and metadata, first 16 hex): registering the same thing twice
-- finds the same row. Its artifacts live under $VQ_HOME/models/<model_id>/. A model enters as a
-- candidate; staging is a manual step, champion is reached only through the promotion rules
-- (vibe_quant.rl.promotion) and a replaced champion is retired. Every stage change is a decision row
-- with its reasons.
CREATE TABLE IF NOT EXISTS models (
    model_id TEXT PRIMARY KEY,          -- 16 hex: content id
    name TEXT NOT NULL,
    algo TEXT NOT NULL CHECK (algo IN ('sac', 'ppo', 'dqn')),
    symbol TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    created_at TEXT NOT NULL,           -- ISO 8601 UTC, when it was first registered
    artifact_path TEXT NOT NULL,        -- relative to the home: models/<model_id>
    training_data_hash TEXT NOT NULL,
    feature_version TEXT NOT NULL,
    hyperparameters JSON NOT NULL,
    env_config JSON NOT NULL,
    evaluation JSON NOT NULL,           -- {metrics: {net_return, max_drawdown, sharpe, ...}, details: {...}}
    stage TEXT NOT NULL DEFAULT 'candidate' CHECK (stage IN ('candidate', 'staging', 'champion', 'retired'))
);
CREATE INDEX IF NOT EXISTS models_market ON models(symbol, timeframe, stage);
-- One champion per symbol and timeframe: a promotion retires the old one first, in the same transaction.
CREATE UNIQUE INDEX IF NOT EXISTS models_one_champion ON models(symbol, timeframe) WHERE stage = 'champion';

CREATE TABLE IF NOT EXISTS model_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id TEXT NOT NULL REFERENCES models(model_id),
    champion_id TEXT REFERENCES models(model_id),  -- the champion of its symbol+timeframe then, else NULL
    decided_at TEXT NOT NULL,           -- ISO 8601 UTC
    decision TEXT NOT NULL CHECK (decision IN ('promoted', 'rejected', 'staged', 'retired')),
    reasons JSON NOT NULL               -- [{rule, passed, value, threshold, message}, ...]
);
CREATE INDEX IF NOT EXISTS model_decisions_model ON model_decisions(model_id, id);
