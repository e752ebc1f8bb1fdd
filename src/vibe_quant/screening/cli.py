"""``vq screen`` / ``python -m vibe_quant.screening``: parameter sweeps with a Pareto front."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vibe_quant.cli import common_options, get_home, state
from vibe_quant.errors import UserError
from vibe_quant.risk.cli import RiskOption, SizingOption

screen_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                         help="Screen a DSL strategy's parameter grid in parallel; Pareto front in SQLite.")  # fmt: skip
screen_app.callback()(common_options)
out = Console(soft_wrap=True)


def parse_axes(items: list[str]) -> dict[str, list]:
    """``['rsi.period=7,14,21']`` -> ``{'rsi.period': [7, 14, 21]}`` (JSON values, else text)."""
    axes = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise UserError(f"--sweep {item!r}: write KEY=V1,V2,..., e.g. --sweep rsi.period=7,14,21")
        parsed = []
        for text in values.split(","):
            try:
                parsed.append(json.loads(text))
            except json.JSONDecodeError:
                parsed.append(text.strip())
        axes[key.strip()] = parsed
    return axes


def resolve_dsl(strategy: str, home) -> tuple[dict, str]:
    """A strategy file, else a strategy saved in the state database (latest version), else a shipped one."""
    from vibe_quant.dsl.loader import dsl_document
    from vibe_quant.state import StateManager

    looks_like_file = strategy.endswith((".yaml", ".yml")) or os.sep in strategy
    if not looks_like_file and home.db_path.exists():
        with StateManager(home.db_path) as db:
            rows = db.find("strategies", name=strategy, strategy_type="dsl")
        if rows:
            return rows[0]["dsl_config"], strategy
    dsl, name = dsl_document(strategy)
    if dsl is None:
        raise UserError(
            f"screening sweeps a DSL strategy; {strategy!r} is a Python strategy. Its YAML twin: --strategy {strategy}.yaml"
        )
    return dsl, name


@screen_app.command("run")
def run_command(
    strategy: Annotated[
        str | None, typer.Option(help="A DSL strategy: FILE.yaml, a name saved with `vq dsl save`, or a shipped name.")
    ] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated, e.g. FILUSDT-PERP.")] = None,
    start: Annotated[str | None, typer.Option(help="First day (UTC), YYYY-MM-DD (default: first day in the catalog).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (UTC, inclusive) (default: last day in the catalog).")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Bar timeframe (default: the strategy's own).")] = None,
    workers: Annotated[int, typer.Option(help="Parallel workers (processes or Ray actors).")] = max(1, os.cpu_count() or 1),
    top: Annotated[int, typer.Option(help="Rows of the front to print.")] = 10,
    sweep: Annotated[list[str] | None, typer.Option("--sweep", help="Replace or add a sweep axis: KEY=V1,V2,... (repeatable).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="Fix a parameter: KEY=VALUE (repeatable).")] = None,
    constraint: Annotated[list[str] | None, typer.Option("--constraint", help="Skip points breaking it, e.g. 'ema_fast.period < ema_slow.period' (repeatable).")] = None,
    max_points: Annotated[int, typer.Option(help="Grids larger than this are screened on a seeded random sample of this size (0: all).")] = 500,
    sample_seed: Annotated[int, typer.Option(help="Seed of that sample.")] = 0,
    min_trades: Annotated[int, typer.Option(help="Hard filter: at least this many closed trades.")] = 50,
    max_dd: Annotated[float, typer.Option(help="Hard filter: max drawdown below this fraction.")] = 0.30,
    min_pf: Annotated[float, typer.Option(help="Hard filter: profit factor above this.")] = 1.0,
    leverage: Annotated[float, typer.Option(help="Leverage (isolated margin).")] = 10.0,
    balance: Annotated[float, typer.Option(help="Starting balance, USDT.")] = 100_000.0,
    executor: Annotated[str, typer.Option(help="process (local pool) or ray.")] = "process",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (with --executor ray), e.g. ray://host:10001.")] = None,
    resume: Annotated[int | None, typer.Option("--resume", help="Resume screening run ID (finished points are kept).")] = None,
    replay: Annotated[str, typer.Option(help="active: replay only the bars where the strategy can act (fast); full: every bar. Same results.")] = "active",
    sizing: SizingOption = None,
    risk: RiskOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary JSON on stdout.")] = False,
) -> None:  # fmt: skip
    """Screen a parameter grid; print the Pareto front; store every point in sweep_results."""
    from vibe_quant.backtest.config import parse_config
    from vibe_quant.instruments.specs import normalize_symbol
    from vibe_quant.progress import RichProgress
    from vibe_quant.risk.config import config_fields
    from vibe_quant.screening.pareto import HardFilters
    from vibe_quant.screening.pipeline import SweepSpec, check_replay, create_screening_run, run_screening
    from vibe_quant.state import StateManager
    from vibe_quant.validation.cli import _date, parse_params

    check_replay(replay)
    home = get_home(writable=True)
    if resume is not None:
        if strategy or symbols or sizing or risk:
            raise UserError("--resume continues a stored screening run; do not combine it with --strategy/--symbols/"
                            "--sizing/--risk")  # fmt: skip
        run_row = resume
    else:
        missing = [n for n, v in (("--strategy", strategy), ("--symbols", symbols)) if not v]
        if missing:
            raise UserError(f"missing {', '.join(missing)} (or --resume RUN_ID)")
        dsl, name = resolve_dsl(strategy, home)
        syms = [normalize_symbol(s) for s in symbols.split(",") if s.strip()]
        first, last = _catalog_span(home, syms, timeframe or dsl["timeframe"])
        axes = parse_axes(sweep or [])
        axes.update({k: [v] for k, v in parse_params(param or []).items()})
        base = parse_config({
            "strategy": name, "dsl": dsl, "symbols": syms, "timeframe": timeframe or dsl["timeframe"],
            "start": _date("--start", start).isoformat() if start else first,
            "end": _date("--end", end).isoformat() if end else last, "mode": "screening",
            "leverage": leverage, "starting_balance": balance, **config_fields(sizing, risk, home.db_path),
        })  # fmt: skip
        spec = SweepSpec(overrides=axes, constraints=list(constraint or []), max_points=max_points,
                         sample_seed=sample_seed,
                         filters=HardFilters(min_trades=min_trades, max_drawdown=max_dd, min_profit_factor=min_pf))  # fmt: skip
        with StateManager(home.db_path) as db:
            run_row = create_screening_run(db, base, spec)
    quiet = state.quiet or as_json
    progress = RichProgress(Console(stderr=True)) if not quiet else None
    specs = str(state.specs) if state.specs else _home_specs(home)
    if progress is None:
        summary = run_screening(home, run_row, workers, specs, executor, address, replay=replay)
    else:
        with progress:
            task = progress.task(f"screening run {run_row}", None)

            def tick(done: int, total: int, result: dict) -> None:
                progress._bars.update(task, total=total, completed=done)

            summary = run_screening(home, run_row, workers, specs, executor, address, on_progress=tick, replay=replay)
    report = home.runs / f"screening-{run_row}" / "summary.json"
    if as_json:
        typer.echo(report.read_text(), nl=False)
        return
    print_summary(summary, report, top)


def _home_specs(home) -> str | None:
    path = home.root / "instrument_specs.yaml"
    return str(path) if path.exists() else None


def _catalog_span(home, symbols: list[str], timeframe: str) -> tuple[str, str]:
    """First and last UTC day of `timeframe` bars shared by `symbols` (defaults for --start/--end)."""
    import datetime as dt

    from vibe_quant.cli import get_specs
    from vibe_quant.data.bars import NS_PER_MS, TIMEFRAME_BY_LABEL
    from vibe_quant.data.catalog import intervals

    tf = TIMEFRAME_BY_LABEL.get(timeframe)
    if tf is None:
        raise UserError(f"timeframe {timeframe!r}: choose one of {', '.join(TIMEFRAME_BY_LABEL)}")
    specs = get_specs()
    firsts, lasts = [], []
    for symbol in symbols:
        spans = intervals(home.catalog, "bar", tf.bar_type(specs.get(symbol).nautilus_id))
        if not spans:
            raise UserError(f"no {timeframe} bars for {symbol} in {home.catalog}: ingest first "
                            f"(vq data ingest --symbols {symbol} ...) or pass --start/--end")  # fmt: skip
        firsts.append(spans[0][0] - tf.step_ms * NS_PER_MS)  # the first bar's open
        lasts.append(spans[-1][1] - 1)

    def day(ns: int) -> str:
        return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).date().isoformat()

    return day(max(firsts)), day(min(lasts))


def _fmt(value, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if pct:
        return f"{value:.1%}"
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


def print_summary(summary, report: Path, top: int) -> None:
    g = summary.grid
    out.print(f"screening run {summary.run_row}: grid {g.total:,} points, {g.total - sum(g.skipped.values()) if g.sampled_from is None else g.sampled_from:,} valid"
              + (f", sampled {len(g.points):,}" if g.sampled_from is not None else ""))  # fmt: skip
    for reason, n in g.skipped.most_common():
        out.print(f"  skipped {n:,}: {reason}")
    out.print(f"ran {summary.ran:,} points ({summary.resumed:,} already done) in {summary.elapsed_s:.1f}s: "
              f"{summary.points_per_minute:,.1f} points/min, peak worker RSS {summary.peak_rss_mb:,.0f} MiB; "
              f"{summary.errors} errors")  # fmt: skip
    if summary.bars:
        out.print(f"replay {summary.replay}: the engine replayed {summary.bars_replayed:,} of {summary.bars:,} bars "
                  f"({summary.bars_replayed / summary.bars:.1%})"
                  + ("; the others were flat with no signal (--replay full: every bar, same results)"
                     if summary.replay == "active" else ""))  # fmt: skip
    out.print(f"{summary.passed:,} pass the hard filters; Pareto front: {len(summary.front)}")
    table = Table(title=f"Pareto front (top {min(top, len(summary.front))}, by Sharpe)")
    for col in ("id", "parameters", "sharpe", "max DD", "PF", "return", "trades", "win rate"):
        table.add_column(col, justify="left" if col == "parameters" else "right", overflow="fold")
    varying = [k for k in (g.points[0] if g.points else {}) if len({str(p[k]) for p in g.points}) > 1]
    for row in summary.front[:top]:
        params = ", ".join(f"{k}={v}" for k, v in row["parameters"].items() if k in varying) or "(no swept parameter)"
        table.add_row(str(row["id"]), params, _fmt(row["sharpe_ratio"]), _fmt(row["max_drawdown"], True),
                      _fmt(row["profit_factor"]), _fmt(row["total_return"], True), _fmt(row["total_trades"]),
                      _fmt(row["win_rate"], True))  # fmt: skip
    out.print(table)
    for warning in summary.warnings:
        out.print(f"[yellow]warning:[/] {warning}")
    out.print(f"summary: {report}")


@screen_app.command("top")
def top_command(
    run_id: Annotated[int, typer.Argument(help="Screening run id (backtest_runs.id).")],
    n: Annotated[int, typer.Option("--top", help="How many candidates.")] = 10,
    export: Annotated[Path | None, typer.Option(help="Write the candidates as JSON to this file.")] = None,
    create_runs: Annotated[bool, typer.Option("--create-runs", help="Create a pending validation run per candidate (run with `vq backtest run --run-id N`).")] = False,
) -> None:  # fmt: skip
    """The best N candidates of a screening run (front first, then by Sharpe), for validation."""
    import msgspec

    from vibe_quant.backtest.persist import create_run
    from vibe_quant.screening.pipeline import load_screening_run, ranked
    from vibe_quant.state import StateManager

    home = get_home(writable=create_runs or export is not None)
    with StateManager(home.db_path) as db:
        base, _spec, row = load_screening_run(db, run_id)
        if row["status"] != "completed":
            raise UserError(
                f"screening run {run_id} is {row['status']}: finish it first (vq screen run --resume {run_id})"
            )
        rows = ranked(db, run_id)[:n]
        candidates = []
        for r in rows:
            entry = {"sweep_result_id": r["id"], "parameters": r["parameters"], "pareto": bool(r["is_pareto_optimal"]),
                     "metrics": r["metrics"]}  # fmt: skip
            if create_runs:
                config = msgspec.structs.replace(base, mode="validation", params=r["parameters"], latency=None,
                                                 prob_fill_on_limit=None, prob_slippage=None, latency_ns=None)  # fmt: skip
                entry["validation_run_id"] = create_run(db, config)
            candidates.append(entry)
    if export is not None:
        export.parent.mkdir(parents=True, exist_ok=True)
        tmp = export.with_suffix(export.suffix + ".tmp")
        tmp.write_text(
            json.dumps({"screening_run": run_id, "strategy": base.strategy, "candidates": candidates}, indent=2) + "\n"
        )
        tmp.replace(export)
    table = Table(title=f"screening run {run_id}: top {len(candidates)} candidates")
    for col in (
        "id",
        "front",
        "parameters",
        "sharpe",
        "max DD",
        "PF",
        "trades",
        *(("validation run",) if create_runs else ()),
    ):
        table.add_column(col)
    for c in candidates:
        m = c["metrics"] or {}
        table.add_row(str(c["sweep_result_id"]), "*" if c["pareto"] else "",
                      ", ".join(f"{k}={v}" for k, v in c["parameters"].items()), _fmt(m.get("sharpe_ratio")),
                      _fmt(m.get("max_drawdown"), True), _fmt(m.get("profit_factor")), _fmt(m.get("total_trades")),
                      *((str(c["validation_run_id"]),) if create_runs else ()))  # fmt: skip
    out.print(table)
    if not candidates:
        out.print("[yellow]no candidate passes the hard filters[/] (loosen --min-trades/--max-dd/--min-pf and re-run)")
    if export is not None:
        out.print(f"exported: {export}")
    if create_runs and candidates:
        out.print(f"validate: vq backtest run --run-id {candidates[0]['validation_run_id']} (one per candidate)")
