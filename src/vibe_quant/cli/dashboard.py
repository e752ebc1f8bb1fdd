"""``vq dashboard``: start Mission Control (Streamlit) on the home, bound to this machine unless told otherwise."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from vibe_quant.cli.context import console, err_console, get_home
from vibe_quant.errors import UserError

LOCAL = ("127.0.0.1", "localhost", "::1")
out = console()


def app_script() -> Path:
    """The dashboard's entry script inside the installed package (located by package, not by working directory).

    Not ``dashboard/app.py``: Streamlit would take the ``pages/`` folder beside it for old-style pages.
    """
    return Path(str(resources.files("vibe_quant.dashboard").joinpath("entry", "app.py")))


def streamlit_command(script: Path, address: str, port: int) -> list[str]:
    """The ``streamlit run`` command line: headless, no usage statistics, bound to `address`:`port`."""
    return [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", address,
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]  # fmt: skip


def dashboard_command(
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8501,
    address: Annotated[
        str, typer.Option("--address", help="Address to bind; anything but 127.0.0.1/localhost exposes it (no login).")
    ] = "127.0.0.1",
) -> None:
    """Start the Mission Control dashboard on the home (--home or $VQ_HOME); Ctrl-C stops it."""
    if importlib.util.find_spec("streamlit") is None:
        raise UserError("the dashboard needs streamlit, which is not installed. Fix: uv sync --extra dashboard "
                        "(or pip install 'vibe-quant[dashboard]')")  # fmt: skip
    if not 1 <= port <= 65535:
        raise UserError(f"--port must be in 1..65535, got {port}")
    home = get_home(writable=True)
    if address not in LOCAL:
        err_console.print(
            f"[bold red]WARNING: binding the dashboard to {address}: anyone who can reach this address can read your "
            "strategies and runs and change presets and settings. The dashboard has no authentication; keep it on "
            "127.0.0.1 and use an SSH tunnel to reach it remotely.[/]",
            highlight=False,
        )
    env = {**os.environ, "VQ_HOME": str(home.root)}
    shown = "localhost" if address in LOCAL else address
    out.print(f"Mission Control on http://{shown}:{port} (home {home.root}); Ctrl-C stops it")
    try:
        code = subprocess.call(streamlit_command(app_script(), address, port), env=env)
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
