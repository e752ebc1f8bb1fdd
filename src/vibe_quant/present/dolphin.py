"""Terminal views of DOLPHIN scan tables (``vq dolphin scans ...``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from rich.table import Table

from vibe_quant.dolphin.store import vel_div_summary


def _summary_lines(summary: dict) -> list[str]:
    if not summary.get("rows"):
        return ["vel_div: no rows"]
    q = "  ".join(f"{k}: {v:+.5f}" for k, v in summary["quantiles"].items())
    below = "  ".join(f"< {k}: {v:.2%}" for k, v in summary["below"].items())
    return [f"vel_div quantiles ({summary['rows']:,} rows)  {q}", f"rows below the signal thresholds  {below}"]


def print_build(report, out) -> None:
    m = report.manifest
    out.print(f"scans: {report.directory}")
    out.print(f"universe: {len(report.symbols)} perpetuals ({', '.join(report.symbols[:8])}"
              f"{', ...' if len(report.symbols) > 8 else ''}); {len(report.left_out)} left out (see manifest.json)")  # fmt: skip
    kept = f", {len(report.kept)} kept (use --force to rebuild)" if report.kept else ""
    procs = f" on {report.workers} processes" if report.workers > 1 else ""
    out.print(f"built {len(report.built)} day(s), {report.rows:,} rows in {report.elapsed_s:.1f} s{procs}{kept}; "
              f"directory {m['first_day']}..{m['last_day']}, {len(m['days'])} days")  # fmt: skip
    for line in _summary_lines(m["vel_div"]):
        out.print(line)


def print_manifest(directory: Path, m: dict, out) -> None:
    out.print(f"scans: {directory}")
    d = m["definitions"]
    out.print(f"{d['timeframe']} rows, windows {d['windows']}; vel_div = {d['vel_div']}")
    out.print(f"lambda_max = {d['lambda_max']}")
    out.print(f"universe: {m['n_assets']} perpetuals; {len(m['left_out'])} left out")
    out.print(f"days: {m['first_day']}..{m['last_day']} ({len(m['days'])} files, {m['rows_per_day']} rows each)")
    for line in _summary_lines(m["vel_div"]):
        out.print(line)


def print_day(day: dt.date, table, assets: int, out) -> None:
    names = table.column_names
    first_asset = names.index("instability_150") + 1
    shown = [n for n in names[:first_asset] if not n.startswith("instability")] + names[
        first_asset : first_asset + assets
    ]
    t = Table(title=f"scans {day} ({table.num_rows} rows, {len(names) - first_asset} assets)")
    for n in shown:
        t.add_column(n.replace("_lambda_max_velocity", "_vel"), justify="right")
    cols = {n: table.column(n).to_pylist() for n in shown}
    for i in range(table.num_rows):
        cells = []
        for n in shown:
            v = cols[n][i]
            if n == "ts":
                cells.append(v.strftime("%Y-%m-%d %H:%M"))
            elif n == "scan_number":
                cells.append(str(v))
            elif n in names[first_asset:]:
                cells.append(f"{v:.6g}")
            else:
                cells.append(f"{v:+.6f}")
        t.add_row(*cells)
    out.print(t)
    for line in _summary_lines(vel_div_summary(np.asarray(cols["vel_div"], dtype=float))):
        out.print(line)


# -- ACB factors (``vq dolphin acb-factors ...``) -------------------------------------------------

ACB_FACTORS = ("funding_btc", "dvol_btc", "fng", "taker", "w750")
LOOK_AHEAD_WARNING = (
    "WARNING: --w750-threshold full_sample: every row's w750 threshold is a percentile over ALL dates, later "
    "ones included. beta uses the future (look_ahead: true in every row and in the metadata); never use "
    "this table to judge a strategy out of sample."
)


def _cell(value, present: bool, fmt: str) -> str:
    return format(value, fmt) if present else "-"


def _present_line(columns: dict, n: int) -> str:
    counts = "  ".join(f"{f} {sum(columns[f'{f}_present'])}" for f in ACB_FACTORS)
    return f"dates present (of {n}): {counts}"


def print_acb_build(report, out) -> None:
    m = report.metadata
    config = m["config"]
    out.print(f"ACB factors: {report.path}")
    out.print(f"{m['rows']} dates {m['first_date']}..{m['last_date']}; w750 threshold {config['w750_threshold_mode']} "
              f"(p{config['w750_percentile']:g}, after {config['w750_min_history']} dates); "
              f"fng confirmation {config['fng_confirmation']}; taker {config['taker_definition']}")  # fmt: skip
    out.print(_present_line(report.table.to_pydict(), m["rows"]))
    boosted = sum(1 for b in report.table.column("base_boost").to_pylist() if b > 1.0)
    high = sum(1 for b in report.table.column("beta").to_pylist() if b == config["beta_high"])
    out.print(f"base_boost > 1 on {boosted} date(s); beta {config['beta_high']:g} on {high} date(s)")
    for note in report.notes:
        out.print(f"note: {note}")


def print_acb_table(path: Path, table, metadata: dict, out, day: dt.date | None = None) -> None:
    """Print the stored factor table (or its row of `day`) and, per factor, the dates it is present on."""
    cols = table.to_pydict()
    n = table.num_rows
    rows = [cols["date"].index(day)] if day is not None else range(n)
    look = " [bold red](LOOK-AHEAD: full-sample w750 threshold)[/]" if metadata.get("look_ahead") else ""
    t = Table(title=f"ACB factors {metadata['first_date']}..{metadata['last_date']} ({path}){look}")
    for name in ("date", "funding", "dvol", "fng", "taker", "signals", "boost", "w750", "w750 thr", "beta"):
        t.add_column(name, justify="right")
    for i in rows:
        t.add_row(
            cols["date"][i].isoformat(),
            _cell(cols["funding_btc"][i], cols["funding_btc_present"][i], "+.6f"),
            _cell(cols["dvol_btc"][i], cols["dvol_btc_present"][i], ".1f"),
            _cell(cols["fng"][i], cols["fng_present"][i], ".0f"),
            _cell(cols["taker"][i], cols["taker_present"][i], ".4f"),
            f"{cols['signals'][i]:.1f}",
            f"{cols['base_boost'][i]:.6f}",
            _cell(cols["w750_vel"][i], cols["w750_present"][i], "+.6f"),
            _cell(cols["w750_threshold"][i], cols["w750_threshold"][i] == cols["w750_threshold"][i], "+.6f"),
            f"{cols['beta'][i]:.1f}",
        )
    out.print(t)
    out.print(_present_line(cols, n))


# -- engine runs (``vq dolphin backtest``) ---------------------------------------------------------


def _money(x: float) -> str:
    return f"{x:,.2f}"


def print_backtest(run, bundle: Path, out) -> None:
    """The run's trades, gross, fees, net, bonus counts and headline metrics."""
    from vibe_quant.dolphin.backtest import exit_reasons

    c, m, r = run.costs, run.metrics, run.result
    out.print(f"DOLPHIN engine ({run.engine}), profile [bold]{c['profile']}[/], {run.start}..{run.end}, "
              f"{len(r.symbols)} assets, {len(r.ts):,} scan rows; config {r.config.digest()}")  # fmt: skip
    reasons = ", ".join(f"{k} {v}" for k, v in exit_reasons(r.trades).items()) or "none"
    out.print(f"trades {c['trades']} ({reasons}); signal bars tried {r.counts.candidates}, no IRP asset "
              f"{r.counts.no_irp_asset}, DC contradictions {r.counts.dc_contradict}, halted days {r.counts.halted_days}")  # fmt: skip
    table = Table(title="PnL and costs", show_header=True)
    for name in ("price PnL", "exit slippage", "refunds", "edge", "gross", "entry fees", "exit fees", "net"):
        table.add_column(name, justify="right")
    table.add_row(_money(c["price_pnl"]), _money(-c["exit_slippage"]), _money(c["refunds"]), _money(c["edge"]),
                  _money(c["gross"]), _money(-c["entry_fees"]), _money(-c["exit_fees"]), _money(c["net"]))  # fmt: skip
    out.print(table)
    out.print(f"bonuses drawn: entry refund {c['refund_entry_draws']}, exit refund {c['refund_exit_draws']}, "
              f"legacy edge {c['edge_draws']}")  # fmt: skip
    out.print(f"capital {_money(r.config.initial_capital)} -> {_money(r.capital)}; total return {m['total_return']:+.2%}, "
              f"Sharpe {m['sharpe_ratio']:.2f}, max drawdown {m['max_drawdown']:.2%}, win rate "
              f"{m['win_rate'] if m['win_rate'] == m['win_rate'] else 0:.1%}, profit factor {m['profit_factor']:.3f}")  # fmt: skip
    for note in run.notes:
        out.print(f"note: {note}")
    out.print(f"bundle: {bundle} (ledger.csv, daily.csv, equity.parquet, summary.json)")


_SHORT = {"timing_entry": "entry", "timing_exit": "exit", "slippage": "slip", "funding": "fund", "bonuses": "bonus",
          "liquidation": "liq", "refused": "refused", "unmatched_venue": "unmatched"}  # fmt: skip


def print_compare(comparison, run_row: int, run_id: str, bundle: Path, out, limit: int = 50) -> None:
    """Each engine trade against its venue position: the PnL difference in named parts, then the totals."""
    c = comparison
    shown = c.trades[:limit]
    parts = [p for p in c.parts if c.parts[p] or any(t.parts.get(p) for t in shown)]  # all-zero parts: not shown
    table = Table(title=f"orders vs engine: {len(c.trades)} engine trade(s)", show_header=True)
    for name in ("#", "asset", "dir", "status", "exit", "engine", "venue", "diff",
                 *(_SHORT.get(p, p) for p in parts), "residual"):  # fmt: skip
        table.add_column(name, justify="right")
    for t in shown:
        exit_ = t.engine_exit_reason if t.venue_exit_reason in (None, t.engine_exit_reason) else \
            f"{t.engine_exit_reason}/{t.venue_exit_reason}"  # fmt: skip
        table.add_row(str(t.trade_id), t.asset, "L" if t.direction > 0 else "S", t.status, exit_, _money(t.engine_net),
                      _money(t.venue_net), _money(t.diff), *(_money(t.parts.get(p, 0.0)) for p in parts),
                      f"{t.residual:.2e}")  # fmt: skip
    table.add_row("", "total", "", "", "", _money(c.engine_net), _money(c.venue_net), _money(c.diff),
                  *(_money(c.parts[p]) for p in parts), f"{c.residual:.2e}", style="bold")  # fmt: skip
    out.print(table)
    hidden = [_SHORT.get(p, p) for p in c.parts if p not in parts]
    if hidden:
        out.print(f"(zero in every row: {', '.join(hidden)})")
    if len(c.trades) > limit:
        out.print(f"(first {limit} of {len(c.trades)} trades shown; all in the bundle's dolphin_compare.json)")
    n = c.counts
    out.print(f"engine trades {n['engine_trades']}: matched {n['matched']}, liquidated {n['liquidated']}, refused "
              f"{n['refused']}, open at the end {n['open_at_end']}; venue round trips {n['venue_trades']}, "
              f"unmatched {n['unmatched_venue']}")  # fmt: skip
    out.print(f"run {run_row} ({run_id}); bundle: {bundle} (dolphin_compare.json)")
