"""Processes as Linux's ``/proc`` shows them: alive (a zombie is not), start time, process-group members.

Pids only mean something on the machine that started them: callers compare a row's ``host``
with :func:`this_host` before asking about its pid.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path

PROC = Path("/proc")


def this_host() -> str:
    return socket.gethostname()


@cache
def _boot_time() -> float:
    for line in (PROC / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/<pid>/stat`` (state first); None when there is no such process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields start after the last ')'.
    return text[text.rindex(")") + 2 :].split()


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists and has not exited (an exited child its parent has not reaped yet,
    a zombie, counts as gone)."""
    if pid <= 0:
        return False
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def process_start(pid: int) -> float | None:
    """When process `pid` started, in seconds since the epoch (to the clock tick); None if it does not exist."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    ticks = int(fields[19])  # field 22, starttime: clock ticks after boot
    return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`, sorted."""
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return sorted(members)
