"""The overfitting pipeline's configuration: the ``overfitting:`` YAML block of docs/specs.md#overfitting-filters, extended
with CPCV, PBO and the screening-to-validation consistency check (each default and its source: docs/specs.md#overfitting-filters).

Filters run in the order given (``--filters dsr,wfa,pkfold``); a candidate eliminated by one is
not tested by the next. Without ``--filters`` the enabled ones run in :data:`ORDER`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec
import yaml

from vibe_quant.errors import ConfigError, did_you_mean

Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True


class DeflatedSharpe(_Section):
    confidence_threshold: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] = 0.95  # DSR must exceed it


class WalkForward(_Section):
    train_window_days: Positive = 270
    test_window_days: Positive = 90
    step_days: Positive = 30
    min_windows: Positive = 8
    min_efficiency: float = 0.5  # mean OOS / mean IS annualised return, strictly above
    min_profitable_windows_pct: Fraction = 0.5  # share of profitable OOS windows, strictly above


class PurgedKFold(_Section):
    n_splits: Annotated[int, msgspec.Meta(ge=2)] = 5
    purge_bars: int | Literal["auto"] = "auto"  # auto: the strategy's longest indicator lookback
    embargo_bars: Annotated[int, msgspec.Meta(ge=0)] = 0
    min_mean_sharpe: float = 0.5  # annualised OOS Sharpe, mean over folds strictly above
    max_sharpe_std: Annotated[float, msgspec.Meta(gt=0)] = 1.0  # across folds, strictly below


class CPCV(_Section):
    enabled: bool = False
    n_groups: Annotated[int, msgspec.Meta(ge=3)] = 6
    n_test_groups: Positive = 2
    min_mean_sharpe: float = 0.5  # annualised Sharpe of the selected trials' paths
    max_sharpe_std: Annotated[float, msgspec.Meta(gt=0)] = 1.0


class PBO(_Section):
    enabled: bool = False
    n_splits: Annotated[int, msgspec.Meta(ge=2)] = 16
    # The sweep passes when PBO is strictly below. Not 0.5: a family of pure-noise trials has an
    # expected PBO of 0.5 and a sample spread of ~0.2, so half of them would pass a 0.5 bar.
    max_pbo: Fraction = 0.2


class Consistency(_Section):
    enabled: bool = False
    max_degradation: Fraction = 0.5  # validation Sharpe below (1 - this) x screening Sharpe: flagged


class OverfittingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    deflated_sharpe: DeflatedSharpe = DeflatedSharpe()
    walk_forward: WalkForward = WalkForward()
    purged_kfold: PurgedKFold = PurgedKFold()
    cpcv: CPCV = CPCV()
    pbo: PBO = PBO()
    consistency: Consistency = Consistency()

    def __post_init__(self) -> None:
        if self.cpcv.n_test_groups >= self.cpcv.n_groups:
            raise ConfigError(
                f"overfitting.cpcv.n_test_groups ({self.cpcv.n_test_groups}) must be below n_groups ({self.cpcv.n_groups})"
            )
        if self.pbo.n_splits % 2:
            raise ConfigError(
                f"overfitting.pbo.n_splits must be even (half the blocks in sample), got {self.pbo.n_splits}"
            )
        if self.purged_kfold.purge_bars != "auto" and self.purged_kfold.purge_bars < 0:
            raise ConfigError(
                f"overfitting.purged_kfold.purge_bars must be >= 0 or 'auto', got {self.purged_kfold.purge_bars}"
            )

    def enabled(self) -> list[str]:
        return [name for name in ORDER if getattr(self, SECTIONS[name]).enabled]


# Filter name (CLI) -> config section, in the default order (docs/specs.md#overfitting-filters: DSR, WFA, purged K-fold).
SECTIONS = {"dsr": "deflated_sharpe", "wfa": "walk_forward", "pkfold": "purged_kfold", "cpcv": "cpcv", "pbo": "pbo"}
ORDER = tuple(SECTIONS)


def load_config(path: str | Path | None, db_path: Path | None = None) -> OverfittingConfig:
    """Read an ``overfitting:`` block (or a file holding only its contents); None gives the defaults
    (those saved in the state database at `db_path` on the dashboard's Settings page, else the built-in ones).

    Raises
    ------
    ConfigError
        Unreadable YAML, an unknown key or a value out of range (naming the file and the field).
    """
    if path is None:
        if db_path is not None and Path(db_path).exists():
            from vibe_quant.state import StateManager

            with StateManager(db_path) as state:
                return stored_defaults(state)
        return OverfittingConfig()
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such overfitting config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping with an `overfitting:` block")
    if "overfitting" in doc:
        doc = doc["overfitting"] or {}
    sections = OverfittingConfig.__struct_fields__  # the filters' sections and `consistency`
    unknown = set(doc) - set(sections)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            f"{path}: unknown section overfitting.{key}; sections: {', '.join(sections)}." + did_you_mean(key, sections)
        )
    try:
        return msgspec.convert(doc, OverfittingConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {str(exc).replace('`$.', '`overfitting.')}") from None


def select_filters(config: OverfittingConfig, filters: str | None) -> list[str]:
    """The filters to run, in order: `filters` (comma-separated names) or the config's enabled ones.

    Raises
    ------
    ConfigError
        An unknown or repeated filter name, or none at all.
    """
    if filters is None:
        chosen = config.enabled()
    else:
        chosen = [f.strip().lower() for f in filters.split(",") if f.strip()]
        for name in chosen:
            if name not in SECTIONS:
                raise ConfigError(
                    f"--filters: unknown filter {name!r}; choose from {', '.join(ORDER)}." + did_you_mean(name, ORDER)
                )
        if len(set(chosen)) != len(chosen):
            raise ConfigError(f"--filters names a filter twice: {filters}")
    if not chosen:
        raise ConfigError(f"no filter enabled: pass --filters (from {', '.join(ORDER)}) or enable one in the config")
    return chosen


# -- defaults kept as a setting (the dashboard's Settings page) -----------------------------------

SETTING = "overfitting.defaults"


def stored_defaults(state) -> OverfittingConfig:
    """The overfitting defaults saved in the state database (the built-in ones when none were saved).

    Raises
    ------
    ConfigError
        The stored value no longer fits :class:`OverfittingConfig` (e.g. saved by a newer version).
    """
    from vibe_quant.state.settings import get_setting

    data = get_setting(state, SETTING)
    if data is None:
        return OverfittingConfig()
    try:
        return msgspec.convert(data, OverfittingConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"setting {SETTING}: {str(exc).replace('`$.', '`overfitting.')}") from None


def save_defaults(state, data: dict) -> OverfittingConfig:
    """Check `data` (an ``overfitting:`` block) and store it as the defaults; return the config.

    Raises
    ------
    ConfigError
        An unknown section or key, a value out of range, or a cross-field rule broken (naming the field).
    """
    from vibe_quant.state.settings import set_setting

    sections = OverfittingConfig.__struct_fields__  # the filters' sections and `consistency`
    unknown = set(data) - set(sections)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"unknown section overfitting.{key}; sections: {', '.join(sections)}."
                          + did_you_mean(key, sections))  # fmt: skip
    try:
        cfg = msgspec.convert(data, OverfittingConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(str(exc).replace("`$.", "`overfitting.")) from None
    set_setting(state, SETTING, msgspec.to_builtins(cfg))
    return cfg


def reset_defaults(state) -> bool:
    """Forget the stored defaults (the built-in ones apply again); return whether any were stored."""
    from vibe_quant.state.settings import delete_setting

    return delete_setting(state, SETTING)
