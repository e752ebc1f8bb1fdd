"""Terminal views of a backtest: its metrics table and its sizing and circuit-breaker story."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vibe_quant.present.format import fmt, iso

METRICS = ("total_return", "cagr", "sharpe_ratio", "sortino_ratio", "calmar_ratio", "max_drawdown",
           "max_drawdown_duration_days", "volatility_annual", "total_trades", "win_rate", "profit_factor",
           "avg_trade_duration_hours", "gross_pnl", "total_fees", "total_funding", "total_slippage", "net_pnl",
           "final_equity", "liquidations", "fills")  # fmt: skip


def print_result(run_row: int, result, bundle: Path, console: Console) -> None:
    """A backtest just run: what its bundle's ``summary.json`` says (the same view as ``vq backtest show``)."""
    summary = json.loads((bundle / "summary.json").read_text())
    print_summary({"id": run_row, "bundle_path": str(bundle)}, summary, console)


def print_summary(row: dict, summary: dict, console: Console) -> None:
    """One stored backtest: its configuration line, metrics, risk story, warnings and bundle."""
    cfg, m = summary["config"], summary["metrics"]
    console.print(f"run {summary['run_id']} (backtest_runs.id {row['id']}): {cfg['strategy']} {','.join(cfg['symbols'])} "
                  f"{cfg['timeframe']} {cfg['start']}..{cfg['end']}, {cfg['mode']}, latency {cfg['latency']}, "
                  f"leverage {cfg['leverage']:g}x")  # fmt: skip
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in METRICS:
        table.add_row(key, fmt(m.get(key)))
    console.print(table)
    for line in risk_lines(summary.get("risk")):
        console.print(line)
    for warning in summary.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}")
    bars, seconds = summary.get("bars_processed", 0), summary.get("elapsed_s", 0.0)
    unit = "ticks" if "ticks" in summary else "bars"
    console.print(
        f"{bars:,} {unit} in {seconds:.2f}s ({bars / max(seconds, 1e-9):,.0f} {unit}/s); bundle: {row['bundle_path']}"
    )
    report = Path(row["bundle_path"]) / "report.html"
    console.print(f"report: {report}" if report.exists() else f"report: vq report {row['id']} (writes {report})")


def runs_table(rows: list[dict], title: str) -> Table:
    """Stored runs (``backtest_runs`` rows with their key results), one line each."""
    table = Table(title=title, title_justify="left")
    for col in ("id", "status", "mode", "strategy", "symbols", "tf", "period", "sharpe", "return", "max DD", "trades",
                "run id"):  # fmt: skip
        table.add_column(col, justify="right" if col in ("id", "sharpe", "return", "max DD", "trades") else "left",
                         overflow="fold")  # fmt: skip
    for r in rows:
        table.add_row(str(r["id"]), r["status"], r["run_mode"], r["strategy"], ",".join(r["symbols"]), r["timeframe"],
                      f"{r['start_date']}..{r['end_date']}", fmt(r.get("sharpe_ratio"), ",.2f"),
                      fmt(r.get("total_return"), ".1%"), fmt(r.get("max_drawdown"), ".1%"), fmt(r.get("total_trades")),
                      r.get("run_hash") or "-")  # fmt: skip
    return table


def risk_lines(summary: dict | None) -> list[str]:
    """The run's sizing and circuit-breaker story in a few lines (empty without --sizing/--risk)."""
    if not summary:
        return []
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
