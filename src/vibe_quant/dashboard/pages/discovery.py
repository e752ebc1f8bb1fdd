"""Discovery: the genetic strategy discovery runs of the home (``vq discover run``, docs/specs.md#discovery-runs)
and a form launching one as a background job.

A run's detail shows the search generation by generation (best, mean and worst Sharpe of the feasible
genomes, how many were feasible; re-read every few seconds while the run is live), the Pareto front of
the last checkpointed generation (docs/specs.md#discovery-search), and once the search ended the
finalists with their training and held-out metrics and each guard rail's verdict
(docs/specs.md#discovery-guard-rails), the DSL of each, and an export of their YAML files. A cancelled
or failed run resumes from its last checkpoint (``vq discover run --resume``). Everything is read from
the state database; the chosen run follows the URL (``/discovery?run=<id>``).
"""

from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import streamlit as st
import yaml

from vibe_quant.dashboard import common, readers, widgets
from vibe_quant.home import Home

TIMEFRAMES = ["1m", "5m", "15m", "1h", "4h"]
RESUMABLE = ("failed", "cancelled", "gone")  # gone: a running row whose process died without marking it
WORKERS = max(1, min(4, os.cpu_count() or 1))
EMPTY = ("No discovery run yet. Launch one from the *Discover* tab, or on the command line: "
         "`vq discover run --symbols FILUSDT --timeframe 15m --start 2023-08-01 --end 2023-10-31 --population 64 "
         "--generations 20`.")  # fmt: skip
PCT = st.column_config.NumberColumn(format="percent")


def render() -> None:
    common.page_header("Discovery", "Genetic strategy discovery runs written by `vq discover run` (NSGA-II over DSL "
                       "genomes, judged by overfitting guard rails): read from the state database, never recomputed.")  # fmt: skip
    h = common.home()
    browse, launch = st.tabs(["Discovery runs", "Discover"])
    with browse:
        browse_view(h)
    with launch:
        launch_form(h)
        st.subheader("Active jobs")
        widgets.live_jobs_panel(h, key="discovery")


def browse_view(h: Home) -> None:
    from vibe_quant.discovery import service

    runs = service.list_runs(h) if h.db_path.exists() else []
    if not runs:
        st.info(EMPTY)
        return
    rows = readers.discovery_run_rows(runs)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="discovery_runs")
    chosen = widgets.query_choice(rows, "discovery run", "discovery_run", "run", describe_run)
    run_detail(h, chosen["id"])


def describe_run(r: dict) -> str:
    return f"{r['id']}: {r['symbols']} {r['timeframe']} {r['period']} [{r['status']}, generation {r['generations']}]"


def run_detail(h: Home, run_id: int) -> None:
    from vibe_quant.discovery import service
    from vibe_quant.errors import UserError

    try:
        config, row = service.get_run(h, run_id)
    except UserError as exc:  # a stored config this version cannot read: say so, show nothing half-read
        common.show_error(exc, f"cannot read discovery run {run_id}")
        return
    health = readers.discovery_health(row)
    f = config.filters
    st.markdown(f"**{', '.join(config.symbols)} {config.timeframe}** · training {config.start}..{config.train_end} · "
                f"held out {config.holdout_start}..{config.end} · population {config.population} · "
                f"{config.generations} generations · seed {config.seed} · status **{health}**")  # fmt: skip
    st.caption(f"indicator pool {', '.join(config.indicators)} · at most {config.max_genes} gene(s) · hard filters: "
               f"at least {f.min_trades} trades, max drawdown below {f.max_drawdown:.0%}, profit factor above "
               f"{f.min_profit_factor:g} · {config.mode} mode, leverage {config.leverage:g}")  # fmt: skip
    job_line(h, row)
    if health == "running":
        _live_search(h, run_id)
    else:
        search_view(h, run_id, config, row)
    if row.get("error_message") and health != "running":
        st.error(f"**run {row['status']}**: {row['error_message']}")
    if health == "stale":
        st.warning(f"no heartbeat from process {row['pid']} for a while: it may be judging the finalists (the guard "
                   "rails write no heartbeat) or hang; kill its job before resuming")  # fmt: skip
    resume_action(h, run_id, health)
    finalists_view(h, run_id, row)


def job_line(h: Home, row: dict) -> None:
    """The background job that ran the run (its process id is the run's), with its status and log tail."""
    from vibe_quant.jobs import job_log, list_jobs

    if row.get("pid") is None:
        return
    job = next((j for j in list_jobs(h) if j.pid == row["pid"] and j.command[:2] == ("discover", "run")), None)
    if job is None:
        st.caption(f"run by process {row['pid']} on {row.get('host') or '?'} (not a dashboard job)")
        return
    st.caption(f"job {job.id} · status **{job.health}** · log `{job.log_file}`")
    with st.expander(f"job {job.id} log (last 40 lines)"):
        st.code(job_log(h, job.id, tail=40) or "(empty)", language=None)


@st.fragment(run_every=widgets.POLL_S)
def _live_search(h: Home, run_id: int) -> None:
    from vibe_quant.discovery import service

    config, row = service.get_run(h, run_id)
    search_view(h, run_id, config, row)
    if readers.discovery_health(row) != "running":
        st.rerun()  # the search ended or died: the whole page shows the outcome


def search_view(h: Home, run_id: int, config, row: dict) -> None:
    """The fitness evolution and the last checkpoint's Pareto front."""
    from vibe_quant.discovery import service
    from vibe_quant.plots import discovery as plots

    st.subheader("Search")
    stored = service.generations(h, run_id)
    gens = readers.generation_points(stored)
    c = st.columns(4)
    c[0].metric("generation", f"{gens[-1]['generation'] if gens else '-'} / {config.generations}",
                help="the last checkpointed generation (0: the random initial population)")  # fmt: skip
    c[1].metric("genomes evaluated", f"{row['evaluated']:,}", help="each once: the DSR's number of trials")
    c[2].metric("cache hits", f"{row['cache_hits']:,}", help="offspring whose rules were already evaluated")
    c[3].metric("feasible (last generation)", f"{gens[-1]['feasible']} / {gens[-1]['population']}" if gens else "-")
    if not gens:
        if row["status"] in ("pending", "running"):
            st.info(f"Generation 0 is being evaluated ({row['evaluated']} of {config.population} random genomes so "
                    "far): the fitness chart and the Pareto front appear when it is checkpointed.")  # fmt: skip
        else:
            st.info(f"The run is {row['status']} before checkpointing generation 0: nothing to show yet.")
        return
    objective = st.radio("Sharpe", list(plots.OBJECTIVES), format_func=plots.OBJECTIVES.get, horizontal=True,
                         key=f"discovery_objective_{run_id}")  # fmt: skip
    st.plotly_chart(plots.fitness_figure(gens, objective), key=f"discovery-fitness-{run_id}", width="stretch")
    with st.expander("generation statistics"):
        st.dataframe(pd.DataFrame([generation_row(g) for g in gens]), hide_index=True, width="stretch",
                     key=f"discovery-gens-{run_id}")  # fmt: skip
    last = stored[-1]
    st.subheader(f"Pareto front of generation {last['generation']}")
    if not last["front"]:
        f = config.filters
        st.info(f"No feasible genome in generation {last['generation']}: none passed the hard filters (at least "
                f"{f.min_trades} trades, max drawdown below {f.max_drawdown:.0%}, profit factor above "
                f"{f.min_profit_factor:g}) on the training period. Later generations may find one; otherwise "
                "relax the filters, lengthen the period or widen the indicator pool.")  # fmt: skip
        return
    front = readers.discovery_genomes(common.state(), run_id, last["front"])
    st.plotly_chart(plots.front_figure(front), key=f"discovery-front-{run_id}", width="stretch")
    st.dataframe(pd.DataFrame(front), hide_index=True, width="stretch", key=f"discovery-front-table-{run_id}",
                 column_config={"max_drawdown": PCT})  # fmt: skip


def generation_row(g: dict) -> dict:
    sharpe = g.get("sharpe") or {}
    return {"generation": g["generation"], "feasible": g.get("feasible"), "front": g.get("front"),
            "best Sharpe": sharpe.get("best"), "mean Sharpe": sharpe.get("mean"), "worst Sharpe": sharpe.get("worst"),
            "evaluated": g.get("evaluated"), "cache hits": g.get("cache_hits"), "repaired": g.get("repaired"),
            "rejected": g.get("rejected"), "errors": g.get("errors"),
            "mutations": ", ".join(f"{k} {v}" for k, v in (g.get("mutations") or {}).items())}  # fmt: skip


def resume_action(h: Home, run_id: int, health: str) -> None:
    if health not in RESUMABLE:
        return
    c = st.columns([1, 1, 2])
    workers = c[0].number_input(
        "workers", min_value=1, max_value=256, value=WORKERS, key=f"discovery_resume_workers_{run_id}"
    )
    c[1].write("")
    if c[1].button("Resume", key=f"discovery_resume_{run_id}", type="primary",
                   help="vq discover run --resume: go on from the last generation checkpoint"):  # fmt: skip
        argv = ["discover", "run", "--resume", str(run_id), "--workers", str(int(workers))]
        if widgets.start_job(h, argv, "discover run", f"discover run --resume {run_id}"):
            st.rerun()


def finalists_view(h: Home, run_id: int, row: dict) -> None:
    from vibe_quant.discovery import service

    st.subheader("Finalists")
    if row["status"] != "completed":
        st.caption(
            "the finalists are judged when the search has run every generation (docs/specs.md#discovery-guard-rails)"
        )
        return
    summary = row.get("summary") or {}
    rows = service.finalist_rows(h, run_id)
    verdict = summary.get("verdict", "")
    if not rows:
        st.info(f"No finalists: {verdict or 'the last generation has no feasible genome'}.")
        return
    (st.success if summary.get("passed") else st.warning)(verdict)
    c = st.columns(4)
    c[0].metric("trials (genomes with returns)", f"{summary.get('trials', 0):,}")
    pbo = summary.get("pbo") or {}
    c[1].metric("PBO", common.fmt_number((pbo.get("figures") or {}).get("pbo"), ".2f"),
                delta="passed" if pbo.get("passed") else "failed", delta_color="normal" if pbo.get("passed") else "inverse",
                help=pbo.get("reason"))  # fmt: skip
    c[2].metric(
        "held-out median Sharpe (finalists)", common.fmt_number(summary.get("finalists_holdout_median_sharpe"), ".2f")
    )
    c[3].metric(
        "held-out median Sharpe (random genomes)", common.fmt_number(summary.get("random_holdout_median_sharpe"), ".2f")
    )
    st.dataframe(readers.finalist_table(rows), hide_index=True, width="stretch", key=f"discovery-finalists-{run_id}",
                 column_config={"train return": PCT, "train max DD": PCT, "held-out return": PCT})  # fmt: skip
    by_rank = {f["rank"]: f for f in rows}
    rank = st.selectbox("finalist", list(by_rank), key=f"discovery_finalist_{run_id}",
                        format_func=lambda r: f"{r}. {by_rank[r]['genome_key']} "
                                              f"[{'passed' if by_rank[r]['passed'] else 'rejected'}]")  # fmt: skip
    finalist_detail(by_rank[rank])
    export_action(h, run_id)


def finalist_detail(f: dict) -> None:
    key = f["genome_key"]
    st.markdown(f"`{f['genome']['description']}`")
    if f["passed"]:
        st.success("passed every guard rail")
    else:
        st.error("rejected: " + "; ".join(f["reasons"]))
    left, right = st.columns(2)
    left.dataframe(readers.finalist_metrics(f), hide_index=True, width="stretch", key=f"discovery-metrics-{key}")
    right.dataframe(readers.finalist_checks(f), hide_index=True, width="stretch", key=f"discovery-checks-{key}")
    st.code(yaml.safe_dump(f["genome"]["document"], sort_keys=False), language="yaml")


def export_action(h: Home, run_id: int) -> None:
    from vibe_quant.discovery import service
    from vibe_quant.errors import UserError

    out = h.runs / f"discovery-{run_id}" / "export"
    st.subheader("Export")
    everything = st.checkbox("the rejected finalists too (for review)", key=f"discovery_export_all_{run_id}")
    if not st.button("Export", key=f"discovery_export_{run_id}",
                     help=f"write the finalists as DSL YAML files into {out}"):  # fmt: skip
        return
    try:
        paths = service.export(h, run_id, out, everything)
    except UserError as exc:
        common.show_error(exc, "not exported")
        return
    st.success(f"wrote {len(paths)} strategy file(s) into `{out}`; check one with `vq dsl validate FILE`")
    st.code("\n".join(str(p) for p in paths), language=None)


# -- launching -------------------------------------------------------------------------------------


def discover_argv(symbols: list[str], timeframe: str, start: dt.date | str, end: dt.date | str,
                  holdout_days: int | None, population: int, generations: int, seed: int, indicators: list[str],
                  max_genes: int, min_trades: int, max_dd: float, min_pf: float, workers: int) -> list[str]:  # fmt: skip
    """The ``vq discover run`` command of these settings (``--holdout-days`` only when given, ``--indicators``
    only for a subset of the pool)."""
    from vibe_quant.discovery.genome import TEMPLATES

    argv = ["discover", "run", "--symbols", ",".join(symbols), "--timeframe", timeframe, "--start", str(start),
            "--end", str(end)]  # fmt: skip
    if holdout_days is not None:
        argv += ["--holdout-days", str(int(holdout_days))]
    argv += ["--population", str(int(population)), "--generations", str(int(generations)), "--seed", str(int(seed))]
    if set(indicators) != set(TEMPLATES):
        argv += ["--indicators", ",".join(i for i in TEMPLATES if i in indicators)]
    return [*argv, "--max-genes", str(int(max_genes)), "--min-trades", str(int(min_trades)), "--max-dd",
            f"{float(max_dd):g}", "--min-pf", f"{float(min_pf):g}", "--workers", str(int(workers))]  # fmt: skip


def catalog_symbols(h: Home) -> list[str]:
    from vibe_quant.dashboard.pages.backtests import catalog_symbols as symbols

    return symbols(h)


def launch_form(h: Home) -> None:
    """The settings of ``vq discover run``, checked as the run's configuration checks them and run as a
    background job."""
    from vibe_quant.discovery.genome import TEMPLATES

    symbols = catalog_symbols(h)
    st.caption("Searches the catalog's bars of the symbols and timeframe (`vq data ingest` first); the last held-out "
               "days are never seen by the search and judge the finalists.")  # fmt: skip
    with st.form("discovery_launch"):
        c = st.columns(4)
        if symbols:
            chosen = c[0].multiselect("symbols", symbols, key="discovery_symbols")
        else:
            text = c[0].text_input("symbols", "BTCUSDT", key="discovery_symbols",
                                   help="comma-separated; the catalog has no perpetual yet")  # fmt: skip
            chosen = [s.strip().upper() for s in text.split(",") if s.strip()]
        timeframe = c[1].selectbox("timeframe", TIMEFRAMES, index=2, key="discovery_timeframe")
        start = c[2].date_input("start (UTC)", value=None, key="discovery_start")
        end = c[3].date_input("end (UTC, inclusive)", value=None, key="discovery_end")
        c = st.columns(4)
        holdout = c[0].number_input("held-out days", min_value=1, value=None, step=1, key="discovery_holdout",
                                    help="the last days, judged after the search; empty: 30% of the period")  # fmt: skip
        population = c[1].number_input("population", min_value=8, max_value=4096, value=64, step=4,
                                       key="discovery_population", help="genomes per generation, a multiple of 4")  # fmt: skip
        generations = c[2].number_input("generations", min_value=0, max_value=1000, value=20, step=1,
                                        key="discovery_generations", help="after the random initial one")  # fmt: skip
        seed = c[3].number_input("seed", min_value=0, value=0, step=1, key="discovery_seed")
        indicators = st.multiselect(
            "indicator pool", list(TEMPLATES), default=list(TEMPLATES), key="discovery_indicators"
        )
        c = st.columns(5)
        max_genes = c[0].number_input("max genes", min_value=1, max_value=5, value=5, step=1, key="discovery_max_genes")
        min_trades = c[1].number_input("min trades", min_value=0, value=50, step=5, key="discovery_min_trades")
        max_dd = c[2].number_input("max drawdown", min_value=0.01, max_value=1.0, value=0.30, step=0.05,
                                   key="discovery_max_dd", help="hard filter: a fraction of equity")  # fmt: skip
        min_pf = c[3].number_input("min profit factor", min_value=0.0, value=1.0, step=0.1, key="discovery_min_pf")
        workers = c[4].number_input(
            "workers", min_value=1, max_value=256, value=WORKERS, step=1, key="discovery_workers"
        )
        submitted = st.form_submit_button("Launch discovery", type="primary")
    if not submitted:
        return
    problems = launch_problems(chosen, timeframe, start, end, holdout, population, generations, seed, indicators,
                               max_genes, min_trades, max_dd, min_pf)  # fmt: skip
    if problems:
        st.error("**not launched**: " + "; ".join(problems))
        return
    argv = discover_argv(chosen, timeframe, start, end, holdout, population, generations, seed, indicators, max_genes,
                         min_trades, max_dd, min_pf, workers)  # fmt: skip
    if widgets.start_job(h, argv, "discover run", f"discover run {','.join(chosen)} {timeframe}"):
        st.rerun()


def launch_problems(symbols, timeframe, start, end, holdout, population, generations, seed, indicators, max_genes,
                    min_trades, max_dd, min_pf) -> list[str]:  # fmt: skip
    """What keeps these settings from running, each with its fix (the run's configuration checks the rest)."""
    from vibe_quant.discovery.config import parse_discovery
    from vibe_quant.errors import ConfigError

    problems = []
    if not symbols:
        problems.append("choose at least one symbol")
    if start is None or end is None:
        problems.append("choose a start and an end date")
    elif end <= start:
        problems.append(f"end {end} is not after start {start}")
    if population % 4:
        problems.append(f"population {population} is not a multiple of 4 (NSGA-II's tournament takes parents in "
                        f"pairs of pairs): choose {max(8, population - population % 4)} or {population + 4 - population % 4}")  # fmt: skip
    if not indicators:
        problems.append("choose at least one indicator for the pool")
    if problems:
        return problems
    try:
        parse_discovery({"symbols": symbols, "timeframe": timeframe, "start": str(start), "end": str(end),
                         "holdout_days": holdout, "population": population, "generations": generations, "seed": seed,
                         "indicators": indicators, "max_genes": max_genes,
                         "filters": {"min_trades": min_trades, "max_drawdown": max_dd, "min_profit_factor": min_pf}})  # fmt: skip
    except ConfigError as exc:
        return [str(exc)]
    return []
