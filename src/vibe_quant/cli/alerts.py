"""``vq alerts list|test``: the stored alerts, and a test message to the configured Telegram chat."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from vibe_quant.cli.context import common_options, console, get_home

alerts_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                         help="Telegram alerts: the stored alerts, and a test message.")  # fmt: skip
alerts_app.callback()(common_options)
out = console()


@alerts_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option(min=1, help="How many alerts, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows on stdout.")] = False,
) -> None:  # fmt: skip
    """Alerts stored in the state database (sent, held by the rate limit, failed, unconfigured), newest first."""
    from rich.table import Table

    from vibe_quant.alerts import list_alerts

    rows = list_alerts(get_home().db_path, limit=limit)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        out.print("no alerts yet", highlight=False)
        return
    table = Table("id", "created (UTC)", "kind", "status", "attempts", "text", title="alerts (newest first)")
    for r in rows:
        table.add_row(str(r["id"]), r["created_at"], r["kind"], r["status"], str(r["attempts"]),
                      r["text"] + (f"\n[red]{r['error']}[/]" if r["error"] and r["status"] == "failed" else ""))  # fmt: skip
    out.print(table)


@alerts_app.command("test")
def test_command() -> None:
    """Send a test message to the configured chat (VQ_TELEGRAM_BOT_TOKEN, VQ_TELEGRAM_CHAT_ID or the setting)."""
    from vibe_quant.alerts import send_test

    row = send_test(get_home(writable=True))
    out.print(f"test message sent (alert {row['id']}, {row['attempts']} attempt(s))", highlight=False)
