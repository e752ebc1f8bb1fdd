"""RL Training: the training runs of the home (``$VQ_HOME/rl/runs``, ``vq rl train``) and a form launching one
as a background job.

A run's detail shows what it was trained on (environment, feature version, data hash, venue), the
hyperparameters (``config.json``), the training curves (``episodes.csv``, ``training.csv``), the
regimes, and once evaluated (``vq rl evaluate``) the metrics, the kernel/NautilusTrader parity verdict
and the equity. From there: evaluate, resume training, and register to staging, each a ``vq rl`` job
(registering builds the model record from the run folder; that is the CLI's business, not the page's).
The chosen run follows the URL (``/rl_training?run=<run_id>``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import streamlit as st

from vibe_quant.dashboard import common, readers, widgets
from vibe_quant.home import Home

TIMEFRAMES = ["1m", "5m", "15m", "1h", "4h"]
ALGOS = ["ppo", "sac", "dqn"]
# Which action spaces an algorithm takes (SB3: SAC a Box, DQN a Discrete, PPO either).
ACTIONS = {"ppo": ("discrete", "continuous"), "sac": ("continuous",), "dqn": ("discrete",)}
EMPTY = ("No training run yet. Launch one from the *Train* tab, or on the command line: "
         "`vq rl train --symbol BTCUSDT --timeframe 5m --start 2024-01-01 --end 2024-03-01 --algo ppo "
         "--timesteps 100000 --seed 0 --action discrete`.")  # fmt: skip


@st.cache_data(max_entries=16, show_spinner=False)
def _csv(path: str, stamp: int) -> pd.DataFrame:
    return pd.read_csv(path)


def _stamp(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def render() -> None:
    common.page_header("RL Training", "Training runs written by `vq rl train` under `$VQ_HOME/rl/runs`: "
                       "the curves and evaluations are read from the run folders, never recomputed.")  # fmt: skip
    h = common.home()
    browse, launch = st.tabs(["Training runs", "Train"])
    with browse:
        browse_view(h)
    with launch:
        launch_form(h)
        st.subheader("Active jobs")
        widgets.live_jobs_panel(h, key="rl")


def browse_view(h: Home) -> None:
    from vibe_quant.errors import UserError
    from vibe_quant.rl.runs import list_runs

    try:
        runs = list_runs(h)
    except UserError as exc:  # a run.json that is not JSON: name it, show nothing half-read
        common.show_error(exc, "cannot list the training runs")
        return
    if not runs:
        st.info(EMPTY)
        return
    rows = readers.training_run_rows(runs)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="rl_runs",
                 column_config={"net return": st.column_config.NumberColumn(format="percent")})  # fmt: skip
    ids = [r["id"] for r in rows]
    wanted = st.query_params.get("run")
    names = {r["id"]: f"{r['id']}: {r['algo']} {r['symbol']} {r['timeframe']} {r['period']}" for r in rows}
    chosen = st.selectbox("training run", ids, index=ids.index(wanted) if wanted in ids else 0, format_func=names.get,
                          key="rl_run")  # fmt: skip
    if chosen != st.query_params.get("run"):
        st.query_params["run"] = chosen
    run_detail(h, next(r for r in runs if r.run_id == chosen))


def run_detail(h: Home, run) -> None:
    m, key = run.meta, run.run_id
    venue = m.get("venue") or {}
    st.markdown(f"**{m.get('algo', '?')}** on {m.get('symbol')} {m.get('timeframe')} · {m.get('start')}..{m.get('end')} · "
                f"{m.get('timesteps', 0):,} timesteps · seed {m.get('seed')} · `{key}`")  # fmt: skip
    c = st.columns(4)
    c[0].metric("feature version", str(m.get("feature_version", "-")))
    c[1].metric("venue", f"{venue.get('mode', '-')} x{venue.get('leverage', '-')}")
    c[2].metric("model", "saved" if run.has_model else "not yet", help="model.zip in the run folder")
    c[3].metric("registered as", m.get("model_id") or "-")
    st.caption(f"training data hash `{m.get('training_data_hash', '-')}`")
    env = m.get("env") or {}
    if env:
        st.dataframe(pd.DataFrame([{"setting": k, "value": str(v)} for k, v in env.items()]), hide_index=True,
                     key=f"rl-env-{key}")  # fmt: skip
    config = run.path / "config.json"
    with st.expander("hyperparameters (config.json)"):
        if config.is_file():
            st.code(config.read_text(), language="json")
        else:
            st.caption("no config.json yet: training writes it when it ends")
    training_curves(run)
    evaluation_view(run)
    actions(h, run)


def training_curves(run) -> None:
    from vibe_quant.plots import rl as plots

    key = run.run_id
    st.subheader("Training curves")
    episodes, training, regimes = (run.csv(name) for name in ("episodes", "training", "regimes"))
    stamp = _stamp(episodes)
    frame = _csv(str(episodes), stamp) if stamp is not None else None
    if frame is None or frame.empty:
        st.caption("no finished episode yet (episodes.csv)")
    else:
        left, right = st.columns(2)
        left.plotly_chart(plots.episode_return_figure(frame), key=f"rl-return-{key}", width="stretch")
        right.plotly_chart(plots.final_equity_figure(frame), key=f"rl-final-{key}", width="stretch")
    stamp = _stamp(training)
    frame = _csv(str(training), stamp) if stamp is not None else None
    if frame is None or frame.empty:
        st.caption("no training row yet (training.csv)")
    else:
        c = st.columns(3)
        c[0].plotly_chart(plots.entropy_figure(frame), key=f"rl-entropy-{key}", width="stretch")
        c[1].plotly_chart(plots.value_loss_figure(frame), key=f"rl-value-{key}", width="stretch")
        c[2].plotly_chart(plots.action_shares_figure(frame), key=f"rl-shares-{key}", width="stretch")
    stamp = _stamp(regimes)
    st.subheader("Regimes (terciles of the training data's realized volatility)")
    if stamp is None:
        st.caption("no regimes.csv yet: training writes it when it ends")
    else:
        st.dataframe(_csv(str(regimes), stamp), hide_index=True, width="stretch", key=f"rl-regimes-{key}")


def evaluation_view(run) -> None:
    from vibe_quant.plots import rl as plots

    key, ev = run.run_id, run.evaluation
    st.subheader("Evaluation")
    if ev is None:
        st.caption("not evaluated yet: `vq rl evaluate` (or the form below) runs the policy out of sample")
        return
    metrics = ev.get("metrics") or {}
    st.caption(f"out of sample {ev.get('start')}..{ev.get('end')}, net of fees and funding")
    c = st.columns(8)
    c[0].metric("net return", common.fmt_pct(metrics.get("net_return")))
    c[1].metric("max drawdown", common.fmt_pct(metrics.get("max_drawdown")))
    c[2].metric("Sharpe", common.fmt_number(metrics.get("sharpe"), ".2f"))
    c[3].metric("Sortino", common.fmt_number(metrics.get("sortino"), ".2f"))
    c[4].metric("turnover / year", common.fmt_number(metrics.get("turnover"), ",.1f"))
    c[5].metric("CVaR 5%", common.fmt_pct(metrics.get("cvar")))
    c[6].metric("trades", common.fmt_number(metrics.get("n_trades"), ",d"))
    c[7].metric("largest trade share", common.fmt_pct(metrics.get("largest_trade_share"), 1))
    parity = ev.get("parity") or {}
    detail = (f"fills: kernel {parity.get('fills_kernel')}, NautilusTrader {parity.get('fills_nautilus')}; "
              f"largest equity difference {common.fmt_number(parity.get('max_equity_rel_diff'), '.2e')} (relative); "
              f"actions agree: {parity.get('actions_agree')}")  # fmt: skip
    if not parity:
        st.warning("no parity check in evaluation.json: the run cannot be registered")
    elif parity.get("identical"):
        st.success(f"parity: identical. {detail}")
    else:
        st.error(f"parity: differs, the kernel and NautilusTrader disagree; the run cannot be registered. {detail}")
    if ev.get("equity"):
        st.plotly_chart(plots.evaluation_equity_figure(ev["equity"]), key=f"rl-equity-{key}", width="stretch")
    windows = (run.walkforward or {}).get("windows") or []
    if windows:
        st.subheader("Walk-forward windows")
        st.dataframe(pd.DataFrame([{k: v for k, v in w.items() if k != "metrics"} | (w.get("metrics") or {})
                                   for w in windows]), hide_index=True, width="stretch", key=f"rl-wf-{key}")  # fmt: skip
        stability = (run.walkforward or {}).get("stability")
        if stability:
            st.code(json.dumps(stability, indent=2), language="json")


def actions(h: Home, run) -> None:
    m, key, ev = run.meta, run.run_id, run.evaluation
    st.subheader("Actions")
    with st.form(f"rl_evaluate_{key}"):
        c = st.columns([1, 1, 2])
        start = c[0].date_input("evaluate from (UTC)", value=None, key=f"rl_eval_start_{key}")
        end = c[1].date_input("to (UTC)", value=None, key=f"rl_eval_end_{key}")
        evaluate = st.form_submit_button("Evaluate", disabled=not run.has_model)
    if evaluate:
        if start is None or end is None or end <= start:
            st.error("choose an evaluation period: a start and a later end")
        elif widgets.start_job(h, ["rl", "evaluate", key, "--start", str(start), "--end", str(end)], "rl evaluate",
                               f"rl evaluate {key}"):  # fmt: skip
            st.rerun()
    left, right = st.columns(2)
    if left.button("Resume training", key=f"rl_resume_{key}", disabled=not run.has_model,
                   help="vq rl train --resume: the same settings, more timesteps from the saved model"):  # fmt: skip
        argv = resume_argv(m, key)
        if argv is None:
            st.error("run.json lacks the settings to resume this run (symbol, timeframe, period, algo)")
        elif widgets.start_job(h, argv, "rl train", f"rl train --resume {key}"):
            st.rerun()
    if m.get("model_id"):
        right.caption(f"registered as model `{m['model_id']}` (see Model Registry)")
    elif ev is not None and readers.parity_verdict(ev) == "identical":
        register = right.button("Register to staging", key=f"rl_register_{key}", type="primary",
                                help="vq rl register --stage staging: the evaluated run becomes a model in staging")  # fmt: skip
        if register and widgets.start_job(h, ["rl", "register", key, "--stage", "staging"], "rl register",
                                          f"rl register {key}"):  # fmt: skip
            st.rerun()
    else:
        right.caption("registering needs an evaluation with identical parity")


# -- launching -------------------------------------------------------------------------------------


def train_argv(symbol: str, timeframe: str, start: dt.date | str, end: dt.date | str, algo: str, timesteps: int,
               seed: int, action: str, mode: str | None = None, leverage: float | None = None) -> list[str]:  # fmt: skip
    """The ``vq rl train`` command of these settings (``--mode``/``--leverage`` only when given)."""
    argv = ["rl", "train", "--symbol", symbol, "--timeframe", timeframe, "--start", str(start), "--end", str(end),
            "--algo", algo, "--timesteps", str(int(timesteps)), "--seed", str(int(seed)), "--action", action]  # fmt: skip
    if mode:
        argv += ["--mode", mode]
    if leverage is not None:
        argv += ["--leverage", f"{float(leverage):g}"]
    return argv


def resume_argv(meta: dict, run_id: str) -> list[str] | None:
    """``vq rl train --resume RUN_ID`` with the run's own settings from ``run.json``; None when some are missing."""
    need = ("symbol", "timeframe", "start", "end", "algo")
    if any(not meta.get(k) for k in need):
        return None
    venue, env = meta.get("venue") or {}, meta.get("env") or {}
    action = env.get("action_space") or ("continuous" if meta["algo"] == "sac" else "discrete")
    argv = train_argv(meta["symbol"], meta["timeframe"], meta["start"], meta["end"], meta["algo"],
                      int(meta.get("timesteps") or 0), int(meta.get("seed") or 0), action, venue.get("mode"),
                      venue.get("leverage"))  # fmt: skip
    for flag, key in (("--window", "window"), ("--episode-bars", "episode_bars"), ("--fraction", "fraction")):
        if env.get(key) is not None:  # the resumed run's environment must be the same (vq rl train checks it)
            argv += [flag, f"{env[key]:g}" if isinstance(env[key], float) else str(env[key])]
    return [*argv, "--resume", run_id]


def catalog_symbols(h: Home) -> list[str]:
    from vibe_quant.dashboard.pages.backtests import catalog_symbols as symbols

    return symbols(h)


def launch_form(h: Home) -> None:
    """The settings of ``vq rl train``, checked (an end after the start, an action space the algorithm takes)
    and run as a background job."""
    symbols = catalog_symbols(h)
    st.caption("Trains on the catalog's bars of the symbol and timeframe (`vq data ingest` first); SAC takes a "
               "continuous action space, DQN a discrete one, PPO either.")  # fmt: skip
    with st.form("rl_launch"):
        c = st.columns(4)
        if symbols:
            symbol = c[0].selectbox("symbol", symbols, key="rl_symbol")
        else:
            symbol = c[0].text_input("symbol", "BTCUSDT", key="rl_symbol", help="the catalog has no perpetual yet")
        timeframe = c[1].selectbox("timeframe", TIMEFRAMES, index=1, key="rl_timeframe")
        start = c[2].date_input("start (UTC)", value=None, key="rl_start")
        end = c[3].date_input("end (UTC)", value=None, key="rl_end")
        c = st.columns(4)
        algo = c[0].selectbox("algorithm", ALGOS, key="rl_algo")
        action = c[1].radio("action space", ["discrete", "continuous"], horizontal=True, key="rl_action")
        timesteps = c[2].number_input("timesteps", min_value=1, value=100_000, step=10_000, key="rl_timesteps")
        seed = c[3].number_input("seed", min_value=0, value=0, step=1, key="rl_seed")
        c = st.columns(4)
        mode = c[0].selectbox("venue mode", ["screening", "validation"], key="rl_mode",
                              help="the cost model: screening (fast) or validation (full venue costs)")  # fmt: skip
        leverage = c[1].number_input("leverage", min_value=0.1, max_value=125.0, value=1.0, step=0.5, key="rl_leverage")
        submitted = st.form_submit_button("Launch training", type="primary")
    if not submitted:
        return
    problems = []
    if not (symbol or "").strip():
        problems.append("choose a symbol")
    if start is None or end is None:
        problems.append("choose a start and an end date")
    elif end <= start:
        problems.append(f"end {end} is not after start {start}")
    if action not in ACTIONS[algo]:
        problems.append(f"{algo} takes a {' or '.join(ACTIONS[algo])} action space, not {action}")
    if problems:
        st.error("**not launched**: " + "; ".join(problems))
        return
    argv = train_argv(symbol.strip(), timeframe, start, end, algo, timesteps, seed, action, mode, leverage)
    if widgets.start_job(h, argv, "rl train", f"rl train {algo} {symbol.strip()} {timeframe}"):
        st.rerun()
