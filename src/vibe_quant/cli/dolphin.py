"""``vq dolphin``: the scan tables and ACB factors (inputs), ``backtest``/``screen``/``compare`` (the engine),
``service run`` and ``services start|status|stop`` (the services). Stage logic lives in ``vibe_quant.dolphin``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from vibe_quant.cli.context import common_options, console, get_home, get_specs, state
from vibe_quant.cli.options import parse_date, with_flags
from vibe_quant.errors import UserError
from vibe_quant.progress import rich_progress

dolphin_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                          help="DOLPHIN: correlation-eigenvalue scan tables (vel_div) and the ACB's daily factors.")  # fmt: skip
dolphin_app.callback()(common_options)
scans_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                        help="Scan tables: one Parquet file per UTC date (vel_div, window velocities, closes).")  # fmt: skip
dolphin_app.add_typer(scans_app, name="scans")
out = console()
FLAGS = {"timeframe": "--timeframe", "windows": "--windows"}


def _symbols(text: str | None) -> list[str] | None:
    if text is None or text.strip().lower() == "all":
        return None
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if len(set(symbols)) != len(symbols):
        raise UserError(f"--universe {text!r} names a symbol twice")
    return symbols


@with_flags(FLAGS, leading=True)
def scan_config(timeframe: str, windows: str | None):
    from vibe_quant.dolphin.config import ScanConfig

    if windows is None:
        return ScanConfig(timeframe=timeframe)
    try:
        parsed = tuple(int(w) for w in windows.split(","))
    except ValueError:
        raise UserError(f"--windows {windows!r}: give whole numbers of rows, e.g. 50,150,300,750") from None
    return ScanConfig(timeframe=timeframe, windows=parsed)


def _directory(home, timeframe: str, out_dir: Path | None) -> Path:
    from vibe_quant.dolphin.build import default_dir
    from vibe_quant.dolphin.config import ScanConfig

    return out_dir or default_dir(home, ScanConfig(timeframe=timeframe))


@scans_app.command("build")
def build_command(
    start: Annotated[str, typer.Option(help="First UTC date of the table (YYYY-MM-DD); warm-up bars are read before it.")],
    end: Annotated[str, typer.Option(help="Last UTC date (inclusive); it must be complete in the catalog.")],
    universe: Annotated[str | None, typer.Option(help="Comma-separated perpetuals, or `all` (default): every one whose bars cover the range and warm-up.")] = None,
    exclude: Annotated[str | None, typer.Option(help="Comma-separated perpetuals never taken.")] = None,
    timeframe: Annotated[str, typer.Option(help="Catalog bars, one scan row each: 1m, 5m, 15m, 1h, 4h.")] = "1h",
    windows: Annotated[str | None, typer.Option(help="Correlation windows in rows, increasing (default 50,150,300,750); vel_div = first - last.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Scan directory (default: $VQ_HOME/dolphin/scans/<timeframe>).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild days already in the directory.")] = False,
    workers: Annotated[int, typer.Option(help="Processes (used from 4,000 rows; the default is every core).")] = max(1, os.cpu_count() or 1),
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:  # fmt: skip
    """Build the scan tables of whole UTC days from catalog bars (all or nothing; existing days kept unless --force)."""
    from vibe_quant.dolphin.build import build_scans
    from vibe_quant.present.dolphin import print_build

    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    config = scan_config(timeframe, windows)
    first, last = parse_date("--start", start), parse_date("--end", end)
    excluded = tuple(_symbols(exclude) or ())
    home = get_home().require_catalog()
    home = get_home(writable=True)
    with rich_progress(not (state.quiet or as_json)) as progress:
        report = build_scans(home, get_specs(), config, first, last, out_dir, _symbols(universe), excluded,
                             force, progress, workers)  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(report.manifest, indent=1, sort_keys=True) + "\n")
        return
    print_build(report, out)


@scans_app.command("show")
def show_command(
    day: Annotated[str, typer.Argument(help="UTC date (YYYY-MM-DD).")],
    timeframe: Annotated[str, typer.Option(help="Which default directory: $VQ_HOME/dolphin/scans/<timeframe>.")] = "1h",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Scan directory.")] = None,
    assets: Annotated[int, typer.Option(help="Asset close columns to print (the first ones).")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON lines.")] = False,
) -> None:  # fmt: skip
    """Print one day's scan rows and its vel_div quantiles and trigger rates."""
    from vibe_quant.dolphin import store
    from vibe_quant.present.dolphin import print_day

    date = parse_date("DATE", day)
    table = store.read_day(_directory(get_home(), timeframe, out_dir), date)
    if as_json:
        for row in table.to_pylist():
            row["ts"] = row["ts"].isoformat()
            sys.stdout.write(json.dumps(row) + "\n")
        return
    print_day(date, table, assets, out)


@scans_app.command("summary")
def summary_command(
    timeframe: Annotated[str, typer.Option(help="Which default directory: $VQ_HOME/dolphin/scans/<timeframe>.")] = "1h",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Scan directory.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:  # fmt: skip
    """Print a scan directory's universe, days, definitions, vel_div quantiles and trigger rates."""
    from vibe_quant.dolphin import store
    from vibe_quant.present.dolphin import print_manifest

    directory = _directory(get_home(), timeframe, out_dir)
    manifest = store.read_manifest(directory)
    if manifest is None:
        raise UserError(f"{directory}: no scans; build them with `vq dolphin scans build --start ... --end ...`")
    if as_json:
        sys.stdout.write(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        return
    print_manifest(directory, manifest, out)


acb_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                      help="The ACB's daily factor table beside a scan directory: funding, DVOL, Fear & Greed, "
                           "taker flow, signals, base_boost, w750 and beta.")  # fmt: skip
dolphin_app.add_typer(acb_app, name="acb-factors")
ACB_FLAGS = {"funding_symbol": "--funding-symbol", "taker_symbol": "--taker-symbol",
             "w750_threshold_mode": "--w750-threshold"}  # fmt: skip


@with_flags(ACB_FLAGS, leading=True)
def acb_config(funding_symbol: str, taker_symbol: str, w750_threshold: str):
    from vibe_quant.dolphin.acb import AcbConfig

    return AcbConfig(funding_symbol=funding_symbol.strip().upper(), taker_symbol=taker_symbol.strip().upper(),
                     w750_threshold_mode=w750_threshold)  # type: ignore[arg-type]  # fmt: skip


def _scans_directory(home, timeframe: str | None, scans: Path | None) -> Path:
    if scans is not None and timeframe is not None:
        raise UserError("give --scans DIR or --timeframe, not both")
    return _directory(home, timeframe or "1h", scans)


@acb_app.command("build")
def acb_build_command(
    scans: Annotated[Path | None, typer.Option("--scans", help="Scan directory (default: $VQ_HOME/dolphin/scans/<timeframe>).")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Which default scan directory (default 1h).")] = None,
    start: Annotated[str | None, typer.Option(help="First UTC date (default: the scans' first day).")] = None,
    end: Annotated[str | None, typer.Option(help="Last UTC date, inclusive (default: the scans' last day).")] = None,
    dvol: Annotated[Path | None, typer.Option(help="CSV `date,value` of BTC implied volatility; the date is the day the value applies to (known at its 00:00 UTC).")] = None,
    fng: Annotated[Path | None, typer.Option(help="CSV `date,value` of the Fear & Greed index, dated like --dvol.")] = None,
    funding_symbol: Annotated[str, typer.Option(help="Perpetual whose 00:00 UTC funding settlement is funding_btc.")] = "BTCUSDT",
    taker_symbol: Annotated[str, typer.Option(help="Perpetual whose previous-day 1m klines give the taker buy/sell ratio.")] = "BTCUSDT",
    w750_threshold: Annotated[str, typer.Option(help="past (dates before each row) or full_sample (all dates: LOOK-AHEAD).")] = "past",
    as_json: Annotated[bool, typer.Option("--json", help="Print the table's metadata and notes as JSON.")] = False,
) -> None:  # fmt: skip
    """Build <scans>/acb_factors.parquet: one row per UTC date of the scans (nothing written on an error)."""
    from vibe_quant.cli.context import err_console
    from vibe_quant.dolphin.acb_build import build_acb_factors
    from vibe_quant.present.dolphin import LOOK_AHEAD_WARNING, print_acb_build

    config = acb_config(funding_symbol, taker_symbol, w750_threshold)
    first = parse_date("--start", start) if start else None
    last = parse_date("--end", end) if end else None
    home = get_home()
    report = build_acb_factors(home, get_specs(), config, _scans_directory(home, timeframe, scans), first, last,
                               dvol, fng)  # fmt: skip
    if config.look_ahead:
        err_console.print(f"[bold red]{LOOK_AHEAD_WARNING}[/]")
    if as_json:
        payload = {"path": str(report.path), "metadata": report.metadata, "notes": report.notes}
        sys.stdout.write(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        return
    print_acb_build(report, out)


@acb_app.command("show")
def acb_show_command(
    scans: Annotated[Path | None, typer.Option("--scans", help="Scan directory (default: $VQ_HOME/dolphin/scans/<timeframe>).")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Which default scan directory (default 1h).")] = None,
    day: Annotated[str | None, typer.Option("--date", help="Print only this UTC date's row (YYYY-MM-DD).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON lines (NaN as null).")] = False,
) -> None:  # fmt: skip
    """Print the ACB factor table: values (- when absent), signals, base_boost, w750 and beta, and dates present per factor."""
    from vibe_quant.dolphin.acb_build import read_acb_factors
    from vibe_quant.present.dolphin import print_acb_table

    directory = _scans_directory(get_home(), timeframe, scans)
    table, metadata = read_acb_factors(directory)
    date = parse_date("--date", day) if day else None
    dates = table.column("date").to_pylist()
    if date is not None and date not in dates:
        raise UserError(f"--date {date}: not in {directory / 'acb_factors.parquet'} ({dates[0]}..{dates[-1]})")
    if as_json:
        for row in table.to_pylist():
            if date is None or row["date"] == date:
                clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
                sys.stdout.write(json.dumps({**clean, "date": row["date"].isoformat()}) + "\n")
        return
    print_acb_table(directory / "acb_factors.parquet", table, metadata, out, date)


@dolphin_app.command("backtest")
def backtest_command(
    scans: Annotated[Path | None, typer.Option("--scans", help="Scan directory (default: $VQ_HOME/dolphin/scans/<timeframe>).")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Which default scan directory (default 1h).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Engine config YAML (default: the shipped dolphin_champion.yaml).")] = None,
    profile: Annotated[str | None, typer.Option(help="Cost profile: honest (default: fees and slips only) or seed (also the SmartPlacer refunds and the legacy random edge).")] = None,
    start: Annotated[str | None, typer.Option(help="First UTC date (default: the scans' first day).")] = None,
    end: Annotated[str | None, typer.Option(help="Last UTC date, inclusive (default: the scans' last day).")] = None,
    seed: Annotated[int | None, typer.Option(help="RNG seed of the refund and edge draws (default: the config's, 42).")] = None,
    engine: Annotated[str, typer.Option(help="array (fast) or reference (the specification's per-bar loop; same ledger).")] = "array",
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder of the run bundles (default: $VQ_HOME/runs).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run's summary as JSON.")] = False,
) -> None:  # fmt: skip
    """Run the NDAlphaEngine over stored scan tables: a trade ledger, daily rows, equity, metrics and costs."""
    from vibe_quant.dolphin.backtest import run_dolphin, summary, write_bundle
    from vibe_quant.dolphin.engine_config import PROFILES, load_engine_config
    from vibe_quant.present.dolphin import print_backtest

    if profile is not None and profile not in PROFILES:
        raise UserError(
            f"--profile {profile!r}: choose honest (fees and slips only) or seed (the specification's bonuses)"
        )
    cfg = load_engine_config(config, profile=profile, seed=seed)
    first = parse_date("--start", start) if start else None
    last = parse_date("--end", end) if end else None
    home = get_home()
    run = run_dolphin(_scans_directory(home, timeframe, scans), cfg, first, last, engine)
    bundle = write_bundle(run, out_dir or home.runs)
    if as_json:
        sys.stdout.write(
            json.dumps({**summary(run), "bundle": str(bundle)}, indent=1, sort_keys=True, default=str) + "\n"
        )
        return
    print_backtest(run, bundle, out)


@dolphin_app.command("compare")
def compare_command(
    symbols: Annotated[str, typer.Option(help="Comma-separated perpetuals the engine trades, e.g. BTCUSDT,ETHUSDT,SOLUSDT.")],
    start: Annotated[str, typer.Option(help="First UTC date (YYYY-MM-DD); the scanner warms up on its first windows[-1] + 1 bars.")],
    end: Annotated[str, typer.Option(help="Last UTC date, inclusive.")],
    strategy: Annotated[str, typer.Option(help="A DOLPHIN strategy in mode orders (default dolphin_champion).")] = "dolphin_champion",
    timeframe: Annotated[str, typer.Option(help="Catalog bars: 1m, 5m, 15m, 1h, 4h.")] = "1h",
    mode: Annotated[str, typer.Option(help="validation (realistic fills, latency) or screening (fast, simple).")] = "screening",
    leverage: Annotated[float, typer.Option(help="Leverage of each leg (isolated margin = notional / leverage).")] = 10.0,
    balance: Annotated[float, typer.Option(help="Starting balance, USDT.")] = 100_000.0,
    limit: Annotated[int, typer.Option(help="Trades shown in the table (all are in dolphin_compare.json).")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print dolphin_compare.json on stdout.")] = False,
) -> None:  # fmt: skip
    """Run the engine in orders mode on NautilusTrader and explain each trade's PnL against the engine's own ledger."""
    from vibe_quant.backtest.plan import plan_run
    from vibe_quant.cli.backtest import build_config
    from vibe_quant.present.dolphin import print_compare
    from vibe_quant.results.dolphin_compare import FILE, run_compare

    if limit < 0:
        raise UserError(f"--limit must be >= 0, got {limit}")
    home = get_home().require_catalog()
    plan = plan_run(build_config(home, strategy, symbols, timeframe, start, end, [], mode, None, leverage, balance,
                                 None, None, None, None))  # fmt: skip
    kind = plan.config.kind
    if kind != "dolphin" or getattr(plan.strategy, "mode", None) != "orders":
        raise UserError(f"--strategy {strategy!r} is a {kind} strategy, not a DOLPHIN strategy in mode orders; "
                        "use --strategy dolphin_champion (or a dolphin document with mode: orders)")  # fmt: skip
    home = get_home(writable=True)
    with rich_progress(not (state.quiet or as_json)) as progress:
        run_row, result, bundle, comparison = run_compare(home, plan, get_specs(), progress=progress)
    if as_json:
        sys.stdout.write((bundle / FILE).read_text())
        return
    print_compare(comparison, run_row, result.run_id, bundle, out, limit)


@dolphin_app.command("screen")
def screen_command(
    scans: Annotated[Path | None, typer.Option("--scans", help="Scan directory (default: $VQ_HOME/dolphin/scans/<timeframe>).")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Which default scan directory (default 1h).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Engine config YAML (default: the shipped dolphin_champion.yaml).")] = None,
    profile: Annotated[str | None, typer.Option(help="Cost profile of every point: honest (default) or seed.")] = None,
    start: Annotated[str | None, typer.Option(help="First UTC date (default: the scans' first day).")] = None,
    end: Annotated[str | None, typer.Option(help="Last UTC date, inclusive (default: the scans' last day).")] = None,
    sweep: Annotated[list[str] | None, typer.Option("--sweep", help="A sweep axis over an engine parameter: KEY=V1,V2,... (repeatable), e.g. fixed_tp_pct=0.008,0.0095.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="Fix an engine parameter: KEY=VALUE (repeatable).")] = None,
    constraint: Annotated[list[str] | None, typer.Option("--constraint", help="Skip points breaking it, e.g. 'vel_div_extreme < vel_div_threshold'.")] = None,
    max_points: Annotated[int, typer.Option(help="Grids larger than this are screened on a seeded random sample of this size (0: all).")] = 500,
    sample_seed: Annotated[int, typer.Option(help="Seed of that sample.")] = 0,
    min_trades: Annotated[int, typer.Option(help="Hard filter: at least this many closed trades.")] = 50,
    max_dd: Annotated[float, typer.Option(help="Hard filter: max drawdown below this fraction.")] = 0.30,
    min_pf: Annotated[float, typer.Option(help="Hard filter: profit factor above this.")] = 1.0,
    workers: Annotated[int, typer.Option(help="Parallel worker processes.")] = max(1, os.cpu_count() or 1),
    top: Annotated[int, typer.Option(help="Rows of the front to print.")] = 10,
    overfit: Annotated[str | None, typer.Option("--overfit", help="Then run these overfitting filters on the points that passed, e.g. dsr,pbo,wfa (see vq overfit run).")] = None,
) -> None:  # fmt: skip
    """Screen a grid of engine parameters on the array backtest: every point's metrics and daily returns are
    stored as a screening run, so `vq overfit run` (DSR, PBO, CPCV, walk-forward) applies to it."""
    from vibe_quant.backtest.config import parse_config
    from vibe_quant.cli.screen import build_spec
    from vibe_quant.dolphin.kind import screening_base
    from vibe_quant.present.screening import print_summary
    from vibe_quant.screening.pipeline import check_run_options, create_screening_run, run_screening
    from vibe_quant.state import StateManager

    check_run_options(workers)
    if profile is not None and profile not in ("honest", "seed"):
        raise UserError(
            f"--profile {profile!r}: choose honest (fees and slips only) or seed (the specification's bonuses)"
        )
    if overfit is not None:
        from vibe_quant.overfitting.config import load_config, select_filters

        of_config = load_config(None, get_home().db_path)
        of_filters = select_filters(of_config, overfit)  # a bad filter name fails before the sweep runs
    first = parse_date("--start", start) if start else None
    last = parse_date("--end", end) if end else None
    home = get_home()
    base = parse_config(screening_base(_scans_directory(home, timeframe, scans), config, first, last, profile))
    spec = build_spec(sweep or [], param or [], constraint or [], max_points, sample_seed, min_trades, max_dd, min_pf)
    home = get_home(writable=True)
    with StateManager(home.db_path) as db:
        run_row = create_screening_run(db, base, spec)
    with rich_progress(not state.quiet) as progress:
        task = progress.task(f"DOLPHIN screening run {run_row}", None)
        summary = run_screening(home, run_row, workers,
                                on_progress=lambda done, total, result: progress.update(task, done, total))  # fmt: skip
    print_summary(summary, home.runs / f"screening-{run_row}" / "summary.json", top, out)
    if overfit is not None:
        from vibe_quant.cli.overfit import run_filters
        from vibe_quant.present.overfitting import print_report

        print_report(run_filters(run_row, of_config, of_filters, workers, "passed", None), out)


service_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                          help="Run one DOLPHIN service in the foreground (acb, watchdog, mc).")  # fmt: skip
services_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                           help="Start, inspect and stop DOLPHIN's services as background jobs.")  # fmt: skip
dolphin_app.add_typer(service_app, name="service")
dolphin_app.add_typer(services_app, name="services")
SERVICE_JOB = "dolphin service"
STORE_HELP = "Feature store: redis://127.0.0.1:6379/0 (services share state through Redis; start one with `redis-server --port 6379 --bind 127.0.0.1`)."


@service_app.command("run")
def service_run_command(
    name: Annotated[str, typer.Argument(help="acb, watchdog or mc.")],
    store: Annotated[str, typer.Option("--store", help=STORE_HELP)],
    scans: Annotated[Path | None, typer.Option("--scans", help="Scan directory whose acb_factors.parquet the acb service reads.")] = None,
    cycle_s: Annotated[float, typer.Option(help="Seconds between cycles.")] = 60.0,
    cycles: Annotated[int | None, typer.Option(help="Stop after this many cycles (default: run until stopped).")] = None,
) -> None:  # fmt: skip
    """Run service NAME: a cycle every --cycle-s seconds, its output and heartbeat written to the store."""
    from vibe_quant.dolphin.features import DolphinStore, open_store
    from vibe_quant.dolphin.services import make_service, run_service

    if cycle_s <= 0:
        raise UserError(f"--cycle-s must be > 0, got {cycle_s}")
    if cycles is not None and cycles < 1:
        raise UserError(f"--cycles must be >= 1, got {cycles}")
    from vibe_quant.dolphin.strategy import STORE_ENV

    if store == "env":
        store = os.environ.get(STORE_ENV) or ""
        if not store:
            raise UserError(f"--store env: set ${STORE_ENV} to the feature store URL")
    service = make_service(name, scans)
    handle = DolphinStore(open_store(store))
    try:
        run_service(name, service, handle, cycle_s, cycles,
                    on_cycle=lambda doc: out.print(f"{name}: {json.dumps(doc, sort_keys=True, default=str)}"))  # fmt: skip
    except KeyboardInterrupt:
        out.print(f"{name}: stopped")
    finally:
        handle.close()


def _service_jobs(home) -> list:
    from vibe_quant.jobs.runner import list_jobs

    return sorted((j for j in list_jobs(home, active_only=True) if j.job_type == SERVICE_JOB), key=lambda j: j.id)


@services_app.command("start")
def services_start_command(
    store: Annotated[str, typer.Option("--store", help=STORE_HELP)],
    scans: Annotated[Path | None, typer.Option("--scans", help="Scan directory (default: $VQ_HOME/dolphin/scans/1h).")] = None,
    cycle_s: Annotated[float, typer.Option(help="Seconds between cycles of each service.")] = 60.0,
    symbols: Annotated[str | None, typer.Option(help="Then start the strategy last, as a paper session of dolphin_live on these perpetuals (comma-separated).")] = None,
    timeframe: Annotated[str, typer.Option(help="The strategy's bars.")] = "1h",
    feed: Annotated[str, typer.Option(help="The strategy's paper feed: replay (the catalog) or testnet.")] = "replay",
    start: Annotated[str | None, typer.Option(help="Replay feed: first day.")] = None,
    end: Annotated[str | None, typer.Option(help="Replay feed: last day.")] = None,
    speed: Annotated[str | None, typer.Option(help="Replay feed: speed (1 = real time; default: the paper default).")] = None,
) -> None:  # fmt: skip
    """Start the ACB processor, the watchdog and the MC assessor, in that order, as background jobs; with --symbols,
    the strategy last (a paper session of dolphin_live reading and writing the same store)."""
    from urllib.parse import urlsplit

    from vibe_quant.dolphin.features import open_store, redact_url
    from vibe_quant.dolphin.services import SERVICES
    from vibe_quant.dolphin.strategy import STORE_ENV
    from vibe_quant.jobs.runner import start_job

    home = get_home(writable=True)
    directory = _scans_directory(home, None, scans)
    if feed not in ("replay", "testnet"):
        raise UserError(f"--feed {feed!r}: choose replay or testnet")
    handle = open_store(store)  # refuse an unreachable store before anything starts
    try:
        if not handle.ping():
            port = urlsplit(store).port or 6379
            raise UserError(f"--store {redact_url(store)}: no Redis answers there; start one with "
                            f"`redis-server --port {port} --bind 127.0.0.1`, or give the URL of a running one")  # fmt: skip
    finally:
        handle.close()
    running = {j.label for j in _service_jobs(home)}
    names = [*SERVICES, "strategy"] if symbols else list(SERVICES)
    for name in names:
        if f"dolphin {name}" in running:
            out.print(f"{name}: already running")
            continue
        if name == "strategy":
            _wait_for_posture(store)
            argv = ["paper", "start", "--strategy", "dolphin_live", "--symbols", symbols, "--timeframe", timeframe,
                    "--feed", feed]  # fmt: skip
            for flag, value in (("--start", start), ("--end", end), ("--speed", speed)):
                if value:
                    argv += [flag, value]
        else:
            argv = ["dolphin", "service", "run", name, "--store", "env", "--cycle-s", str(cycle_s)]
            if name == "acb":
                argv += ["--scans", str(directory)]
        # the URL reaches the job through its environment, never its saved command (it may carry a password)
        job = start_job(home, argv, SERVICE_JOB, f"dolphin {name}", extra_env={STORE_ENV: store})
        out.print(f"{name}: job {job} (log: {home.logs / 'jobs' / f'{job}.log'})")
    if not symbols:
        out.print("the strategy starts last: --symbols A,B,... starts it as a paper session of dolphin_live")


def _wait_for_posture(url: str, timeout_s: float = 60.0) -> None:
    """Before the strategy: wait (bounded) for the watchdog's first posture, which the strategy reads at its first bar."""
    import time

    from vibe_quant.dolphin.features import DolphinStore, open_store

    deadline = time.monotonic() + timeout_s
    with DolphinStore(open_store(url)) as store:
        for _ in range(int(timeout_s / 0.2) + 1):
            if store.read_posture() is not None:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    out.print(
        f"[yellow]the watchdog wrote no posture within {timeout_s:.0f} s: the strategy reads HIBERNATE until it does[/]"
    )


@services_app.command("status")
def services_status_command(
    store: Annotated[str | None, typer.Option("--store", help=STORE_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:  # fmt: skip
    """The running service jobs and, with --store, what they last wrote (posture, ACB, MC, heartbeats)."""
    import time

    from vibe_quant.dolphin.services import live_state

    home = get_home()
    jobs = [{"id": j.id, "service": (j.label or "").removeprefix("dolphin "), "health": j.health, "pid": j.pid,
             "heartbeat_age_s": j.heartbeat_age_s} for j in _service_jobs(home)]  # fmt: skip
    state_doc = {}
    if store is not None:
        from vibe_quant.dolphin.features import DolphinStore, open_store

        with DolphinStore(open_store(store)) as handle:
            state_doc = live_state(handle, time.time_ns())
    if as_json:
        sys.stdout.write(json.dumps({"jobs": jobs, **state_doc}, indent=1, sort_keys=True, default=str) + "\n")
        return
    if not jobs:
        out.print("no DOLPHIN service running (vq dolphin services start --store URL)")
    for j in jobs:
        out.print(f"{j['service']}: job {j['id']} {j['health']} (pid {j['pid']})")
    if state_doc:
        p = state_doc["posture"]
        out.print("posture: " + ("none yet" if p is None else f"{p['posture']} (Rm {p['rm']:.3f}; sensors "
                                 + ", ".join(f"{k} {v:.3f}" for k, v in p["sensors"].items()) + ")"))  # fmt: skip
        out.print(f"acb: {state_doc['acb']}; mc: {state_doc['mc']}")
        out.print(
            "heartbeats: "
            + ", ".join(f"{k} {'-' if v is None else f'{v:.0f} s'}" for k, v in state_doc["heartbeats"].items())
        )


@services_app.command("stop")
def services_stop_command(
    grace: Annotated[float, typer.Option(help="Seconds between SIGTERM and SIGKILL.")] = 10.0,
) -> None:  # fmt: skip
    """Stop the running service jobs, in the reverse of the start order."""
    from vibe_quant.dolphin.services import SERVICES
    from vibe_quant.jobs.runner import kill_job

    home = get_home(writable=True)
    jobs = _service_jobs(home)
    order = {f"dolphin {n}": i for i, n in enumerate((*SERVICES, "strategy"))}
    for job in sorted(jobs, key=lambda j: -order.get(j.label or "", -1)):
        outcome = kill_job(home, job.id, grace)
        how = " then ".join(outcome.signals) or "already gone"
        out.print(f"{job.label}: job {job.id} stopped ({how}, {outcome.waited_s:.1f} s)"
                  + (f"; still alive: {outcome.remaining}" if outcome.remaining else ""))  # fmt: skip
    if not jobs:
        out.print("no DOLPHIN service running")
