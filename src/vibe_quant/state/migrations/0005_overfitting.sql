-- Schema version 5: overfitting filters. Each sweep point keeps its daily returns (float64,
-- little-endian, one per calendar day of the run) so DSR, PBO, purged K-fold and CPCV need no
-- re-run; the pipeline writes each filter's figures and verdict per point, and the run keeps the
-- pipeline's configuration, funnel and run-level figures (PBO, CPCV paths).
ALTER TABLE sweep_results ADD COLUMN daily_returns BLOB;
ALTER TABLE sweep_results ADD COLUMN deflated_sharpe REAL;
ALTER TABLE sweep_results ADD COLUMN walk_forward_efficiency REAL;
ALTER TABLE sweep_results ADD COLUMN purged_kfold_mean_sharpe REAL;
ALTER TABLE sweep_results ADD COLUMN passed_cpcv BOOLEAN;
ALTER TABLE sweep_results ADD COLUMN passed_pbo BOOLEAN;
ALTER TABLE sweep_results ADD COLUMN overfitting JSON;
ALTER TABLE sweep_results ADD COLUMN overfitting_passed BOOLEAN;
ALTER TABLE sweep_results ADD COLUMN execution_sensitive BOOLEAN;
ALTER TABLE sweep_results ADD COLUMN validation_run_id INTEGER REFERENCES backtest_runs(id);
ALTER TABLE backtest_runs ADD COLUMN overfitting JSON;
