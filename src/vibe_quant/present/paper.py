"""Terminal views of paper sessions (``vq paper status``)."""

from __future__ import annotations

import datetime as dt

from rich.console import Console
from rich.table import Table


def feed_time(ns: int | None) -> str:
    if not ns:
        return "-"
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def print_status(info: dict, out: Console) -> None:
    """Print a session as :func:`vibe_quant.paper.service.describe` returns it."""
    cfg, snap = info["config"], info.get("snapshot") or {}
    out.print(f"[bold]paper session {info['id']}[/] ({info['mode']}) {info['liveness']}: {cfg['strategy']} "
              f"{','.join(cfg['symbols'])} {cfg['timeframe']}, from run {info['from_run'] or '-'}")  # fmt: skip
    out.print(f"feed at {feed_time(info.get('cursor_ns'))}, bar {info.get('bars_done') or 0}/{info.get('bars_total') or '?'}"
              f", heartbeat {info.get('heartbeat_at') or '-'}")  # fmt: skip
    if info.get("error"):
        out.print(f"[red]error:[/] {info['error']}")
    if info["liveness"] == "crashed":
        out.print(f"[yellow]the process is gone: restart with vq paper start --resume {info['id']}[/]")
    if snap:
        costs = snap.get("costs", {})
        start = snap.get("starting_balance") or 0
        eq = snap.get("equity") or 0
        out.print(f"equity {eq:,.2f} USDT (net {eq - start:+,.2f}), balance {snap.get('balance') or 0:,.2f}; "
                  f"fees {costs.get('fees', 0):,.2f}, funding {costs.get('funding', 0):+,.2f} "
                  f"({costs.get('funding_settlements', 0)} settlements), slippage {costs.get('slippage', 0):,.2f}, "
                  f"{costs.get('fills', 0)} fills, {costs.get('liquidations', 0)} liquidations")  # fmt: skip
        strategies = Table("strategy", "state", "reason", "since", title="strategies")
        for sid, st in (snap.get("strategies") or {}).items():
            style = "green" if st["state"] == "ACTIVE" else "red"
            strategies.add_row(sid, f"[{style}]{st['state']}[/]", st.get("reason") or "", feed_time(st.get("since")))
        out.print(strategies)
        if snap.get("positions"):
            table = Table(
                "instrument", "qty", "avg px", "mark", "unrealized", "margin", "liq. price", title="positions"
            )
            for p in snap["positions"]:
                table.add_row(p["instrument"], f"{p['signed_qty']:g}", f"{p['avg_px']:g}", f"{p['mark']:g}",
                              f"{p['unrealized_pnl']:+,.2f}", f"{p['margin']:,.2f}", f"{p['liquidation_price']:g}")  # fmt: skip
            out.print(table)
        else:
            out.print("no open position")
        if snap.get("open_orders"):
            table = Table("order", "strategy", "instrument", "type", "side", "qty", "price", "trigger", "reason",
                          title="open orders")  # fmt: skip
            for o in snap["open_orders"]:
                table.add_row(o["order_id"], o["strategy"], o["instrument"], o["type"], o["side"], f"{o['qty']:g}",
                              "" if o["price"] is None else f"{o['price']:g}",
                              "" if o["trigger"] is None else f"{o['trigger']:g}", o.get("reason") or "")  # fmt: skip
            out.print(table)
        fills = snap.get("recent_fills") or []
        if fills:
            table = Table("time", "instrument", "side", "qty", "price", "fee", "reason", title="recent fills")
            for f in fills[-10:]:
                table.add_row(feed_time(f["ts_ns"]), f["instrument"], "buy" if f["side"] > 0 else "sell", f"{f['qty']:g}",
                              f"{f['price']:g}", f"{f['fee']:.4f}", f["reason"])  # fmt: skip
            out.print(table)
    if info.get("commands"):
        table = Table("id", "command", "target", "requested", "by", "applied at bar", "result", title="commands")
        for c in info["commands"][-8:]:
            table.add_row(str(c["id"]), c["command"], c["target"] or "all", c["requested_at"] or "", c["requested_by"] or "",
                          "" if c["applied_bar"] is None else str(c["applied_bar"]), c["result"] or "pending")  # fmt: skip
        out.print(table)
    if info.get("checkpoints"):
        last = info["checkpoints"][-1]
        out.print(f"last checkpoint: {last['created_at']} ({last['reason']}, bar {last['bars_done']})")
    out.print(f"events: {info['events_log']}")


def _num(value) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.2f}"


def print_comparison(comparison, out: Console, trades: int = 15) -> None:
    """Print a :class:`~vibe_quant.paper.compare.Comparison` (``vq paper compare``)."""
    report = comparison.report
    out.print(f"[bold]paper session {comparison.session_id} vs its validation backtest[/] up to "
              f"{feed_time(comparison.cursor_ns)}")  # fmt: skip
    totals = Table("figure", "paper", "backtest", "difference", title="totals")
    for name, row in report.totals.items():
        totals.add_row(name, _num(row["paper"]), _num(row["backtest"]), _num(row["diff"]))
    out.print(totals)
    gap = report.max_equity_gap
    out.print(f"equity curves: {report.common_equity_points} common points, largest gap "
              f"{'-' if gap is None else f'{gap:,.2f} USDT'}; matched trades {len(report.matched)}"
              f"/{len(report.pairs)}, mean price difference {_num(report.mean_price_bps())} bps")  # fmt: skip
    rows = report.table()
    if rows and trades > 0:
        keys = [k for k in rows[0] if k not in ("paper", "backtest", "paper_entry_ns")][:10]
        table = Table(*[k.replace("backtest_entry_ns", "entry").replace("_", " ") for k in keys],
                      title=f"trades (first {min(trades, len(rows))} of {len(rows)})")  # fmt: skip

        def cell(key, value) -> str:
            if key.endswith("_ns"):
                return feed_time(value)
            return _num(value) if isinstance(value, int | float) else str(value or "")

        for row in rows[:trades]:
            table.add_row(*[cell(k, row[k]) for k in keys])
        out.print(table)
    parity = ", ".join(f"{k} {'equal' if v else 'DIFFER'}" for k, v in comparison.parity.items())
    if comparison.exact:
        out.print(f"[green]parity: exact[/] ({parity}): the paper node traded exactly as the backtest")
    else:
        out.print(f"[yellow]parity: not exact[/] ({parity})")
    breaches = report.breaches()
    if breaches:
        out.print("[red]outside the divergence thresholds:[/]")
        for b in breaches:
            out.print(f"  - {b}")
    else:
        out.print("[green]within the divergence thresholds[/] (docs/specs.md#divergence-report)")
