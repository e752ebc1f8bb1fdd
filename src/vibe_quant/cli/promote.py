"""``vq promote RUN --to paper|live --why TEXT``: manual promotion gates; ``vq promote list`` shows the records."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from vibe_quant.cli.context import console, get_home
from vibe_quant.errors import UserError

out = console()


def promote_command(
    run: Annotated[str | None, typer.Argument(help="The validation run: a backtest_runs id or run id hash (`list`: show the promotions).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="paper (needs the overfitting filters passed) or live (needs paper days and a small divergence).")] = None,
    why: Annotated[str | None, typer.Option("--why", help="Why it is promoted (recorded).")] = None,
    who: Annotated[str | None, typer.Option("--who", help="Who promotes it (default: $USER or the login name).")] = None,
    override: Annotated[str | None, typer.Option("--override", help="Promote although the gate failed; the reason is recorded.")] = None,
    min_paper_days: Annotated[float, typer.Option("--min-paper-days", help="--to live: days of testnet paper trading needed.")] = 14.0,
    list_: Annotated[bool, typer.Option("--list", help="Show the promotions (of RUN when given).")] = False,
) -> None:  # fmt: skip
    """Promote a validated backtest to paper trading, or a paper-traded one to live (docs/specs.md#promotion-gates)."""
    if list_ or run == "list":
        _list(None if run in (None, "list") else run)
        return
    if run is None:
        raise UserError('give the run to promote: vq promote RUN --to paper --why "..." (vq backtest list shows runs)')
    if to is None:
        raise UserError("--to: choose paper or live")
    if why is None:
        raise UserError('--why: say why the run is promoted, e.g. --why "DSR 0.97, WFA 0.62"')
    from vibe_quant.paper.promote import promote
    from vibe_quant.results.load import find_run

    home = get_home(writable=True)
    row = promote(home, find_run(home, run)["id"], to, why, who, override, min_paper_days)
    note = f" (gate overridden: {escape(row['override'])})" if row["override"] else ""
    out.print(f"promoted run {row['run_id']} to {row['stage']} (promotion {row['id']}, by {escape(row['who'])}){note}")


def _list(run: str | None) -> None:
    from vibe_quant.paper.promote import list_promotions
    from vibe_quant.results.load import find_run

    home = get_home()
    run_id = find_run(home, run)["id"] if run is not None else None
    rows = list_promotions(home, run_id)
    if not rows:
        out.print("no promotions yet (vq promote RUN --to paper --why ...)")
        return
    table = Table("id", "run", "stage", "who", "when", "why", "override", "evidence", box=None)
    for r in rows:
        ev = r["evidence"]
        if r["stage"] == "paper":
            passed = [p for p in ev.get("points", []) if p["passed"]]
            what = f"point {passed[0]['point']} of sweep {passed[0]['sweep_run']}" if passed else "no passing point"
        else:
            what = f"{ev.get('paper_days', 0):.1f} paper days"
        if ev.get("failures"):
            what += f"; {len(ev['failures'])} failure(s)"
        table.add_row(str(r["id"]), str(r["run_id"]), r["stage"], escape(r["who"]), r["created_at"], escape(r["why"]),
                      escape(r["override"] or ""), escape(what))  # fmt: skip
    out.print(table)
