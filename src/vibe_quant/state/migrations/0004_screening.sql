-- Schema version 4: screening sweeps. A screening run keeps its grid definition (sweep overrides,
-- constraints, sample, hard filters) so it can be resumed; each sweep point is identified by a
-- hash of its parameters (a resumed run skips finished points), keeps every metric as JSON, and
-- records the hard-filter outcome and any error.
ALTER TABLE backtest_runs ADD COLUMN sweep_spec JSON;
ALTER TABLE sweep_results ADD COLUMN point_key TEXT;
ALTER TABLE sweep_results ADD COLUMN metrics JSON;
ALTER TABLE sweep_results ADD COLUMN passed_hard_filters BOOLEAN;
ALTER TABLE sweep_results ADD COLUMN rejected_by TEXT;
ALTER TABLE sweep_results ADD COLUMN error_message TEXT;
ALTER TABLE sweep_results ADD COLUMN created_at TEXT;
CREATE UNIQUE INDEX idx_sweep_results_point ON sweep_results(run_id, point_key);
