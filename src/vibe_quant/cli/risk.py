"""``vq sizing`` and ``vq risk``: the presets stored in SQLite (list, show, save, delete), and the
``--sizing`` / ``--risk`` options the runners share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table

from vibe_quant.cli.context import common_options, console, get_home
from vibe_quant.errors import UserError

sizing_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
risk_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
sizing_app.callback()(common_options)
risk_app.callback()(common_options)
out = console()


def _rows(kind: str) -> list[dict]:
    from vibe_quant.risk.config import list_presets
    from vibe_quant.state import StateManager

    with StateManager(get_home(writable=True).db_path) as state:
        return list_presets(state, kind)


def _list(kind: str) -> None:
    from vibe_quant.risk.config import BUILTIN_NOTES

    table = Table("id", "name", "method" if kind == "sizing" else "breakers on", "note", box=None)
    for row in _rows(kind):
        if kind == "sizing":
            what = row["method"]
        else:
            on = [k for level in ("strategy_level", "portfolio_level") for k, v in row[level].items()
                  if k.startswith("max_") or k.startswith("rolling_drawdown") if v is not None]  # fmt: skip
            what = str(len(on))
        table.add_row(str(row["id"]), row["name"], what, BUILTIN_NOTES.get(row["name"], ""))
    out.print(table)


def _show(kind: str, name: str) -> None:
    from vibe_quant.errors import did_you_mean

    rows = _rows(kind)
    match = [r for r in rows if r["name"] == name]
    if not match:
        names = [r["name"] for r in rows]
        raise UserError(f"no {kind} preset {name!r}; presets: {', '.join(names)}." + did_you_mean(name, names))
    from vibe_quant.risk.config import preset_document

    typer.echo(yaml.safe_dump(preset_document(kind, match[0]), sort_keys=False), nl=False)


def _save(kind: str, name: str, file: Path) -> None:
    from vibe_quant.risk.config import save_preset
    from vibe_quant.state import StateManager

    with StateManager(get_home(writable=True).db_path) as state, state.transaction():
        row_id = save_preset(state, kind, name, file)
    out.print(f"saved {kind} preset {name!r} (id {row_id}); use it with --{kind} {name}")


def _delete(kind: str, name: str) -> None:
    from vibe_quant.risk.config import delete_preset
    from vibe_quant.state import StateManager

    with StateManager(get_home(writable=True).db_path) as state, state.transaction():
        delete_preset(state, kind, name)
    out.print(f"deleted {kind} preset {name!r} (a built-in one comes back with its defaults on next use)")


def _register(app: typer.Typer, kind: str) -> None:
    app.command("list", help=f"The stored {kind} presets.")(lambda: _list(kind))

    @app.command("show", help=f"Print a {kind} preset as YAML (edit it, then `vq {kind} save NAME FILE`).")
    def show(name: Annotated[str, typer.Argument(help="Preset name.")]) -> None:
        _show(kind, name)

    @app.command("save", help=f"Store a {kind} preset from a YAML file (replaces one of the same name).")
    def save(
        name: Annotated[str, typer.Argument(help="Preset name.")],
        file: Annotated[Path, typer.Argument(help="The YAML file (as `show` prints it).", exists=True, dir_okay=False)],
    ) -> None:
        _save(kind, name, file)

    @app.command("delete", help=f"Delete a {kind} preset no run refers to.")
    def delete(name: Annotated[str, typer.Argument(help="Preset name.")]) -> None:
        _delete(kind, name)


_register(sizing_app, "sizing")
_register(risk_app, "risk")

__all__ = ["risk_app", "sizing_app"]
