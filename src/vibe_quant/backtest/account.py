"""The strategies' view of the simulated account: :class:`~vibe_quant.strategy.account.AccountView`
over the venue module (``venue.py``), whose per-instrument states are the books."""

from __future__ import annotations

from vibe_quant.backtest.venue import PerpVenueModule
from vibe_quant.strategy.account import InstrumentBook


class SimAccount:
    """AccountView of one backtest run (the module rebinds its states per run; so does this view)."""

    __slots__ = ("module",)

    def __init__(self, module: PerpVenueModule):
        self.module = module

    def equity(self) -> float:
        return self.module.equity()

    def used_margin(self) -> float:
        return self.module.used_margin()

    def book(self, instrument_id: str) -> InstrumentBook:
        return self.module.by_instrument[instrument_id]

    def books(self) -> list[InstrumentBook]:
        return self.module.state_list

    def resting(self, instrument_id: str) -> dict[str, tuple[str, int, float]]:
        return self.module.resting(instrument_id)
