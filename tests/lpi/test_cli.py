"""``vq lpi features`` on the real COIN-M aggTrades day (quotes-free), and its errors."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from tests.conftest import MIRROR

DAY = MIRROR / "data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip"


def test_features_of_the_real_day_are_written_as_parquet(cli, tmp_path) -> None:
    out = tmp_path / "trace" / "day.lpi.parquet"
    code, text = cli(["lpi", "features", str(DAY), "--quotes-free", "--contract-size", "100", "--out", str(out),
                      "--json"])  # fmt: skip
    assert code == 0, text
    summary = json.loads(text.strip().splitlines()[-1])
    assert (summary["trades"], summary["quotes"], summary["snapshots"]) == (105_280, 0, 457)
    table = pq.read_table(out)
    assert table.num_rows == 457
    assert {"ts_event", "lpi_fast", "exh", "lev", "spread", "rv", "validity_flags"} <= set(table.column_names)
    ts = table.column("ts_event").to_numpy()
    assert (ts[1:] >= ts[:-1]).all()
    assert summary["lpi_fast_valid"] == int((~pq.read_table(out).to_pandas()["lpi_fast"].isna()).sum())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["lpi", "features", "/nonexistent/trades.csv", "--quotes-free"],
            "TRADES /nonexistent/trades.csv: no such file",
        ),
        (["lpi", "features", str(DAY)], "no --quotes file: give a bookTicker file, or --quotes-free"),
        (["lpi", "features", str(DAY), "--quotes-free", "--quotes", str(DAY)], "do not give --quotes too"),
        (["lpi", "features", str(DAY), "--quotes-free", "--clock", "tick"], "clock"),
        (["lpi", "features", str(DAY), "--quotes-free", "--window", "1"], "window"),
    ],
)
def test_bad_input_names_the_flag(cli, args, message, tmp_path) -> None:
    code, text = cli([*args, "--out", str(tmp_path / "x.parquet")])
    assert code != 0
    assert message in text
    assert not (tmp_path / "x.parquet").exists()
