"""Discovery runs end to end: create, search (resumable), judge, report, export (what ``vq discover`` and the
dashboard's Discovery page call)."""

from __future__ import annotations

import datetime as dt
import json
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from vibe_quant.backtest.persist import Heartbeat, clean, now_iso
from vibe_quant.discovery.config import DiscoveryConfig
from vibe_quant.discovery.guards import judge
from vibe_quant.discovery.search import SearchSummary, Workers, create_discovery, load_discovery, run_search
from vibe_quant.errors import UserError
from vibe_quant.home import Home
from vibe_quant.staging import write_atomic
from vibe_quant.state import StateManager


@dataclass
class DiscoveryResult:
    run_id: int
    search: SearchSummary
    summary: dict  # the guard rails' run summary
    finalists: list[dict]  # discovery_finalists rows joined with their genome rows
    report: Path  # runs/discovery-<id>/report.md (and summary.json beside it)


def start(home: Home, config: DiscoveryConfig, specs) -> int:
    """Check the market exists in the catalog (`specs`: the instrument specs), then insert a pending run; return its id.

    Raises
    ------
    UserError
        Bars missing for a symbol, timeframe or day of the period (with the fix).
    """
    from vibe_quant.data.catalog import bar_days, require_bars

    home.require_catalog()
    ids = [specs.get(s).nautilus_id for s in config.symbols]
    require_bars(home.catalog, ids, config.timeframe, config.start, config.end)  # workers would fail on every genome
    for symbol, iid in zip(config.symbols, ids, strict=True):
        first, last = bar_days(home.catalog, iid, config.timeframe)
        if first > config.start or last < config.end:  # a training or held-out period without bars judges nothing
            raise UserError(f"{symbol} {config.timeframe} bars cover {first}..{last}, not the whole period "
                            f"{config.start}..{config.end}: give --start/--end inside it, or ingest the missing days "
                            f"(vq data ingest --symbols {symbol} --start {config.start} --end {config.end})")  # fmt: skip
    with StateManager(home.db_path) as state:
        return create_discovery(state, config)


def run(home: Home, run_id: int, workers: int = 2, executor: str = "process", specs_path: str | None = None,
        address: str | None = None, on_progress: Callable[[str, int, int], None] | None = None,
        on_generation: Callable[[dict], None] | None = None) -> DiscoveryResult:  # fmt: skip
    """Run (or resume) discovery run `run_id`: the search, then the guard rails (on the same workers), then the report."""
    config, _ = get_run(home, run_id)
    with Workers(home, config, workers, executor, specs_path, address) as pool:
        search = run_search(home, run_id, pool, on_progress=on_progress, on_generation=on_generation)
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # a job killed while judging: cancelled, not lost
        try:
            with Heartbeat(home.db_path, run_id, table="discovery_runs"):  # judging a big run takes minutes: stay live
                summary = judge(home, run_id, pool, on_progress=on_progress)
        except KeyboardInterrupt:
            with StateManager(home.db_path) as state:
                state.update("discovery_runs", run_id, {"status": "cancelled", "completed_at": now_iso()})
            raise
        except Exception as exc:
            with StateManager(home.db_path) as state:
                state.update("discovery_runs", run_id, {"status": "failed", "completed_at": now_iso(),
                                                        "error_message": f"guard rails: {exc}"[:2000]})  # fmt: skip
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
    with StateManager(home.db_path) as state:
        state.update(
            "discovery_runs", run_id, {"status": "completed", "completed_at": now_iso(), "error_message": None}
        )
    rows = finalist_rows(home, run_id)
    report = write_report(home, run_id, search, summary, rows)
    return DiscoveryResult(run_id, search, summary, rows, report)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def finalist_rows(home: Home, run_id: int) -> list[dict]:
    """The run's finalists (rank order), each with its genome row (training metrics, document) under ``genome``."""
    with StateManager(home.db_path) as state:
        return [dict(f, genome=state.find("discovery_genomes", run_id=run_id, role="search", genome_key=f["genome_key"])[0])
                for f in state.find("discovery_finalists", order_by="rank", run_id=run_id)]  # fmt: skip


def generations(home: Home, run_id: int) -> list[dict]:
    with StateManager(home.db_path) as state:
        return state.find("discovery_generations", order_by="generation", run_id=run_id)


def list_runs(home: Home) -> list[dict]:
    with StateManager(home.db_path) as state:
        return list(reversed(state.find("discovery_runs")))


def get_run(home: Home, run_id: int) -> tuple[DiscoveryConfig, dict]:
    with StateManager(home.db_path) as state:
        return load_discovery(state, run_id)


def write_report(home: Home, run_id: int, search: SearchSummary, summary: dict, rows: list[dict]) -> Path:
    """``runs/discovery-<id>/summary.json`` and ``report.md``; return the markdown's path."""
    config, row = get_run(home, run_id)
    out = home.runs / f"discovery-{run_id}"
    out.mkdir(parents=True, exist_ok=True)
    gens = generations(home, run_id)
    doc = {
        "run_id": run_id, "config": json.loads(json.dumps(row["config"])), "evaluated": row["evaluated"],
        "cache_hits": row["cache_hits"], "elapsed_s": search.elapsed_s, "summary": summary,
        "generations": [{"generation": g["generation"], **g["stats"], "front": len(g["front"])} for g in gens],
        "finalists": [{"rank": f["rank"], "genome_key": f["genome_key"], "description": f["genome"]["description"],
                       "passed": bool(f["passed"]), "reasons": f["reasons"], "train_metrics": f["genome"]["metrics"],
                       "holdout_metrics": f["holdout_metrics"], "checks": f["checks"], "document": f["genome"]["document"]}
                      for f in rows],
    }  # fmt: skip
    write_atomic(out / "summary.json", json.dumps(doc, indent=2, default=clean) + "\n")
    write_atomic(out / "report.md", markdown(config, doc))
    return out / "report.md"


def _f(v, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


def markdown(config: DiscoveryConfig, doc: dict) -> str:
    s = doc["summary"]
    lines = [
        f"# Discovery run {doc['run_id']}", "",
        f"{', '.join(config.symbols)} {config.timeframe}; training {s['train'][0]}..{s['train'][1]}, held out "
        f"{s['holdout'][0]}..{s['holdout'][1]} (never seen by the search).",
        f"Population {config.population}, {config.generations} generations, seed {config.seed}; {doc['evaluated']} genomes "
        f"evaluated (the DSR's trials), {doc['cache_hits']} evaluations answered by the cache.", "",
        f"**{s['verdict']}.**", "",
    ]  # fmt: skip
    if "pbo" in s:
        pbo = s["pbo"]
        lines.append(f"PBO over every genome: {_f(pbo['figures'].get('pbo'))} "
                     f"({'passed' if pbo['passed'] else 'failed: ' + str(pbo['reason'])})")  # fmt: skip
    if s.get("random_holdout_median_sharpe") is not None:
        lines.append(f"Held-out Sharpe, median: finalists {_f(s['finalists_holdout_median_sharpe'])} vs random genomes of the "
                     f"same complexity {_f(s['random_holdout_median_sharpe'])} "
                     f"({'finalists ahead' if s['beats_random'] else 'finalists NOT ahead'}).")  # fmt: skip
    lines += ["", "## Generations", "", "| gen | feasible | front | best Sharpe | mean Sharpe | evaluated | cache hits |",
              "|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for g in doc["generations"]:
        sh = g.get("sharpe") or {}
        lines.append(f"| {g['generation']} | {g['feasible']} | {g['front']} | {_f(sh.get('best'))} | {_f(sh.get('mean'))} | "
                     f"{g['evaluated']} | {g['cache_hits']} |")  # fmt: skip
    lines += ["", "## Finalists", ""]
    for f in doc["finalists"]:
        tm, hm = f["train_metrics"] or {}, f["holdout_metrics"] or {}
        lines += [f"### {f['rank']}. {f['genome_key']}: {'PASSED' if f['passed'] else 'rejected'}", "",
                  f"`{f['description']}`", "",
                  f"training: Sharpe {_f(tm.get('sharpe_ratio'))}, return {_f(tm.get('total_return'), '.2%')}, max drawdown "
                  f"{_f(tm.get('max_drawdown'), '.2%')}, profit factor {_f(tm.get('profit_factor'))}, {tm.get('total_trades')} trades",
                  f"held out: Sharpe {_f(hm.get('sharpe_ratio'))}, return {_f(hm.get('total_return'), '.2%')}, "
                  f"{hm.get('total_trades')} trades", ""]  # fmt: skip
        for name, c in f["checks"].items():
            lines.append(f"- {name}: {'pass' if c['passed'] else 'FAIL: ' + str(c['reason'])}")
        lines.append("")
    return "\n".join(lines) + "\n"


def export(home: Home, run_id: int, out_dir: Path, include_rejected: bool = False) -> list[Path]:
    """Write the run's finalists as standard DSL YAML files (`include_rejected`: those the guard rails rejected
    too); each file's header says how to reproduce its stored training metrics with ``vq backtest run``.

    Raises
    ------
    UserError
        The run has no finalists (not finished, or nothing feasible).
    """
    config, row = get_run(home, run_id)
    rows = finalist_rows(home, run_id)
    if row["status"] != "completed":
        raise UserError(
            f"discovery run {run_id} is {row['status']}: finish it first (vq discover run --resume {run_id})"
        )
    chosen = [f for f in rows if f["passed"] or include_rejected]
    if not chosen:
        raise UserError(f"discovery run {run_id}: no finalist passed the guard rails (of {len(rows)}); "
                        "add --all to export the rejected finalists for review")  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in chosen:
        document = f["genome"]["document"]
        path = out_dir / f"{document['name']}.yaml"
        tm = f["genome"]["metrics"] or {}
        header = [
            f"# Discovered by vibe-quant discovery run {run_id} (finalist {f['rank']}, "
            f"{'passed every guard rail' if f['passed'] else 'REJECTED: ' + '; '.join(f['reasons'])}).",
            f"# Training {config.start}..{config.train_end}: Sharpe {_f(tm.get('sharpe_ratio'), '.4f')}, "
            f"net PnL {_f(tm.get('net_pnl'))}, {tm.get('total_trades')} trades.",
            "# Reproduce: vq backtest run --strategy " + path.name + " " + reproduce_args(config),
            "",
        ]  # fmt: skip
        write_atomic(path, "\n".join(header) + yaml.safe_dump(document, sort_keys=False))
        paths.append(path)
    return paths


def reproduce_args(config: DiscoveryConfig, start: dt.date | None = None, end: dt.date | None = None) -> str:
    """The ``vq backtest run`` options giving an evaluation's venue and period (the training period by default)."""
    return (f"--symbols {','.join(config.symbols)} --timeframe {config.timeframe} --start {start or config.start} "
            f"--end {end or config.train_end} --mode {config.mode} --leverage {config.leverage:g} "
            f"--balance {config.starting_balance:g}")  # fmt: skip
