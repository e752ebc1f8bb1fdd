"""Promotion of an RL model to champion of its symbol and timeframe: the rules, and applying them.

:func:`decide` is pure: a candidate's metrics, the champion's (or None) and the rules in, every
check out. :func:`promote` applies it against the registry's current champion, records the decision
with every check, and on success retires the old champion and crowns the candidate in one
transaction.

The rules, in the order they are reported (a bound is met when equal to it, within ``1e-12`` so a
figure computed as ``0.10 + 0.05`` meets a bound of ``0.15``):

* ``net_return_gain``: ``candidate.net_return >= champion.net_return + min_net_return_gain``
  (default 0.05). "Beats the champion by +5% net return" is read in absolute return points (five
  percentage points), not relative (``1.05 x champion``): a relative gain is meaningless when the
  champion's return is near zero (a champion at +0.1% would be beaten by +0.105%) and backwards
  when it is negative (-10% x 1.05 = -10.5% would "beat" -10%); points mean the same margin for
  every champion.
* ``max_drawdown``: ``candidate.max_drawdown <= champion.max_drawdown * (1 + max_drawdown_worsening)``
  (default 0.10: "not worse than +10% relative"); drawdowns are positive fractions, so a champion
  that never drew down allows no drawdown.
* ``positive_net_return``: ``candidate.net_return > min_net_return`` (default 0: strictly). Applied
  with or without a champion: a model that loses money after costs is never promoted, even when it
  loses less than the champion it would replace.
* ``turnover``: ``min_turnover <= turnover <= max_turnover`` (annualised traded notional over mean
  equity; defaults 1 and 500 per year). Below 1 the model hardly trades and its figures rest on a
  handful of positions; above 500 (the equity bought and sold about 0.7 times a day) taker fees of
  0.05% alone cost 25% a year and its edge rests on the cost model being exact.
* ``single_trade_dominance``: ``largest_trade_share <= max_largest_trade_share`` (default 0.5): no
  single trade makes more than half of the total absolute PnL.
* ``window_stability``: at least ``min_windows`` (default 2) walk-forward windows, and the share
  of them with a net return above zero ``>= min_positive_window_share`` (default 0.5).

With no champion, ``net_return_gain`` and ``max_drawdown`` are reported as passed ("no champion")
and only the others decide.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from vibe_quant.errors import ConfigError, UserError
from vibe_quant.home import Home
from vibe_quant.rl.registry import (
    Check,
    Metrics,
    ModelRecord,
    champion_in,
    open_registry,
    parse_metrics,
    record_decision,
    resolve,
    update_stage,
)
from vibe_quant.state.db import transaction

__all__ = ["Check", "Decision", "PromotionResult", "PromotionRules", "decide", "promote"]

TOLERANCE = 1e-12
PROMOTABLE = ("candidate", "staging")

Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]


class PromotionRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The thresholds of the promotion rules (see the module docstring for each rule).

    Parameters
    ----------
    min_net_return_gain : float, default 0.05
        Net return the candidate must add to the champion's, in absolute return points.
    max_drawdown_worsening : float, default 0.10
        How much larger than the champion's the candidate's max drawdown may be, relative.
    min_net_return : float, default 0.0
        The candidate's net return must be strictly above it.
    min_turnover, max_turnover : float, default 1.0 and 500.0
        Bounds (inclusive) of the annualised turnover.
    max_largest_trade_share : float, default 0.5
        Largest share of the total absolute PnL one trade may hold.
    min_windows : int, default 2
        Fewest walk-forward windows the stability rule accepts.
    min_positive_window_share : float, default 0.5
        Smallest share of windows with a positive net return.

    Raises
    ------
    ConfigError
        ``min_turnover > max_turnover`` (the range checks of the other fields run in :meth:`parse`).
    """

    min_net_return_gain: NonNegative = 0.05
    max_drawdown_worsening: NonNegative = 0.10
    min_net_return: float = 0.0
    min_turnover: NonNegative = 1.0
    max_turnover: NonNegative = 500.0
    max_largest_trade_share: Fraction = 0.5
    min_windows: Annotated[int, msgspec.Meta(ge=1)] = 2
    min_positive_window_share: Fraction = 0.5

    def __post_init__(self) -> None:
        if self.min_turnover > self.max_turnover:
            raise ConfigError(
                f"promotion rules: min_turnover {self.min_turnover} is above max_turnover {self.max_turnover}"
            )

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> PromotionRules:
        """Build rules from plain data (a config file's section), every field checked.

        Raises
        ------
        ConfigError
            An unknown field, a wrong type, a value out of range, or ``min_turnover > max_turnover``.
        """
        try:
            return msgspec.convert(dict(data), cls)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"promotion rules: {exc}") from None


class Decision(msgspec.Struct, frozen=True):
    """The outcome of the promotion rules.

    Parameters
    ----------
    promote : bool
        True when every check passed.
    checks : tuple of Check
        One per rule, in the order of the module docstring.
    """

    promote: bool
    checks: tuple[Check, ...]

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)


class PromotionResult(msgspec.Struct, frozen=True):
    """What :func:`promote` did.

    Parameters
    ----------
    decision : Decision
    model : ModelRecord
        The candidate after the decision (stage ``champion`` if promoted, else unchanged).
    previous_champion : str or None
        The champion it was measured against (retired if the candidate was promoted).
    """

    decision: Decision
    model: ModelRecord
    previous_champion: str | None


def decide(
    candidate: Mapping[str, Any] | Metrics,
    champion: Mapping[str, Any] | Metrics | None,
    rules: PromotionRules | None = None,
) -> Decision:
    """Apply the promotion rules to a candidate's metrics against the champion's.

    Parameters
    ----------
    candidate : mapping or Metrics
        The candidate's evaluation metrics (the fields of :class:`vibe_quant.rl.registry.Metrics`).
    champion : mapping or Metrics or None
        The current champion's, or None when there is none.
    rules : PromotionRules, optional
        Default ``PromotionRules()``.

    Returns
    -------
    Decision
        Every check, passed or not; ``promote`` when all passed.

    Raises
    ------
    ConfigError
        A metric is missing, unknown, not finite or out of range.
    """
    rules = PromotionRules() if rules is None else rules
    cand = parse_metrics(candidate)
    champ = None if champion is None else parse_metrics(champion)
    checks = (
        *_performance(cand, champ, rules),
        _positive(cand, rules),
        _turnover(cand, rules),
        _dominance(cand, rules),
        _stability(cand, rules),
    )
    return Decision(promote=all(c.passed for c in checks), checks=checks)


def promote(
    home: Home, model_id: str, rules: PromotionRules | None = None, now: dt.datetime | None = None
) -> PromotionResult:
    """Decide whether a model becomes champion of its symbol and timeframe, record it, and apply it.

    In one transaction: read the current champion, :func:`decide`, record the decision
    (``promoted`` or ``rejected``) with every check; if promoted, retire the old champion (with a
    ``retired`` decision naming its successor) and make the candidate champion. A rejection leaves
    every stage as it was.

    Parameters
    ----------
    home : Home
    model_id : str
        The candidate: an id or a unique prefix, in stage candidate or staging.
    rules : PromotionRules, optional
        Default ``PromotionRules()``.
    now : datetime, optional
        The decision time (aware); default the current UTC time.

    Returns
    -------
    PromotionResult

    Raises
    ------
    UnknownModelError
        No such model.
    UserError
        The model is already champion, or retired.
    """
    rules = PromotionRules() if rules is None else rules
    with open_registry(home) as conn, transaction(conn):
        model = resolve(conn, home, model_id)
        if model.stage not in PROMOTABLE:
            raise UserError(
                f"model {model.model_id} is {model.stage}: only a candidate or a staging model can be promoted"
            )
        current = champion_in(conn, model.symbol, model.timeframe)
        decision = decide(model.metrics, None if current is None else current.metrics, rules)
        record_decision(conn, model, "promoted" if decision.promote else "rejected", decision.checks, now)
        if decision.promote:
            if current is not None:
                replaced = Check("replaced", True, None, None, f"replaced as champion by {model.model_id}")
                record_decision(conn, current, "retired", (replaced,), now)
                update_stage(conn, current.model_id, "retired")  # first: one champion per market at all times
            update_stage(conn, model.model_id, "champion")
        after = resolve(conn, home, model.model_id)
    return PromotionResult(decision, after, None if current is None else current.model_id)


def _meets_min(value: float, bound: float) -> bool:
    return value >= bound - TOLERANCE


def _meets_max(value: float, bound: float) -> bool:
    return value <= bound + TOLERANCE


def _performance(cand: Metrics, champ: Metrics | None, rules: PromotionRules) -> tuple[Check, Check]:
    if champ is None:
        return (
            Check("net_return_gain", True, None, rules.min_net_return_gain, "no champion: nothing to beat"),
            Check("max_drawdown", True, None, None, "no champion: no drawdown to compare with"),
        )
    gain = cand.net_return - champ.net_return
    gain_ok = _meets_min(gain, rules.min_net_return_gain)
    gain_msg = (
        f"net return {cand.net_return:+.4f} is {gain:+.4f} against the champion's {champ.net_return:+.4f}: "
        f"{'at least' if gain_ok else 'below'} the required {rules.min_net_return_gain:+.4f}"
    )
    limit = champ.max_drawdown * (1.0 + rules.max_drawdown_worsening)
    dd_ok = _meets_max(cand.max_drawdown, limit)
    dd_msg = (
        f"max drawdown {cand.max_drawdown:.4f} {'within' if dd_ok else 'above'} {limit:.4f} "
        f"(the champion's {champ.max_drawdown:.4f} + {rules.max_drawdown_worsening:.0%})"
    )
    return (
        Check("net_return_gain", gain_ok, gain, rules.min_net_return_gain, gain_msg),
        Check("max_drawdown", dd_ok, cand.max_drawdown, limit, dd_msg),
    )


def _positive(cand: Metrics, rules: PromotionRules) -> Check:
    ok = cand.net_return > rules.min_net_return
    word = "above" if ok else "not above"
    return Check("positive_net_return", ok, cand.net_return, rules.min_net_return,
                 f"net return {cand.net_return:+.4f} {word} {rules.min_net_return:+.4f}")  # fmt: skip


def _turnover(cand: Metrics, rules: PromotionRules) -> Check:
    low, high = rules.min_turnover, rules.max_turnover
    if not _meets_min(cand.turnover, low):
        return Check("turnover", False, cand.turnover, low,
                     f"turnover {cand.turnover:.2f}/year below {low:.2f}: too few trades to judge")  # fmt: skip
    if not _meets_max(cand.turnover, high):
        return Check("turnover", False, cand.turnover, high,
                     f"turnover {cand.turnover:.2f}/year above {high:.2f}: costs dominate")  # fmt: skip
    return Check("turnover", True, cand.turnover, high, f"turnover {cand.turnover:.2f}/year in [{low:.2f}, {high:.2f}]")


def _dominance(cand: Metrics, rules: PromotionRules) -> Check:
    share, bound = cand.largest_trade_share, rules.max_largest_trade_share
    ok = _meets_max(share, bound)
    return Check("single_trade_dominance", ok, share, bound,
                 f"largest trade holds {share:.1%} of total |PnL| ({'within' if ok else 'above'} {bound:.0%})")  # fmt: skip


def _stability(cand: Metrics, rules: PromotionRules) -> Check:
    windows = cand.window_returns
    bound = rules.min_positive_window_share
    if len(windows) < rules.min_windows:
        return Check("window_stability", False, None, bound,
                     f"{len(windows)} walk-forward window(s): at least {rules.min_windows} needed")  # fmt: skip
    positive = sum(1 for r in windows if r > 0.0)
    share = positive / len(windows)
    ok = _meets_min(share, bound)
    return Check("window_stability", ok, share, bound,
                 f"{positive} of {len(windows)} windows positive ({share:.0%}; at least {bound:.0%} needed)")  # fmt: skip
