"""The ``vq`` / ``python -m vibe_quant.data`` commands: exit codes, stderr, stdout formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MIRROR, PROJECT
from vibe_quant.cli import app, run
from vibe_quant.cli.data import data_app

ACCEPTANCE = ["ingest", "--symbols", "FILUSDT", "--start", "2023-08-01", "--end", "2023-08-31", "--source", str(MIRROR)]
COUNT_1M = "SELECT count(*) AS n FROM bars WHERE timeframe='1m'"


def _environ(env: dict[str, str] | None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "VQ_HOME"}
    environ.update(env or {})
    environ["COLUMNS"] = "200"
    return environ


def run_module(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <module> <args>`` from a fresh interpreter (no ``$VQ_HOME`` unless given)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env=_environ(env),
        timeout=300,
        check=False,
    )


def run_modules(commands: dict[str, list[str]]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run several ``python -m <argv>`` processes side by side (each imports NautilusTrader: ~2 s)."""
    procs = {
        key: subprocess.Popen(
            [sys.executable, "-m", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=PROJECT,
            env=_environ(None),
        )
        for key, argv in commands.items()
    }
    done = {}
    for key, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        done[key] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


@pytest.fixture(autouse=True)
def _no_vq_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VQ_HOME", raising=False)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home after the acceptance ingest (docs/specs.md#acceptance-commands; FILUSDT 2023-08), run as a real process."""
    home = tmp_path_factory.mktemp("cli") / "home"
    done = run_module("vibe_quant.data", "--home", str(home), "-q", *ACCEPTANCE)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "44,640" in done.stdout  # 1m bars written
    assert (home / "state" / "vibe_quant.db").is_file()
    return home


@pytest.fixture(scope="module")
def processes(ingested: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """Real entry-point processes, run concurrently once for the tests below."""
    h = str(ingested)
    empty = tmp_path_factory.mktemp("empty-home")
    return run_modules({
        "status-json": ["vibe_quant.data", "--home", h, "status", "--json"],
        "status-table": ["vibe_quant.data", "--home", h, "status"],
        "sql-json": ["vibe_quant", "--home", h, "data", "sql", COUNT_1M, "--format", "json"],
        "sql-syntax": ["vibe_quant.data", "--home", h, "sql", "SELEC count(*) FROM bars"],
        "unknown-symbol": ["vibe_quant.data", "--home", str(empty / "h"), "ingest", "--symbols", "BTCUSDX", "--source", str(MIRROR)],
        "status-empty-home": ["vibe_quant", "data", "--home", str(empty), "status"],
    })  # fmt: skip


# -- help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typer_app", "args", "expected"),
    [
        (app, ["--help"], "Usage: "),
        (app, ["data", "--help"], "ingest"),
        (data_app, ["--help"], "status"),
        (data_app, ["ingest", "--help"], "--symbols"),
        (data_app, ["sql", "--help"], "--format"),
    ],
    ids=["vq", "vq-data", "data", "data-ingest", "data-sql"],
)
def test_help_exits_zero(capsys: pytest.CaptureFixture[str], typer_app, args: list[str], expected: str) -> None:
    assert run(typer_app, args) == 0
    assert expected in capsys.readouterr().out


@pytest.mark.parametrize("module", ["vibe_quant", "vibe_quant.data"])
def test_help_of_module_entry_points(module: str) -> None:
    done = run_module(module, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: python -m " in done.stdout
    assert done.stderr == ""


def test_vq_console_script_help() -> None:
    vq = Path(sys.executable).with_name("vq")
    done = subprocess.run([str(vq), "--help"], capture_output=True, text=True, cwd=PROJECT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "Usage: vq " in done.stdout


# -- user errors: exit 2, one readable line, no traceback -----------------------------------------


def user_error_cases(home: Path) -> list[tuple[str, list[str], str]]:
    """(id, args after ``data``, expected stderr start) for a home that does not exist yet."""
    h = ["--home", str(home)]
    return [
        (
            "unknown-symbol",
            [*h, "ingest", "--symbols", "BTCUSDX", "--source", str(MIRROR)],
            "error: unknown symbol 'BTCUSDX': no spec in ",
        ),
        (
            "end-before-start",
            [*h, "ingest", "--symbols", "FILUSDT", "--start", "2023-08-31", "--end", "2023-08-01", "--source", str(MIRROR)],
            "error: --end 2023-08-01 is before --start 2023-08-31; swap them",
        ),
        (
            "bad-date",
            [*h, "ingest", "--symbols", "FILUSDT", "--start", "2023-02-30", "--source", str(MIRROR)],
            "error: --start '2023-02-30': not a date; use YYYY-MM-DD",
        ),
        (
            "unknown-dataset",
            [*h, "ingest", "--symbols", "FILUSDT", "--datasets", "kline", "--source", str(MIRROR)],
            "error: unknown dataset 'kline'; choose from klines, markPriceKlines, indexPriceKlines, premiumIndexKlines, "
            "fundingRate, aggTrades, trades, bookTicker, metrics, bookDepth. Did you mean 'klines'?",
        ),
        (
            "rebuild-without-from-archive",
            [*h, "rebuild"],
            "error: rebuild needs --from-archive (the raw archive is the only rebuild source)",
        ),
        (
            "status-on-empty-home",
            [*h, "status"],
            f"error: no data home at {home} (no vibe_quant.db); run `vq data ingest` first or pass --home",
        ),
        (
            "bad-sql-format",
            [*h, "sql", "SELECT 1", "--format", "xml"],
            "error: --format 'xml': choose table, csv or json",
        ),
    ]  # fmt: skip


USER_ERROR_IDS = [case[0] for case in user_error_cases(Path("x"))]


@pytest.mark.parametrize("case", USER_ERROR_IDS)
def test_user_error_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    home = tmp_path / "home"
    _, args, expected = next(c for c in user_error_cases(home) if c[0] == case)
    assert run(app, ["data", *args]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err  # one line, never wrapped
    assert lines[0].startswith(expected), captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("unknown-symbol", "error: unknown symbol 'BTCUSDX': no spec in "),
        ("status-empty-home", "error: no data home at "),
    ],
    ids=["unknown-symbol", "status-empty-home"],
)
def test_user_error_as_a_process(processes: dict, key: str, expected: str) -> None:
    done = processes[key]
    assert done.returncode == 2
    assert "error:" in done.stderr
    assert done.stderr.strip().startswith(expected), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_unknown_symbol_message_suggests_the_close_symbol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--home", str(tmp_path / "home"), "data", "ingest", "--symbols", "BTCUSDX", "--source", str(MIRROR)]
    assert run(app, args) == 2
    assert "Did you mean BTCUSDT" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--bogus"], "No such option: --bogus"),
        (["data", "update"], "Missing"),
        (["data", "ingest", "--years", "abc"], "--years"),
    ],
    ids=["unknown-option", "missing-option", "bad-option-value"],
)
def test_usage_error_exits_2_without_traceback(args: list[str], expected: str) -> None:
    done = run_module("vibe_quant", *args)
    assert "Traceback" not in done.stderr
    assert done.returncode == 2
    assert expected in done.stderr


def test_no_arguments_shows_help_without_traceback() -> None:
    done = run_module("vibe_quant")
    assert "Traceback" not in done.stderr
    assert "Usage: " in done.stdout + done.stderr
    assert done.returncode in (0, 2)


# -- the acceptance run -------------------------------------------------------------------------


def test_status_json_prints_only_json(processes: dict) -> None:
    done = processes["status-json"]
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # the WHOLE stdout is one JSON document
    fil = summary["symbols"]["FILUSDT"]
    assert fil["instrument_id"] == "FILUSDT-PERP.BINANCE"
    assert fil["canonical_id"] == "BINANCE:FILUSDT:PERP"
    assert {label: tf["bars"] for label, tf in fil["timeframes"].items()} == {
        "1m": 44640,
        "5m": 8928,
        "15m": 2976,
        "1h": 744,
        "4h": 186,
    }
    assert (fil["timeframes"]["1m"]["first_close"], fil["timeframes"]["1m"]["last_close"]) == (
        "2023-08-01T00:01:00Z",
        "2023-09-01T00:00:00Z",
    )
    assert fil["gaps_1m"]["count"] == 0
    assert fil["funding"]["rows"] == 0
    assert summary["archive"]["files"] == 1
    assert summary["ingest_errors"] == 0
    assert "Traceback" not in done.stderr


def test_status_json_with_home_from_the_environment(
    ingested: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VQ_HOME", str(ingested))
    assert run(data_app, ["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["symbols"]["FILUSDT"]["timeframes"]["1m"]["bars"] == 44640


def test_status_without_json_prints_a_table(processes: dict) -> None:
    done = processes["status-table"]
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if "symbol" in line)
    assert header.split() == ["symbol", "tf", "bars", "first", "close", "last", "close", "1m", "gaps", "funding"]
    row = next(line for line in lines if line.lstrip().startswith("FILUSDT"))
    assert row.split() == ["FILUSDT", "1m", "44,640", "2023-08-01", "00:01", "2023-09-01", "00:00", "0", "0"]
    assert any(line.split()[:2] == ["4h", "186"] for line in lines)
    assert "raw archive: 1 file(s), 1.4 MB; failed ingests recorded: 0" in done.stdout
    with pytest.raises(json.JSONDecodeError):
        json.loads(done.stdout)


@pytest.mark.parametrize(
    "args",
    [
        ["--home", "{home}", "data", "status", "--json"],
        ["data", "--home", "{home}", "status", "--json"],
    ],
    ids=["home-before-data", "home-after-data"],
)
def test_status_in_process(ingested: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    assert run(app, [a.format(home=ingested) for a in args]) == 0
    assert json.loads(capsys.readouterr().out)["symbols"]["FILUSDT"]["timeframes"]["4h"]["bars"] == 186


def test_home_after_the_subcommand(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = run_module("vibe_quant.data", *ACCEPTANCE, "--home", str(home))
    assert done.returncode == 0, done.stderr[-500:]
    status = run_module("vibe_quant.data", "status", "--json", "--home", str(home))
    assert json.loads(status.stdout)["symbols"]["FILUSDT"]["timeframes"]["1m"]["bars"] == 44640


def test_options_do_not_leak_between_runs(
    ingested: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(app, ["--home", str(ingested), "data", "status", "--json"]) == 0
    capsys.readouterr()
    empty = tmp_path / "other"
    monkeypatch.setenv("VQ_HOME", str(empty))
    assert run(app, ["data", "status", "--json"]) == 2  # must use $VQ_HOME, not the previous --home
    assert capsys.readouterr().err.startswith(f"error: no data home at {empty}")


# -- sql ----------------------------------------------------------------------------------------


def test_sql_json_as_a_process(processes: dict) -> None:
    done = processes["sql-json"]
    assert done.returncode == 0, done.stderr
    assert done.stdout == '[{"n":44640}]\n'
    assert json.loads(done.stdout) == [{"n": 44640}]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("json", '[{"n":44640}]\n'), ("csv", "n\n44640\n")],
)
def test_sql_formats_in_process(ingested: Path, capsys: pytest.CaptureFixture[str], fmt: str, expected: str) -> None:
    assert run(app, ["data", "--home", str(ingested), "sql", COUNT_1M, "--format", fmt]) == 0
    assert capsys.readouterr().out == expected


def test_sql_table_format(ingested: Path, capsys: pytest.CaptureFixture[str]) -> None:
    query = "SELECT timeframe, count(*) AS n FROM bars GROUP BY 1 ORDER BY n DESC"
    assert run(data_app, ["--home", str(ingested), "sql", query]) == 0
    rows = [line.strip("│┃ ").split() for line in capsys.readouterr().out.splitlines()]
    assert ["timeframe", "┃", "n"] in rows
    assert ["1m", "│", "44640"] in rows
    assert ["4h", "│", "186"] in rows


def test_sql_syntax_error_exits_2(processes: dict) -> None:
    done = processes["sql-syntax"]
    assert done.returncode == 2
    assert done.stderr.startswith('error: SQL failed: Parser Error: syntax error at or near "SELEC"')
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_sql_unknown_view_exits_2_in_process(ingested: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(app, ["--home", str(ingested), "data", "sql", "SELECT * FROM candles"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: SQL failed: Catalog Error: Table with name candles does not exist")
    assert "Traceback" not in err


def test_commands_that_write_log_json_lines_into_the_home(tmp_path: Path, cli) -> None:
    home = tmp_path / "fresh-home"  # does not exist yet: the log must still be created
    code, _ = cli(["-q", "data", "ingest", "--symbols", "FILUSDT", "--start", "2023-08-01", "--end", "2023-08-31",
                   "--datasets", "klines", "--source", str(MIRROR), "--home", str(home)])  # fmt: skip
    assert code == 0
    entries = [json.loads(line) for line in (home / "logs" / "vq.log").read_text().splitlines()]
    assert {"ts", "level", "logger", "msg"} <= set(entries[0])
    assert any(e["msg"].startswith("ingest run 1 committed: 1 file(s)") for e in entries)


# -- a file where the home should be: one message, exit 2, nothing created -----------------------

BLOCKED_COMMANDS = {
    "data-ingest": ["data", "ingest", *ACCEPTANCE[1:]],
    "data-status": ["data", "status"],
    "data-sql": ["data", "sql", "SELECT 1"],
    "demo": ["demo"],
    "backtest-run": ["backtest", "run", "--strategy", "ema_cross", "--symbols", "FILUSDT", "--start", "2023-08-01",
                     "--end", "2023-08-05"],
    "backtest-list": ["backtest", "list"],
    "screen-run": ["screen", "run", "--strategy", "ema_cross", "--symbols", "FILUSDT", "--sweep", "fast=10,20"],
    "overfit-run": ["overfit", "run", "--run-id", "1"],
    "sizing-list": ["sizing", "list"],
}  # fmt: skip


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("command", list(BLOCKED_COMMANDS), ids=list(BLOCKED_COMMANDS))
def test_a_file_in_the_home_path_is_named_and_nothing_is_created(tmp_path: Path, cli, command: str) -> None:
    (tmp_path / "file.txt").write_text("not a directory\n")
    home = tmp_path / "file.txt" / "home"
    code, output = cli(["--home", str(home), *BLOCKED_COMMANDS[command]])
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines == [
        f"error: data home {home}: {tmp_path / 'file.txt'} is a file, not a directory. Fix: choose a --home (or "
        f"$VQ_HOME) that is a directory or does not exist yet, or move {tmp_path / 'file.txt'} away"
    ]
    assert listing(tmp_path) == ["file.txt"]


@pytest.mark.parametrize(
    ("blocked", "args"),
    [("", ["data", "status"]), ("", ["data", "ingest", *ACCEPTANCE[1:]]), ("catalog", ["data", "ingest", *ACCEPTANCE[1:]])],
    ids=["home-is-a-file-read", "home-is-a-file-write", "catalog-is-a-file"],
)  # fmt: skip
def test_a_file_as_the_home_or_one_of_its_folders(tmp_path: Path, cli, blocked: str, args: list[str]) -> None:
    home = tmp_path / "home"
    if blocked:
        home.mkdir()
    (home / blocked if blocked else home).write_text("x\n")
    before = listing(tmp_path)
    code, output = cli(["--home", str(home), *args])
    assert code == 2, output
    where = f"data home {home}" + (f": {home / blocked}" if blocked else "")
    assert output.startswith(f"error: {where} is a file, not a directory. Fix: ")
    assert "Traceback" not in output
    assert listing(tmp_path) == before


# -- a home that does not exist is not created by a command that fails --------------------------

MISSING_HOME = {
    "backtest-run": (
        ["backtest", "run", "--strategy", "ema_cross", "--symbols", "FILUSDT", "--start", "2023-08-01", "--end",
         "2023-08-05"],
        "error: no data in {home} (no catalog/): ingest first, e.g. vq --home {home} data ingest --symbols FILUSDT",
    ),
    "screen-run": (
        ["screen", "run", "--strategy", "rsi_mean_reversion_mtf", "--symbols", "FILUSDT", "--start", "2023-08-01",
         "--end", "2023-08-05", "--sizing", "kelly"],
        "error: no data in {home} (no catalog/): ingest first",
    ),
    "screen-resume": (["screen", "run", "--resume", "1"], "error: no data in {home} (no catalog/): ingest first"),
    "screen-top": (["screen", "top", "1", "--create-runs"], "error: no state database in {home} (no state/vibe_quant.db): "
                   "no screening run yet"),
    "overfit-run": (["overfit", "run", "--run-id", "1"], "error: no state database in {home} (no state/vibe_quant.db): "
                    "no screening run 1 to filter; screen first"),
    "overfit-show": (["overfit", "show", "1"], "error: no state database in {home} (no state/vibe_quant.db): "),
    "backtest-show": (["backtest", "show", "1"], "error: no state database in {home}: no run to show"),
}  # fmt: skip


@pytest.mark.parametrize("command", list(MISSING_HOME), ids=list(MISSING_HOME))
def test_a_missing_home_stays_missing_when_the_command_fails(tmp_path: Path, cli, command: str) -> None:
    home = tmp_path / "new-home"
    args, expected = MISSING_HOME[command]
    code, output = cli(["--home", str(home), *args])
    assert code == 2, output
    assert output.startswith(expected.format(home=home)), output
    assert "Traceback" not in output
    assert not home.exists()
