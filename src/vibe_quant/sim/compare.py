"""Field-by-field comparison of a kernel run with a NautilusTrader run (the identity proof, the demo, the front check)."""

from __future__ import annotations

import math

import numpy as np

REL = 1e-9
# fill fields compared exactly (times, sides, types, reasons) and as floats (rel 1e-9)
FILL_EXACT = ("ts_ns", "economic_ns", "instrument", "side", "liquidity", "order_type", "reason")
FILL_FLOAT = ("qty", "price", "fee", "reference_price", "slippage_estimated")


def close(a, b, rel: float = REL) -> bool:
    if a is None or b is None:
        return a is b
    if a == b:  # also infinities (a profit factor without losing trades)
        return True
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def differences(nt, sim, limit: int = 5) -> list[str]:
    """Every way `sim` differs from `nt` (empty: identical), at most `limit` per kind."""
    out: list[str] = []
    fa, fb = nt.recorder.fills, sim.recorder.fills
    if len(fa) != len(fb):
        out.append(f"fills: {len(fa)} NautilusTrader vs {len(fb)} kernel")
    bad = 0
    for k, (x, y) in enumerate(zip(fa, fb, strict=False)):
        wrong = [f for f in FILL_EXACT if getattr(x, f) != getattr(y, f)]
        wrong += [f for f in FILL_FLOAT if not close(getattr(x, f), getattr(y, f))]
        if wrong:
            bad += 1
            if bad <= limit:
                out.append(f"fill {k}: " + ", ".join(f"{f} {getattr(x, f)!r} vs {getattr(y, f)!r}" for f in wrong))
            if bad == 1 and len(fa) != len(fb):
                break
    for name in ("funding", "liquidations"):
        ra, rb = getattr(nt.recorder, name), getattr(sim.recorder, name)
        if len(ra) != len(rb):
            out.append(f"{name}: {len(ra)} vs {len(rb)}")
            continue
        for k, (x, y) in enumerate(zip(ra, rb, strict=True)):
            for f in x.__dataclass_fields__:
                if f == "position_id":
                    continue
                u, v = getattr(x, f), getattr(y, f)
                same = close(u, v) if isinstance(u, float) else u == v
                if not same:
                    out.append(f"{name} {k}: {f} {u!r} vs {v!r}")
                    break
    if not np.array_equal(nt.equity_ts, sim.equity_ts):
        out.append(f"equity times differ ({nt.equity_ts.size} vs {sim.equity_ts.size} points)")
    else:
        scale = np.maximum(1.0, np.maximum(np.abs(nt.equity), np.abs(sim.equity)))
        err = np.abs(nt.equity - sim.equity) / scale
        if err.size and err.max() > REL:
            k = int(err.argmax())
            out.append(
                f"equity at {nt.equity_ts[k]}: {nt.equity[k]!r} vs {sim.equity[k]!r} (first off at "
                f"{nt.equity_ts[int(np.flatnonzero(err > REL)[0])]})"
            )
    if len(nt.trades) != len(sim.trades):
        out.append(f"trades: {len(nt.trades)} vs {len(sim.trades)}")
    for key, a in nt.metrics.items():
        if key == "execution_time_seconds":
            continue
        b = sim.metrics.get(key)
        if not (close(a, b) if isinstance(a, float) and isinstance(b, float) else a == b):
            out.append(f"metric {key}: {a!r} vs {b!r}")
    return out
