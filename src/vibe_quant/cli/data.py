"""``vq data`` commands (also ``python -m vibe_quant.data``): thin wrappers over the data stage."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vibe_quant.cli.context import common_options, console, get_home, get_specs, state
from vibe_quant.errors import UserError
from vibe_quant.present.data import print_status

data_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Ingest, inspect, validate, rebuild and query market data.",
)
data_app.callback()(common_options)
out = console()


def _date(option: str, text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: not a date; use YYYY-MM-DD") from None


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@data_app.command()
def ingest(
    symbols: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated symbols, e.g. BTCUSDT,ETHUSDT (default with a local --source: every symbol found)."
        ),
    ] = None,
    years: Annotated[float | None, typer.Option(help="Ingest the last N years up to today.")] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, inclusive, YYYY-MM-DD (UTC).")] = None,
    datasets: Annotated[
        str,
        typer.Option(
            help="Comma-separated: klines, fundingRate, aggTrades, trades, bookTicker, metrics, bookDepth, "
            "markPriceKlines, indexPriceKlines, premiumIndexKlines (spot: klines, aggTrades, trades)."
        ),
    ] = "klines,fundingRate",
    market: Annotated[str, typer.Option(help="um (USD-M futures), cm (COIN-M futures) or spot.")] = "um",
    interval: Annotated[str, typer.Option(help="Kline interval for the kline datasets: 1m, 5m, 1h, 1d, ...")] = "1m",
    source: Annotated[
        str, typer.Option(help="Archive root URL or a local directory of Binance files.")
    ] = "https://data.binance.vision",
) -> None:
    """Download (or read) Binance datasets (klines, funding, ticks, open interest, depth, ...) into the catalog."""
    from vibe_quant.data.ingest import IngestRequest, resolve_range, run_ingest
    from vibe_quant.progress import rich_progress

    first, stop = resolve_range(_today(), years, _date("--start", start), _date("--end", end))
    request = IngestRequest(
        source=source,
        symbols=tuple(s.strip() for s in symbols.split(",") if s.strip()) if symbols else None,
        datasets=tuple(d.strip() for d in datasets.split(",") if d.strip()),
        start=first,
        end=stop,
        market=market,
        interval=interval,
    )
    home, specs = get_home(writable=True), get_specs()
    with rich_progress(not state.quiet) as progress:
        report = run_ingest(home, request, specs, progress)
    bars = report.bars_written()
    table = Table(
        title=f"ingest run {report.run_id}: {report.files} file(s) in {report.elapsed_s:.1f}s", title_justify="left"
    )
    table.add_column("written")
    table.add_column("rows", justify="right")
    for label, n in bars.items():
        table.add_row(label if not label[0].isdigit() else f"{label} bars", f"{n:,}")
    out.print(table)
    if report.skipped:
        out.print(f"already ingested (no-op): {len(report.skipped)} file(s)")
    if report.warnings:
        out.print(f"[yellow]{len(report.warnings)} warning(s)[/] (see above and {home.logs / 'vq.log'})")
    out.print(f"catalog: {home.catalog}\nreport:  {home.catalog / 'validation_report.md'}")


@data_app.command("import-csv")
def import_csv(
    paths: Annotated[
        list[Path], typer.Argument(help="OHLCV CSV files: timestamp,open,high,low,close,volume[,datetime].")
    ],
    symbol: Annotated[
        str | None, typer.Option(help="Venue symbol (default: from a name like BTC_USDT_1h.csv).")
    ] = None,
    interval: Annotated[str | None, typer.Option(help="Bar interval, e.g. 1h, 1d (default: from the name).")] = None,
    market: Annotated[str, typer.Option(help="um (USD-M futures), cm (COIN-M) or spot.")] = "um",
    keep_flat_tail: Annotated[
        bool, typer.Option(help="Keep a trailing run of flat zero-volume bars (cut by default: delisted).")
    ] = False,
) -> None:
    """Import generic OHLCV CSV files as catalog bars at their native timeframe (via the raw lake)."""
    from vibe_quant.data.csv_import import run_import
    from vibe_quant.progress import rich_progress

    home, specs = get_home(writable=True), get_specs()
    with rich_progress(not state.quiet) as progress:
        report = run_import(home, paths, specs, symbol, interval, market, keep_flat_tail, progress)
    table = Table(
        title=f"import run {report.run_id}: {len(report.units)} file(s) in {report.elapsed_s:.1f}s",
        title_justify="left",
    )
    for col in ("symbol", "interval", "bars", "first close", "last close"):
        table.add_column(col)
    from vibe_quant.data.validate import iso

    for u in report.units:
        table.add_row(
            u.symbol, u.interval or "", f"{u.rows_written:,}", iso(u.first_ts_ns) or "-", iso(u.last_ts_ns) or "-"
        )
    out.print(table)
    if report.skipped:
        out.print(f"already imported (no-op): {', '.join(report.skipped)}")
    for w in report.warnings:
        out.print(f"[yellow]warning:[/] {w}")
    out.print(f"catalog: {home.catalog}\nreport:  {home.catalog / 'validation_report.md'}")


@data_app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout.")] = False) -> None:
    """Show symbols, date ranges, bar counts per timeframe, gaps and archive stats."""
    from vibe_quant.data.validate import summarize
    from vibe_quant.state import StateManager

    home = get_home()
    if not home.db_path.exists():
        raise UserError(
            f"no data home at {home.root} (no {home.db_path.name}); run `vq data ingest` first or pass --home"
        )
    with StateManager(home.db_path) as db:
        summary = summarize(home, db)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    print_status(summary, out)


@data_app.command()
def rebuild(
    from_archive: Annotated[
        bool, typer.Option("--from-archive", help="Rebuild the catalog from the raw archive (required).")
    ] = False,
) -> None:
    """Rebuild the whole catalog from the raw archive and report whether it is byte-identical."""
    from vibe_quant.data.rebuild import rebuild_from_archive
    from vibe_quant.progress import rich_progress

    if not from_archive:
        raise UserError("rebuild needs --from-archive (the raw archive is the only rebuild source)")
    home = get_home()
    if not home.db_path.exists():
        raise UserError(f"nothing to rebuild: no state database at {home.db_path}")
    home = get_home(writable=True)
    with rich_progress(not state.quiet) as progress:
        report = rebuild_from_archive(home, get_specs(), progress)
    verdict = (
        "byte-identical to the previous catalog"
        if report.byte_identical
        else (f"{len(report.changed)} changed, {len(report.added)} added, {len(report.removed)} removed file(s)")
    )
    out.print(
        f"rebuilt {report.units} unit(s) from {report.raw_files} raw file(s) in {report.elapsed_s:.1f}s: "
        f"{report.identical} file(s) identical; {verdict}"
    )


@data_app.command()
def update(
    symbol: Annotated[str, typer.Option(help="Symbol to update, e.g. FILUSDT-PERP or FILUSDT.")],
    since: Annotated[str, typer.Option(help="'auto' (after the last 1m bar) or YYYY-MM-DD.")] = "auto",
    rest_url: Annotated[str, typer.Option(help="Binance USD-M REST base URL.")] = "https://fapi.binance.com",
) -> None:
    """Fetch closed 1m klines newer than the catalog from the REST API; re-aggregate."""
    from vibe_quant.data.update import parse_since, run_update
    from vibe_quant.data.validate import iso
    from vibe_quant.progress import rich_progress

    with rich_progress(not state.quiet) as progress:
        report = run_update(get_home(writable=True), symbol, parse_since(since), get_specs(), rest_url, progress)
    if report.up_to_date:
        out.print(f"{report.symbol} is up to date (last closed minute {iso(report.until_ms * 1_000_000)})")
        return
    written = report.result.written if report.result else {}
    out.print(
        f"{report.symbol}: {report.pages} REST page(s), {iso(report.since_ms * 1_000_000)} .. "
        f"{iso(report.until_ms * 1_000_000)}; written " + ", ".join(f"{k} {v:,}" for k, v in written.items())
    )


@data_app.command()
def validate(
    deep: Annotated[bool, typer.Option(help="Decode every bar: OHLC and aggregation re-checks.")] = True,
) -> None:
    """Re-check the catalog and rewrite manifest.json and validation_report.md."""
    from vibe_quant.data.validate import write_artifacts
    from vibe_quant.state import StateManager

    home = get_home()
    if not home.db_path.exists():
        raise UserError(f"no data home at {home.root}; run `vq data ingest` first or pass --home")
    with StateManager(home.db_path) as db:
        warnings = write_artifacts(home, db, deep=deep)
    out.print(f"report: {home.catalog / 'validation_report.md'}")
    if warnings:
        raise UserError("validation failed: " + "; ".join(warnings))
    out.print("all checks passed")


SQL_HELP = (
    "SQL over the catalog views (bars, funding, trades, quotes, metrics, ...) and the state tables instruments, "
    "raw_files, ingest_units, backtest_runs, backtest_results, trades, sweep_results (each also state.<table>: with "
    "trade ticks in the catalog, trades is the ticks and state.trades the backtests' trades)."
)


@data_app.command()
def sql(
    query: Annotated[str, typer.Argument(help=SQL_HELP)],
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Query the catalog's Parquet files and the stored runs with DuckDB (prices decoded exactly as DECIMAL)."""
    from vibe_quant.data.query import connect_catalog

    if fmt not in ("table", "csv", "json"):
        raise UserError(f"--format {fmt!r}: choose table, csv or json")
    with connect_catalog(get_home()) as con:
        frame = con.query_df(query)
    if fmt == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif fmt == "json":
        # 15 decimals: pandas rounds floats to 10 by default (a Sharpe of -12.63868950278261 printed as -12.6386895028)
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", double_precision=15) + "\n")
    else:
        table = Table()
        for col in frame.columns:
            table.add_column(str(col))
        for row in frame.itertuples(index=False):
            table.add_row(*(str(v) for v in row))
        out.print(table)
