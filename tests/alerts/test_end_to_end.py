"""End to end, in process: a replay paper session whose strategy breaker trips (one loss in a row halts it)
sends exactly one Telegram message through the installed dispatcher, the rest held; the daily summary reads
that session; ``vq alerts`` lists and tests; a failing background job sends one message; no token is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.alerts.conftest import CHAT, TOKEN, FakeTelegram
from tests.conftest import linked_home, vq
from tests.jobs.conftest import wait_for
from vibe_quant.alerts import daily_summary, install, installed, list_alerts, uninstall
from vibe_quant.home import Home
from vibe_quant.state import StateManager

TRIP_ON_FIRST_LOSS = """\
strategy_level: {max_consecutive_losses: 1, max_drawdown_scale_pct: null, max_drawdown_halt_pct: null,
                 max_daily_loss_pct: null, cooldown_after_halt_hours: 2}
portfolio_level: {max_portfolio_drawdown_pct: null, max_portfolio_daily_loss_pct: null, max_total_exposure_pct: null,
                  max_correlated_exposure_pct: null}
"""


def env(fake: FakeTelegram) -> dict[str, str]:
    return {"VQ_TELEGRAM_BOT_TOKEN": TOKEN, "VQ_TELEGRAM_CHAT_ID": CHAT, "VQ_TELEGRAM_API_URL": fake.url}


@pytest.fixture(scope="module")
def tripped(aug_2023_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Home, FakeTelegram]]:
    """A home with run 1 (ema_trend_atr FILUSDT 15m, Aug 1-8, halting after each losing trade) and paper session 1
    replayed from it (the session installs the alerts) against a fake Telegram."""
    root = tmp_path_factory.mktemp("alerts")
    home = linked_home(root / "home", aug_2023_catalog)
    risk = root / "trip.yaml"
    risk.write_text(TRIP_ON_FIRST_LOSS)
    fake = FakeTelegram()
    fake.thread.start()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env(fake).items():
            mp.setenv(name, value)
        mp.delenv("VQ_TELEGRAM_TOKEN_FILE", raising=False)
        code, out, err = vq(["--home", str(home.root), "backtest", "run", "--strategy", "ema_trend_atr", "--symbols",
                             "FILUSDT-PERP", "--timeframe", "15m", "--start", "2023-08-01", "--end", "2023-08-08",
                             "--risk", str(risk), "--json"])  # fmt: skip
        assert code == 0, out + err
        dispatcher = install(home, tick_s=0.05)
        assert install(home) is dispatcher  # idempotent
        uninstall(timeout=10)
        # the session installs the home's dispatcher itself, and removes it (drained) at its end
        code, out, err = vq(["--home", str(home.root), "paper", "start", "--from-run", "1", "--json"])
        assert code == 0, out + err
        assert installed() is None
    yield home, fake
    fake.server.shutdown()
    fake.server.server_close()


def test_a_tripped_breaker_sends_exactly_one_message(tripped) -> None:
    home, fake = tripped
    rows = list_alerts(home.db_path, limit=500)
    halts = [r for r in rows if r["kind"] == "strategy_halt"]
    trips = [r for r in halts if r["fields"].get("breaker") == "consecutive_losses"]
    assert len(trips) >= 2, [r["text"] for r in halts]  # the breaker tripped more than once ...
    assert [r["status"] for r in rows].count("sent") == 1  # ... and one message went out
    (message,) = fake.messages()
    assert message.startswith("vibe-quant strategy halt: strategy breaker consecutive_losses tripped for ")
    assert message.endswith("; halt: orders cancelled, position closed")
    assert {r["status"] for r in halts if r["status"] != "sent"} == {"held"}
    assert len(fake.requests) == 1
    with StateManager(home.db_path) as state:
        dump = "\n".join(state.conn.iterdump())
    assert TOKEN not in dump


def test_the_daily_summary_reports_the_finished_session(tripped) -> None:
    home, _ = tripped
    with StateManager(home.db_path) as state:
        session = state.get("paper_sessions", 1)
    snap = session["snapshot"]
    text = daily_summary(home)
    lines = text.splitlines()
    assert lines[0].startswith("vibe-quant daily summary ")
    pnl = snap["equity"] - snap["starting_balance"]
    assert lines[1] == (
        f"#1 replay ema_trend_atr FILUSDT 15m (finished): equity {snap['equity']:,.2f}, net PnL {pnl:+,.2f} "
        f"({pnl / snap['starting_balance']:+.2%}) vs {snap['starting_balance']:,.2f}, open positions "
        f"{len(snap['positions'])}, fees {snap['costs']['fees']:,.2f}, funding {snap['costs']['funding']:+,.2f}, "
        f"fills {snap['costs']['fills']}"
        + (f"; HALTED: {', '.join(s for s, v in snap['strategies'].items() if v['state'] == 'HALTED')}"
           if any(v["state"] == "HALTED" for v in snap["strategies"].values()) else "")
    )  # fmt: skip
    assert snap["costs"]["fills"] > 0
    assert snap["costs"]["fees"] > 0
    assert lines[2].startswith("alerts in the last 24 h: 1 sent, ")
    import datetime as dt

    later = daily_summary(home, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
    assert "no paper, testnet or live session ran in the last 24 hours" in later


def test_vq_alerts_list_and_test(tripped, telegram, cli, monkeypatch) -> None:
    home, _ = tripped
    code, out = cli(["--home", str(home.root), "alerts", "list", "--limit", "3", "--json"])
    assert code == 0, out
    rows = json.loads(out)
    assert len(rows) == 3
    assert rows[0]["id"] > rows[1]["id"]
    code, out = cli(["--home", str(home.root), "alerts", "test"])
    assert code == 2
    assert "telegram alerts are not configured: no bot token: set VQ_TELEGRAM_BOT_TOKEN" in out
    assert "set VQ_TELEGRAM_CHAT_ID" in out
    for name, value in env(telegram).items():
        monkeypatch.setenv(name, value)
    code, out = cli(["--home", str(home.root), "alerts", "test"])
    assert code == 0, out
    assert "test message sent" in out
    (message,) = telegram.messages()
    assert message.startswith("vibe-quant test: test message from ")
    code, out = cli(["--home", str(home.root), "alerts", "list", "--limit", "1"])
    assert "test" in out
    assert "sent" in out


def test_a_failing_job_sends_one_message(telegram_env, tmp_path) -> None:
    from vibe_quant.jobs import get_job, start_job

    home = Home(tmp_path / "home").ensure()
    ids = [start_job(home, ["backtest", "run", "--strategy", "no_such_strategy", "--symbols", "FILUSDT"])
           for _ in range(2)]  # fmt: skip
    for job_id in ids:
        wait_for(lambda j=job_id: get_job(home, j).status != "running", 60, f"job {job_id} to end")
    rows = wait_for(lambda: len(r := list_alerts(home.db_path)) == 2 and r, 10, "two job_failed alerts")
    assert sorted(r["status"] for r in rows) == ["held", "sent"]  # one message a minute across processes
    (message,) = telegram_env.wait_messages(1)  # the sent row is claimed before the request goes out
    assert message.startswith("vibe-quant job failed: job ")
    assert "failed: vq backtest run --strategy no_such_strategy --symbols FILUSDT: error: " in message
    assert "no_such_strategy" in message


def test_a_restarted_session_does_not_alert_its_catch_up_again(tripped) -> None:
    home, fake = tripped
    before = len(fake.requests)
    with StateManager(home.db_path) as state:
        stored = state.count("alerts")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env(fake).items():
            mp.setenv(name, value)
        code, out, err = vq(["--home", str(home.root), "paper", "start", "--resume", "1", "--json"])
    assert code == 0, out + err
    assert json.loads(out.strip().splitlines()[-1])["caught_up_bars"] > 0
    assert len(fake.requests) == before  # the halts the catch-up re-made were alerted the first time
    with StateManager(home.db_path) as state:
        assert state.count("alerts") == stored
