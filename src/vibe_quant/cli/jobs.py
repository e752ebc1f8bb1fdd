"""``vq jobs start|list|logs|kill``: long vq commands in the background (the dashboard starts them the same way)."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Annotated

import typer

from vibe_quant.cli.context import common_options, console, err_console, get_home
from vibe_quant.errors import UserError, did_you_mean

jobs_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                       help="Background jobs: a vq command as a subprocess, with heartbeat, log and kill.")  # fmt: skip
jobs_app.callback()(common_options)
out = console()


@jobs_app.command("start", context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
def start_command(
    ctx: typer.Context,
    argv: Annotated[list[str], typer.Argument(help="The vq command to run, after --: e.g. -- screen run --strategy ...", metavar="-- VQ_ARGS...")],
    job_type: Annotated[str | None, typer.Option("--type", help="Job type (default: the command's words, e.g. 'screen run').")] = None,
    label: Annotated[str | None, typer.Option(help="A name to show in `vq jobs list`.")] = None,
) -> None:  # fmt: skip
    """Start a vq command in the background; print its job id and log file."""
    from vibe_quant.jobs import get_job, start_job
    from vibe_quant.jobs.runner import check_command

    argv = check_command(argv)
    words = _words(argv)
    commands = {k: v for k, v in ctx.find_root().command.commands.items() if k != "jobs"}
    if words[0] not in commands:
        raise UserError(f"{words[0]!r} is not a vq command to run as a job.{did_you_mean(words[0], commands)} "
                        f"Choose one of {', '.join(sorted(commands))}, e.g. vq jobs start -- screen run --strategy ...")  # fmt: skip
    sub = getattr(commands[words[0]], "commands", None)
    if sub and len(words) > 1 and words[1] not in sub:
        raise UserError(f"vq {words[0]} has no command {words[1]!r}.{did_you_mean(words[1], sub)} "
                        f"Choose one of {', '.join(sorted(sub))}")  # fmt: skip
    home = get_home(writable=True)
    job_id = start_job(home, argv, job_type=job_type, label=label)
    job = get_job(home, job_id)
    out.print(f"job {job_id} started (pid {job.pid}): vq {' '.join(argv)}", highlight=False)
    out.print(f"log: {job.log_file}", highlight=False)
    out.print(f"follow: vq jobs logs {job_id} --tail 20; stop: vq jobs kill {job_id}", highlight=False)


def _words(argv: list[str]) -> list[str]:
    """The command's words from its first one on, past global options (``-q``, ``--specs FILE``)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] == "--specs" else 1
    return argv[i:] or argv


@jobs_app.command("list")
def list_command(
    all_jobs: Annotated[bool, typer.Option("--all", help="Also finished jobs (default: running ones).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows on stdout.")] = False,
) -> None:
    """Jobs with their status (running, stale, gone, or how they ended), heartbeat, progress and log.

    Jobs whose process is gone, or whose heartbeat is older than 120 s, are marked failed first
    (backtest runs too).
    """
    from vibe_quant.jobs import list_jobs, reconcile
    from vibe_quant.present.jobs import jobs_table, reconciled_lines

    home = get_home()
    for line in reconciled_lines(reconcile(home)):
        err_console.print(line, highlight=False)
    jobs = list_jobs(home, active_only=not all_jobs)
    if as_json:
        sys.stdout.write(json.dumps([dataclasses.asdict(j) for j in jobs], indent=2) + "\n")
        return

    if jobs:
        out.print(jobs_table(jobs, "background jobs (newest first)" if all_jobs else "running jobs (--all: every job)"))
    else:
        out.print(
            "no job" + ("" if all_jobs else " running") + ": vq jobs start -- screen run --strategy ... --symbols ..."
        )


@jobs_app.command("logs")
def logs_command(
    job_id: Annotated[int, typer.Argument(help="Job id (vq jobs list).")],
    tail: Annotated[int | None, typer.Option(help="Only the last N lines.")] = None,
) -> None:
    """Print a job's output (stdout and stderr of its command)."""
    from vibe_quant.jobs import job_log

    typer.echo(job_log(get_home(), job_id, tail), nl=False)


@jobs_app.command("kill")
def kill_command(
    job_id: Annotated[int, typer.Argument(help="Job id (vq jobs list).")],
    grace: Annotated[float, typer.Option(help="Seconds between SIGTERM and SIGKILL.")] = 10.0,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Stop a job and its worker processes: SIGTERM to its process group, SIGKILL after --grace seconds."""
    from vibe_quant.jobs import get_job, kill_job
    from vibe_quant.jobs.runner import can_kill

    home = get_home()
    job = get_job(home, job_id)
    if not can_kill(job):
        raise UserError(
            f"job {job_id} is already {job.status}: nothing to kill (vq jobs logs {job_id} shows its output)"
        )
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"kill job {job_id}: confirm on a terminal, or pass --yes")
        if not typer.confirm(f"kill job {job_id} ({job.job_type}, pid {job.pid}) and its worker processes?"):
            out.print("not killed")
            raise typer.Exit(1)
    outcome = kill_job(home, job_id, grace_s=grace)
    if not outcome.signals:
        out.print(f"job {job_id}: its process {outcome.pid} was already gone; marked failed", highlight=False)
        return
    out.print(f"job {job_id} killed ({' then '.join(outcome.signals)}, {outcome.waited_s:.1f} s)", highlight=False)
    if outcome.remaining:
        out.print(f"[red]still alive after SIGKILL:[/] pids {', '.join(map(str, outcome.remaining))}")
        raise typer.Exit(1)
