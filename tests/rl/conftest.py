"""The RL tests run on the CPU build of torch, installed here when missing (uv never resolves torch)."""

from __future__ import annotations

import pytest

from vibe_quant.rl.torch_setup import ensure_torch


@pytest.fixture(scope="session", autouse=True)
def cpu_torch() -> str:
    """Install torch 2.13.0+cpu into this environment when missing; return its version."""
    return ensure_torch()
