"""``vq paper start|list|status|halt|resume|close-all|stop|compare``: paper trading on a TradingNode."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from vibe_quant.cli.context import common_options, console, get_home, state
from vibe_quant.cli.options import RiskOption, SizingOption, parse_date
from vibe_quant.errors import UserError

paper_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                        help="Paper trading: the validated strategy on a NautilusTrader TradingNode.")  # fmt: skip
paper_app.callback()(common_options)
out = console()

SessionArg = Annotated[int, typer.Argument(help="The paper session id (vq paper list).")]


@paper_app.command("start")
def start_command(
    from_run: Annotated[int | None, typer.Option("--from-run", help="Trade a validated run's exact configuration (a backtest_runs id, see vq backtest list).")] = None,
    strategy: Annotated[str | None, typer.Option(help="As vq backtest run --strategy (when not --from-run).")] = None,
    symbols: Annotated[str | None, typer.Option(help="Comma-separated, e.g. FILUSDT-PERP.")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Bar timeframe (default: a DSL strategy's own, else 5m).")] = None,
    start: Annotated[str | None, typer.Option(help="Replay: first day (UTC) to replay (default: the run's).")] = None,
    end: Annotated[str | None, typer.Option(help="Replay: last day (UTC, inclusive) (default: the run's).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="Strategy parameter NAME=VALUE (repeatable).")] = None,
    latency: Annotated[str | None, typer.Option(help="Latency preset (default: retail, the validation default).")] = None,
    leverage: Annotated[float, typer.Option(help="Leverage.")] = 10.0,
    balance: Annotated[float, typer.Option(help="Starting balance, USDT.")] = 100_000.0,
    sizing: SizingOption = None,
    risk: RiskOption = None,
    feed: Annotated[str, typer.Option(help="replay (the catalog through our simulated venue) or testnet (Binance USD-M testnet).")] = "replay",
    speed: Annotated[str, typer.Option(help="Replay speed: 1 = real time, 600 = ten minutes a second, max = as fast as it goes.")] = "max",
    checkpoint_every: Annotated[float, typer.Option("--checkpoint-every", help="Seconds between checkpoints (also on halt, stop and finish).")] = 60.0,
    resume: Annotated[int | None, typer.Option("--resume", help="Restart session N where it stopped or crashed (also after kill -9).")] = None,
    keys_file: Annotated[Path | None, typer.Option("--keys-file", help="Testnet: a chmod-600 file of NAME=VALUE keys (default: the environment).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Testnet: build the node (clients, strategies, risk gate) and print what it would connect to; connect nowhere.")] = False,
    allow_looser_limits: Annotated[str | None, typer.Option("--allow-looser-limits", help="Testnet: trade limits looser than live safety, for this recorded REASON.")] = None,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", help="Replay: serve Prometheus metrics at http://127.0.0.1:PORT/metrics while the session runs (0: any free port).")] = None,
    metrics_linger: Annotated[float, typer.Option("--metrics-linger", help="Seconds to keep serving the metrics after the session ends (for a last scrape).")] = 0.0,
    detach: Annotated[bool, typer.Option("--detach", help="Run as a background job (vq jobs list); print the session id and return.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the session summary as JSON on stdout.")] = False,
) -> None:  # fmt: skip
    """Start a paper session (or restart one with --resume); the strategy objects are the backtest's."""
    from vibe_quant.paper.service import create_replay, parse_speed
    from vibe_quant.paper.session import Pacing

    if feed not in ("replay", "testnet"):
        raise UserError(f"--feed {feed!r}: replay or testnet")
    if feed == "testnet":
        if metrics_port is not None:
            raise UserError("--metrics-port serves replay sessions; testnet and live sessions do not export yet")
        start_live("testnet", from_run, resume, keys_file, check, allow_looser_limits, checkpoint_every, as_json,
                   lambda home: _config(home, from_run, strategy, symbols, timeframe, start, end, param or [], latency,
                                        leverage, balance, sizing, risk))  # fmt: skip
        return
    if check or keys_file or allow_looser_limits:
        raise UserError("--check, --keys-file and --allow-looser-limits are for --feed testnet (live safety, keys)")
    if metrics_port is not None and not 0 <= metrics_port <= 65535:
        raise UserError(f"--metrics-port {metrics_port}: a TCP port, 0 to 65535 (0: any free port)")
    if not metrics_linger >= 0:
        raise UserError(f"--metrics-linger {metrics_linger}: seconds, >= 0")
    if not checkpoint_every > 0:
        raise UserError(f"--checkpoint-every {checkpoint_every}: seconds, > 0")
    pace = parse_speed(speed)
    home = get_home().require_catalog()
    if resume is not None:
        if from_run is not None or strategy or symbols:
            raise UserError(
                "--resume restarts a stored session: do not combine it with --from-run/--strategy/--symbols"
            )
        session_id = resume
    else:
        config = _config(home, from_run, strategy, symbols, timeframe, start, end, param or [], latency, leverage,
                         balance, sizing, risk)  # fmt: skip
        home = get_home(writable=True)
        session_id, _ = create_replay(home, config, pace, from_run=from_run)
    if detach:
        from vibe_quant.jobs import start_job

        argv = ["paper", "start", "--resume", str(session_id), "--speed", speed, "--checkpoint-every",
                str(checkpoint_every)]  # fmt: skip
        if metrics_port is not None:
            argv += ["--metrics-port", str(metrics_port), "--metrics-linger", str(metrics_linger)]
        job_id = start_job(get_home(writable=True), argv, job_type="paper", label=f"paper session {session_id}")
        _set_job(home, session_id, job_id)
        if as_json:
            sys.stdout.write(json.dumps({"session": session_id, "job": job_id}) + "\n")
            return
        out.print(f"paper session {session_id} started as background job {job_id}")
        out.print(
            f"watch: vq paper status {session_id}   halt: vq paper halt {session_id}   stop: vq paper stop {session_id}"
        )
        return
    _run(home, session_id, Pacing(speed=pace, checkpoint_s=checkpoint_every), resume is not None, as_json,
         metrics_port, metrics_linger)  # fmt: skip


def start_live(mode: str, from_run, resume, keys_file, check: bool, allow_looser: str | None, checkpoint_every: float,
               as_json: bool, make_config) -> None:  # fmt: skip
    """`vq paper start --feed testnet` and `vq live start`: live safety, keys, check or run."""
    from vibe_quant.paper.binance import load_credentials
    from vibe_quant.paper.live import check_live, run_live_session
    from vibe_quant.paper.service import create_live, live_plan

    credentials = load_credentials(mode, keys_file)
    home = get_home()
    if resume is not None:
        if check:
            raise UserError("--check builds a new session's node: do not combine it with --resume")
        session_id = resume
    else:
        home = home.require_catalog() if from_run is None else home
        plan, limits = live_plan(make_config(home), mode, allow_looser, from_run, home)
        if check:
            home.logs.mkdir(parents=True, exist_ok=True)
            summary = {**check_live(plan, mode, credentials, log_directory=home.logs), "limits": limits}
            if as_json:
                sys.stdout.write(json.dumps(summary, default=str) + "\n")
                return
            out.print(f"[bold]{mode} node built, not connected[/] (a start connects and reconciles with the venue):")
            for key, value in summary.items():
                out.print(f"  {key}: {value}")
            return
        session_id = create_live(get_home(writable=True), plan, mode, limits, from_run)
    out.print(f"{mode} session {session_id}: connecting to Binance ({'testnet' if mode == 'testnet' else 'PRODUCTION'}); "
              f"stop with Ctrl-C or vq paper stop {session_id}")  # fmt: skip
    status = run_live_session(get_home(writable=True), session_id, credentials, checkpoint_every)
    out.print(f"{mode} session {session_id} {status}")


def _set_job(home, session_id: int, job_id: int) -> None:
    from vibe_quant.paper import store
    from vibe_quant.state import StateManager

    with StateManager(home.db_path) as db:
        store.update_session(db, session_id, job_id=job_id)


def _run(home, session_id: int, pacing, resume: bool, as_json: bool, metrics_port: int | None = None,
         metrics_linger: float = 0.0) -> None:  # fmt: skip
    from vibe_quant.paper.service import run_replay
    from vibe_quant.progress import rich_progress

    home = get_home(writable=True)
    if not as_json:
        out.print(f"paper session {session_id}: replay at {'max speed' if pacing.speed is None else f'{pacing.speed:g}x'}"
                  f"{' (restart: catching up first)' if resume else ''}; stop with Ctrl-C or vq paper stop {session_id}")  # fmt: skip
    with rich_progress(not (state.quiet or as_json)) as progress:
        outcome = run_replay(home, session_id, pacing, resume=resume, progress=progress, metrics_port=metrics_port,
                             metrics_linger_s=metrics_linger)  # fmt: skip
    m = outcome.result.metrics
    summary = {"session": session_id, "status": outcome.status, "bars": outcome.bars_done,
               "caught_up_bars": outcome.caught_up, "fills": len(outcome.result.recorder.fills),
               "trades": len(outcome.result.trades), "final_equity": m["final_equity"], "net_pnl": m["net_pnl"],
               "total_fees": m["total_fees"], "total_funding": m["total_funding"], "liquidations": m["liquidations"],
               "elapsed_s": round(outcome.elapsed_s, 3)}  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    out.print(f"session {session_id} {outcome.status}: {outcome.bars_done} bars"
              f"{f' ({outcome.caught_up} replayed again after the restart)' if outcome.caught_up else ''}, "
              f"{summary['fills']} fills, {summary['trades']} trades, equity {m['final_equity']:,.2f} USDT "
              f"(net {m['net_pnl']:+,.2f}; fees {m['total_fees']:,.2f}, funding {m['total_funding']:+,.2f}, "
              f"liquidations {m['liquidations']}) in {outcome.elapsed_s:.1f} s")  # fmt: skip
    out.print(f"compare with its validation backtest: vq paper compare {session_id}")


def _config(home, from_run, strategy, symbols, timeframe, start, end, params, latency, leverage, balance, sizing,
            risk):  # fmt: skip
    import msgspec

    from vibe_quant.backtest.persist import load_run_config
    from vibe_quant.cli.backtest import build_config
    from vibe_quant.state import StateManager

    if from_run is not None:
        if strategy or symbols or params or sizing or risk:
            raise UserError("--from-run takes the run's exact configuration: do not combine it with --strategy/"
                            "--symbols/--param/--sizing/--risk")  # fmt: skip
        home.require_state(f"--from-run {from_run}: no runs in a home without a state database")
        with StateManager(home.db_path) as db:
            config = load_run_config(db, from_run, statuses=("completed",))
        first = parse_date("--start", start) if start else config.start
        last = parse_date("--end", end) if end else config.end
        if last < first:
            raise UserError(f"--start {first} is after --end {last}")
        if (first, last) != (config.start, config.end):
            config = msgspec.structs.replace(config, start=first, end=last)
        return config
    return build_config(home, strategy, symbols, timeframe, start, end, params, "validation", latency, leverage,
                        balance, None, None, sizing, risk)  # fmt: skip


@paper_app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="JSON rows on stdout.")] = False) -> None:
    """Paper sessions, newest first."""
    from rich.table import Table

    from vibe_quant.paper import store
    from vibe_quant.paper.service import liveness
    from vibe_quant.state import StateManager

    home = get_home()
    if not home.db_path.exists():
        rows = []
    else:
        with StateManager(home.db_path) as db:
            rows = store.list_sessions(db)
    items = []
    for row in rows:
        cfg, snap = row["config"], row.get("snapshot") or {}
        items.append({"id": row["id"], "mode": row["mode"], "status": liveness(row), "strategy": cfg["strategy"],
                      "symbols": ",".join(cfg["symbols"]), "timeframe": cfg["timeframe"], "from_run": row["from_run"],
                      "bars": f"{row['bars_done'] or 0}/{row['bars_total'] or '?'}", "equity": snap.get("equity"),
                      "created_at": row["created_at"]})  # fmt: skip
    if as_json:
        sys.stdout.write(json.dumps(items) + "\n")
        return
    if not items:
        out.print("no paper sessions yet: vq paper start --from-run RUN")
        return
    table = Table("id", "mode", "status", "strategy", "symbols", "tf", "from run", "bars", "equity", "created")
    for i in items:
        table.add_row(str(i["id"]), i["mode"], i["status"], i["strategy"], i["symbols"], i["timeframe"],
                      str(i["from_run"] or ""), i["bars"], f"{i['equity']:,.2f}" if i["equity"] is not None else "",
                      i["created_at"])  # fmt: skip
    out.print(table)


@paper_app.command("status")
def status_command(
    session: SessionArg,
    as_json: Annotated[bool, typer.Option("--json", help="The whole status as JSON on stdout.")] = False,
) -> None:  # fmt: skip
    """A session's state: equity, positions, open orders, strategies, costs, commands, checkpoints."""
    from vibe_quant.paper.service import describe

    home = get_home().require_state(f"session {session}: no state database in this home")
    info = describe(home, session)
    if as_json:
        sys.stdout.write(json.dumps(info, default=str) + "\n")
        return
    from vibe_quant.present.paper import print_status

    print_status(info, out)


def _command(session: int, command: str, target: str | None, reason: str | None) -> None:
    from vibe_quant.paper.service import request

    home = get_home(writable=True)
    cid = request(home, session, command, target, reason)
    out.print(f"{command.replace('_', '-')} sent to session {session} (command {cid}); it applies at the next bar "
              f"boundary: vq paper status {session}")  # fmt: skip


StrategyOpt = Annotated[
    str | None, typer.Option("--strategy", help="One strategy id (default: every strategy of the session).")
]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (journaled with the command).")]


@paper_app.command("halt")
def halt_command(session: SessionArg, strategy: StrategyOpt = None, reason: ReasonOpt = None) -> None:
    """HALT strategies: cancel their orders, no new decisions until resumed (positions stay)."""
    _command(session, "halt", strategy, reason)


@paper_app.command("resume")
def resume_command(session: SessionArg, strategy: StrategyOpt = None, reason: ReasonOpt = None) -> None:
    """RESUME halted strategies."""
    _command(session, "resume", strategy, reason)


@paper_app.command("close-all")
def close_all_command(
    session: SessionArg,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: cancel every order and flatten every position.")] = False,
    reason: ReasonOpt = None,
) -> None:  # fmt: skip
    """The kill switch: cancel every order, flatten every position at market, halt every strategy."""
    if not yes:
        raise UserError("close-all cancels every order and closes every position at market: confirm with --yes")
    _command(session, "close_all", None, reason)


@paper_app.command("stop")
def stop_command(session: SessionArg, reason: ReasonOpt = None) -> None:
    """Stop the session at the next bar boundary (checkpointed; restart with vq paper start --resume N)."""
    _command(session, "stop", None, reason)


@paper_app.command("compare")
def compare_command(
    session: SessionArg,
    trades: Annotated[int, typer.Option("--trades", help="How many trades of the per-trade table to print.")] = 15,
    as_json: Annotated[bool, typer.Option("--json", help="The whole report as JSON on stdout.")] = False,
) -> None:  # fmt: skip
    """Divergence report: the session against its validation backtest over the same period, trade by trade."""
    from vibe_quant.paper.compare import compare_session

    home = get_home().require_catalog()
    comparison = compare_session(home, session)
    if as_json:
        sys.stdout.write(json.dumps(comparison.to_dict(), default=str) + "\n")
        return
    from vibe_quant.present.paper import print_comparison

    print_comparison(comparison, out, trades)


live_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                       help="Live trading on Binance USD-M: a promoted run, live safety limits, explicit confirmation.")  # fmt: skip
live_app.callback()(common_options)


@live_app.command("start")
def live_start_command(
    from_run: Annotated[int, typer.Option("--from-run", help="A run promoted to live (vq promote RUN --to live).")],
    confirm_live: Annotated[bool, typer.Option("--confirm-live", help="Trade real money on Binance's production endpoints.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Build the node and print what it would connect to; connect nowhere.")] = False,
    keys_file: Annotated[Path | None, typer.Option("--keys-file", help="A chmod-600 file of NAME=VALUE keys (default: BINANCE_API_KEY/SECRET).")] = None,
    allow_looser_limits: Annotated[str | None, typer.Option("--allow-looser-limits", help="Trade limits looser than live safety, for this recorded REASON.")] = None,
    resume: Annotated[int | None, typer.Option("--resume", help="Restart live session N (reconciles with the venue).")] = None,
    checkpoint_every: Annotated[float, typer.Option("--checkpoint-every", help="Seconds between checkpoints.")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="--check: the summary as JSON.")] = False,
) -> None:  # fmt: skip
    """Start live trading of a promoted run (the same strategy objects, live safety limits, reconciliation on start)."""
    if not check and not confirm_live:
        raise UserError(
            "live trading sends real orders on Binance: add --confirm-live (or --check to build without connecting)"
        )
    start_live("live", from_run, resume, keys_file, check, allow_looser_limits, checkpoint_every, as_json,
               lambda home: _config(home, from_run, None, None, None, None, None, [], None, 10.0, 100_000.0, None, None))  # fmt: skip
