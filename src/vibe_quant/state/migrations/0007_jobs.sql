-- Schema version 7: background jobs (a vq command run as a subprocess by the dashboard or
-- `vq jobs start`) and liveness of every running row. A job keeps its argv, a label, its exit code
-- and its latest progress; `pid_started` (the process start time, epoch seconds) tells the job's
-- process from a later process that reused its pid. `host` names the machine a pid belongs to:
-- pids mean nothing on another machine, so only heartbeats judge rows of other hosts.
ALTER TABLE background_jobs ADD COLUMN command JSON;
ALTER TABLE background_jobs ADD COLUMN label TEXT;
ALTER TABLE background_jobs ADD COLUMN exit_code INTEGER;
ALTER TABLE background_jobs ADD COLUMN progress JSON;
ALTER TABLE background_jobs ADD COLUMN pid_started REAL;
ALTER TABLE background_jobs ADD COLUMN host TEXT;
ALTER TABLE backtest_runs ADD COLUMN host TEXT;
