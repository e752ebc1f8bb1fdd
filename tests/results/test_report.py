"""``vq report`` on stored real results: the tearsheet holds the right numbers, stays small, and
draws in a real browser (Debian's chromium) without a script error."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest

from tests.conftest import vq
from vibe_quant.present.report import REPORT_NAME
from vibe_quant.results import load_run, load_sweep


def figure_specs(html: str) -> dict[str, dict]:
    """Every figure embedded in a report, by key."""
    found = re.findall(r'<script type="application/json" id="spec-([\w-]+)">(.*?)</script>', html, re.S)
    return {key: json.loads(body.replace("<\\/", "</")) for key, body in found}


def values(array) -> np.ndarray:
    """A plotly JSON array: a plain list or ``{"dtype", "bdata"}`` (base64 typed array)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
    return np.asarray(array)


@pytest.fixture(scope="module")
def run_report(results_home):
    code, out, err = vq(["--home", str(results_home.home.root), "report", str(results_home.backtest)])
    assert code == 0, err
    r = load_run(results_home.home, str(results_home.backtest))
    path = r.bundle / REPORT_NAME
    assert str(path) in out
    return r, path.read_text()


def test_run_report_holds_the_stored_numbers(run_report):
    r, html = run_report
    specs = figure_specs(html)
    assert set(specs) == {"equity", "drawdown", "monthly_returns", "trade_pnl", "pnl_breakdown", "costs", "exposure"}
    equity_y = values(specs["equity"]["data"][0]["y"])
    assert equity_y[-1] == pytest.approx(r.metrics["final_equity"], rel=1e-12)
    drawdown_y = values(specs["drawdown"]["data"][0]["y"])
    assert -drawdown_y.min() == pytest.approx(100 * r.metrics["max_drawdown"], rel=1e-9)
    waterfall = specs["costs"]["data"][0]
    assert values(waterfall["y"])[-1] == pytest.approx(r.metrics["net_pnl"], rel=1e-9)
    assert f"Trade log ({len(r.trades):,} trades)" in html
    assert html.count("<tr>") >= len(r.trades)
    assert "config_resolved.yaml" in html
    assert r.run_id in html
    assert "data_digest" in html
    exposure = values(specs["exposure"]["data"][0]["y"])
    assert exposure.max() > 0
    assert (exposure >= 0).all()


def test_exposure_and_margin_are_stored_per_bar_and_consistent(run_report):
    r, _ = run_report
    eq = r.equity
    assert {"exposure", "margin"} <= set(eq.columns)
    assert len(eq) == len(r.equity)
    held = eq["exposure"] > 0
    assert held.any()
    # isolated margin at 5x leverage is a fifth of the notional at entry: within a few % of exposure / 5
    ratio = (eq.loc[held, "margin"] / (eq.loc[held, "exposure"] / r.config["leverage"])).median()
    assert 0.9 < ratio < 1.1
    assert (eq.loc[~held, "margin"] == 0).all()


def test_sweep_report_lists_points_pareto_and_verdicts(results_home):
    code, _out, err = vq(["--home", str(results_home.home.root), "report", f"screening-{results_home.sweep}"])
    assert code == 0, err
    html = (results_home.home.runs / f"screening-{results_home.sweep}" / REPORT_NAME).read_text()
    s = load_sweep(results_home.home, str(results_home.sweep))
    specs = figure_specs(html)
    assert {"pareto", "funnel", "walk_forward"} <= set(specs)
    front = next(t for t in specs["pareto"]["data"] if t["name"].startswith("Pareto front"))
    assert sorted(values(front["customdata"]).tolist()) == sorted(
        s.points.loc[s.points.is_pareto_optimal == 1, "id"].tolist()
    )
    funnel = specs["funnel"]["data"][0]
    assert [int(v) for v in values(funnel["x"])] == [n for _, n in s.overfitting["funnel"]]
    assert html.count('class="pass"') + html.count('class="fail"') >= len(s.points)  # hard-filter verdict per point


def test_report_errors_name_the_run_and_the_fix(results_home, tmp_path):
    code, _, err = vq(["--home", str(results_home.home.root), "report", "424242"])
    assert code == 2
    assert "no run '424242'" in err
    assert "vq backtest list" in err
    code, _, err = vq(["--home", str(tmp_path / "empty"), "report", "1"])
    assert code == 2
    assert "no state database" in err
    assert not (tmp_path / "empty").exists()


def test_report_draws_in_a_real_browser(run_report, browser):
    r, _ = run_report
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto((r.bundle / REPORT_NAME).as_uri())
    page.wait_for_function("document.body.dataset.plotsReady === '1'", timeout=60_000)
    assert page.locator("div.vq-figure .main-svg").count() >= 7
    assert errors == []
    page.close()


def test_trade_log_of_long_runs_is_cut_with_a_note():
    from vibe_quant.present.report import TRADE_ROWS, _trade_log

    n = TRADE_ROWS + 500
    trades = pd.DataFrame({"symbol": ["X"] * n, "net_pnl": np.arange(n, dtype=float), "exit_reason": ["signal"] * n})
    html = _trade_log(trades)
    assert f"{n:,} trades: the first and last {TRADE_ROWS // 2:,}" in html
    assert html.count("<tr>") == TRADE_ROWS + 1


def test_backtest_show_points_to_the_report(results_home):
    code, out, _ = vq(["--home", str(results_home.home.root), "backtest", "show", str(results_home.guarded)])
    assert code == 0
    r = load_run(results_home.home, str(results_home.guarded))
    path = r.bundle / REPORT_NAME
    expected = f"report: {path}" if path.exists() else f"report: vq report {results_home.guarded}"
    assert expected in out.replace("\n", "")
