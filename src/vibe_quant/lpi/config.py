"""The configuration of an LPI strategy: signal parameters, decision rules, sizing, execution.

One frozen NautilusTrader ``StrategyConfig`` carries everything (``docs/specs.md#lpi-strategies``):
the fields of :class:`~vibe_quant.lpi.params.LpiParams` (the signal, same names and defaults) and
the decision parameters of both variants. :meth:`LpiStrategyConfig.check` rejects impossible
values before any engine starts.
"""

from __future__ import annotations

import dataclasses
import math

from nautilus_trader.config import StrategyConfig

from vibe_quant.errors import ConfigError
from vibe_quant.lpi.params import LpiParams

VARIANTS = ("cascade", "reversion")
SIGNAL_FIELDS = tuple(f.name for f in dataclasses.fields(LpiParams))


class LpiStrategyConfig(StrategyConfig, frozen=True, kw_only=True):
    """An LPI strategy on one instrument (``docs/specs.md#lpi-strategies``).

    Parameters
    ----------
    instrument_id, bar_type : str
        The instrument (NautilusTrader id) and the run's bar type (bars aggregated from its trade
        ticks; the strategy subscribes to them only so a node's account sees closes).
    ports : str or None, default None
        ``module:function`` building the ports when started without any (paper/live nodes).
    clock ... quotes_free
        The signal: every field of :class:`~vibe_quant.lpi.params.LpiParams`, same defaults.
    depth_pct : float, default 1.0
        Which ``bookDepth`` band (± percent) is the depth proxy.
    variant : {"cascade", "reversion"}, default "cascade"
        A: trade with the cascade; B: fade it once exhausted.
    theta_lpi : float, default 3.0
        Entry needs ``|LPI_fast| >= theta_lpi``.
    theta_exh_low : float, default 0.0
        A enters only while ``EXH <= theta_exh_low`` (pressure not exhausted).
    theta_exh_high : float, default 1.5
        B enters only once ``EXH >= theta_exh_high`` (exhaustion).
    exh_exit : float, default 1.0
        A exits when EXH rises above it (>= theta_exh_low).
    use_lev : bool, default False
        B's crowdedness filter ``LEV >= theta_lev``; an unknown LEV (no open interest) fails it.
    theta_lev : float, default 1.0
        Threshold of the filter.
    hold_ms : int, default 30_000
        A's time stop, from the entry decision.
    exit_lpi : float, default 0.5
        B exits once ``|LPI_fast| <= exit_lpi`` (normalised).
    reaccel_lpi : float, default 5.0
        B's hard stop: LPI of the prior pressure's sign with ``|LPI_fast| >= reaccel_lpi``.
    max_spread_bps : float, default 10.0
        Entry gate (and A's spread exit): spread over mid, in bps.
    max_quote_age_ms : int, default 5_000
        Entry gate: the touch at the bucket close is at most this old (quotes-free: the last trade).
    kappa, mu, lambda_jump : float, default 0.5, 0.0005, 0.0001
        Sizing ``N = min(n_max, E kappa mu / (sigma^2 + lambda_jump))``.
    n_max : float, default 100_000.0
        Largest target notional (USD).
    max_leverage : float, default 2.0
        Gross leverage cap: ``N <= max_leverage E``.
    kill_spread_bps : float, default 50.0
        Kill switch when the spread exceeds it (bps).
    kill_depth_frac : float, default 0.2
        Kill switch when the depth proxy falls below this fraction of its rolling median.
    kill_cooldown_ms : int, default 60_000
        No entries this long after a kill.
    maker_only : bool, default False
        Post-only entries for A too, and a post-only normalisation exit for B.
    tranches : int, default 3
        Post-only entries split the target into this many tranches, posted one after another.
    improve_ticks : int, default 0
        Post buys at bid + k ticks and sells at ask - k ticks, never crossing.
    entry_ttl_ms : int, default 2_000
        A post-only order unfilled this long is cancelled and reposted at the touch.
    markout_ms : tuple of int, default (1000, 5000, 30000)
        Markout horizons of every fill (ascending).
    markout_guard_bps : float or None, default 10.0
        B: exit and stop adding when the mean first-horizon markout of the position's entry fills
        is below ``-markout_guard_bps``; None disables the guard.
    """

    instrument_id: str
    bar_type: str
    ports: str | None = None
    # the signal (LpiParams)
    clock: str = "volume"
    bucket_notional: float = 1_000_000.0
    bucket_ns: int = 1_000_000_000
    eta: float = 0.0005
    window: int = 300
    min_periods: int = 30
    zscore: str = "mad"
    lambda_ld: float = 1.0
    lambda_f: float = 1.0
    lambda_liq: float = 1.0
    lambda_spr: float = 1.0
    ld_variant: str = "spread_mid"
    exh_variant: str = "spread"
    depth_eps: float = 1e-9
    rv_window: int = 60
    lev_window: int = 288
    quotes_free: bool = False
    depth_pct: float = 1.0
    # decisions
    variant: str = "cascade"
    theta_lpi: float = 3.0
    theta_exh_low: float = 0.0
    theta_exh_high: float = 1.5
    exh_exit: float = 1.0
    use_lev: bool = False
    theta_lev: float = 1.0
    hold_ms: int = 30_000
    exit_lpi: float = 0.5
    reaccel_lpi: float = 5.0
    max_spread_bps: float = 10.0
    max_quote_age_ms: int = 5_000
    # sizing
    kappa: float = 0.5
    mu: float = 0.0005
    lambda_jump: float = 0.0001
    n_max: float = 100_000.0
    max_leverage: float = 2.0
    # kill switch
    kill_spread_bps: float = 50.0
    kill_depth_frac: float = 0.2
    kill_cooldown_ms: int = 60_000
    # execution
    maker_only: bool = False
    tranches: int = 3
    improve_ticks: int = 0
    entry_ttl_ms: int = 2_000
    markout_ms: tuple[int, ...] = (1000, 5000, 30000)
    markout_guard_bps: float | None = 10.0

    def lpi_params(self) -> LpiParams:
        """The signal parameters (checked by :class:`LpiParams`)."""
        return LpiParams(**{name: getattr(self, name) for name in SIGNAL_FIELDS})

    def check(self) -> None:
        """Reject impossible parameters.

        Raises
        ------
        ConfigError
            A value is out of range or two values contradict each other; the message names the
            field, shows the value and says the fix.
        """
        self.lpi_params()
        if self.variant not in VARIANTS:
            raise ConfigError(f"lpi.variant: {self.variant!r} is not one of {', '.join(VARIANTS)}")
        finite = ("theta_lpi", "theta_exh_low", "theta_exh_high", "exh_exit", "theta_lev", "exit_lpi", "reaccel_lpi")
        for name in finite:
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"lpi.{name}: {getattr(self, name)!r} must be a finite number")
        positive = ("theta_lpi", "hold_ms", "max_spread_bps", "max_quote_age_ms", "kappa", "mu", "n_max",
                    "max_leverage", "kill_spread_bps", "tranches", "entry_ttl_ms", "depth_pct")  # fmt: skip
        for name in positive:
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"lpi.{name}: {value!r} must be > 0")
        for name in ("lambda_jump", "kill_cooldown_ms", "improve_ticks"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"lpi.{name}: {getattr(self, name)!r} must be >= 0")
        if not self.kappa <= 1:
            raise ConfigError(f"lpi.kappa: {self.kappa!r} must be in (0, 1] (a risk scaler)")
        if not 0 <= self.kill_depth_frac < 1:
            raise ConfigError(f"lpi.kill_depth_frac: {self.kill_depth_frac!r} must be in [0, 1) (0 disables it)")
        if not 0 <= self.exit_lpi < self.theta_lpi:
            raise ConfigError(f"lpi.exit_lpi: {self.exit_lpi!r} must be in [0, theta_lpi={self.theta_lpi!r}): "
                              "a position entered at theta_lpi would exit at once")  # fmt: skip
        if not self.reaccel_lpi > self.theta_lpi:
            raise ConfigError(f"lpi.reaccel_lpi: {self.reaccel_lpi!r} must exceed theta_lpi={self.theta_lpi!r}: "
                              "the entry bucket itself would trigger the hard stop")  # fmt: skip
        if not self.exh_exit >= self.theta_exh_low:
            raise ConfigError(f"lpi.exh_exit: {self.exh_exit!r} must be >= theta_exh_low={self.theta_exh_low!r} "
                              "(the exit is EXH crossing above it after an entry at or below theta_exh_low)")  # fmt: skip
        if not self.kill_spread_bps >= self.max_spread_bps:
            raise ConfigError(f"lpi.kill_spread_bps: {self.kill_spread_bps!r} is below max_spread_bps="
                              f"{self.max_spread_bps!r}: raise it (the kill switch is the wider limit)")  # fmt: skip
        horizons = tuple(self.markout_ms)
        if not horizons or any(h <= 0 for h in horizons) or list(horizons) != sorted(set(horizons)):
            raise ConfigError(f"lpi.markout_ms: {horizons!r} must be positive horizons in ascending order, "
                              "e.g. (1000, 5000, 30000)")  # fmt: skip
        if self.markout_guard_bps is not None and not self.markout_guard_bps >= 0:
            raise ConfigError(f"lpi.markout_guard_bps: {self.markout_guard_bps!r} must be >= 0 (None disables it)")
