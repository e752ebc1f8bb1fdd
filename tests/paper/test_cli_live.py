"""``vq paper start --feed testnet`` and ``vq live start``: the whole node is built (Binance clients,
strategies, risk gate with live safety) without connecting; promotion, confirmation and keys are
enforced; no output of a start holds the secret."""

from __future__ import annotations

import json

import pytest

KEY, SECRET = "vqKEYabcdefghijklmnop0123456789", "vqSECRETzyxwvutsrqponm9876543210"


@pytest.fixture
def keys(monkeypatch):
    for mode in ("TESTNET_", ""):
        monkeypatch.setenv(f"BINANCE_{mode}API_KEY", KEY)
        monkeypatch.setenv(f"BINANCE_{mode}API_SECRET", SECRET)
    monkeypatch.delenv("BINANCE_FUTURES_TESTNET_API_KEY", raising=False)
    monkeypatch.delenv("BINANCE_FUTURES_TESTNET_API_SECRET", raising=False)


def _all_outputs(home, out: str) -> str:
    texts = [out]
    for path in home.root.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(texts)


def test_testnet_check_builds_the_gated_node_with_live_safety_and_leaks_no_secret(run_home, cli, keys) -> None:
    code, out = cli(["--home", str(run_home.root), "paper", "start", "--feed", "testnet", "--from-run", "1", "--check",
                     "--json"])  # fmt: skip
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["endpoints"]["http"] == "https://testnet.binancefuture.com"
    assert summary["instruments"] == ["FILUSDT-PERP.BINANCE"]
    assert summary["strategies"] == ["EmaTrendAtr-001"]
    assert summary["bar_types"] == ["FILUSDT-PERP.BINANCE-15-MINUTE-LAST-EXTERNAL"]
    assert summary["risk_gate"] is True
    assert summary["breaker_actors"] == ["StrategyRiskActor", "PortfolioRiskActor"]
    assert summary["post_only_entries"] is True
    # the validated run traded 10x: live safety caps it at 3x, and says so
    assert summary["leverages"] == {"FILUSDT": 3}
    assert summary["limits"]["capped"] == [{"field": "leverage", "limit": 3.0, "value": 10.0}]
    assert summary["reconciliation"]["on_start"] is True
    everything = _all_outputs(run_home, out)
    assert SECRET not in everything
    assert KEY not in everything
    assert summary["credentials"]["api_key"] == f"{KEY[:4]}…{KEY[-4:]}"


def test_testnet_refuses_limits_looser_than_live_safety_unless_a_reason_is_recorded(paper_home, cli, keys) -> None:
    home = ["--home", str(paper_home.root)]
    args = [*home, "paper", "start", "--feed", "testnet", "--strategy", "ema_cross", "--symbols", "FILUSDT-PERP",
            "--start", "2023-08-01", "--end", "2023-08-02", "--risk", "seed_default", "--check", "--json"]  # fmt: skip
    code, out = cli(args)
    assert code != 0
    assert "--allow-looser-limits" in out
    assert "max_total_exposure_pct" in out
    code, out = cli([*args, "--allow-looser-limits", "drill on testnet"])
    assert code == 0, out
    limits = json.loads(out.strip().splitlines()[-1])["limits"]
    assert limits["reason"] == "drill on testnet"
    assert "risk.portfolio_level.max_total_exposure_pct" in {x["field"] for x in limits["loosened"]}


def test_live_needs_a_promoted_run_and_an_explicit_confirmation(run_home, cli, keys) -> None:
    home = ["--home", str(run_home.root)]
    code, out = cli([*home, "live", "start", "--from-run", "1"])
    assert code != 0
    assert "add --confirm-live" in out
    code, out = cli([*home, "live", "start", "--from-run", "1", "--check"])
    assert code != 0
    assert "run 1 is not promoted to live: vq promote 1 --to live" in out
    from vibe_quant.state import StateManager

    with StateManager(run_home.db_path) as db:  # a granted promotion (the gate itself: tests/paper/test_promote.py)
        db.insert("promotions", {"run_id": 1, "stage": "live", "who": "test", "why": "test", "evidence": {}})
    code, out = cli([*home, "live", "start", "--from-run", "1", "--check", "--json"])
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["mode"] == "live"
    assert summary["endpoints"]["http"] == "https://fapi.binance.com"
    assert SECRET not in _all_outputs(run_home, out)


def test_testnet_only_flags_are_refused_on_a_replay(run_home, cli) -> None:
    code, out = cli(["--home", str(run_home.root), "paper", "start", "--from-run", "1", "--check"])
    assert code != 0
    assert "are for --feed testnet" in out
