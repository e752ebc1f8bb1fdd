"""The ACB's daily factor table, as pure functions: factor weights, ``signals``, ``base_boost``, the
w750 threshold and ``beta`` (docs/specs.md#dolphin-acb).

Every choice the specification leaves open is a named field of :class:`AcbConfig`, with its default,
and recorded whole in the table's metadata. A factor that is absent on a date (NaN here) contributes
weight 0, never a guess. Readers of the catalog, the raw lake and the scan files live in
``acb_build``; nothing here touches the disk or the clock.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Literal

import msgspec
import numpy as np

from vibe_quant.errors import ConfigError, DataFileError

MS_PER_DAY = 86_400_000
MINUTES_PER_DAY = 1440
_EPOCH = dt.date(1970, 1, 1)


class AcbConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How the ACB's daily factors, ``signals``, ``base_boost`` and ``beta`` are computed.

    Defaults (the specification's thresholds and weights, plus our choices where it is silent):

    - ``funding_btc(D)``: the funding rate of ``funding_symbol`` (``BTCUSDT``) settled at D 00:00
      UTC, i.e. the settlement stamped in ``[D 00:00, D 00:00 + funding_slack_ms)`` (1,000 ms:
      Binance stamps settlements a few ms late, up to 13 ms in BTCUSDT 2026-04). Known at the day's
      start. Weight ``strong_weight`` (1.0) below ``funding_very`` (-0.0001), else ``mild_weight``
      (0.5) below ``funding_mild`` (0.0).
    - ``dvol_btc(D)``: a user CSV value for D; 1.0 above ``dvol_extreme`` (80), 0.5 above
      ``dvol_elevated`` (55).
    - ``fng(D)``: a user CSV value for D; 1.0 below ``fng_extreme`` (25), 0.5 below ``fng_fear`` (40).
      The specification says fng "requires confirmation" without saying what confirms it:
      ``fng_confirmation="other_factor"`` (default) counts its weight only on a date where at least
      one other factor has a weight above 0; ``"none"`` counts it alone.
    - ``taker(D)``: from the 1,440 one-minute klines of ``taker_symbol`` (``BTCUSDT``) on D-1 (known
      at D's start). ``taker_definition="buy_sell_ratio"`` (default): sum(taker_buy_volume) /
      sum(volume - taker_buy_volume), which is about 1.0 in a balanced market, so the thresholds
      ``taker_selling`` (0.80, weight 1.0) and ``taker_mild`` (0.90, weight 0.5) mark sellers
      outweighing buyers by 25% and 11%. ``"buy_share"``: buy / (buy + sell), which hovers near 0.5
      and is therefore always below 0.80 and 0.90: with these thresholds the factor would fire on
      every date, so it is offered only for comparison.
    - ``signals`` = the sum of the weights; ``base_boost`` = ``1 + boost_scale * log1p(signals)``
      (0.5) when ``signals >= boost_min_signals`` (1.0), else 1.0.
    - ``w750_vel(D)``: median of the longest window's velocity over the scan rows of D-1.
      ``w750_threshold(D)``: the ``w750_percentile`` (60th, ``numpy.percentile`` linear) of the
      present w750 values of the dates strictly before D (``w750_threshold_mode="past"``), defined
      once ``w750_min_history`` (5) such values exist; ``"full_sample"`` takes one percentile over
      every date's values, later dates included (the specification's own form: look-ahead in a
      backtest). ``beta`` = ``beta_high`` (0.8) when ``w750_vel >= w750_threshold``, else
      ``beta_low`` (0.2), also when either is missing.

    Raises
    ------
    ConfigError
        A threshold pair in the wrong order, a percentile outside [0, 100], a history below 1, a
        slack outside [0, 1 h), a negative weight, or ``beta_low > beta_high``.
    """

    funding_symbol: str = "BTCUSDT"
    funding_slack_ms: int = 1000
    funding_very: float = -0.0001
    funding_mild: float = 0.0
    dvol_extreme: float = 80.0
    dvol_elevated: float = 55.0
    fng_extreme: float = 25.0
    fng_fear: float = 40.0
    fng_confirmation: Literal["other_factor", "none"] = "other_factor"
    taker_symbol: str = "BTCUSDT"
    taker_definition: Literal["buy_sell_ratio", "buy_share"] = "buy_sell_ratio"
    taker_selling: float = 0.80
    taker_mild: float = 0.90
    strong_weight: float = 1.0
    mild_weight: float = 0.5
    boost_min_signals: float = 1.0
    boost_scale: float = 0.5
    w750_percentile: float = 60.0
    w750_threshold_mode: Literal["past", "full_sample"] = "past"
    w750_min_history: int = 5
    beta_high: float = 0.8
    beta_low: float = 0.2

    def __post_init__(self) -> None:
        for name, low, high in (("funding", self.funding_very, self.funding_mild),
                                ("dvol", self.dvol_elevated, self.dvol_extreme),
                                ("fng", self.fng_extreme, self.fng_fear),
                                ("taker", self.taker_selling, self.taker_mild)):  # fmt: skip
            if not low < high:
                raise ConfigError(f"{name} thresholds {low} and {high}: the stronger level must lie beyond the milder")
        for name in ("funding_symbol", "taker_symbol"):
            value = getattr(self, name)
            if not value or value != value.strip().upper():
                raise ConfigError(f"{name} {value!r}: give a venue symbol in capitals, e.g. BTCUSDT")
        if self.fng_confirmation not in ("other_factor", "none"):
            raise ConfigError(f"fng_confirmation {self.fng_confirmation!r}: choose other_factor or none")
        if self.taker_definition not in ("buy_sell_ratio", "buy_share"):
            raise ConfigError(f"taker_definition {self.taker_definition!r}: choose buy_sell_ratio or buy_share")
        if self.w750_threshold_mode not in ("past", "full_sample"):
            raise ConfigError(f"w750_threshold_mode {self.w750_threshold_mode!r}: choose past or full_sample")
        if not 0.0 <= self.w750_percentile <= 100.0:
            raise ConfigError(f"w750_percentile {self.w750_percentile}: give a percentile in [0, 100]")
        if self.w750_min_history < 1:
            raise ConfigError(f"w750_min_history {self.w750_min_history}: give at least 1")
        if not 0 <= self.funding_slack_ms < 3_600_000:
            raise ConfigError(
                f"funding_slack_ms {self.funding_slack_ms}: give 0 to 3,599,999 ms (a settlement's lateness)"
            )
        if self.strong_weight < 0 or self.mild_weight < 0:
            raise ConfigError(f"weights {self.strong_weight} and {self.mild_weight}: they cannot be negative")
        if self.beta_low > self.beta_high:
            raise ConfigError(f"beta_low {self.beta_low} is above beta_high {self.beta_high}")

    @property
    def look_ahead(self) -> bool:
        """True when a row's beta uses dates after it (the full-sample threshold)."""
        return self.w750_threshold_mode == "full_sample"


# -- factor weights and the boost --------------------------------------------------------------


def _weights(values: np.ndarray, strong: float, mild: float, below: bool, config: AcbConfig) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if below:
        return np.where(v < strong, config.strong_weight, np.where(v < mild, config.mild_weight, 0.0))
    return np.where(v > strong, config.strong_weight, np.where(v > mild, config.mild_weight, 0.0))


def funding_weight(values: np.ndarray, config: AcbConfig) -> np.ndarray:
    """Return the funding factor's weight per date (0 where NaN): 1.0 below -0.0001, 0.5 below 0.0."""
    return _weights(values, config.funding_very, config.funding_mild, True, config)


def dvol_weight(values: np.ndarray, config: AcbConfig) -> np.ndarray:
    """Return the DVOL factor's weight per date (0 where NaN): 1.0 above 80, 0.5 above 55."""
    return _weights(values, config.dvol_extreme, config.dvol_elevated, False, config)


def fng_weight(values: np.ndarray, config: AcbConfig) -> np.ndarray:
    """Return the Fear & Greed factor's own weight per date, before confirmation: 1.0 below 25, 0.5 below 40."""
    return _weights(values, config.fng_extreme, config.fng_fear, True, config)


def taker_weight(values: np.ndarray, config: AcbConfig) -> np.ndarray:
    """Return the taker factor's weight per date (0 where NaN): 1.0 below 0.80, 0.5 below 0.90."""
    return _weights(values, config.taker_selling, config.taker_mild, True, config)


def signals(funding: np.ndarray, dvol: np.ndarray, fng: np.ndarray, taker: np.ndarray, config: AcbConfig) -> np.ndarray:
    """Return ``signals`` per date: the sum of the four factors' weights.

    Parameters
    ----------
    funding, dvol, fng, taker : ndarray, shape (n,)
        Factor values per date; NaN where a factor is absent (weight 0).
    config : AcbConfig
        Thresholds, weights and ``fng_confirmation`` (default ``other_factor``: fng counts only on
        a date where another factor's weight is above 0).

    Returns
    -------
    ndarray, shape (n,)
        In [0, 4] with the default weights.
    """
    others = funding_weight(funding, config) + dvol_weight(dvol, config) + taker_weight(taker, config)
    fear = fng_weight(fng, config)
    if config.fng_confirmation == "other_factor":
        fear = np.where(others > 0.0, fear, 0.0)
    return others + fear


def base_boost(signal_sum: np.ndarray, config: AcbConfig) -> np.ndarray:
    """Return ``1 + 0.5 * log1p(signals)`` where ``signals >= 1.0``, else 1.0 (shape of `signal_sum`)."""
    s = np.asarray(signal_sum, dtype=np.float64)
    return np.where(s >= config.boost_min_signals, 1.0 + config.boost_scale * np.log1p(np.maximum(s, 0.0)), 1.0)


def w750_thresholds(w750: np.ndarray, config: AcbConfig) -> np.ndarray:
    """Return the w750 threshold per date.

    Parameters
    ----------
    w750 : ndarray, shape (n,)
        Daily w750 velocity in date order, one entry per consecutive date; NaN where absent.
    config : AcbConfig
        ``w750_threshold_mode`` ``past`` (default): the threshold of date i is the
        ``w750_percentile`` of the present values of dates 0..i-1 (never date i or later), NaN
        until ``w750_min_history`` of them exist. ``full_sample``: one percentile of every present
        value, the same for every date (look-ahead), NaN if fewer than ``w750_min_history``.

    Returns
    -------
    ndarray, shape (n,)
    """
    w = np.asarray(w750, dtype=np.float64)
    out = np.full(len(w), np.nan)
    present = np.isfinite(w)
    if config.w750_threshold_mode == "full_sample":
        if present.sum() >= config.w750_min_history:
            out[:] = np.percentile(w[present], config.w750_percentile)
        return out
    history = np.cumsum(present) - present  # present values strictly before each date
    for i in np.flatnonzero(history >= config.w750_min_history):
        past = w[:i]
        out[i] = np.percentile(past[np.isfinite(past)], config.w750_percentile)
    return out


def betas(w750: np.ndarray, thresholds: np.ndarray, config: AcbConfig) -> np.ndarray:
    """Return ``beta_high`` (0.8) where ``w750 >= threshold``, else ``beta_low`` (0.2), also where either is NaN."""
    w = np.asarray(w750, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    return np.where(w >= t, config.beta_high, config.beta_low)  # False where either is NaN


# -- taker flow from one-minute klines ----------------------------------------------------------


def taker_value(buy: float, sell: float, definition: str) -> float:
    """Return the taker factor from summed taker-buy and taker-sell volume (NaN when undefined).

    ``buy_sell_ratio``: ``buy / sell``; ``buy_share``: ``buy / (buy + sell)``.
    """
    denominator = sell if definition == "buy_sell_ratio" else buy + sell
    return buy / denominator if denominator > 0 else math.nan


def epoch_day(day: dt.date) -> int:
    return (day - _EPOCH).days


def daily_taker(
    open_ms: np.ndarray, volume: np.ndarray, taker_buy: np.ndarray, days: list[dt.date], definition: str
) -> np.ndarray:
    """Return ``taker(D)`` for each date D from the one-minute klines of D-1.

    Parameters
    ----------
    open_ms : ndarray, shape (k,)
        Kline open times in ms, sorted, without repeats.
    volume, taker_buy : ndarray, shape (k,)
        Base-asset volume and taker-buy volume of each kline.
    days : list of date, length n
    definition : {"buy_sell_ratio", "buy_share"}

    Returns
    -------
    ndarray, shape (n,)
        NaN for a date whose previous UTC day does not hold all 1,440 klines, or has no taker
        sell volume (``buy_sell_ratio``) or no volume (``buy_share``).
    """
    day_of = np.asarray(open_ms, dtype=np.int64) // MS_PER_DAY
    out = np.full(len(days), np.nan)
    for i, day in enumerate(days):
        previous = epoch_day(day) - 1
        lo, hi = (int(x) for x in np.searchsorted(day_of, [previous, previous + 1]))
        if hi - lo != MINUTES_PER_DAY:
            continue
        buy = taker_buy[lo:hi]
        out[i] = taker_value(float(buy.sum()), float((volume[lo:hi] - buy).sum()), definition)
    return out


# -- user CSVs (dvol, fng) -----------------------------------------------------------------------

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def parse_daily_values(data: bytes, name: str) -> dict[dt.date, float]:
    """Parse a user CSV of one value per UTC date.

    The header is ``date,value``; ``date`` (YYYY-MM-DD) is the date the value applies to, i.e. the
    value must be known at that date's 00:00 UTC. Two lines of a DVOL file::

        date,value
        2026-04-01,52.3

    Parameters
    ----------
    data : bytes
        The file's bytes (UTF-8, an optional BOM, trailing empty lines allowed).
    name : str
        The file, shown in error messages.

    Returns
    -------
    dict of date to float

    Raises
    ------
    DataFileError
        A missing or different header, an empty or short line, a bad date, a non-numeric or
        non-finite value, a date given twice, or no rows; naming the line.
    """
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataFileError(name, f"not UTF-8 text ({exc})", fix="save the file as UTF-8 CSV") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or [c.strip().lower() for c in lines[0].split(",")] != ["date", "value"]:
        found = lines[0][:80] if lines else "an empty file"
        raise DataFileError(name, f"the header must be 'date,value', found {found!r}", line=1,
                            fix="start the file with the line date,value")  # fmt: skip
    out: dict[dt.date, float] = {}
    first_line: dict[dt.date, int] = {}
    for n, line in enumerate(lines[1:], start=2):
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 2:
            problem = "empty line" if not line.strip() else f"{len(cells)} fields in {line[:80]!r}, expected 2"
            raise DataFileError(name, problem, line=n, fix="write one date,value pair per line")
        text, value = cells
        try:
            day = dt.date.fromisoformat(text) if _DATE.fullmatch(text) else None
        except ValueError:
            day = None
        if day is None:
            raise DataFileError(name, f"date {text!r} is not a date", line=n, fix="write dates as YYYY-MM-DD (UTC)")
        if not _NUMBER.fullmatch(value) or not math.isfinite(float(value)):
            raise DataFileError(name, f"value {value!r} is not a finite number", line=n,
                                fix="write plain decimal numbers; leave a date out when it has no value")  # fmt: skip
        if day in out:
            raise DataFileError(name, f"date {day} is given twice (first on line {first_line[day]})", line=n,
                                fix="keep one value per date")  # fmt: skip
        out[day], first_line[day] = float(value), n
    if not out:
        raise DataFileError(name, "no rows after the header", fix="add date,value lines or drop the option")
    return out
