"""Model Registry: the registered RL models (``vibe_quant.rl.registry``) by stage, each beside the champion of
its symbol and timeframe, with its decision history (every check of every decision).

Promote applies the promotion rules (:func:`vibe_quant.rl.promotion.promote`) and shows each check; a
rejection leaves every stage as it was. Retire asks for a reason and a confirmation. The chosen model
follows the URL (``/model_registry?model=<model_id>``).
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from vibe_quant.dashboard import common, readers, widgets
from vibe_quant.home import Home

STAGE_ORDER = ("champion", "staging", "candidate", "retired")
OUTCOME_KEY = "_vq_promotion_outcome"
EMPTY = ("No models yet: train one with `vq rl train`, evaluate it with `vq rl evaluate`, then register it with "
         "`vq rl register RUN_ID --stage staging` (or from the RL Training page).")  # fmt: skip


def render() -> None:
    common.page_header("Model Registry", "Registered RL policies, their stage and every promotion decision, "
                       "read from the state database and `$VQ_HOME/models`.")  # fmt: skip
    h = common.home()
    from vibe_quant.rl.registry import list_models

    models = list_models(h)
    if not models:
        st.info(EMPTY)
        return
    stages = st.multiselect("stages", list(STAGE_ORDER), default=list(STAGE_ORDER), key="registry_stages")
    shown = sorted((m for m in models if m.stage in stages),
                   key=lambda m: (STAGE_ORDER.index(m.stage), m.symbol, m.timeframe, m.created_at))  # fmt: skip
    counts = {s: sum(1 for m in models if m.stage == s) for s in STAGE_ORDER}
    st.caption(" · ".join(f"{s}: {n}" for s, n in counts.items()))
    if not shown:
        st.info("no model in the chosen stages")
        return
    st.dataframe(pd.DataFrame(readers.model_rows(shown)), hide_index=True, width="stretch", key="registry_models",
                 column_config={"net return": st.column_config.NumberColumn(format="percent"),
                                "max drawdown": st.column_config.NumberColumn(format="percent")})  # fmt: skip
    ids = [m.model_id for m in shown]
    wanted = st.query_params.get("model")
    names = {m.model_id: f"{m.model_id}: {m.name} [{m.stage}] {m.algo} {m.symbol} {m.timeframe}" for m in shown}
    chosen = st.selectbox("model", ids, index=ids.index(wanted) if wanted in ids else 0, format_func=names.get,
                          key="registry_model")  # fmt: skip
    if chosen != st.query_params.get("model"):
        st.query_params["model"] = chosen
    model_detail(h, next(m for m in shown if m.model_id == chosen))


def model_detail(h: Home, model) -> None:
    from vibe_quant.rl.registry import artifact_path, champion, decisions

    key = model.model_id
    show_outcome(key)
    st.markdown(f"**{model.name}** · stage **{model.stage}** · {model.algo} on {model.symbol} {model.timeframe} · "
                f"registered {model.created_at} · `{key}`")  # fmt: skip
    st.caption(f"feature version `{model.feature_version}` · training data hash `{model.training_data_hash}` · "
               f"artifacts `{artifact_path(h, model)}`")  # fmt: skip
    current = champion(h, model.symbol, model.timeframe)
    st.subheader(f"Against the champion of {model.symbol} {model.timeframe}")
    if current is None:
        st.caption(f"no champion for {model.symbol} {model.timeframe}: promotion applies the absolute rules only")
    elif current.model_id == key:
        st.caption("this model is the champion")
    else:
        st.caption(f"champion `{current.model_id}` ({current.name}, {current.algo}, registered {current.created_at})")
    other = None if current is None or current.model_id == key else current.metrics
    st.dataframe(readers.champion_comparison(model.metrics, other), hide_index=True, width="stretch",
                 key=f"registry-compare-{key}")  # fmt: skip
    with st.expander("hyperparameters and environment"):
        st.code(json.dumps({"hyperparameters": model.hyperparameters, "env_config": model.env_config}, indent=2),
                language="json")  # fmt: skip
    if model.evaluation.details:
        with st.expander("evaluation details"):
            st.code(json.dumps(model.evaluation.details, indent=2, default=str), language="json")
    st.subheader("Decisions")
    history = decisions(h, key)
    if not history:
        st.caption("no decision yet: a new model is a candidate until staged, promoted or retired")
    for d in reversed(history):
        with st.container(border=True):
            against = f" (champion then: `{d.champion_id}`)" if d.champion_id else ""
            st.markdown(f"**{d.decision}** at {d.decided_at}{against}")
            st.dataframe(readers.check_rows(d.reasons), hide_index=True, width="stretch",
                         key=f"registry-decision-{d.id}")  # fmt: skip
    actions(h, model)
    if model.stage in ("champion", "staging"):
        deploy_form(h, model)


def paper_argv(model, start, end, leverage: float) -> list[str]:
    """``vq paper start`` replaying `start`..`end` with the model deciding inside a TradingNode (detached)."""
    return ["paper", "start", "--strategy", f"rl:{model.model_id}", "--symbols", f"{model.symbol}-PERP",
            "--timeframe", model.timeframe, "--start", str(start), "--end", str(end), "--leverage", f"{leverage:g}",
            "--detach"]  # fmt: skip


def deploy_form(h: Home, model) -> None:
    """Deploy the model to paper trading (a replay session; the Paper Trading page follows it)."""
    import datetime as dt

    venue = (model.env_config or {}).get("venue") or {}
    period = (model.evaluation.details or {}).get("period") or []
    start = dt.date.fromisoformat(period[0]) if period else dt.date.today() - dt.timedelta(days=7)
    end = dt.date.fromisoformat(period[1]) if len(period) > 1 else start
    st.subheader("Deploy to paper")
    with st.form(f"registry-deploy-{model.model_id}"):
        cols = st.columns(3)
        first = cols[0].date_input("replay from", value=start)
        last = cols[1].date_input("to", value=end)
        leverage = cols[2].number_input("leverage", min_value=1.0, max_value=125.0,
                                        value=float(venue.get("leverage") or 3.0))  # fmt: skip
        if st.form_submit_button("Start a paper session"):
            if last < first:
                st.error("the replay ends before it starts")
                return
            argv = paper_argv(model, first, last, leverage)
            widgets.start_job(h, argv, "paper start", f"paper {model.name} ({model.model_id[:8]})")


def show_outcome(model_id: str) -> None:
    """The checks of the promotion attempted on the previous run (kept across the rerun that refreshed the page)."""
    outcome = st.session_state.get(OUTCOME_KEY)
    if not outcome or outcome["model_id"] != model_id:
        return
    st.session_state.pop(OUTCOME_KEY)
    if outcome["promoted"]:
        replaced = f"; {outcome['previous']} retired" if outcome["previous"] else ""
        st.success(f"model {model_id} promoted to champion{replaced}")
    else:
        failed = ", ".join(c.rule for c in outcome["checks"] if not c.passed)
        st.error(f"model {model_id} not promoted: failed {failed}. Stages unchanged.")
    st.dataframe(readers.check_rows(outcome["checks"]), hide_index=True, width="stretch", key="registry-outcome")


def actions(h: Home, model) -> None:
    from vibe_quant.errors import UserError
    from vibe_quant.rl import promotion
    from vibe_quant.rl.registry import set_stage

    key = model.model_id
    st.subheader("Actions")
    if model.stage == "retired":
        st.caption("retired: no further stage change")
        return
    cols = st.columns(3)
    if model.stage in promotion.PROMOTABLE and cols[0].button(
        "Promote", key=f"registry_promote_{key}", type="primary",
        help="apply the promotion rules against the champion; if every check passes, this model becomes "
             "champion and the old champion is retired",
    ):  # fmt: skip
        try:
            result = promotion.promote(h, key)
        except UserError as exc:
            common.show_error(exc, "not promoted")
        else:
            st.session_state[OUTCOME_KEY] = {"model_id": key, "promoted": result.decision.promote,
                                             "checks": result.decision.checks, "previous": result.previous_champion}  # fmt: skip
            st.rerun()
    if model.stage == "candidate" and cols[1].button("Move to staging", key=f"registry_stage_{key}"):
        try:
            set_stage(h, key, "staging", "staged from the dashboard")
        except UserError as exc:
            common.show_error(exc, "not staged")
        else:
            common.flash(f"model {key} moved to staging")
            st.rerun()
    with cols[2]:
        reason = st.text_input("reason to retire", key=f"registry_reason_{key}")
        if common.confirm(f"registry-retire-{key}", "Retire", f"Retire model {key} ({model.stage})? It cannot be "
                          "promoted again."):  # fmt: skip
            if not reason.strip():
                st.error("give a reason to retire the model")
                return
            try:
                set_stage(h, key, "retired", reason.strip())
            except UserError as exc:
                common.show_error(exc, "not retired")
            else:
                common.flash(f"model {key} retired: {reason.strip()}")
                st.rerun()
