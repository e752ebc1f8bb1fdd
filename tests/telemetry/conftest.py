"""Telemetry fixtures: the paper tests' homes (a linked August 2023 catalog, one validated run)."""

from tests.paper.conftest import aug_data_loader, paper_home, run_home

__all__ = ["aug_data_loader", "paper_home", "run_home"]
