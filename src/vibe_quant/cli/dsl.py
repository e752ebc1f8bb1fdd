"""``vq dsl ...`` / ``python -m vibe_quant.dsl ...``: validate, show, publish the schema, list and save strategies."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vibe_quant.cli.context import common_options, console, get_home

dsl_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                      help="The strategy language: validate, show, schema, list, save.")  # fmt: skip
dsl_app.callback()(common_options)
out = console()

FileArg = Annotated[str, typer.Argument(help="A strategy .yaml file, or the name of a shipped strategy.")]


def load(name_or_path: str, check_catalog: bool = True):
    """Load a strategy by path or shipped name; check its timeframes against the home's catalog if it has bars.

    Raises
    ------
    DslError
        Invalid file, or one that is neither a path nor a shipped strategy.
    """
    from vibe_quant.dsl.loader import DslError, Issue, load_file, resolve_strategy_file, shipped_names

    path = resolve_strategy_file(name_or_path)
    if path is None:
        raise DslError(name_or_path, [Issue(f"not a .yaml file or a shipped strategy ({', '.join(shipped_names())})")])
    catalog = None
    if check_catalog:
        home_catalog = get_home().catalog
        if (home_catalog / "data" / "bar").is_dir():
            catalog = home_catalog
    return load_file(path, catalog=catalog)


@dsl_app.command()
def validate(
    file: FileArg,
    catalog: Annotated[
        bool, typer.Option("--catalog/--no-catalog", help="Check the timeframes exist in the home's catalog.")
    ] = True,
) -> None:
    """Check a strategy file: shape, names, timeframes, look-ahead, sweep; exit 2 with located errors."""
    from vibe_quant.dsl.sweep import grid_size

    a = load(file, catalog)
    checked = (
        "and its timeframes are in the catalog" if catalog and (get_home().catalog / "data" / "bar").is_dir() else ""
    )
    out.print(f"[green]valid[/]: {a.source}: strategy {a.name} v{a.doc.version}, {a.primary.label}"
              f"{' + ' + ', '.join(t.label for t in a.higher) if a.higher else ''}, {len(a.indicators)} indicators, "
              f"sweep of {grid_size(a)} combinations {checked}".rstrip())  # fmt: skip


@dsl_app.command()
def schema(
    output: Annotated[Path | None, typer.Option("--out", help="Write the schema to this file.")] = None,
) -> None:
    """Print the JSON Schema of strategy files (for editors and form generators)."""
    from vibe_quant.dsl.model import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=True)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n")
        out.print(f"wrote {output}")


@dsl_app.command()
def show(
    file: FileArg,
    grid: Annotated[bool, typer.Option("--grid", help="List every sweep combination.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checked document as JSON.")] = False,
) -> None:
    """Show what a strategy compiles to: indicators per timeframe, rules, exits, filters, sweep."""
    from vibe_quant.dsl import sweep
    from vibe_quant.dsl.strategy import document_json

    a = load(file, check_catalog=False)
    if as_json:
        sys.stdout.write(json.dumps(json.loads(document_json(a)), indent=2) + "\n")
        return
    doc = a.doc
    out.print(f"[bold]{a.name}[/] v{doc.version}: {doc.description}")
    out.print(f"timeframe {a.primary.label}" + (f", higher {', '.join(t.label for t in a.higher)} (built from closed "
                                                f"{a.primary.label} bars)" if a.higher else ""))  # fmt: skip
    table = Table("indicator", "type", "timeframe", "parameters", "outputs", "runs on")
    for name, ri in a.indicators.items():
        d = ri.definition
        table.add_row(name, d.name, ri.timeframe.label, ", ".join(f"{k}={v}" for k, v in ri.params.items()),
                      ", ".join(o for o in d.outputs if o not in d.lookahead),
                      "NautilusTrader" if d.native else "vibe-quant")  # fmt: skip
    out.print(table)
    for title, rules in (("entry", a.entry), ("exit", a.exit)):
        for side in ("long", "short"):
            if rules[side]:
                out.print(f"{title} {side}: " + " AND ".join(c.text for c in rules[side]))
    if a.thresholds:
        out.print("thresholds: " + ", ".join(f"{k}={v:g}" for k, v in a.thresholds.items()))
    for label, rule in (("stop_loss", doc.stop_loss), ("take_profit", doc.take_profit)):
        if rule is not None:
            fields = {k: getattr(rule, k) for k in rule.__struct_fields__ if getattr(rule, k) is not None}
            out.print(f"{label}: " + ", ".join(f"{k}={v}" for k, v in fields.items()))
    sz = doc.position_management.sizing
    out.print(f"sizing: {sz.method} " + (f"fraction={sz.fraction}" if sz.method == "exposure" else
                                         f"risk_per_trade={sz.risk_per_trade}")
              + (f", max_leverage={sz.max_leverage}" if sz.max_leverage else "")
              + (f", max_margin_fraction={sz.max_margin_fraction}" if sz.max_margin_fraction else ""))  # fmt: skip
    tf = doc.time_filters
    if tf.allowed_sessions or tf.blocked_days or tf.avoid_around_funding.enabled:
        parts = (
            [f"sessions {', '.join(f'{s.start}-{s.end} {s.timezone}' for s in tf.allowed_sessions)}"]
            if tf.allowed_sessions
            else []
        )
        parts += [f"blocked {', '.join(tf.blocked_days)}"] if tf.blocked_days else []
        fa = tf.avoid_around_funding
        parts += (
            [f"no entries {fa.minutes_before} min before to {fa.minutes_after} min after funding"] if fa.enabled else []
        )
        out.print("time filters (entries only): " + "; ".join(parts))
    if doc.sweep:
        out.print(f"sweep: {sweep.grid_size(a)} combinations of " + ", ".join(f"{k} {v}" for k, v in doc.sweep.items()))
        if grid:
            for i, params in enumerate(sweep.grid(a), 1):
                out.print(f"  {i:>5}  " + ", ".join(f"{k}={v}" for k, v in params.items()))


@dsl_app.command("list")
def list_strategies() -> None:
    """List the shipped strategies and the ones stored in the state database (with versions)."""
    from vibe_quant.dsl.loader import SHIPPED_DIR, load_file, shipped_names
    from vibe_quant.state import StateManager

    table = Table("name", "where", "timeframe", "version", "description")
    for name in shipped_names():
        a = load_file(SHIPPED_DIR / f"{name}.yaml")
        table.add_row(name, "shipped", a.primary.label, str(a.doc.version), a.doc.description)
    home = get_home()
    if home.db_path.exists():
        with StateManager(home.db_path) as state:
            for row in state.find("strategies", strategy_type="dsl"):
                doc = row["dsl_config"]
                table.add_row(row["name"], "state db", doc.get("timeframe", ""), str(row["version"]),
                              row.get("description") or "")  # fmt: skip
    out.print(table)


@dsl_app.command()
def save(file: FileArg) -> None:
    """Validate a strategy and store it (a changed document becomes a new version)."""
    from vibe_quant.backtest.persist import save_strategy_version
    from vibe_quant.dsl.strategy import document_json
    from vibe_quant.state import StateManager

    a = load(file)
    home = get_home(writable=True)
    home.ensure()
    with StateManager(home.db_path) as state:
        sid, version, new = save_strategy_version(state, "dsl", json.loads(document_json(a)), a.text)
    out.print(f"{'stored' if new else 'unchanged'}: strategy {a.name} version {version} (strategies.id {sid})")
