"""``vq lpi features``: the liquidation-pressure signal trace of Binance tick files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from vibe_quant.cli.context import common_options, console

lpi_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                      help="Liquidation-pressure research (LPI): the feature engine over Binance tick files.")  # fmt: skip
lpi_app.callback()(common_options)
out = console()


@lpi_app.command("features")
def features_command(
    trades: Annotated[Path, typer.Argument(help="A Binance aggTrades file (CSV or the official zip).")],
    quotes: Annotated[Path | None, typer.Option("--quotes", help="A bookTicker file (CSV or zip) of the same period.")] = None,
    quotes_free: Annotated[bool, typer.Option("--quotes-free", help="No quotes: infer the touch from the trades (flagged in every snapshot).")] = False,
    clock: Annotated[str, typer.Option(help="Bucket clock: volume (close every --bucket-notional) or time (every --bucket-ms).")] = "volume",
    bucket_notional: Annotated[float, typer.Option(help="Volume clock: notional per bucket, quote currency.")] = 1_000_000.0,
    bucket_ms: Annotated[int, typer.Option(help="Time clock: bucket length, ms.")] = 1000,
    eta: Annotated[float, typer.Option(help="Impact threshold: a trade this far (fraction) through the mid is impact.")] = 0.0005,
    window: Annotated[int, typer.Option(help="Rolling z-score window, buckets.")] = 300,
    zscore: Annotated[str, typer.Option(help="Rolling z-score: mad (median/MAD) or std (mean/std).")] = "mad",
    contract_size: Annotated[float | None, typer.Option(help="Inverse (COIN-M) contract size in USD, e.g. 100 for BTCUSD_PERP (default: linear).")] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write the trace here (Parquet; default: TRADES stem + .lpi.parquet beside it).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:  # fmt: skip
    """Compute the LPI snapshots (LPI_fast, EXH, LEV, spread, depth proxy, RV, validity) at every bucket close."""
    from vibe_quant.lpi.params import LpiParams
    from vibe_quant.lpi.trace import trace, write_trace

    params = LpiParams(clock=clock, bucket_notional=bucket_notional, bucket_ns=bucket_ms * 1_000_000, eta=eta,
                       window=window, zscore=zscore, quotes_free=quotes_free)  # fmt: skip
    result = trace(trades, quotes, params, contract_size)
    target = output or trades.with_name(trades.name.split(".")[0] + ".lpi.parquet")
    write_trace(result, target)
    summary = {**result.summary(), "output": str(target)}
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    out.print(f"{summary['trades']:,} trades, {summary['quotes']:,} quotes -> {summary['snapshots']:,} snapshots "
              f"({clock} clock{', quotes-free' if quotes_free else ''}); LPI_fast valid in {summary['lpi_fast_valid']:,}, "
              f"median {summary['lpi_fast_p50']}, max {summary['lpi_fast_max']}")  # fmt: skip
    out.print(f"trace: {target}")
