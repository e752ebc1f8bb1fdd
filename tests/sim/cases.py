"""Random identity cases: a shipped DSL strategy at a random sweep point on random data, venue and funding.

Shared by the property test (``test_identity.py``) and anyone chasing a difference by seed.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal

from nautilus_trader.model.data import Bar, BarType, FundingRateUpdate
from nautilus_trader.model.objects import Price, Quantity

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.backtest.market_data import MarketData
from vibe_quant.backtest.plan import RunPlan, plan_run
from vibe_quant.data.bars import TIMEFRAME_BY_LABEL
from vibe_quant.dsl.loader import load_file, resolve_strategy_file, shipped_names
from vibe_quant.dsl.strategy import document_json
from vibe_quant.instruments.factory import crypto_perpetual
from vibe_quant.instruments.specs import InstrumentSpecs

HOUR = 3_600_000_000_000
DAY0 = dt.date(2024, 1, 1)
T0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC
LATENCIES = ("none", "retail", "over_a_bar", "over_a_bar")


def document(name: str, timeframe: str | None = None) -> dict:
    """A shipped strategy's document (its timeframe replaced when given)."""
    doc = json.loads(document_json(load_file(resolve_strategy_file(name))))
    if timeframe is not None:
        doc["timeframe"] = timeframe
    return doc


def random_point(doc: dict, rng: random.Random) -> dict:
    """A random point of the document's sweep grid (one value per axis)."""
    return {key: rng.choice(values) for key, values in (doc.get("sweep") or {}).items()}


def walk(symbol: str, n: int, rng: random.Random, price: float, spec, timeframe: str = "1m") -> list[Bar]:
    """`n` bars of a random walk with fat tails and gaps (liquidations and gapped stops happen)."""
    tf = TIMEFRAME_BY_LABEL[timeframe]
    step = tf.step_ms * 1_000_000
    tick = float(spec.tick_size)
    pp, sp = spec.price_precision, spec.size_precision
    bar_type = BarType.from_str(tf.bar_type(f"{symbol}-PERP.BINANCE"))
    out = []
    vol = rng.uniform(0.0005, 0.004)
    for k in range(n):
        move = rng.gauss(0, vol) if rng.random() > 0.01 else rng.gauss(0, vol * 15)  # a jump now and then
        o = price * (1 + (rng.gauss(0, vol / 3) if rng.random() < 0.2 else 0.0))
        c = o * (1 + move)
        h = max(o, c) * (1 + abs(rng.gauss(0, vol / 2)))
        lo = min(o, c) * (1 - abs(rng.gauss(0, vol / 2)))
        o, h, lo, c = (max(round(x / tick) * tick, tick) for x in (o, h, lo, c))
        h, lo = max(h, o, c), min(lo, o, c)
        ts = T0 + (k + 1) * step
        volume = round(rng.uniform(1e3, 1e5), sp)
        out.append(Bar(bar_type, Price(o, pp), Price(h, pp), Price(lo, pp), Price(c, pp), Quantity(volume, sp), ts, ts))
        price = c
    return out


def funding(symbol: str, bars: list[Bar], rng: random.Random, scale: float) -> list[FundingRateUpdate]:
    """8-hourly settlements (stamped a few ms after the hour, as Binance does) with random rates."""
    from nautilus_trader.model.identifiers import InstrumentId

    iid = InstrumentId.from_str(f"{symbol}-PERP.BINANCE")
    out = []
    ts = T0 + 8 * HOUR + 3_000_000
    while ts < bars[-1].ts_init:
        rate = Decimal(str(round(rng.gauss(0, scale), 8)))
        out.append(FundingRateUpdate(iid, rate, ts, ts, next_funding_ns=ts + 8 * HOUR))
        ts += 8 * HOUR
    return out


def random_case(seed: int, bars: int = 3000) -> tuple[RunPlan, MarketData, str]:
    """A random plan and `bars` bars of synthetic market data at the strategy's timeframe, and a
    description of the draw."""
    rng = random.Random(seed)
    specs = InstrumentSpecs()
    name = rng.choice(shipped_names())
    doc = document(name)
    timeframe = doc["timeframe"]
    minutes = TIMEFRAME_BY_LABEL[timeframe].step_ms // 60_000
    days = -(-bars * minutes // 1440)
    n = days * 1440 // minutes
    symbols = ("FILUSDT", "NEARUSDT")[: rng.choice((1, 1, 2))]
    series, fund, inst, spec_of = {}, {}, {}, {}
    for symbol in symbols:
        spec = specs.get(symbol)
        spec_of[symbol] = spec
        inst[symbol] = crypto_perpetual(spec)
        series[symbol] = walk(symbol, n, rng, rng.uniform(2, 10), spec, timeframe)
        fund[symbol] = funding(symbol, series[symbol], rng, rng.choice((0.0001, 0.003, 0.02)))
    latency = rng.choice(LATENCIES)
    venue: dict = {"mode": rng.choice(("screening", "validation")), "leverage": rng.choice((1, 3, 10, 25, 50))}
    if latency == "over_a_bar":  # commands take longer than a bar (each of base, insert, update, cancel drawn)
        bar_s = minutes * 60
        venue.update(latency="custom", latency_ns=tuple(int(rng.uniform(lo, hi) * bar_s) * 10**9
                                                        for lo, hi in ((0.7, 1.3), (0.2, 0.7), (0.2, 1.5), (0.0, 1.5))))  # fmt: skip
    else:
        venue["latency"] = latency
    if venue["mode"] == "screening":
        venue.update(prob_slippage=rng.choice((0.0, 0.5, 1.0)), prob_fill_on_limit=rng.choice((0.0, 0.3, 0.8, 1.0)))
    cfg = BacktestConfig(strategy=doc["name"], kind="dsl", document=doc, symbols=symbols, timeframe=timeframe,
                         start=DAY0, end=DAY0 + dt.timedelta(days=days - 1), params=random_point(doc, rng),
                         seed=rng.randint(0, 10**6), **venue)  # fmt: skip
    data = MarketData(specs=spec_of, instruments=inst, bars=series, funding=fund, digest=f"random-{seed}")
    return plan_run(cfg), data, f"seed {seed}: {name} {symbols} {venue} {cfg.params}"


def random_funding(data, seed: int, scale: float):
    """Replace the (absent) funding of the run's symbols by 8-hourly random rates."""
    rng = random.Random(seed)
    for symbol, bars in data.bars.items():
        iid = data.instruments[symbol].id
        ts = (bars[0].ts_init // (8 * HOUR) + 1) * 8 * HOUR + 4_000_000
        updates = []
        while ts < bars[-1].ts_init:
            rate = Decimal(str(round(rng.gauss(0, scale), 8)))
            updates.append(FundingRateUpdate(iid, rate, ts, ts, next_funding_ns=ts + 8 * HOUR))
            ts += 8 * HOUR
        data.funding[symbol] = updates
    return data
