"""Shared backtest fixtures: the linear proxy of the real COIN-M day (``proxy_home`` lives in
tests/conftest.py: the experiment tests use it too)."""

from __future__ import annotations

from tests.conftest import CM_DAY, PROXY_DAY

__all__ = ["CM_DAY", "PROXY_DAY"]
