"""Which execution bars a run hands to NautilusTrader's engine.

A full replay hands it every bar. Screening can hand it only the bars that can change the
account: a bar on which every strategy is flat, has no order resting or on its way, and cannot
enter (its precomputed signals say so, ``dsl/table.py``) moves nothing: no fill, no funding
(nothing held), no liquidation, no margin. The venue module rebuilds the equity curve over
every bar afterwards, so metrics are those of the full replay (tests/backtest/test_feed.py
compares whole runs: fills, ledger and metrics). With a few percent of bars in a position the
engine replays a few percent of the bars.

How it plugs in: the bars go through ``BacktestEngine.add_data_iterator`` one bar per chunk.
The engine asks for the next chunk when it *takes* the last bar of the current one, i.e.
before processing it, so :meth:`ActiveFeed.chunks` decides what follows bar ``m`` from the state
after every bar before ``m``: if anything is going on, or bar ``m`` itself may trigger an entry,
the next bar follows; otherwise the feed jumps to the first bar on which some strategy may act.
It tells the venue module which bar comes next through ``fed`` (its index in the merged sequence).
"""

from __future__ import annotations

import bisect
from collections import deque


class ActiveFeed:
    """Yields the merged execution bars a run needs, one per chunk.

    Parameters
    ----------
    bars : list[Bar]
        Every execution bar of the run, merged in replay order.
    owners : list[int]
        Per merged bar, the index of its symbol (and of that symbol's strategy).
    own : list[int]
        Per merged bar, its index among its symbol's bars.
    merged : list[list[int]]
        Per symbol, the merged index of each of its bars.
    strategies : list
        Per symbol, a strategy with ``idle()`` and ``next_action(start)`` (DslStrategy with a table).
    module : PerpVenueModule
        The run's venue module: it must know about commands still on their way.
    """

    def __init__(self, bars: list, owners: list[int], own: list[int], merged: list[list[int]], strategies: list,
                 module):  # fmt: skip
        self.bars, self.owners, self.own, self.merged = bars, owners, own, merged
        self.strategies = strategies
        self.module = module
        self.fed: deque[int] = deque()
        self.replayed = 0

    def chunks(self):
        n = len(self.bars)
        m = 0
        while m < n:
            self.fed.append(m)
            self.replayed += 1
            yield [self.bars[m]]
            m = self._after(m)

    def _after(self, m: int) -> int:
        """The next bar to replay once bar `m` is taken (every bar before it processed)."""
        if self.module.commands_pending() or not all(s.idle() for s in self.strategies):
            return m + 1
        x, i = self.owners[m], self.own[m]
        if self.strategies[x].next_action(i) == i:
            return m + 1  # bar m may enter: the bar after it must fill the order
        best = len(self.bars)
        for y, strategy in enumerate(self.strategies):
            mine = self.merged[y]
            start = i + 1 if y == x else bisect.bisect_right(mine, m)  # its first bar after m
            j = strategy.next_action(start)
            if j < len(mine) and mine[j] < best:
                best = mine[j]
        return best
