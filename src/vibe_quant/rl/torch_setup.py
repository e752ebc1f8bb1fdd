"""PyTorch for the RL stage: the CPU build, installed beside uv's lock.

uv never resolves torch (pyproject.toml overrides it away: PyPI's Linux wheel is a CUDA build of several
GB), so Stable-Baselines3 finds it only once this module has installed the CPU wheel into the running
interpreter's environment. A wheel on disk is preferred (``$VQ_TORCH_WHEEL``, pip's find-links, then
``/opt/wheels``); without one the CPU build comes from PyTorch's own CPU index, never from PyPI. Its
dependencies are locked through the ``rl`` extra, so the wheel goes in with ``--no-deps``.

``python -m vibe_quant.rl.torch_setup`` installs it when missing and prints the version. ``uv run`` keeps
it (an inexact sync); a plain ``uv sync`` removes it, and the next call puts it back.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from vibe_quant.errors import ConfigError, UserError
from vibe_quant.progress import Progress

TORCH_VERSION = "2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
WHEEL_GLOB = f"torch-{TORCH_VERSION}+cpu-cp311-*.whl"
DEFAULT_WHEEL_DIRS = (Path("/opt/wheels"),)


def torch_available() -> bool:
    """Return whether ``import torch`` would find a module (without importing it)."""
    importlib.invalidate_caches()
    return importlib.util.find_spec("torch") is not None


def _wheel_fits(path: Path) -> bool:
    # packaging comes with plotly (a core dependency); it knows this interpreter's tags.
    from packaging.tags import sys_tags
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    try:
        _, _, _, tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename:
        return False
    return not tags.isdisjoint(sys_tags())


def _pip_config_find_links() -> list[str]:
    pip = shutil.which("pip") or shutil.which("pip3")
    if pip is None:
        return []
    try:
        listing = subprocess.run([pip, "config", "list"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    values = []
    for line in listing.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.endswith(".find-links"):
            values.extend(value.strip().strip("'\"").split())
    return values


def _local_dir(link: str) -> Path | None:
    if link.startswith("file://"):
        link = link[len("file://") :]
    elif "://" in link:
        return None  # a remote find-links page: pip's business, not a directory to list
    return Path(link)


def _candidate_dirs() -> Iterator[Path]:
    for link in os.environ.get("PIP_FIND_LINKS", "").split():
        if (folder := _local_dir(link)) is not None:
            yield folder
    for link in _pip_config_find_links():
        if (folder := _local_dir(link)) is not None:
            yield folder
    yield from DEFAULT_WHEEL_DIRS


def find_cpu_wheel() -> Path | None:
    """Find the CPU torch wheel (``torch-2.13.0+cpu-cp311-*.whl``) for this platform on disk.

    Look at ``$VQ_TORCH_WHEEL`` (a wheel file or a directory), then each directory of
    ``$PIP_FIND_LINKS``, then pip's configured find-links (``pip config list``), then ``/opt/wheels``.

    Returns
    -------
    Path or None
        The first wheel whose tags fit this interpreter and platform; None when there is none.

    Raises
    ------
    ConfigError
        When ``$VQ_TORCH_WHEEL`` is set but names no fitting wheel (it was asked for explicitly).
    """
    explicit = os.environ.get("VQ_TORCH_WHEEL")
    if explicit:
        path = Path(explicit)
        found = _first_fit(path) if path.is_dir() else (path if path.is_file() and _wheel_fits(path) else None)
        if found is None:
            raise ConfigError(
                f"VQ_TORCH_WHEEL={explicit!r}: no {WHEEL_GLOB} for this platform there. "
                "Fix: point it at the CPU wheel (or its folder), or unset it to search pip's find-links."
            )
        return found
    seen: set[Path] = set()
    for folder in _candidate_dirs():
        if folder in seen or not folder.is_dir():
            continue
        seen.add(folder)
        if (found := _first_fit(folder)) is not None:
            return found
    return None


def _first_fit(folder: Path) -> Path | None:
    return next((p for p in sorted(folder.glob(WHEEL_GLOB)) if _wheel_fits(p)), None)


def install_command(wheel: Path | None, python: str | None = None, uv: str | None = None) -> list[str]:
    """Return the command that installs the CPU torch into `python`'s environment.

    Parameters
    ----------
    wheel : Path or None
        The wheel on disk; None installs ``torch==2.13.0`` from PyTorch's CPU index (``--index-url``,
        so PyPI's CUDA build is never considered).
    python : str, optional
        The interpreter whose environment gets torch; default ``sys.executable``.
    uv : str, optional
        The uv executable; default the one on PATH. Without uv, ``python -m pip`` installs it.
    """
    python = python or sys.executable
    uv = uv if uv is not None else shutil.which("uv")
    # --no-config: inside the project uv would apply pyproject's override that maps torch to nothing.
    head = [uv, "pip", "install", "--no-config", "--python", python] if uv else [python, "-m", "pip", "install"]
    what = [str(wheel)] if wheel is not None else [f"torch=={TORCH_VERSION}", "--index-url", CPU_INDEX]
    return [*head, "--no-deps", *what]


def install_torch(progress: Progress | None = None) -> Path | None:
    """Install the CPU build of torch 2.13.0 into the running interpreter's environment.

    Parameters
    ----------
    progress : Progress, optional
        Sink for one "install torch" task; default silent.

    Returns
    -------
    Path or None
        The wheel installed from disk, or None when it came from PyTorch's CPU index.

    Raises
    ------
    UserError
        When the installer fails; the message has the exact command to run by hand.
    """
    progress = progress or Progress()
    wheel = find_cpu_wheel()
    command = install_command(wheel)
    task = progress.task(f"install torch {TORCH_VERSION}+cpu" + (f" from {wheel.parent}" if wheel else ""), 1)
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise UserError(_manual(command, str(exc))) from exc
    if done.returncode != 0:
        raise UserError(_manual(command, (done.stderr or done.stdout).strip()[-2000:]))
    importlib.invalidate_caches()
    progress.finish(task)
    return wheel


def _manual(command: list[str], why: str) -> str:
    return (
        f"installing the CPU build of torch {TORCH_VERSION} failed: {why}\n"
        f"Fix: run it by hand, then retry:\n  {shlex.join(command)}\n"
        f"(or download torch-{TORCH_VERSION}+cpu for Python 3.11 from {CPU_INDEX}/torch/ and set VQ_TORCH_WHEEL to it)"
    )


def check_cpu_build(torch_module) -> str:
    """Refuse a CUDA build of torch that sees a GPU; return the version.

    Parameters
    ----------
    torch_module : module
        ``torch`` (or a stand-in with ``__version__`` and ``cuda.is_available()``).

    Raises
    ------
    UserError
        When the version does not end with ``+cpu`` and CUDA is available: training here is CPU only
        and reproducible bit for bit; the message says how to swap in the CPU build.
    """
    version = str(torch_module.__version__)
    if version.endswith("+cpu") or not torch_module.cuda.is_available():
        return version
    raise UserError(
        f"torch {version} is a CUDA build and sees a GPU; vibe-quant trains on the CPU build only "
        f"(reproducible bit for bit, and no multi-GB CUDA download). Fix: uninstall it "
        f"(uv pip uninstall torch) and run `python -m vibe_quant.rl.torch_setup` to install {TORCH_VERSION}+cpu."
    )


def ensure_torch(progress: Progress | None = None) -> str:
    """Install the CPU torch when it is missing, import it and check it is the CPU build.

    Parameters
    ----------
    progress : Progress, optional
        Sink for the install task; default silent.

    Returns
    -------
    str
        ``torch.__version__``.

    Raises
    ------
    UserError
        When the install fails (with the manual command) or torch is a CUDA build that sees a GPU.
    """
    if not torch_available():
        install_torch(progress)
    import torch

    return check_cpu_build(torch)


if __name__ == "__main__":
    print(f"torch {ensure_torch()}")
