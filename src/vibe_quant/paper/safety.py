"""Live safety for testnet and live sessions (docs/specs.md#live-safety-and-kill-switch,
docs/specs.md#live-safety-merge).

A testnet or live session trades the ``live_safety`` risk preset merged with the user's own risk
config: on every key the tighter value wins. A user value looser than the limit stops the
session unless the user passes ``--allow-looser-limits "REASON"``; then the looser value is
traded and recorded with the reason. The venue leverage is capped at the effective
``max_leverage`` (3x unless a looser one was allowed).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import msgspec

from vibe_quant.backtest.config import BacktestConfig
from vibe_quant.errors import ConfigError
from vibe_quant.risk.config import RISK_PRESETS, RiskConfig

LIVE_SAFETY = RISK_PRESETS["live_safety"]
FLAG = "--allow-looser-limits"


def _ceiling(value):  # a fraction or multiple: smaller is tighter, None (breaker off) the loosest
    return math.inf if value is None else value


def _cooldown(value):  # hours before a halted account resumes: None (a manual resume) is the tightest
    return -math.inf if value is None else -value


# Portfolio-level key -> how tight a value is (higher = looser). Keys not listed are parameters of
# the user's own breakers (correlation_threshold, correlation_bars, post_only_bars): the user's kept.
LOOSENESS: dict[str, Callable] = {
    "max_portfolio_drawdown_pct": _ceiling,
    "max_portfolio_daily_loss_pct": _ceiling,
    "max_total_exposure_pct": _ceiling,
    "max_correlated_exposure_pct": _ceiling,
    "max_position_notional_pct": _ceiling,
    "max_leverage": _ceiling,
    "rolling_drawdown_pct": _ceiling,
    "rolling_hours": lambda hours: -hours,  # the peak over a longer window is higher: a longer window is tighter
    "cooldown_after_halt_hours": _cooldown,
    "prefer_post_only": lambda on: 0 if on else 1,
}


def apply_live_safety(config: BacktestConfig, allow_looser: str | None = None) -> tuple[BacktestConfig, dict]:
    """Return the config a testnet or live session trades and the limits record it keeps.

    The risk config is ``live_safety`` with the user's own values where they are tighter: a smaller
    fraction or multiple, a breaker ``live_safety`` leaves off, a longer rolling window, a halt
    that waits for a manual resume, post-only entries. The user's strategy-level breakers are
    kept as they are (``live_safety`` has none, so they only tighten). A run without a risk
    config trades ``live_safety`` itself. The venue leverage (``leverage`` and per-symbol
    ``leverages``) is capped at the effective ``portfolio_level.max_leverage``.

    Parameters
    ----------
    config : BacktestConfig
        The validated run's config (resolved or not).
    allow_looser : str or None, default None
        The reason given with ``--allow-looser-limits``: user values looser than the limits are
        then traded (and recorded) instead of refused.

    Returns
    -------
    (BacktestConfig, dict)
        The config to trade, and ``{"applied": {field: value}, "tightened": [...], "loosened": [...],
        "capped": [...], "reason": allow_looser}``; each list item is ``{"field", "limit", "value"}``
        (``tightened``: the user's stricter value kept; ``loosened``: the user's looser value
        traded; ``capped``: the venue leverage lowered to the cap). ``applied`` holds every
        portfolio-level key and the venue leverage as traded.

    Raises
    ------
    ConfigError
        A user value looser than the limit without `allow_looser` (naming every such field, both
        values and the flag), or an empty `allow_looser`.
    """
    if allow_looser is not None and not allow_looser.strip():
        raise ConfigError(f'{FLAG}: give the reason the looser limits are accepted, e.g. {FLAG} "sized for 5x"')
    limit = LIVE_SAFETY.portfolio_level
    user = config.risk.portfolio_level if config.risk is not None else limit
    merged, tightened, loosened = {}, [], []
    for key, loose in LOOSENESS.items():
        mine, theirs = getattr(user, key), getattr(limit, key)
        entry = {"field": f"risk.portfolio_level.{key}", "limit": theirs, "value": mine}
        if loose(mine) < loose(theirs):
            tightened.append(entry)
        elif loose(mine) > loose(theirs):
            loosened.append(entry)
        merged[key] = mine if loose(mine) != loose(theirs) else theirs
    if loosened and allow_looser is None:
        lines = "; ".join(f"{e['field']} {show(e['field'], e['value'])} is looser than the live safety limit "
                          f"{show(e['field'], e['limit'])}" for e in loosened)  # fmt: skip
        raise ConfigError(
            f"{lines} (docs/specs.md#live-safety-and-kill-switch). Fix: tighten them in the risk config, or pass "
            f'{FLAG} "REASON" to trade them and record why'
        )
    portfolio = msgspec.structs.replace(user, **merged)
    strategy = config.risk.strategy_level if config.risk is not None else LIVE_SAFETY.strategy_level
    cap = portfolio.max_leverage
    capped = []
    leverage = config.leverage
    if cap is not None and leverage > cap:
        capped.append({"field": "leverage", "limit": cap, "value": leverage})
        leverage = cap
    leverages = dict(config.leverages)
    for symbol, value in config.leverages.items():
        if cap is not None and value > cap:
            capped.append({"field": f"leverages.{symbol}", "limit": cap, "value": value})
            leverages[symbol] = cap
    safe = msgspec.structs.replace(config, risk=RiskConfig(strategy_level=strategy, portfolio_level=portfolio),
                                   leverage=leverage, leverages=leverages)  # fmt: skip
    applied = {f"risk.portfolio_level.{k}": v for k, v in msgspec.to_builtins(portfolio).items()}
    applied["leverage"] = leverage
    applied.update({f"leverages.{s}": v for s, v in leverages.items()})
    limits = {"applied": applied, "tightened": tightened, "loosened": loosened, "capped": capped,
              "reason": allow_looser}  # fmt: skip
    return safe, limits


def show(field: str, value) -> str:
    """A limit's value as messages print it (None is a breaker off, or for a cooldown a manual resume)."""
    if value is None:
        return "null (a manual resume)" if field.endswith("cooldown_after_halt_hours") else "off (null)"
    return repr(value)
