"""HTML tearsheets written into a run's bundle (``vq report RUN``), from stored results only.

A backtest: metrics, every figure of :func:`vibe_quant.results.run_figures`, the cost breakdown,
the trade log with fees, funding and slippage per trade, the circuit-breaker story, the resolved
config and the data manifest reference. A screening sweep: the sweep table, the Pareto front and
the overfitting verdicts (funnel, walk-forward windows, per-candidate pass/fail).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from vibe_quant.home import Home
from vibe_quant.plots.run import cost_steps, pnl_by
from vibe_quant.present.backtest import METRICS, risk_lines
from vibe_quant.present.format import fmt, plain
from vibe_quant.present.html import badge, cards, esc, figure_block, json_block, page, table
from vibe_quant.results import RunResults, SweepResults, find_run, load_run, load_sweep, run_figures, sweep_figures
from vibe_quant.staging import write_atomic

REPORT_NAME = "report.html"
TRADE_ROWS = 2000  # trades shown in full in a report; longer logs show the first and last half (trades.csv has all)
SWEEP_ROWS = 300  # sweep points listed: the Pareto front, candidates with verdicts, then the best by Sharpe
_PERCENT = {"total_return", "cagr", "max_drawdown", "volatility_annual", "win_rate"}
_TRADE_COLUMNS = ("symbol", "direction", "entry_time", "exit_time", "entry_price", "exit_price", "quantity",
                  "entry_fee", "exit_fee", "funding_fees", "slippage_cost", "gross_pnl", "net_pnl", "roi_percent",
                  "exit_reason")  # fmt: skip
VERDICTS = (("passed_hard_filters", "hard filters"), ("passed_deflated_sharpe", "DSR"),
            ("passed_purged_kfold", "purged K-fold"), ("passed_cpcv", "CPCV"), ("passed_pbo", "PBO"),
            ("passed_walk_forward", "walk-forward"), ("overfitting_passed", "overall"))  # fmt: skip


def metric_text(key: str, value) -> str:
    """A metric as a report or the dashboard shows it: fractions in percent, money with separators."""
    if key in _PERCENT and isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return f"{100 * value:.2f}%"
    return fmt(value, ",.2f") if isinstance(value, float) and not math.isnan(value) and not math.isinf(value) \
        else fmt(value)  # fmt: skip


def write_report(home: Home, run: str) -> Path:
    """Write the tearsheet of `run` (a backtest or a screening sweep) and return its path.

    Raises
    ------
    UserError
        No such run, not finished, or its stored results cannot be read.
    """
    row = find_run(home, run)
    if row.get("sweep_spec") is not None:
        return write_sweep_report(load_sweep(home, str(row["id"])), home.runs / f"screening-{row['id']}")
    return write_run_report(load_run(home, str(row["id"])))


def write_run_report(r: RunResults) -> Path:
    """``<bundle>/report.html`` for one backtest; returns its path."""
    cfg, m = r.config, r.metrics
    title = f"{cfg['strategy']} on {', '.join(cfg['symbols'])} {cfg['timeframe']}"
    subtitle = (f"run {r.run_id} (backtest_runs.id {r.row['id']}), {cfg['start']}..{cfg['end']}, {cfg['mode']} mode, "
                f"latency {cfg.get('latency')}, leverage {cfg.get('leverage')}x, {r.summary.get('bars_processed', 0):,} "
                f"{'ticks' if 'ticks' in r.summary else 'bars'}")  # fmt: skip
    sections: list[tuple[str, str]] = [("Metrics", cards((k, metric_text(k, m.get(k))) for k in METRICS))]
    notes = [*risk_lines(r.summary.get("risk")), *(f"warning: {w}" for w in r.summary.get("warnings", []))]
    if notes:
        sections.append(("Risk and warnings", "".join(f"<p>{esc(plain(n))}</p>" for n in notes)))
    figures = run_figures(r)
    for key, fig in figures.items():
        sections.append(("", figure_block(key, fig)))
        if key == "costs":
            sections.append(("Cost breakdown", _cost_table(r)))
        if key == "pnl_breakdown":
            sections.append(("By exit reason and side", _breakdown_tables(r.trades)))
    sections.append((f"Trade log ({len(r.trades):,} trades)", _trade_log(r.trades)))
    sections.append(("Configuration (config_resolved.yaml)", f"<pre>{esc(r.text('config_resolved.yaml'))}</pre>"))
    sections.append(("Data manifest reference (manifest_ref.json)", f"<pre>{esc(r.text('manifest_ref.json'))}</pre>"))
    out = r.bundle / REPORT_NAME
    write_atomic(out, page(title, subtitle, sections))
    return out


def _cost_table(r: RunResults) -> str:
    steps = cost_steps(r.costs, r.metrics.get("net_pnl"))
    rows = [(label, f"{v:,.2f}") for label, v in steps]
    rows.append(("net PnL", f"{sum(v for _, v in steps):,.2f}"))
    est = r.costs.get("total_slippage_estimated")
    if est is not None:
        rows.append(("slippage the model estimated", f"{est:,.2f}"))
    rows += [("fills", fmt(r.costs.get("fills"))), ("liquidations", fmt(r.costs.get("liquidations")))]
    return table(("item", "USDT"), rows)


def _breakdown_tables(trades: pd.DataFrame) -> str:
    parts = []
    for column, label in (("exit_reason", "exit reason"), ("direction", "side")):
        t = pnl_by(trades, column)
        parts.append(table((label, "trades", "net PnL", "win rate", "fees"),
                           [(k, f"{int(v.trades):,}", f"{v.net_pnl:,.2f}", f"{100 * v.win_rate:.1f}%", f"{v.fees:,.2f}")
                            for k, v in t.iterrows()]))  # fmt: skip
    return '<div style="display:flex; gap:32px">' + "".join(parts) + "</div>"


def _trade_log(trades: pd.DataFrame) -> str:
    shown = trades
    note = ""
    if len(trades) > TRADE_ROWS:
        half = TRADE_ROWS // 2
        shown = pd.concat([trades.head(half), trades.tail(half)])
        note = (f"<p>{len(trades):,} trades: the first and last {half:,} are listed; trades.csv in the bundle holds "
                "every one.</p>")  # fmt: skip
    cols = [c for c in _TRADE_COLUMNS if c in trades.columns]
    rows = ([fmt(v) if not isinstance(v, float) else fmt(v, ",.4f" if abs(v) < 100 else ",.2f") for v in rec]
            for rec in shown[cols].itertuples(index=False, name=None))  # fmt: skip
    return note + table(cols, rows, left=(0, 1, 2, 3, len(cols) - 1), scroll=True)


def write_sweep_report(s: SweepResults, out_dir: Path) -> Path:
    """``runs/screening-<id>/report.html`` for one sweep; returns its path."""
    p = s.row["parameters"]
    ok = s.points[s.points["error_message"].isna()]
    title = f"Screening: {s.strategy} on {', '.join(p.get('symbols', []))} {p.get('timeframe', '')}"
    subtitle = (f"backtest_runs.id {s.run_row}, {p.get('start')}..{p.get('end')}, {len(s.points):,} points "
                f"({len(s.points) - len(ok):,} failed), {int(ok['is_pareto_optimal'].fillna(0).sum())} on the Pareto "
                f"front, status {s.row['status']}")  # fmt: skip
    figures = sweep_figures(s)
    sections: list[tuple[str, str]] = [("Pareto front", figure_block("pareto", figures.pop("pareto")))]
    report = s.overfitting or {}
    if report:
        funnel = " -> ".join(f"{name} {n}" for name, n in report.get("funnel", []))
        sections.append(("Overfitting verdicts", f"<p>filters {', '.join(report.get('filters', []))}; funnel: "
                         f"{esc(funnel)}; survivors: {esc(report.get('survivors'))}</p>"))  # fmt: skip
        for key, fig in figures.items():
            sections.append(("", figure_block(key, fig)))
        sections.append(("Run-level figures", json_block(report.get("run_level", {}))))
    sections.append(("Sweep table", _sweep_table(ok)))
    if s.summary is not None:
        sections.append(("Sweep definition", json_block(s.summary.get("sweep_spec", s.summary))))
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / REPORT_NAME
    write_atomic(out, page(title, subtitle, sections))
    return out


def _sweep_table(points: pd.DataFrame) -> str:
    front = points["is_pareto_optimal"].fillna(0).astype(bool)
    judged = points["overfitting_passed"].notna()
    order = points.assign(_rank=(~front).astype(int) * 2 + (~judged).astype(int)).sort_values(
        ["_rank", "sharpe_ratio"], ascending=[True, False], na_position="last")  # fmt: skip
    shown = order.head(SWEEP_ROWS)
    note = (
        f"<p>{len(points):,} points; listed: {len(shown):,} (Pareto front, then judged candidates, then by Sharpe).</p>"
    )
    headers = ["row", "parameters", "Sharpe", "return", "max DD", "PF", "trades", "Pareto",
               *(label for _, label in VERDICTS)]  # fmt: skip
    rows = []
    for _, r in shown.iterrows():
        params = ", ".join(f"{k}={v}" for k, v in (r["parameters"] or {}).items())
        rows.append([esc(r["id"]), esc(params), fmt(r["sharpe_ratio"], ".2f"), metric_text("total_return", r["total_return"]),
                     metric_text("max_drawdown", r["max_drawdown"]), fmt(r["profit_factor"], ".2f"),
                     fmt(_int(r["total_trades"])), "&#9733;" if r["is_pareto_optimal"] else "",
                     *(badge(_flag(r[c])) for c, _ in VERDICTS)])  # fmt: skip
    return note + table(headers, rows, left=(1,), scroll=True, raw=True)


def _flag(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else bool(value)


def _int(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)
