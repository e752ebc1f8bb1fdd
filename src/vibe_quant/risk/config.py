"""Sizing and risk configurations (docs/specs.md#position-sizing, docs/specs.md#circuit-breakers): structs, the built-in
presets, and resolution of ``--sizing`` / ``--risk`` (a preset stored in SQLite, or a YAML file).

Units, everywhere: fractions of equity (0.10 = 10%). *Exposure* and *position size* are
notional (``|qty| x price``) over equity, so ``max_position_pct: 0.10`` is a position worth 10% of
equity, whatever the leverage. *Risk* (heat) is what a position loses if its stop fills at its
price (without a stop: its isolated margin, the most it can lose).

A sizing file has this shape (docs/specs.md#sizing-and-risk-files)::

    method: fixed_fractional          # or kelly, atr
    config: {risk_per_trade: 0.02, max_position_pct: 0.10, max_leverage: 20}

A risk file has ``strategy_level:`` and ``portfolio_level:`` blocks (docs/specs.md#circuit-breakers); a key left out
takes its default below, a key set to ``null`` turns that breaker off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec
import yaml

from vibe_quant.errors import ConfigError, UserError, did_you_mean

Pct = Annotated[float, msgspec.Meta(gt=0.0, le=1.0)]
Multiple = Annotated[float, msgspec.Meta(gt=0.0, le=125.0)]
SIZING_METHODS = ("fixed_fractional", "kelly", "atr")


class SizingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How big an entry is. Every method is then capped (smallest wins) by `max_position_pct`
    and `max_leverage` (notional / equity), by `max_portfolio_heat` (risk of every open position
    plus this one / equity), floored to the instrument's step, and dropped below its min notional.
    """

    method: Literal["fixed_fractional", "kelly", "atr"]
    risk_per_trade: Pct = 0.02  # fixed_fractional, atr: equity lost if the stop fills
    max_position_pct: Annotated[float, msgspec.Meta(gt=0.0, le=125.0)] = 0.10
    max_leverage: Multiple = 20.0
    max_portfolio_heat: Pct = 0.06
    # kelly: f* = (W - (1 - W) / R) * kelly_fraction, W and R from the strategy's own closed
    # trades (returns on entry notional, the last `kelly_lookback` of them); until it has
    # `kelly_min_trades`, the priors `win_rate` and `payoff_ratio` stand in.
    kelly_fraction: Pct = 0.5
    kelly_min_trades: Annotated[int, msgspec.Meta(ge=1)] = 20
    kelly_lookback: Annotated[int, msgspec.Meta(ge=2)] = 100
    win_rate: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.5
    payoff_ratio: Annotated[float, msgspec.Meta(gt=0.0)] = 1.5
    # atr: qty = equity * risk_per_trade / (ATR * atr_multiplier); ATR = mean true range of the
    # last `atr_period` execution bars (NautilusTrader's AverageTrueRange default).
    atr_period: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 14
    atr_multiplier: Annotated[float, msgspec.Meta(gt=0.0)] = 2.0

    def __post_init__(self) -> None:
        if self.kelly_lookback < self.kelly_min_trades:
            raise ValueError(
                f"kelly_lookback ({self.kelly_lookback}) < kelly_min_trades ({self.kelly_min_trades}): the estimate "
                "would never replace the priors; raise kelly_lookback"
            )


class StrategyRiskConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Per-strategy breakers on the strategy's own equity (its share of the starting balance plus
    its net PnL, marked at each bar close)."""

    max_drawdown_scale_pct: Pct | None = 0.10  # from this drawdown, sizes x drawdown_scale_factor
    drawdown_scale_factor: Pct = 0.5
    max_drawdown_halt_pct: Pct | None = 0.15  # halt for the rest of the run (live: until resumed)
    max_daily_loss_pct: Pct | None = 0.02  # loss since the UTC day's first close
    max_consecutive_losses: Annotated[int, msgspec.Meta(ge=1)] | None = 10
    rolling_drawdown_pct: Pct | None = None  # drawdown from the peak of the last rolling_hours
    rolling_hours: Annotated[float, msgspec.Meta(gt=0.0)] = 24.0
    cooldown_after_halt_hours: Annotated[float, msgspec.Meta(ge=0.0)] | None = 24.0  # None: auto-disable


class PortfolioRiskConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Account-wide breakers and entry checks."""

    max_portfolio_drawdown_pct: Pct | None = 0.20
    max_portfolio_daily_loss_pct: Pct | None = 0.05
    max_total_exposure_pct: Annotated[float, msgspec.Meta(gt=0.0, le=125.0)] | None = 0.50
    max_correlated_exposure_pct: Annotated[float, msgspec.Meta(gt=0.0, le=125.0)] | None = 0.30
    correlation_threshold: Annotated[float, msgspec.Meta(gt=0.0, le=1.0)] = 0.7
    correlation_bars: Annotated[int, msgspec.Meta(ge=10)] = 500  # execution-bar returns
    max_position_notional_pct: Annotated[float, msgspec.Meta(gt=0.0, le=125.0)] | None = None
    max_leverage: Multiple | None = None  # caps the venue leverage of the run
    rolling_drawdown_pct: Pct | None = None
    rolling_hours: Annotated[float, msgspec.Meta(gt=0.0)] = 24.0
    cooldown_after_halt_hours: Annotated[float, msgspec.Meta(ge=0.0)] | None = 24.0
    prefer_post_only: bool = False  # entries as post-only limits at the signal close (maker only)
    post_only_bars: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1  # then cancelled if unfilled


class RiskConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    strategy_level: StrategyRiskConfig = StrategyRiskConfig()
    portfolio_level: PortfolioRiskConfig = PortfolioRiskConfig()


SIZING_PRESETS: dict[str, SizingConfig] = {
    "fixed_fractional": SizingConfig(method="fixed_fractional"),  # the spec's example: docs/specs.md#position-sizing
    "kelly": SizingConfig(method="kelly"),
    "atr": SizingConfig(method="atr"),
}
RISK_PRESETS: dict[str, RiskConfig] = {
    "seed_default": RiskConfig(),  # docs/specs.md#risk-presets
    "live_safety": RiskConfig(  # docs/specs.md#live-safety-and-kill-switch: anything breached disables trading until resumed
        strategy_level=StrategyRiskConfig(
            max_drawdown_scale_pct=None,
            max_drawdown_halt_pct=None,
            max_daily_loss_pct=None,
            max_consecutive_losses=None,
            cooldown_after_halt_hours=None,
        ),
        portfolio_level=PortfolioRiskConfig(
            max_portfolio_drawdown_pct=None,
            max_portfolio_daily_loss_pct=0.02,
            max_total_exposure_pct=0.30,
            max_correlated_exposure_pct=None,
            max_position_notional_pct=0.10,
            max_leverage=3.0,
            rolling_drawdown_pct=0.05,
            rolling_hours=24.0,
            cooldown_after_halt_hours=None,
            prefer_post_only=True,
        ),
    ),
}
BUILTIN_NOTES = {
    "fixed_fractional": "risk 2% of equity to the stop, max position 10%, max leverage 20x",
    "kelly": "half Kelly from the strategy's own closed trades (priors W=0.5, R=1.5 for the first 20)",
    "atr": "risk 2% of equity over 2 x ATR(14)",
    "seed_default": "scale to 50% at 10% DD, halt at 15% DD, 2% daily loss, 10 losses; portfolio 20%/5%/50%/30%",
    "live_safety": "3x leverage, 10% per position, 30% total, 2% daily loss and 5% 24h drawdown disable, "
    "post-only entries",
}


def _convert(data, cls, where: str):
    try:
        return msgspec.convert(data, cls, strict=False)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        if "unknown field" in msg:
            fields = [f.name for f in msgspec.structs.fields(cls)]
            name = msg.split("`")[1] if "`" in msg else ""
            raise ConfigError(
                f"{where}: {msg}; known keys: {', '.join(fields)}." + did_you_mean(name, fields)
            ) from None
        raise ConfigError(f"{where}: {msg}") from None


def sizing_from_data(data: dict, where: str) -> SizingConfig:
    """File shape ``{method, config: {...}}`` (or flat keys) -> :class:`SizingConfig`.

    Raises
    ------
    ConfigError
        Unknown method or key (with did-you-mean), or a value out of range, naming `where`.
    """
    if not isinstance(data, dict) or "method" not in data:
        raise ConfigError(f"{where}: a sizing config needs `method:` ({', '.join(SIZING_METHODS)})")
    method = data["method"]
    if method not in SIZING_METHODS:
        raise ConfigError(f"{where}: method {method!r}: choose one of {', '.join(SIZING_METHODS)}."
                          + did_you_mean(str(method), SIZING_METHODS))  # fmt: skip
    extra = set(data) - {"method", "config", "name", "description"}
    body = dict(data.get("config") or {})
    for key in extra:  # flat form: keys beside `method`
        body[key] = data[key]
    return _convert({"method": method, **body}, SizingConfig, where)


def risk_from_data(data: dict, where: str) -> RiskConfig:
    """``{strategy_level: {...}, portfolio_level: {...}}`` -> :class:`RiskConfig`.

    Raises
    ------
    ConfigError
        Missing blocks, unknown keys, values out of range, naming `where` and the block.
    """
    if not isinstance(data, dict) or not ({"strategy_level", "portfolio_level"} & set(data)):
        raise ConfigError(f"{where}: a risk config needs a `strategy_level:` and/or `portfolio_level:` block")
    unknown = set(data) - {"strategy_level", "portfolio_level", "name", "description"}
    if unknown:
        raise ConfigError(f"{where}: unknown block(s) {sorted(unknown)}; use strategy_level and portfolio_level")
    return RiskConfig(
        strategy_level=_convert(data.get("strategy_level") or {}, StrategyRiskConfig, f"{where}: strategy_level"),
        portfolio_level=_convert(data.get("portfolio_level") or {}, PortfolioRiskConfig, f"{where}: portfolio_level"),
    )


def sizing_data(cfg: SizingConfig) -> dict:
    """File shape of a sizing config (what files and the ``sizing_configs`` table hold)."""
    body = msgspec.to_builtins(cfg)
    return {"method": body.pop("method"), "config": body}


def yaml_mapping(text: str, where: str) -> dict:
    """YAML `text` that must be a mapping (a config file's body); `where` names it in errors.

    Raises
    ------
    ConfigError
        Not valid YAML (with the line) or not a mapping at the top level.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping at the top level")
    return data


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    return yaml_mapping(text, str(path))


def _looks_like_file(text: str) -> bool:
    return text.endswith((".yaml", ".yml", ".json")) or "/" in text or Path(text).is_file()


# -- presets in the state database ---------------------------------------------------------------


def ensure_presets(state) -> None:
    """Insert the built-in presets that are missing (edited ones are left as they are)."""
    for name, cfg in SIZING_PRESETS.items():
        if not state.find("sizing_configs", name=name):
            state.insert("sizing_configs", {"name": name, "method": cfg.method, "config": sizing_data(cfg)["config"]})
    for name, cfg in RISK_PRESETS.items():
        if not state.find("risk_configs", name=name):
            state.insert("risk_configs", {"name": name, "strategy_level": msgspec.to_builtins(cfg.strategy_level),
                                          "portfolio_level": msgspec.to_builtins(cfg.portfolio_level)})  # fmt: skip


TABLES = {"sizing": "sizing_configs", "risk": "risk_configs"}


def preset_document(kind: str, row: dict) -> dict:
    """A stored preset row as the document a file holds (docs/specs.md#sizing-and-risk-files)."""
    if kind == "sizing":
        return {"method": row["method"], "config": row["config"]}
    return {"strategy_level": row["strategy_level"], "portfolio_level": row["portfolio_level"]}


def _resolve(kind: str, spec: str, state):
    parse = sizing_from_data if kind == "sizing" else risk_from_data
    if _looks_like_file(spec):
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"--{kind} {spec}: no such file")
        return parse(_read_yaml(path), str(path)), None
    ensure_presets(state)
    rows = state.find(TABLES[kind], name=spec)
    if not rows:
        names = [r["name"] for r in state.find(TABLES[kind])]
        raise UserError(f"--{kind} {spec}: no such preset; presets: {', '.join(names)} (or give a YAML file)."
                        + did_you_mean(spec, names))  # fmt: skip
    return parse(preset_document(kind, rows[0]), f"{kind} preset {spec}"), rows[0]["id"]


def resolve_sizing(spec: str, state) -> tuple[SizingConfig, int | None]:
    """``--sizing PRESET|FILE`` -> (config, sizing_configs id or None for a file).

    Raises
    ------
    ConfigError / UserError
        Unknown preset (with the list and a did-you-mean), unreadable or invalid file.
    """
    return _resolve("sizing", spec, state)


def resolve_risk(spec: str, state) -> tuple[RiskConfig, int | None]:
    """``--risk PRESET|FILE`` -> (config, risk_configs id or None for a file); raises as :func:`resolve_sizing`."""
    return _resolve("risk", spec, state)


def config_fields(sizing: str | None, risk: str | None, db_path: Path) -> dict:
    """``--sizing`` / ``--risk`` options -> the BacktestConfig fields (plain data; {} when neither)."""
    if sizing is None and risk is None:
        return {}
    from vibe_quant.state import StateManager

    out = {}
    with StateManager(db_path) as state:
        if sizing is not None:
            out["sizing"] = msgspec.to_builtins(resolve_sizing(sizing, state)[0])
        if risk is not None:
            out["risk"] = msgspec.to_builtins(resolve_risk(risk, state)[0])
    return out


def preset_ids(state, sizing: SizingConfig | None, risk: RiskConfig | None) -> dict:
    """``sizing_config_id`` / ``risk_config_id`` of the stored presets equal to a run's configs."""
    out = {}
    if sizing is not None or risk is not None:
        ensure_presets(state)
    if sizing is not None:
        body = sizing_data(sizing)["config"]
        for row in state.find("sizing_configs", method=sizing.method):
            if row["config"] == body:
                out["sizing_config_id"] = row["id"]
                break
    if risk is not None:
        levels = (msgspec.to_builtins(risk.strategy_level), msgspec.to_builtins(risk.portfolio_level))
        for row in state.find("risk_configs"):
            if (row["strategy_level"], row["portfolio_level"]) == levels:
                out["risk_config_id"] = row["id"]
                break
    return out


def save_preset(state, kind: str, name: str, path: Path) -> int:
    """Store (insert or replace) a preset from a YAML file; return its id.

    Raises
    ------
    ConfigError
        The file is not a valid config of that kind.
    """
    return save_preset_data(state, kind, name, _read_yaml(path), str(path))


def save_preset_data(state, kind: str, name: str, data: dict, where: str) -> int:
    """Store (insert or replace) a preset from its document (the shape a file holds); return its id.

    Parameters
    ----------
    kind : {"sizing", "risk"}
    name : str
        Preset name (what ``--sizing`` / ``--risk`` take).
    data : dict
        ``{method, config}`` for sizing, ``{strategy_level, portfolio_level}`` for risk.
    where : str
        What error messages name (a file, or "dashboard").

    Raises
    ------
    ConfigError
        An empty name, an unknown kind, or `data` is not a valid config of that kind.
    """
    if kind not in TABLES:
        raise ConfigError(f"preset kind {kind!r}: choose sizing or risk")
    if not name or name != name.strip():
        raise ConfigError(f"{where}: {kind} preset name {name!r}: give a name without leading or trailing spaces")
    if kind == "sizing":
        cfg = sizing_from_data(data, where)
        values = {"method": cfg.method, "config": sizing_data(cfg)["config"]}
    else:
        rcfg = risk_from_data(data, where)
        values = {"strategy_level": msgspec.to_builtins(rcfg.strategy_level),
                  "portfolio_level": msgspec.to_builtins(rcfg.portfolio_level)}  # fmt: skip
    table = TABLES[kind]
    ensure_presets(state)
    rows = state.find(table, name=name)
    if rows:
        state.update(table, rows[0]["id"], values)
        return rows[0]["id"]
    return state.insert(table, {"name": name, **values})


def list_presets(state, kind: str) -> list[dict]:
    """The stored presets of `kind` (``sizing`` or ``risk``), built-in ones included, by id."""
    ensure_presets(state)
    return state.find(TABLES[kind])


def delete_preset(state, kind: str, name: str) -> None:
    """Delete the preset `name` of `kind` (a built-in one comes back with its defaults on next use).

    Raises
    ------
    UserError
        No such preset, or a backtest run refers to it (save over it instead).
    """
    table = TABLES[kind]
    rows = state.find(table, name=name)
    if not rows:
        names = [r["name"] for r in state.find(table)]
        raise UserError(f"no {kind} preset {name!r}." + did_you_mean(name, names))
    used = state.count("backtest_runs", **{f"{table[:-1]}_id": rows[0]["id"]})
    if used:
        raise UserError(f"{kind} preset {name!r} is referenced by {used} backtest run(s); save over it instead")
    state.delete(table, rows[0]["id"])
