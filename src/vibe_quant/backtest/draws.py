"""The simulated venue's random draws, deterministic per order (docs/specs.md#deterministic-fill-draws).

Screening's probabilistic fills (a market or stop fill slipping one tick, a limit touched at
its price filling) used to come from one sequential generator per run: a draw depended on every
draw before it, so two engines, or one engine replaying only some bars, agreed only if they drew
in exactly the same order. Here a draw is a hash of what identifies it: the run's seed, the
stream (slippage or limit queue), the instrument, the bar it happens in, and its rank among that
instrument's draws of that stream in that bar. NautilusTrader's fill model and the compiled perp
simulator (``vibe_quant.sim``) call this same function, so they draw the same numbers for the
same fills whatever else happens in the run.

The hash is SplitMix64's finaliser (Steele, Lea and Flood 2014), chained over the key's parts;
written here because numpy's generators cannot be keyed per draw without building one per draw.
"""

from __future__ import annotations

import zlib

import numpy as np
from numba import njit

SLIPPAGE = 1  # stream: a market or stop fill slipping one tick (screening)
LIMIT_QUEUE = 2  # stream: a limit order touched exactly at its price filling
_MASK = (1 << 64) - 1


@njit(cache=True)
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def draw_nb(seed: np.uint64, stream: np.int64, key: np.int64, ts: np.int64, rank: np.int64) -> float:
    """A uniform number in [0, 1) for (seed, stream, instrument key, bar close time, rank)."""
    golden = np.uint64(0x9E3779B97F4A7C15)
    h = _mix(seed + golden)
    h = _mix(h ^ np.uint64(stream))
    h = _mix(h ^ np.uint64(key))
    h = _mix(h ^ np.uint64(ts))
    h = _mix(h ^ np.uint64(rank))
    return float(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


def seed_bits(seed: int) -> np.uint64:
    """A run's seed as the 64 bits the draws take (negative seeds wrap)."""
    return np.uint64(seed & _MASK)


def instrument_key(symbol: str) -> int:
    """A stable key per instrument (its symbol's CRC-32): the same in every engine and run."""
    return zlib.crc32(symbol.encode())


class Draws:
    """Per-bar ranks of one run's draws (NautilusTrader's fill model keeps one)."""

    def __init__(self, seed: int):
        self.seed = seed_bits(seed)
        self._rank: dict[tuple[int, int, int], int] = {}
        self._bar: dict[int, int] = {}  # instrument key -> bar close time of the ranks held

    def uniform(self, stream: int, key: int, ts: int) -> float:
        """The next draw of `stream` for instrument `key` in the bar closing at `ts`."""
        if self._bar.get(key) != ts:  # a new bar: forget the instrument's old ranks
            self._bar[key] = ts
            for k in [k for k in self._rank if k[1] == key]:
                del self._rank[k]
        rank = self._rank.get((stream, key, ts), 0)
        self._rank[(stream, key, ts)] = rank + 1
        return draw_nb(self.seed, stream, key, ts, rank)
