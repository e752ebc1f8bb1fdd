"""``python -m vibe_quant.validation run`` / ``vq backtest run``: one validation-grade backtest."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vibe_quant.cli import common_options, get_home, get_specs
from vibe_quant.dsl.loader import dsl_document
from vibe_quant.errors import UserError
from vibe_quant.risk.cli import RiskOption, SizingOption

validation_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                             help="Backtests with funding, liquidation, next-open fills and our metrics.")  # fmt: skip
validation_app.callback()(common_options)
out = Console(soft_wrap=True)


def parse_params(items: list[str]) -> dict:
    """``['fast=20', 'allow_short=false']`` -> ``{'fast': 20, 'allow_short': False}`` (JSON values, else text)."""
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--param {item!r}: write NAME=VALUE, e.g. --param fast=20")
        try:
            params[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[name.strip()] = value
    return params


def _date(option: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: not a date; use YYYY-MM-DD") from None


@validation_app.command()
def run(
    run_id: Annotated[int | None, typer.Option("--run-id", help="Run a pending backtest_runs row by id.")] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="A DSL strategy file (FILE.yaml; NAME.yaml or NAME for a shipped one, see `vq dsl list`) or a "
            "Python strategy: ema_cross, ema_trend_atr."
        ),
    ] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated, e.g. FILUSDT-PERP,NEARUSDT-PERP.")] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="Bar timeframe: 1m, 5m, 15m, 1h, 4h (default: a DSL strategy's own, else 5m).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First day (UTC), YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (UTC, inclusive), YYYY-MM-DD.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", help="Strategy parameter NAME=VALUE (repeatable); DSL: a sweep key, e.g. rsi.period=7."
        ),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="validation (realistic fills, latency) or screening (fast, simple).")
    ] = "validation",
    latency: Annotated[
        str | None, typer.Option(help="co_located, domestic, international, retail (validation default), none.")
    ] = None,
    leverage: Annotated[float, typer.Option(help="Leverage (isolated margin = notional / leverage).")] = 10.0,
    balance: Annotated[float, typer.Option(help="Starting balance, USDT.")] = 100_000.0,
    maker_fee: Annotated[float | None, typer.Option(help="Override the spec's maker fee (rate, e.g. 0.0002).")] = None,
    taker_fee: Annotated[float | None, typer.Option(help="Override the spec's taker fee (rate, e.g. 0.0005).")] = None,
    sizing: SizingOption = None,
    risk: RiskOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary JSON on stdout.")] = False,
) -> None:
    """Run one backtest; print its run id and metrics; store rows and the result bundle."""
    from vibe_quant.backtest.config import parse_config
    from vibe_quant.backtest.persist import load_run_config
    from vibe_quant.backtest.service import execute
    from vibe_quant.instruments.specs import normalize_symbol
    from vibe_quant.risk.config import config_fields
    from vibe_quant.state import StateManager

    home = get_home(writable=True)
    if run_id is not None:
        if strategy or symbols or sizing or risk:
            raise UserError("--run-id runs a stored configuration; do not combine it with --strategy/--symbols/"
                            "--sizing/--risk")  # fmt: skip
        with StateManager(home.db_path) as state:
            config = load_run_config(state, run_id)
    else:
        missing = [name for name, value in (("--strategy", strategy), ("--symbols", symbols), ("--start", start),
                                            ("--end", end)) if not value]  # fmt: skip
        if missing:
            raise UserError(f"missing {', '.join(missing)} (or pass --run-id of a pending run)")
        dsl, strategy = dsl_document(strategy)
        if dsl is not None:
            timeframe = timeframe or dsl["timeframe"]
        config = parse_config({
            "strategy": strategy, "dsl": dsl, "symbols": [normalize_symbol(s) for s in symbols.split(",") if s.strip()],
            "timeframe": timeframe or "5m", "start": _date("--start", start).isoformat(), "end": _date("--end", end).isoformat(),
            "params": parse_params(param or []), "mode": mode, "latency": latency, "leverage": leverage,
            "starting_balance": balance, "maker_fee": maker_fee, "taker_fee": taker_fee,
            **config_fields(sizing, risk, home.db_path),
        })  # fmt: skip
    run_row, result, bundle = execute(home, config, get_specs(), run_row=run_id)
    if as_json:
        sys.stdout.write((bundle / "summary.json").read_text())
        return
    print_result(run_row, result, bundle, out)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def print_result(run_row: int, result, bundle, console: Console) -> None:
    cfg = result.config
    console.print(f"run {result.run_id} (backtest_runs.id {run_row}): {cfg.strategy} {','.join(cfg.symbols)} "
                  f"{cfg.timeframe} {cfg.start}..{cfg.end}, {cfg.mode}, latency {cfg.latency}, leverage {cfg.leverage:g}x")  # fmt: skip
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    m = result.metrics
    for key in ("total_return", "cagr", "sharpe_ratio", "sortino_ratio", "calmar_ratio", "max_drawdown",
                "max_drawdown_duration_days", "volatility_annual", "total_trades", "win_rate", "profit_factor",
                "avg_trade_duration_hours", "gross_pnl", "total_fees", "total_funding", "total_slippage",
                "net_pnl", "final_equity", "liquidations", "fills"):  # fmt: skip
        table.add_row(key, _fmt(m.get(key)))
    console.print(table)
    for line in risk_lines(result.extra.get("risk")):
        console.print(line)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"{result.bars_processed:,} bars in {result.elapsed_s:.2f}s "
                  f"({result.bars_processed / max(result.elapsed_s, 1e-9):,.0f} bars/s); bundle: {bundle}")  # fmt: skip


def risk_lines(summary: dict | None) -> list[str]:
    """The run's sizing and circuit-breaker story in a few lines (empty without --sizing/--risk)."""
    if not summary:
        return []
    from vibe_quant.backtest.persist import iso

    out = []
    if summary.get("sizing"):
        out.append(f"sizing: {summary['sizing']['method']} (replaces the strategy's own sizing)")
    decisions = summary.get("decisions", {})
    passed = decisions.get("entries_passed", 0)
    refused = {k.removeprefix("refused_"): v for k, v in decisions.items() if k.startswith("refused_")}
    text = f"entries: {passed} passed"
    limited = {k.removeprefix("limited_by_"): v for k, v in decisions.items() if k.startswith("limited_by_")}
    if limited:
        text += " (sized down by " + ", ".join(f"{k} {n}x" for k, n in sorted(limited.items())) + ")"
    if refused:
        text += ", refused: " + ", ".join(f"{n} {k}" for k, n in sorted(refused.items()))
    out.append(text)
    for trip in summary.get("trips", []):
        until = "for the rest of the run" if trip["until"] is None else f"until {iso(trip['until'])}"
        out.append(f"[bold red]circuit breaker:[/] {trip['scope']} {trip['breaker']} at {iso(trip['ts'])} "
                   f"({trip['value']:.2%} >= {trip['limit']:.2%})" if trip["breaker"] != "consecutive_losses" else
                   f"[bold red]circuit breaker:[/] {trip['scope']} {trip['breaker']} at {iso(trip['ts'])} "
                   f"({trip['value']:.0f} losses in a row)")  # fmt: skip
        out[-1] += f": orders cancelled, positions closed, trading halted {until}"
    if summary.get("halted_at_end"):
        out.append(f"halted at the end of the run: {', '.join(summary['halted_at_end'])}")
    return out
