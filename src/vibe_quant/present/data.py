"""Terminal views of the data stage: the catalog status."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table


def print_status(summary: dict, console: Console) -> None:
    """The catalog's instruments, timeframes, gaps, funding, streams and flags (``data.validate.summarize``)."""

    table = Table(
        title=f"catalog {summary['catalog']} (bar close times, UTC)",
        title_justify="left",
        box=box.SIMPLE,
        pad_edge=False,
        collapse_padding=True,
    )
    for col in ("symbol", "tf", "bars", "first close", "last close", "1m gaps", "funding"):
        table.add_column(col, justify="right" if col in ("bars", "1m gaps", "funding") else "left", no_wrap=True)

    def short(ts: str | None) -> str:
        return ts.replace("T", " ")[:16] if ts else "-"

    for symbol, s in summary["symbols"].items():
        funding = f"{s['funding']['rows']:,}"
        gaps = f"{s['gaps_1m']['count']}" + (
            f" ({s['gaps_1m']['missing_bars']:,} bars)" if s["gaps_1m"]["count"] else ""
        )
        rows = [(label, tf) for label, tf in s["timeframes"].items() if tf["bars"]]
        if not rows:
            table.add_row(symbol, "-", "0", "-", "-", "-", funding)
        for i, (label, tf) in enumerate(rows):
            table.add_row(
                symbol if i == 0 else "",
                label,
                f"{tf['bars']:,}",
                short(tf["first_close"]),
                short(tf["last_close"]),
                gaps if i == 0 else "",
                funding if i == 0 else "",
            )
    console.print(table)
    streams = Table(title="tick and custom-data streams (event times, UTC)", title_justify="left", box=box.SIMPLE)
    for col in ("instrument", "stream", "rows", "files", "first", "last"):
        streams.add_column(col, justify="right" if col in ("rows", "files") else "left", no_wrap=True)
    for symbol, s in summary["symbols"].items():
        for label, st in s.get("streams", {}).items():
            streams.add_row(symbol, label, f"{st['rows']:,}", str(st["files"]), short(st["first"]), short(st["last"]))
    if streams.row_count:
        console.print(streams)
    flagged = [
        (key, d)
        for key, d in summary["datasets"].items()
        if d.get("out_of_order") or d.get("crossed") or d["duplicates"]
    ]
    for key, d in flagged:
        console.print(
            f"{key}: {d['duplicates']:,} duplicate(s) dropped, {d.get('out_of_order', 0):,} out of order (sorted), "
            f"{d.get('crossed', 0):,} crossed quote(s)"
        )
    a = summary["archive"]
    console.print(
        f"raw archive: {a['files']} file(s), {a['bytes'] / 1e6:.1f} MB; failed ingests recorded: {summary['ingest_errors']}"
    )
