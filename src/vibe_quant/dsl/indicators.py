"""Indicator registry of the strategy DSL.

Every DSL indicator type is registered with ``@indicator_registry.register("RSI", ...)`` on a
builder that returns a *runtime* object fed one NautilusTrader ``Bar`` at a time
(``handle_bar(bar)``) with an ``initialized`` flag and one attribute per output. Built on
NautilusTrader's Cython indicators where they exist; our own incremental implementations
where they do not (TEMA, Ichimoku, Williams %R, MFI, the MACD signal line, slow Stochastic)
because NautilusTrader 1.221 lacks them and no maintained streaming library provides them, and
where NautilusTrader's differs from the standard definition in a way no argument fixes (ROC,
OBV, VWAP; see each class).

Each definition also carries a ``reference`` computing the same outputs on a whole DataFrame
with pandas-ta-classic (or the textbook formula where pandas-ta differs by convention); the
test suite checks the runtime against it on real bars.

Conventions users expect (and NautilusTrader does not always follow): RSI, Stochastic,
Williams %R, MFI and ROC are on the 0-100 (percent) scale; RSI and ATR use Wilder's smoothing.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

SOURCES = ("close", "open", "high", "low", "volume", "hl2", "hlc3", "ohlc4")


@dataclass(frozen=True)
class Param:
    """One numeric indicator parameter: its type, default and inclusive bounds."""

    kind: type  # int or float
    default: float
    minimum: float
    maximum: float
    description: str = ""

    def schema(self) -> dict:
        return {"type": "integer" if self.kind is int else "number", "minimum": self.minimum,
                "maximum": self.maximum, "default": self.default, "description": self.description}  # fmt: skip


@dataclass(frozen=True)
class IndicatorDef:
    """What the DSL knows about one indicator type."""

    name: str
    category: str
    description: str
    params: dict[str, Param]
    outputs: tuple[str, ...]  # the first is what the bare name means (``bb`` == ``bb.middle``)
    build: Callable[[dict], object]
    uses_source: bool  # single-series indicators accept ``source:``
    native: str  # the NautilusTrader class it runs on, or "" for our own implementation
    reference: Callable | None = None  # (DataFrame with open/high/low/close/volume, params) -> DataFrame
    lookahead: dict[str, str] = field(default_factory=dict)  # output -> why it reads the future
    scale: dict[str, float] = field(default_factory=dict)  # output -> factor applied to the runtime value

    def warmup(self, params: dict) -> int:
        """Bars before the indicator is initialised (an upper bound used for messages)."""
        periods = [int(v) for k, v in params.items() if k in self.params and self.params[k].kind is int]
        return sum(periods) + 1 if periods else 1  # +1: ROC and MFI need `period` changes, i.e. period+1 bars


class IndicatorRegistry:
    """Name -> :class:`IndicatorDef`; aliases resolve to the canonical name."""

    def __init__(self) -> None:
        self._defs: dict[str, IndicatorDef] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *, category: str, description: str, params: dict[str, Param] | None = None,
                 outputs: tuple[str, ...] = ("value",), uses_source: bool = False, native: str = "",
                 reference: Callable | None = None, lookahead: dict[str, str] | None = None,
                 scale: dict[str, float] | None = None, aliases: tuple[str, ...] = ()):  # fmt: skip
        """Register the decorated builder ``build(params) -> runtime`` under `name`."""

        def decorate(build: Callable[[dict], object]) -> Callable[[dict], object]:
            key = name.upper()
            if key in self._defs or key in self._aliases:
                raise ValueError(f"indicator {name} registered twice")
            self._defs[key] = IndicatorDef(key, category, description, dict(params or {}), outputs, build,
                                           uses_source, native, reference, dict(lookahead or {}), dict(scale or {}))  # fmt: skip
            for alias in aliases:
                self._aliases[alias.upper()] = key
            return build

        return decorate

    def get(self, name: str) -> IndicatorDef | None:
        key = str(name).upper()
        return self._defs.get(self._aliases.get(key, key))

    def names(self) -> list[str]:
        return list(self._defs)

    def all_names(self) -> list[str]:
        return [*self._defs, *self._aliases]

    def __iter__(self):
        return iter(self._defs.values())


indicator_registry = IndicatorRegistry()


def _p(default: int, lo: int = 1, hi: int = 10_000, text: str = "lookback in bars") -> Param:
    return Param(int, default, lo, hi, text)


def _f(default: float, lo: float, hi: float, text: str) -> Param:
    return Param(float, default, lo, hi, text)


# -- helpers for the runtime ---------------------------------------------------------------------


def source_getter(source: str) -> Callable:
    """Return ``bar -> float`` for a DSL ``source`` name."""
    return {
        "close": lambda b: b.close.as_double(),
        "open": lambda b: b.open.as_double(),
        "high": lambda b: b.high.as_double(),
        "low": lambda b: b.low.as_double(),
        "volume": lambda b: b.volume.as_double(),
        "hl2": lambda b: (b.high.as_double() + b.low.as_double()) / 2.0,
        "hlc3": lambda b: (b.high.as_double() + b.low.as_double() + b.close.as_double()) / 3.0,
        "ohlc4": lambda b: (b.open.as_double() + b.high.as_double() + b.low.as_double() + b.close.as_double()) / 4.0,
    }[source]


class SourceFed:
    """Feed a single-input NautilusTrader indicator from a bar's `source` instead of its close."""

    __slots__ = ("_get", "inner")

    def __init__(self, inner, source: str):
        self.inner = inner
        self._get = source_getter(source)

    def handle_bar(self, bar) -> None:
        self.inner.update_raw(self._get(bar))

    @property
    def initialized(self) -> bool:
        return self.inner.initialized

    @property
    def value(self) -> float:
        return self.inner.value


def _single(cls_name: str, params: dict, **kwargs):
    import nautilus_trader.indicators as nti

    inner = getattr(nti, cls_name)(int(params["period"]), **kwargs)
    source = params.get("source", "close")
    return inner if source == "close" else SourceFed(inner, source)


def _frame_source(df, source: str):
    if source in ("hl2", "hlc3", "ohlc4"):
        cols = {"hl2": ["high", "low"], "hlc3": ["high", "low", "close"], "ohlc4": ["open", "high", "low", "close"]}
        return df[cols[source]].mean(axis=1)
    return df[source]


def _ta():
    import pandas_ta_classic as ta  # test/research dependency only

    return ta


# -- trend ---------------------------------------------------------------------------------------


@indicator_registry.register("EMA", category="trend", description="Exponential moving average",
                             params={"period": _p(20)}, uses_source=True, native="ExponentialMovingAverage",
                             reference=lambda df, p: _ta().ema(_frame_source(df, p["source"]), p["period"]).to_frame("value"))  # fmt: skip
def _ema(params: dict):
    return _single("ExponentialMovingAverage", params)


@indicator_registry.register("SMA", category="trend", description="Simple moving average",
                             params={"period": _p(20)}, uses_source=True, native="SimpleMovingAverage",
                             reference=lambda df, p: _ta().sma(_frame_source(df, p["source"]), p["period"]).to_frame("value"))  # fmt: skip
def _sma(params: dict):
    return _single("SimpleMovingAverage", params)


@indicator_registry.register("WMA", category="trend", description="Linearly weighted moving average",
                             params={"period": _p(20)}, uses_source=True, native="WeightedMovingAverage",
                             reference=lambda df, p: _ta().wma(_frame_source(df, p["source"]), p["period"]).to_frame("value"))  # fmt: skip
def _wma(params: dict):
    # NautilusTrader's WMA without weights is an SMA: pass the linear weights 1..n (newest heaviest).
    n = int(params["period"])
    return _single("WeightedMovingAverage", params, weights=[float(i) for i in range(1, n + 1)])


@indicator_registry.register("DEMA", category="trend", description="Double exponential moving average",
                             params={"period": _p(20)}, uses_source=True, native="DoubleExponentialMovingAverage",
                             reference=lambda df, p: _ta().dema(_frame_source(df, p["source"]), p["period"]).to_frame("value"))  # fmt: skip
def _dema(params: dict):
    return _single("DoubleExponentialMovingAverage", params)


class Tema:
    """Triple EMA, ``3*e1 - 3*e2 + e3`` with e2 the EMA of e1 and e3 the EMA of e2."""

    def __init__(self, period: int, source: str):
        from nautilus_trader.indicators import ExponentialMovingAverage

        self._e1, self._e2, self._e3 = (ExponentialMovingAverage(period) for _ in range(3))
        self._get = source_getter(source)
        self.value = 0.0
        self.initialized = False

    def handle_bar(self, bar) -> None:
        e1, e2, e3 = self._e1, self._e2, self._e3
        e1.update_raw(self._get(bar))
        e2.update_raw(e1.value)
        e3.update_raw(e2.value)
        self.value = 3.0 * e1.value - 3.0 * e2.value + e3.value
        self.initialized = e3.initialized


@indicator_registry.register("TEMA", category="trend", description="Triple exponential moving average",
                             params={"period": _p(20)}, uses_source=True,
                             reference=lambda df, p: _ta().tema(_frame_source(df, p["source"]), p["period"]).to_frame("value"))  # fmt: skip
def _tema(params: dict):
    return Tema(int(params["period"]), params.get("source", "close"))


class _Extremes:
    """Rolling highest high and lowest low over `n` bars (monotonic deques, O(1) amortised)."""

    __slots__ = ("_hi", "_lo", "_n", "_t")

    def __init__(self, n: int):
        self._n, self._t = n, 0
        self._hi: deque = deque()
        self._lo: deque = deque()

    def push(self, high: float, low: float) -> None:
        t = self._t
        hi, lo = self._hi, self._lo
        while hi and hi[-1][1] <= high:
            hi.pop()
        hi.append((t, high))
        while lo and lo[-1][1] >= low:
            lo.pop()
        lo.append((t, low))
        if hi[0][0] <= t - self._n:
            hi.popleft()
        if lo[0][0] <= t - self._n:
            lo.popleft()
        self._t = t + 1

    @property
    def full(self) -> bool:
        return self._t >= self._n

    @property
    def high(self) -> float:
        return self._hi[0][1]

    @property
    def low(self) -> float:
        return self._lo[0][1]


class Ichimoku:
    """Ichimoku cloud as known at the bar's close.

    ``tenkan``/``kijun`` are the midpoints of the last `tenkan`/`kijun` bars; ``senkou_a``
    and ``senkou_b`` are the cloud plotted at this bar, i.e. the spans computed `kijun` bars
    ago (``(tenkan+kijun)/2`` and the midpoint of `senkou` bars). The chikou span (this close
    plotted `kijun` bars back) compares a past bar with a later close: it is refused as
    look-ahead.
    """

    def __init__(self, tenkan: int, kijun: int, senkou: int):
        self._t, self._k, self._s = _Extremes(tenkan), _Extremes(kijun), _Extremes(senkou)
        self._a: deque = deque(maxlen=kijun + 1)
        self._b: deque = deque(maxlen=kijun + 1)
        self._shift = kijun
        self.tenkan = self.kijun = self.senkou_a = self.senkou_b = 0.0
        self.initialized = False

    def handle_bar(self, bar) -> None:
        high, low = bar.high.as_double(), bar.low.as_double()
        for ext in (self._t, self._k, self._s):
            ext.push(high, low)
        self.tenkan = (self._t.high + self._t.low) / 2.0
        self.kijun = (self._k.high + self._k.low) / 2.0
        a = (self.tenkan + self.kijun) / 2.0 if self._k.full and self._t.full else None
        b = (self._s.high + self._s.low) / 2.0 if self._s.full else None
        self._a.append(a)
        self._b.append(b)
        if len(self._a) > self._shift:
            a0, b0 = self._a[0], self._b[0]
            if a0 is not None and b0 is not None:
                self.senkou_a, self.senkou_b = a0, b0
                self.initialized = True


def _ichimoku_reference(df, p):
    # pandas-ta shifts both spans forward by `kijun` bars, the runtime's convention.
    out = _ta().ichimoku(df["high"], df["low"], df["close"], p["tenkan"], p["kijun"], p["senkou"],
                         include_chikou=False, as_dataframe=True)  # fmt: skip
    out.columns = ["senkou_a", "senkou_b", "tenkan", "kijun"]
    return out


@indicator_registry.register(
    "ICHIMOKU", category="trend", description="Ichimoku cloud (tenkan, kijun, senkou spans)",
    params={"tenkan": _p(9), "kijun": _p(26), "senkou": _p(52)},
    outputs=("tenkan", "kijun", "senkou_a", "senkou_b", "chikou"), reference=_ichimoku_reference,
    lookahead={"chikou": "the chikou span plots today's close `kijun` bars in the past, so comparing it with "
                         "that bar reads the future; compare close with close[26] instead"},
)  # fmt: skip
def _ichimoku(params: dict):
    return Ichimoku(int(params["tenkan"]), int(params["kijun"]), int(params["senkou"]))


# -- momentum ------------------------------------------------------------------------------------


@indicator_registry.register("RSI", category="momentum", description="Relative strength index (0-100, Wilder)",
                             params={"period": _p(14)}, uses_source=True, native="RelativeStrengthIndex",
                             scale={"value": 100.0},
                             reference=lambda df, p: _ta().rsi(_frame_source(df, p["source"]), p["period"]).to_frame("value"))  # fmt: skip
def _rsi(params: dict):
    from nautilus_trader.indicators import MovingAverageType

    # NautilusTrader's RSI defaults to an EMA (alpha 2/(n+1)) and the 0-1 scale; everyone else
    # means Wilder's smoothing (alpha 1/n) on 0-100 (the scale is applied by the output getter).
    return _single("RelativeStrengthIndex", params, ma_type=MovingAverageType.WILDER)


class Macd:
    """MACD line (fast EMA - slow EMA), its signal EMA and the histogram."""

    def __init__(self, fast: int, slow: int, signal: int, source: str):
        from nautilus_trader.indicators import ExponentialMovingAverage, MovingAverageConvergenceDivergence

        self._line = MovingAverageConvergenceDivergence(fast, slow)
        self._signal = ExponentialMovingAverage(signal)
        self._get = source_getter(source)
        self.value = self.signal = self.histogram = 0.0
        self.initialized = False

    def handle_bar(self, bar) -> None:
        line = self._line
        line.update_raw(self._get(bar))
        if not line.initialized:
            return
        self._signal.update_raw(line.value)  # the signal line starts once the MACD line is defined
        self.value = line.value
        self.signal = self._signal.value
        self.histogram = self.value - self.signal
        self.initialized = self._signal.initialized


def _macd_reference(df, p):
    out = _ta().macd(_frame_source(df, p["source"]), p["fast"], p["slow"], p["signal"])
    out.columns = ["value", "histogram", "signal"]
    return out


@indicator_registry.register(
    "MACD", category="momentum", description="MACD line, signal line and histogram",
    params={"fast": _p(12), "slow": _p(26), "signal": _p(9)}, outputs=("value", "signal", "histogram"),
    uses_source=True, native="MovingAverageConvergenceDivergence (+ our signal EMA)", reference=_macd_reference,
)  # fmt: skip
def _macd(params: dict):
    return Macd(int(params["fast"]), int(params["slow"]), int(params["signal"]), params.get("source", "close"))


class Stochastic:
    """Slow stochastic: raw %K over `k` bars, smoothed by an SMA of `smooth_k`; %D = SMA(`d`) of %K."""

    def __init__(self, k: int, d: int, smooth_k: int):
        from nautilus_trader.indicators import SimpleMovingAverage

        self._ext = _Extremes(k)
        self._smooth = SimpleMovingAverage(smooth_k)
        self._d = SimpleMovingAverage(d)
        self.k = self.d = 0.0
        self.initialized = False

    def handle_bar(self, bar) -> None:
        ext = self._ext
        ext.push(bar.high.as_double(), bar.low.as_double())
        if not ext.full:
            return
        span = ext.high - ext.low
        raw = 100.0 * (bar.close.as_double() - ext.low) / span if span > 0 else 50.0
        self._smooth.update_raw(raw)
        if not self._smooth.initialized:
            return
        self.k = self._smooth.value
        self._d.update_raw(self.k)
        self.d = self._d.value
        self.initialized = self._d.initialized


def _stoch_reference(df, p):
    out = _ta().stoch(df["high"], df["low"], df["close"], p["k"], p["d"], p["smooth_k"])
    out.columns = ["k", "d"]
    return out


@indicator_registry.register(
    "STOCH", category="momentum", description="Stochastic oscillator %K/%D (0-100)",
    params={"k": _p(14), "d": _p(3), "smooth_k": _p(3, text="SMA smoothing of %K (1 = fast stochastic)")},
    outputs=("k", "d"), reference=_stoch_reference, aliases=("STOCHASTIC",),
)  # fmt: skip
def _stoch(params: dict):
    return Stochastic(int(params["k"]), int(params["d"]), int(params["smooth_k"]))


@indicator_registry.register("CCI", category="momentum", description="Commodity channel index",
                             params={"period": _p(20), "scalar": _f(0.015, 1e-6, 1.0, "Lambert's constant")},
                             native="CommodityChannelIndex",
                             reference=lambda df, p: _ta().cci(df["high"], df["low"], df["close"], p["period"],
                                                              p["scalar"]).to_frame("value"))  # fmt: skip
def _cci(params: dict):
    from nautilus_trader.indicators import CommodityChannelIndex

    return CommodityChannelIndex(int(params["period"]), float(params["scalar"]))


class WilliamsR:
    """Williams %R: ``-100 * (highest high - close) / (highest high - lowest low)`` over `period` bars."""

    def __init__(self, period: int):
        self._ext = _Extremes(period)
        self.value = 0.0
        self.initialized = False

    def handle_bar(self, bar) -> None:
        ext = self._ext
        ext.push(bar.high.as_double(), bar.low.as_double())
        if ext.full:
            span = ext.high - ext.low
            self.value = -100.0 * (ext.high - bar.close.as_double()) / span if span > 0 else -50.0
            self.initialized = True


@indicator_registry.register("WILLR", category="momentum", description="Williams %R (-100..0)",
                             params={"period": _p(14)}, aliases=("WILLIAMS_R", "WILLIAMSR"),
                             reference=lambda df, p: _ta().willr(df["high"], df["low"], df["close"],
                                                                p["period"]).to_frame("value"))  # fmt: skip
def _willr(params: dict):
    return WilliamsR(int(params["period"]))


class Roc:
    """Rate of change ``(x - x[period]) / x[period]`` (a fraction; the DSL scales it to percent).

    NautilusTrader's ``RateOfChange(n)`` compares with the value ``n - 1`` bars ago (its window
    holds `n` values including the current one) and raises ``ZeroDivisionError`` on a zero base
    (e.g. ``source: volume`` over a bar without trades). Here the base is `period` bars back, as in
    TA-Lib/pandas-ta, and a zero base gives NaN (undefined: every comparison with it is false).
    """

    __slots__ = ("_get", "_window", "initialized", "value")

    def __init__(self, period: int, source: str):
        self._window: deque = deque(maxlen=period + 1)
        self._get = source_getter(source)
        self.value = 0.0
        self.initialized = False

    def handle_bar(self, bar) -> None:
        window = self._window
        x = self._get(bar)
        window.append(x)
        if len(window) == window.maxlen:
            base = window[0]
            self.value = (x - base) / base if base else math.nan
            self.initialized = True


@indicator_registry.register("ROC", category="momentum", description="Rate of change in percent",
                             params={"period": _p(10)}, uses_source=True, scale={"value": 100.0},
                             reference=lambda df, p: _ta().roc(_frame_source(df, p["source"]), p["period"]).to_frame("value"))  # fmt: skip
def _roc(params: dict):
    return Roc(int(params["period"]), params.get("source", "close"))


# -- volatility ----------------------------------------------------------------------------------


@indicator_registry.register("ATR", category="volatility", description="Average true range (Wilder)",
                             params={"period": _p(14)}, native="AverageTrueRange",
                             reference=lambda df, p: _ta().atr(df["high"], df["low"], df["close"],
                                                              p["period"]).to_frame("value"))  # fmt: skip
def _atr(params: dict):
    from nautilus_trader.indicators import AverageTrueRange, MovingAverageType

    return AverageTrueRange(int(params["period"]), MovingAverageType.WILDER)


class Bollinger:
    """Bollinger bands on NautilusTrader's ``BollingerBands`` plus bandwidth and %B."""

    def __init__(self, period: int, std: float, source: str):
        from nautilus_trader.indicators import BollingerBands

        self._bb = BollingerBands(period, std)
        self._src = source
        self._get = source_getter(source)
        self.upper = self.middle = self.lower = self.width = self.percent_b = 0.0
        self.initialized = False

    def handle_bar(self, bar) -> None:
        bb = self._bb
        x = self._get(bar)
        bb.update_raw(x, x, x)  # one series: its "typical price" is the source itself
        self.upper, self.middle, self.lower = bb.upper, bb.middle, bb.lower
        self.width = (self.upper - self.lower) / self.middle * 100.0 if self.middle else 0.0
        span = self.upper - self.lower
        self.percent_b = (x - self.lower) / span if span else 0.5
        self.initialized = bb.initialized


def _bbands_reference(df, p):
    out = _ta().bbands(_frame_source(df, p["source"]), p["period"], p["std"])
    out = out.iloc[:, :5]
    out.columns = ["lower", "middle", "upper", "width", "percent_b"]
    return out


@indicator_registry.register(
    "BBANDS", category="volatility", description="Bollinger bands (population std), bandwidth in % and %B",
    params={"period": _p(20), "std": _f(2.0, 0.1, 10.0, "band width in standard deviations")},
    outputs=("middle", "upper", "lower", "width", "percent_b"), uses_source=True, native="BollingerBands",
    reference=_bbands_reference, aliases=("BB", "BOLLINGER"),
)  # fmt: skip
def _bbands(params: dict):
    return Bollinger(int(params["period"]), float(params["std"]), params.get("source", "close"))


class Keltner:
    """Keltner channel: EMA of close +- multiplier x ATR (Wilder) over `atr_period` bars."""

    def __init__(self, period: int, multiplier: float, atr_period: int):
        from nautilus_trader.indicators import AverageTrueRange, ExponentialMovingAverage, MovingAverageType

        self._ma = ExponentialMovingAverage(period)
        self._atr = AverageTrueRange(atr_period, MovingAverageType.WILDER)
        self._m = multiplier
        self.upper = self.middle = self.lower = 0.0
        self.initialized = False

    def handle_bar(self, bar) -> None:
        self._ma.handle_bar(bar)
        self._atr.handle_bar(bar)
        band = self._m * self._atr.value
        self.middle = self._ma.value
        self.upper, self.lower = self.middle + band, self.middle - band
        self.initialized = self._ma.initialized and self._atr.initialized


def _kc_reference(df, p):
    # Not ``ta.kc``: pandas-ta smooths the true range with the *same* EMA as the middle line (one
    # length), while the channel users know (Raschke's modern Keltner, TradingView's default with
    # ``atr_period``) is EMA(period) of close +- multiplier x Wilder ATR(atr_period).
    import pandas as pd

    ta = _ta()
    mid = ta.ema(df["close"], p["period"])
    atr = ta.atr(df["high"], df["low"], df["close"], p["atr_period"])
    return pd.DataFrame({"middle": mid, "upper": mid + p["multiplier"] * atr, "lower": mid - p["multiplier"] * atr})


@indicator_registry.register(
    "KC", category="volatility", description="Keltner channel (EMA of close +- multiplier x ATR)",
    params={"period": _p(20), "multiplier": _f(2.0, 0.1, 10.0, "ATR multiple"), "atr_period": _p(10)},
    outputs=("middle", "upper", "lower"), native="ExponentialMovingAverage + AverageTrueRange",
    reference=_kc_reference, aliases=("KELTNER",),
)  # fmt: skip
def _kc(params: dict):
    return Keltner(int(params["period"]), float(params["multiplier"]), int(params["atr_period"]))


def _donchian_reference(df, p):
    out = _ta().donchian(df["high"], df["low"], p["period"], p["period"])
    out.columns = ["lower", "middle", "upper"]
    return out


@indicator_registry.register("DONCHIAN", category="volatility", description="Donchian channel",
                             params={"period": _p(20)}, outputs=("middle", "upper", "lower"),
                             native="DonchianChannel", reference=_donchian_reference)  # fmt: skip
def _donchian(params: dict):
    from nautilus_trader.indicators import DonchianChannel

    return DonchianChannel(int(params["period"]))


# -- volume --------------------------------------------------------------------------------------


class Obv:
    """On-balance volume: the running sum of volume signed by the close vs. the previous close.

    As in TA-Lib and pandas-ta the first bar counts its volume as positive. NautilusTrader's
    ``OnBalanceVolume`` signs each bar's volume by its own close vs. *open* (a different
    indicator) and re-sums its whole history on every bar (quadratic over a backtest).
    """

    __slots__ = ("_prev", "initialized", "value")

    def __init__(self):
        self._prev = 0.0
        self.value = 0.0
        self.initialized = False

    def handle_bar(self, bar) -> None:
        close, volume = bar.close.as_double(), bar.volume.as_double()
        if not self.initialized:
            self.value = volume
            self.initialized = True
        elif close > self._prev:
            self.value += volume
        elif close < self._prev:
            self.value -= volume
        self._prev = close


@indicator_registry.register("OBV", category="volume", description="On-balance volume (cumulative)",
                             reference=lambda df, p: _ta().obv(df["close"], df["volume"]).to_frame("value"))  # fmt: skip
def _obv(params: dict):
    return Obv()


class Vwap:
    """Volume-weighted average of the typical price ``(h + l + c) / 3``, reset each UTC day.

    A bar belongs to the UTC day of its last nanosecond (``ts_event - 1``: bars are stamped at
    their close, so the bar closing at 00:00 is the previous day's last). Until the day has any
    volume the value is the day's first typical price. NautilusTrader's VWAP needs a ``datetime``
    per bar (a pandas Timestamp costs more than the whole update) and resets only when the
    day-of-month changes, so it misses a reset across a data gap to the same day of another month.
    """

    __slots__ = ("_day", "_pv", "_volume", "initialized", "value")

    def __init__(self):
        self._day = -1
        self._pv = self._volume = 0.0
        self.value = 0.0
        self.initialized = False

    def handle_bar(self, bar) -> None:
        typical = (bar.high.as_double() + bar.low.as_double() + bar.close.as_double()) / 3.0
        volume = bar.volume.as_double()
        day = (bar.ts_event - 1) // _DAY_NS
        if day != self._day:
            self._day = day
            self._pv = self._volume = 0.0
            self.value = typical
            self.initialized = True
        if volume > 0.0:
            self._pv += typical * volume
            self._volume += volume
            self.value = self._pv / self._volume


_DAY_NS = 86_400 * 1_000_000_000


def _vwap_reference(df, p):
    # pandas-ta groups by ``index.to_period("D")``, which warns about (and drops) a timezone: give it
    # the same instants as naive UTC.
    index = df.index
    if getattr(index, "tz", None) is not None:
        df = df.set_axis(index.tz_convert("UTC").tz_localize(None))
    out = _ta().vwap(df["high"], df["low"], df["close"], df["volume"], anchor="D").to_frame("value")
    return out.set_axis(index)


@indicator_registry.register("VWAP", category="volume", description="Volume-weighted average price, reset each UTC day",
                             reference=_vwap_reference)  # fmt: skip
def _vwap(params: dict):
    return Vwap()


@indicator_registry.register("VOLUME_SMA", category="volume", description="Simple moving average of volume",
                             params={"period": _p(20)}, native="SimpleMovingAverage", aliases=("VOLSMA",),
                             reference=lambda df, p: _ta().sma(df["volume"], p["period"]).to_frame("value"))  # fmt: skip
def _volume_sma(params: dict):
    return _single("SimpleMovingAverage", {**params, "source": "volume"})


class Mfi:
    """Money flow index (0-100) over `period` bars of typical price x volume."""

    def __init__(self, period: int):
        self._n = period
        self._flows: deque = deque()
        self._pos = self._neg = 0.0
        self._n_pos = self._n_neg = 0  # flows of each sign in the window: a sum with none is exactly 0
        self._prev: float | None = None
        self.value = 0.0
        self.initialized = False

    def handle_bar(self, bar) -> None:
        tp = (bar.high.as_double() + bar.low.as_double() + bar.close.as_double()) / 3.0
        prev, self._prev = self._prev, tp
        if prev is None:
            return
        flow = tp * bar.volume.as_double()
        signed = flow if tp > prev else (-flow if tp < prev else 0.0)
        self._flows.append(signed)
        if signed > 0:
            self._pos += signed
            self._n_pos += 1
        elif signed < 0:
            self._neg -= signed
            self._n_neg += 1
        if len(self._flows) > self._n:
            old = self._flows.popleft()
            if old > 0:
                self._n_pos -= 1
                self._pos = self._pos - old if self._n_pos else 0.0
            elif old < 0:
                self._n_neg -= 1
                self._neg = self._neg + old if self._n_neg else 0.0
        if len(self._flows) == self._n:
            total = self._pos + self._neg
            self.value = 100.0 * self._pos / total if total > 0 else 50.0
            self.initialized = True


@indicator_registry.register("MFI", category="volume", description="Money flow index (0-100)",
                             params={"period": _p(14)},
                             reference=lambda df, p: _ta().mfi(df["high"], df["low"], df["close"], df["volume"],
                                                              p["period"]).to_frame("value"))  # fmt: skip
def _mfi(params: dict):
    return Mfi(int(params["period"]))
