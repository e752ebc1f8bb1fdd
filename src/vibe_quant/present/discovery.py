"""Terminal views of discovery runs (``vq discover``)."""

from __future__ import annotations

from rich.table import Table

from vibe_quant.present.format import fmt


def generation_line(g: dict) -> str:
    sh = g.get("sharpe") or {}
    return (f"generation {g['generation']:>3}: {g['feasible']}/{g['population']} feasible, front {g['front']}, Sharpe best "
            f"{fmt(sh.get('best'), '.2f')} mean {fmt(sh.get('mean'), '.2f')}; ran {g['evaluated']}, cache {g['cache_hits']}, "
            f"repaired {g['repaired']}, rejected {g['rejected']}")  # fmt: skip


def runs_table(rows: list[dict]) -> Table:
    table = Table(title="discovery runs (newest first)")
    for col in ("id", "status", "market", "period", "population x gens", "done", "evaluated", "passed", "created"):
        table.add_column(col)
    for r in rows:
        c = r["config"]
        summary = r.get("summary") or {}
        table.add_row(str(r["id"]), r["status"], f"{','.join(c['symbols'])} {c['timeframe']}", f"{c['start']}..{c['end']}",
                      f"{c.get('population', 64)} x {c.get('generations', 20)}", str(r["generation"]), str(r["evaluated"]),
                      f"{summary.get('passed', '-')}/{summary.get('finalists', '-')}", r["created_at"][:19])  # fmt: skip
    return table


def finalists_table(rows: list[dict]) -> Table:
    table = Table(title="finalists (training metrics | held-out period | guard rails)")
    for col in ("rank", "genome", "rules", "Sharpe", "MaxDD", "PF", "trades", "held-out Sharpe", "held-out ret",
                "verdict"):  # fmt: skip
        table.add_column(col, overflow="fold")
    for f in rows:
        tm, hm = f["genome"]["metrics"] or {}, f["holdout_metrics"] or {}
        verdict = "[green]PASSED[/]" if f["passed"] else "[red]rejected[/]: " + "; ".join(f["reasons"])
        table.add_row(str(f["rank"]), f["genome_key"][:10], f["genome"]["description"], fmt(tm.get("sharpe_ratio"), ".2f"),
                      fmt(tm.get("max_drawdown"), ".1%"), profit_factor(tm), str(tm.get("total_trades")),
                      fmt(hm.get("sharpe_ratio"), ".2f"), fmt(hm.get("total_return"), ".2%"), verdict)  # fmt: skip
    return table


def profit_factor(m: dict) -> str:
    """A stored profit factor: ``inf`` when every closed trade won (stored as null, as JSON has no infinity)."""
    if m.get("profit_factor") is None and (m.get("winning_trades") or 0) > 0 and not m.get("losing_trades"):
        return "inf"
    return fmt(m.get("profit_factor"), ".2f")


def print_result(result, out) -> None:
    s = result.summary
    out.print(finalists_table(result.finalists))
    if "pbo" in s:
        pbo = s["pbo"]
        out.print(f"PBO over all {s['trials']} genomes: {fmt(pbo['figures'].get('pbo'), '.2f')} "
                  f"({'pass' if pbo['passed'] else 'FAIL: ' + str(pbo['reason'])})")  # fmt: skip
    if s.get("random_holdout_median_sharpe") is not None:
        out.print(f"held-out Sharpe, median: finalists {fmt(s['finalists_holdout_median_sharpe'], '.2f')} vs random genomes "
                  f"of the same complexity {fmt(s['random_holdout_median_sharpe'], '.2f')}")  # fmt: skip
    out.print(f"[bold]{s['verdict']}[/]; report {result.report} (and summary.json)")
