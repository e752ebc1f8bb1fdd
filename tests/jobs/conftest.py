"""Homes for the job tests: a fresh state database over the session's August 2023 catalog, and
helpers that wait for a condition with a bound on time."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vibe_quant.home import Home

# A sweep long enough to still be running when a test kills it (48 points), on FILUSDT August 2023.
LONG_SWEEP = ["screen", "run", "--strategy", "ema_cross", "--symbols", "FILUSDT", "--workers", "2",
              "--sweep", "fast=5,10,15,20,25,30,35,40,45,50,55,60,65,70,75,80", "--sweep", "slow=100,120,140",
              "--min-trades", "1", "--max-dd", "0.9", "--min-pf", "0.1", "-q"]  # fmt: skip


@pytest.fixture
def cat_home(aug_2023_catalog: Path, tmp_path: Path) -> Home:
    """A home with an empty state database whose catalog is the session's (read only)."""
    home = Home(tmp_path / "home").ensure()
    home.catalog.rmdir()
    home.catalog.symlink_to(aug_2023_catalog, target_is_directory=True)
    return home


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 0.05):
    """Return `check()`'s first truthy value, polling for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
