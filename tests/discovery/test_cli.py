"""``vq discover``: bad input is refused before anything is written, naming the flag and the fix; a finished run is
listed, shown and exported, and an exported finalist validates and reproduces its stored metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import linked_home
from tests.discovery.conftest import ARGS
from vibe_quant.screening.check import metric_differences
from vibe_quant.state import StateManager


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"--population": "30"}, "--population must be a multiple of 4"),
        ({"--symbols": "NOPEUSDT"}, "NOPEUSDT"),
        ({"--timeframe": "7m"}, "timeframe '7m'"),
        ({"--end": "2023-08-02"}, "at least 4 days"),
        ({"--holdout-days": "40"}, "--holdout-days 40 leaves"),
        ({"--max-genes": "9"}, "--max-genes"),
        ({"--workers": "0"}, "--workers must be >= 1"),
        ({"--executor": "spark"}, "--executor 'spark'"),
        ({"--start": "2023-13-01"}, "--start"),
        ({"--end": "2023-12-31"}, "bars cover 2023-08-01..2023-08-31, not the whole period"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(cli, tmp_path: Path, aug_2023_catalog: Path, change: dict,
                                                            expected: str) -> None:  # fmt: skip
    home = linked_home(tmp_path / "home", aug_2023_catalog)
    args = list(ARGS)
    for flag, value in change.items():
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    code, text = cli(["--home", str(home.root), "discover", "run", *args])
    assert code != 0
    assert expected in text, text
    with StateManager(home.db_path) as db:
        assert db.count("discovery_runs") == 0


def test_unknown_indicator_and_unknown_run(cli, tmp_path: Path, aug_2023_catalog: Path) -> None:
    home = linked_home(tmp_path / "home", aug_2023_catalog)
    code, text = cli(["--home", str(home.root), "discover", "run", *ARGS, "--indicators", "RSI,MACDX"])
    assert code == 2
    assert "--indicators: 'MACDX' is not in the discovery pool" in text
    assert "Did you mean 'MACD'?" in text
    for args in (["run", "--resume", "42"], ["top", "42"], ["show", "42"]):
        code, text = cli(["--home", str(home.root), "discover", *args])
        assert code == 2, args
        assert "no discovery run 42" in text, args


def test_a_finished_run_is_listed_shown_and_exported(cli, finished, tmp_path: Path) -> None:
    home, run_id, result = finished
    code, text = cli(["--home", str(home.root), "discover", "list", "--json"])
    assert code == 0
    (row,) = json.loads(text)
    assert (row["id"], row["status"]) == (run_id, "completed")
    code, text = cli(["--home", str(home.root), "discover", "show", str(run_id)])
    assert code == 0
    assert "generation   6:" in text
    assert result.summary["verdict"] in text
    code, text = cli(["--home", str(home.root), "discover", "top", str(run_id), "--json"])
    assert [f["genome_key"] for f in json.loads(text)] == [f["genome_key"] for f in result.finalists]

    out = tmp_path / "export"
    passed = [f for f in result.finalists if f["passed"]]
    code, text = cli(["--home", str(home.root), "discover", "top", str(run_id), "--export", str(out)])
    if not passed:  # nothing passed: export refuses and says how to review the rejected ones
        assert code == 2
        assert "add --all" in text
    code, text = cli(["--home", str(home.root), "discover", "top", str(run_id), "--export", str(out), "--all"])
    assert code == 0, text
    files = sorted(out.glob("*.yaml"))
    assert len(files) == len(result.finalists)
    first = result.finalists[0]
    path = out / f"{first['genome']['document']['name']}.yaml"
    code, text = cli(["dsl", "validate", str(path)])
    assert code == 0, text
    # Reproduce with the command the file's header gives, in another home on the same catalog.
    header = next(line for line in path.read_text().splitlines() if line.startswith("# Reproduce: vq "))
    args = header.removeprefix("# Reproduce: vq ").split()
    fresh = linked_home(tmp_path / "fresh", home.catalog.resolve())
    shutil.copy(path, tmp_path / path.name)
    args[args.index("--strategy") + 1] = str(tmp_path / path.name)
    code, text = cli(["--home", str(fresh.root), *args, "--json"])
    assert code == 0, text
    summary, _ = json.JSONDecoder().raw_decode(text[text.index("{") :])  # stderr's warnings follow it
    metrics = summary["metrics"]
    assert metric_differences(first["genome"]["metrics"], metrics) == []
    assert metrics["total_trades"] == first["genome"]["total_trades"]


def test_a_profit_factor_without_losing_trades_reads_inf() -> None:
    from vibe_quant.present.discovery import profit_factor

    assert profit_factor({"profit_factor": None, "winning_trades": 51, "losing_trades": 0}) == "inf"
    assert profit_factor({"profit_factor": None, "winning_trades": 0, "losing_trades": 0}) == "-"  # no trade
    assert profit_factor({"profit_factor": 1.234, "winning_trades": 5, "losing_trades": 2}) == "1.23"
