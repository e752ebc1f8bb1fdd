"""The ``rl`` strategy kind: a trained policy (or a recorded sequence of its levels) as a strategy.

A run names it ``rl:MODEL`` (a model id of the registry, a unique prefix of one, or a model
directory); its document holds the :class:`~vibe_quant.rl.strategy.PolicyStrategyConfig` fields
(policy, source, action space, levels, fraction, window, ready). It runs in ``vq backtest run``,
screening's NautilusTrader path and paper/live like every strategy; the kernel runs it through
``vibe_quant.sim.policy`` (the environment and the fast evaluation).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from vibe_quant.errors import ConfigError, did_you_mean
from vibe_quant.strategy.grid import Expansion
from vibe_quant.strategy.registry import LegSpec, Parameter, StrategyRef, StrategySpec, per_leg

PREFIX = "rl:"
FIELDS = ("name", "policy", "source", "action_space", "levels", "fraction", "window", "ready")


@dataclass(frozen=True)
class BoundPolicy:
    spec: StrategySpec
    values: dict
    precomputed: bool = False
    has_stop_loss: bool | None = False
    lookback_bars: int | None = None

    def config(self, leg: LegSpec, order_id_tag: str = "001"):
        from vibe_quant.rl.strategy import PolicyStrategyConfig

        data = {
            **self.values,
            "instrument_id": leg.instrument_id,
            "bar_type": leg.bar_type,
            "order_id_tag": order_id_tag,
        }
        try:
            return msgspec.convert(data, PolicyStrategyConfig, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"strategy {self.spec.name!r}: {exc}") from exc

    def code(self) -> list[bytes]:
        import importlib

        out = [inspect.getsource(importlib.import_module(f"vibe_quant.rl.{m}")).encode()
               for m in ("actions", "features", "strategy")]  # fmt: skip
        source = Path(self.values.get("source", ""))
        for f in (source / "model.zip",) if source.is_dir() else (source,):
            if f.is_file():
                out.append(f.read_bytes())  # the model (or the levels) determine the behaviour
        return out

    def build(self, legs: Sequence[LegSpec], ports) -> list:
        from vibe_quant.rl.strategy import PolicyStrategy

        return per_leg(lambda leg, tag: PolicyStrategy(self.config(leg, tag), ports), legs)

    def importable(self, legs: Sequence[LegSpec]) -> list:
        from nautilus_trader.config import ImportableStrategyConfig

        return [
            ImportableStrategyConfig(strategy_path="vibe_quant.rl.strategy:PolicyStrategy",
                                     config_path="vibe_quant.rl.strategy:PolicyStrategyConfig",
                                     config=msgspec.to_builtins(self.config(leg, f"{i + 1:03d}")))
            for i, leg in enumerate(legs)
        ]  # fmt: skip


class PolicyKind:
    name = "rl"

    def find(self, text: str, db_path: Path | None) -> StrategyRef | None:
        if not text.startswith(PREFIX):
            return None
        from vibe_quant.rl.service import policy_document

        return StrategyRef("rl", text, policy_document(text[len(PREFIX) :], db_path))

    def names(self, db_path: Path | None) -> list[str]:
        return ["rl:MODEL"]

    def bind(self, spec: StrategySpec) -> BoundPolicy:
        """Check the policy's fields (document, then parameters).

        Raises
        ------
        ConfigError
            Unknown field (with a did-you-mean), a missing source, an impossible value.
        """
        from vibe_quant.rl.strategy import PolicyStrategy

        values = {**(spec.document or {}), **spec.params}
        for key in values:
            if key not in FIELDS:
                raise ConfigError(f"{spec.name}: no policy field {key!r}; fields: {', '.join(FIELDS)}."
                                  + did_you_mean(key, FIELDS))  # fmt: skip
        if not values.get("source") or not Path(values["source"]).exists():
            raise ConfigError(f"{spec.name}: policy source {values.get('source')!r} does not exist "
                              "(a model directory with model.zip, or an .npy of levels)")  # fmt: skip
        bound = BoundPolicy(spec, values)
        PolicyStrategy.check(bound.config(LegSpec("X", "X-PERP.BINANCE", "X-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")))
        return bound

    def expand(self, spec: StrategySpec, overrides: Mapping[str, list], constraints: list[str]) -> Expansion:
        raise ConfigError(f"{spec.name}: a trained policy has no parameters to sweep; train several (vq rl train)")

    def parameters(self, ref: StrategyRef) -> dict[str, Parameter]:
        return {}


RL = PolicyKind()
