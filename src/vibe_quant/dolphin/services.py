"""DOLPHIN's services: the ACB processor, the watchdog and the MC assessor as plain loops (docs/specs.md#dolphin-services).

Each service is one process (started by ``vq dolphin services start`` through the job manager, or
run in the foreground with ``vq dolphin service run NAME``) that repeats a *cycle* every
``cycle_s`` seconds and writes what it computed to the feature store, plus its heartbeat
(``DOLPHIN_HEARTBEAT[name] = {"ts_ns", "pid"}``):

* ``acb``: the ACB's ``{"boost", "beta"}`` of the current UTC date, from the scan directory's
  ``acb_factors.parquet`` (1.0 and 0 on a date it lacks), into ``DOLPHIN_FEATURES["acb_boost"]``
  when it changes (a strategy listening applies it through its pending flag).
* ``mc``: the MC-Forewarner's status of the current date (the default assessor answers OK) into
  ``DOLPHIN_FEATURES["mc_status"] = {"date", "status", "catastrophic_probability", "envelope_score", "ts_ns"}``.
* ``watchdog``: the survival stack. Its readings: the store answers (Cat1), the heartbeat of the
  ``strategy`` service once it has beaten (Cat1), the MC status and its age in hours (Cat2), no
  order-book or DVOL feed (Cat3/Cat4 read 1.0), the strategy's drawdown from
  ``DOLPHIN_FEATURES["equity"] = {"equity", "peak"}`` (Cat5). It writes the assessment to
  ``DOLPHIN_SAFETY["latest"] = {"posture", "rm", "target", "level", "sensors", "ts_ns"}``.

The start order is the specification's: ACB processor, watchdog, MC assessor (the order-book stream
has no live source here and is not started); the strategy comes last.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from vibe_quant.dolphin.features import DolphinStore
from vibe_quant.dolphin.survival import Readings, SurvivalStack
from vibe_quant.errors import UserError

log = logging.getLogger(__name__)

SERVICES = ("acb", "watchdog", "mc")  # the specification's start order; the strategy starts last
NS_PER_S = 1_000_000_000


def utc_date(now_ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(now_ns / NS_PER_S, dt.UTC).date()


@dataclass
class AcbService:
    """Writes the current date's ACB boost and beta when they change."""

    scans: Path
    last: tuple[float, float] | None = None

    def cycle(self, store, now_ns: int) -> dict:
        from vibe_quant.dolphin.backtest import load_acb_schedule

        schedule, note = load_acb_schedule(self.scans)
        day = utc_date(now_ns)
        boost, beta = schedule.for_date(day)
        if (boost, beta) != self.last:
            store.write_acb(boost, beta)
            self.last = (boost, beta)
        return {"date": day.isoformat(), "boost": boost, "beta": beta, "note": note}


@dataclass
class McService:
    """Writes the current date's MC-Forewarner status (assessed once per date)."""

    assessor: object = None
    day: dt.date | None = None

    def cycle(self, store, now_ns: int) -> dict:
        from vibe_quant.dolphin import rules as R
        from vibe_quant.dolphin.engine_config import EngineConfig
        from vibe_quant.dolphin.providers import OkAssessor

        day = utc_date(now_ns)
        if day != self.day:
            assessor = self.assessor or OkAssessor()
            report = assessor.assess(msgspec.to_builtins(EngineConfig()), day)
            status = R.mc_status(report.catastrophic_probability, report.envelope_score)
            store.write_mc({"date": day.isoformat(), "status": status, "ts_ns": now_ns,
                            "catastrophic_probability": report.catastrophic_probability,
                            "envelope_score": report.envelope_score})  # fmt: skip
            self.day = day
        return store.read_mc() or {}


@dataclass
class WatchdogService:
    """Runs the survival stack on what the store holds and writes the posture."""

    stack: SurvivalStack = field(default_factory=SurvivalStack)
    last_ns: int | None = None

    def readings(self, store, now_ns: int) -> Readings:
        if not store.store.ping():  # an unreachable store is the reading (Cat1 = 0), not an error
            return Readings(store_nodes=0)
        age = store.heartbeat_age_s("strategy", now_ns)
        mc = store.read_mc() or {}
        equity = store.read_equity() or {}
        peak, value = equity.get("peak"), equity.get("equity")
        drawdown = max(0.0, 1.0 - value / peak) if peak and value is not None else 0.0
        staleness = (now_ns - mc["ts_ns"]) / NS_PER_S / 3600 if "ts_ns" in mc else 0.0
        return Readings(store_nodes=1, heartbeat_age_s=0.0 if age is None else age,
                        mc_status=mc.get("status", "OK"), staleness_h=staleness, drawdown=drawdown)  # fmt: skip

    def cycle(self, store, now_ns: int) -> dict:
        readings = self.readings(store, now_ns)
        dt_min = 0.0 if self.last_ns is None else (now_ns - self.last_ns) / NS_PER_S / 60
        self.last_ns = now_ns
        assessment = self.stack.step(readings, dt_min)
        doc = {**assessment.to_json(), "ts_ns": now_ns}
        if readings.store_nodes:
            store.write_posture(doc)
        return doc


def live_state(store: DolphinStore, now_ns: int) -> dict:
    """What the services last wrote: posture (with Rm and its sensors), ACB ``{boost, beta}``, the MC
    record, each service's heartbeat age in seconds (None: never beat), the strategy's daily results
    per side (``BLUE``/``GREEN``, sorted by date), its closed trades of the current UTC date and its
    equity and peak."""
    from vibe_quant.dolphin.features import PNL_MAPS

    acb = store.read_acb()
    results, trades = {}, {}
    for direction, map_name in PNL_MAPS.items():
        side = map_name.removeprefix("DOLPHIN_PNL_")
        days = sorted(store.store.keys(map_name))
        results[side] = [store.read_result(direction, d) for d in days]
        today = utc_date(now_ns)
        trades[side] = store.read_trades(direction, today)
    return {"posture": store.read_posture(), "acb": None if acb is None else {"boost": acb[0], "beta": acb[1]},
            "mc": store.read_mc(), "heartbeats": {n: store.heartbeat_age_s(n, now_ns) for n in (*SERVICES, "strategy")},
            "results": results, "trades": trades, "equity": store.read_equity()}  # fmt: skip


def make_service(name: str, scans: Path | None = None):
    """The service called `name`.

    Raises
    ------
    UserError
        An unknown name, or ``acb`` without a scan directory.
    """
    if name == "acb":
        if scans is None:
            raise UserError("the acb service reads <scans>/acb_factors.parquet: give --scans DIR")
        return AcbService(Path(scans))
    if name == "mc":
        return McService()
    if name == "watchdog":
        return WatchdogService()
    raise UserError(f"unknown DOLPHIN service {name!r}: choose one of {', '.join(SERVICES)}")


def run_service(name: str, service, store: DolphinStore, cycle_s: float, cycles: int | None = None,
                clock: Callable[[], int] = time.time_ns, sleep: Callable[[float], None] = time.sleep,
                on_cycle: Callable[[dict], None] | None = None) -> int:  # fmt: skip
    """Repeat `service`'s cycle every `cycle_s` seconds (`cycles` times, or until interrupted), beating
    each cycle into `store` (a :class:`~vibe_quant.dolphin.features.DolphinStore`); return the cycles run."""
    done = 0
    while cycles is None or done < cycles:
        now = clock()
        out = service.cycle(store, now)
        store.beat(name, now)
        done += 1
        if on_cycle is not None:
            on_cycle(out)
        if cycles is not None and done >= cycles:
            break
        sleep(cycle_s)
    return done
