"""Background jobs: long ``vq`` commands run as subprocesses, registered in ``background_jobs``,
with heartbeats, stale and gone detection (for backtest runs too), logs and kill.

Library code only; ``vq jobs`` (``vibe_quant.cli.jobs``) and the dashboard call it.
"""

from vibe_quant.jobs.health import HEARTBEAT_S, STALE_S, Change, Health, job_health, reconcile
from vibe_quant.jobs.runner import Job, KillOutcome, get_job, job_log, kill_job, list_jobs, start_job

__all__ = [
    "HEARTBEAT_S", "STALE_S", "Change", "Health", "Job", "KillOutcome", "get_job", "job_health", "job_log",
    "kill_job", "list_jobs", "reconcile", "start_job",
]  # fmt: skip
