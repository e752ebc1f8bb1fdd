"""``vq metrics serve``: the background jobs' heartbeats for Prometheus (paper sessions serve their own)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from vibe_quant.cli.context import common_options, console, get_home

metrics_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                          help="Prometheus metrics of the home: background jobs (a paper session: vq paper start --metrics-port).")  # fmt: skip
metrics_app.callback()(common_options)
out = console()


@metrics_app.command("serve")
def serve_command(
    port: Annotated[int, typer.Option(help="Port (0: any free one, printed). deploy/prometheus/prometheus.yml scrapes 9109.")] = 9109,
    address: Annotated[str, typer.Option(help="Address to bind (127.0.0.1; anything else is served unauthenticated).")] = "127.0.0.1",
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")] = None,
) -> None:  # fmt: skip
    """Serve vq_job_heartbeat_age_seconds and vq_jobs_running of the home's state database until stopped."""
    from vibe_quant.errors import UserError
    from vibe_quant.telemetry.exporter import jobs_registry, start_exporter

    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: 0-65535")
    home = get_home()
    exporter, bound = start_exporter(jobs_registry(home.db_path), port, address)
    out.print(f"serving the jobs of {home.root} at http://{address}:{bound}/metrics (Ctrl-C stops)", highlight=False)
    deadline = None if seconds is None else time.monotonic() + seconds
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        exporter.stop()
