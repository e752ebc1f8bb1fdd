"""Terminal views of the overfitting filters."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from vibe_quant.overfitting.pipeline import LABELS
from vibe_quant.present.format import fmt


def print_report(report, out: Console) -> None:
    """An overfitting report: funnel, run-level figures, one row per candidate, the report paths."""
    out.print(f"screening run {report.run_row} ({report.strategy}): {report.n_trials} trials, "
              f"{report.funnel[0][1]} candidates; filters: {', '.join(LABELS[f] for f in report.filters)}")  # fmt: skip
    out.print("funnel: " + " -> ".join(f"{name} {n}" for name, n in report.funnel))
    if "pbo" in report.run_level:
        p = report.run_level["pbo"]
        out.print(
            f"PBO {p['pbo']:.2f} over {p['combinations']} CSCV splits (prob. the IS best loses OOS {p['prob_oos_loss']:.2f})"
        )
    if "cpcv" in report.run_level:
        p = report.run_level["cpcv"]
        out.print(
            f"CPCV: {p['paths']} paths, mean Sharpe {fmt(p['mean_path_sharpe'], '.2f')}, std {fmt(p['std_path_sharpe'], '.2f')}"
        )
    wfa = report.run_level.get("wfa", {})
    if wfa.get("chosen_per_window"):
        out.print(f"walk-forward optimisation over {len(wfa['windows'])} windows: efficiency {fmt(wfa['efficiency'], '.2f')}, "
                  f"{wfa['profitable_windows_pct']:.0%} OOS windows profitable, OOS Sharpe {fmt(wfa['oos_sharpe'], '.2f')}")  # fmt: skip
    table = Table(title="candidates (cells: the filter's figure; red = failed)")
    table.add_column("id", justify="right")
    for f in report.filters:
        table.add_column(LABELS[f], justify="right")
    table.add_column("verdict")
    table.add_column("parameters", overflow="fold")
    varying = _varying([c.row["parameters"] for c in report.candidates])
    for c in report.candidates:
        cells = []
        for f in report.filters:
            v = c.verdicts.get(f)
            cells.append("" if v is None else f"[{'green' if v.passed else 'red'}]{_cell(f, v)}[/]")
        failed = next((v.reason for v in c.verdicts.values() if not v.passed), None)
        verdict = "[green]survives[/]" if failed is None else failed
        if c.validation is not None:
            verdict += (
                f"; validated: Sharpe {fmt(c.validation['screening_sharpe'], '.2f')} -> {fmt(c.validation['validation_sharpe'], '.2f')}"
                + (f" (run {c.validation['run_id']})" if c.validation["run_id"] is not None else " (honest costs)")
            )
            if c.validation["execution_sensitive"]:
                verdict += " [yellow]execution-sensitive[/]"
        params = "\n".join(f"{k}={v}" for k, v in c.row["parameters"].items() if k in varying) or "(no swept parameter)"
        table.add_row(str(c.id), *cells, verdict, params)
    out.print(table)
    out.print(f"report: {report.report_md}\n        {report.report_json}")
    out.print(f"done in {report.elapsed_s:.1f}s")


def _cell(name: str, v) -> str:
    f = v.figures
    if name == "dsr":
        return fmt(f.get("dsr"), ".3f")
    if name == "wfa":
        return fmt(f.get("efficiency"), ".2f") if f else "error"
    if name == "pkfold":
        return f"{fmt(f.get('mean_oos_sharpe'), '.2f')}±{fmt(f.get('std_oos_sharpe'), '.2f')}"
    return "pass" if v.passed else "fail"


def _varying(params: list[dict]) -> set[str]:
    if not params:
        return set()
    return {k for k in params[0] if len({json.dumps(p.get(k)) for p in params}) > 1}
