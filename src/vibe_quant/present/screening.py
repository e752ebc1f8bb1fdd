"""Terminal views of a screening run."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from vibe_quant.present.format import fmt

ENGINE_NAMES = {"sim": "the perp kernel", "nautilus": "NautilusTrader"}


def print_summary(summary, report: Path, top: int, out: Console) -> None:
    """A screening run: grid, throughput, replay share, engine, filters, the front check, the Pareto front
    table, the summary path."""
    g = summary.grid
    out.print(f"screening run {summary.run_row}: grid {g.total:,} points, {g.total - sum(g.skipped.values()) if g.sampled_from is None else g.sampled_from:,} valid"
              + (f", sampled {len(g.points):,}" if g.sampled_from is not None else ""))  # fmt: skip
    for reason, n in g.skipped.most_common():
        out.print(f"  skipped {n:,}: {reason}")
    out.print(f"ran {summary.ran:,} points ({summary.resumed:,} already done) in {summary.elapsed_s:.1f}s: "
              f"{summary.points_per_minute:,.1f} points/min, peak worker RSS {summary.peak_rss_mb:,.0f} MiB; "
              f"{summary.errors} errors")  # fmt: skip
    if summary.bars and summary.engines.get("nautilus"):  # the kernel runs every bar; NautilusTrader may skip
        out.print(f"replay {summary.replay}: the engine replayed {summary.bars_replayed:,} of {summary.bars:,} bars "
                  f"({summary.bars_replayed / summary.bars:.1%})"
                  + ("; the others were flat with no signal (--replay full: every bar, same results)"
                     if summary.replay == "active" else ""))  # fmt: skip
    ran_on = ", ".join(f"{n:,} points on {ENGINE_NAMES.get(e, e)}" for e, n in sorted(summary.engines.items()))
    out.print(f"engine {summary.engine}" + (f": {ran_on}" if ran_on else ""))
    out.print(f"{summary.passed:,} pass the hard filters; Pareto front: {len(summary.front)}")
    if summary.front_checked:
        n = summary.front_checked
        out.print(f"Pareto front re-checked on NautilusTrader: {n:,} point{'s' * (n != 1)} identical")
    table = Table(title=f"Pareto front (top {min(top, len(summary.front))}, by Sharpe)")
    for col in ("id", "parameters", "sharpe", "max DD", "PF", "return", "trades", "win rate"):
        table.add_column(col, justify="left" if col == "parameters" else "right", overflow="fold")
    varying = [k for k in (g.points[0] if g.points else {}) if len({str(p[k]) for p in g.points}) > 1]
    for row in summary.front[:top]:
        params = "\n".join(f"{k}={v}" for k, v in row["parameters"].items() if k in varying) or "(no swept parameter)"
        table.add_row(str(row["id"]), params, fmt(row["sharpe_ratio"], ",.2f"), fmt(row["max_drawdown"], '.1%'),
                      fmt(row["profit_factor"], ",.2f"), fmt(row["total_return"], '.1%'), fmt(row["total_trades"]),
                      fmt(row["win_rate"], '.1%'))  # fmt: skip
    out.print(table)
    for warning in summary.warnings:
        out.print(f"[yellow]warning:[/] {warning}")
    out.print(f"summary: {report}")


def sweeps_table(rows: list[dict]) -> Table:
    """Stored screening runs (``backtest_runs`` rows with a sweep), newest first."""
    table = Table(title="screening runs (newest first)", title_justify="left")
    for col in ("id", "status", "strategy", "symbols", "tf", "period", "points", "created"):
        table.add_column(col, justify="right" if col in ("id", "points") else "left", overflow="fold")
    for r in rows:
        table.add_row(str(r["id"]), r["status"], r["strategy"], ",".join(r["symbols"]), r["timeframe"],
                      f"{r['start_date']}..{r['end_date']}", fmt(r["points"]), r["created_at"] or "-")  # fmt: skip
    return table
