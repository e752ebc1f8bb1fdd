-- Schema version 2: a backtest run's content hash (its result bundle is runs/<run_hash>/) and
-- the strategy it ran by name (Python strategies before the DSL exists).
ALTER TABLE backtest_runs ADD COLUMN run_hash TEXT;
ALTER TABLE backtest_runs ADD COLUMN bundle_path TEXT;
CREATE INDEX idx_backtest_runs_hash ON backtest_runs(run_hash);
