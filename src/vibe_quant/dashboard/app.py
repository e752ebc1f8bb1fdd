"""Mission Control, the vibe-quant dashboard: ``vq dashboard`` or ``streamlit run src/vibe_quant/dashboard/entry/app.py``
(the script that calls :func:`main`; see there why it is not this module).

Each page is a module of ``vibe_quant.dashboard.pages`` with a ``render()`` function; adding a page is
one entry in :data:`PAGES` (module name, title, icon). The home is ``$VQ_HOME`` (default ``./data``).
"""

from __future__ import annotations

import importlib

import streamlit as st

from vibe_quant.dashboard import common

# (module in vibe_quant.dashboard.pages, title, icon), in sidebar order; the first is the home page.
PAGES: list[tuple[str, str, str]] = [
    ("overview", "Overview", ":material/dashboard:"),
    ("backtests", "Backtests", ":material/rocket_launch:"),
    ("results", "Results", ":material/insights:"),
    ("lpi", "LPI experiments", ":material/science:"),
    ("rl_training", "RL Training", ":material/model_training:"),
    ("model_registry", "Model Registry", ":material/inventory_2:"),
    ("discovery", "Discovery", ":material/genetics:"),
    ("dolphin", "DOLPHIN", ":material/water:"),
    ("paper", "Paper Trading", ":material/play_circle:"),
    ("live", "Live Trading", ":material/bolt:"),
    ("data_lake", "Data Lake", ":material/database:"),
    ("strategies", "Strategies", ":material/code:"),
    ("risk", "Risk & Controls", ":material/shield:"),
    ("logs", "Logs", ":material/list_alt:"),
    ("settings", "Settings", ":material/settings:"),
]


@st.cache_resource(show_spinner=False)
def reconcile_once(root: str) -> int:
    """When the dashboard starts (once per server and home): mark failed the jobs and runs whose process is gone."""
    from vibe_quant.jobs import reconcile

    h = common.home()
    return len(reconcile(h)) if h.db_path.exists() else 0


def main() -> None:
    st.set_page_config(page_title="vibe-quant Mission Control", page_icon=":material/monitoring:", layout="wide")
    reconcile_once(str(common.home().root))
    pages = [
        st.Page(importlib.import_module(f"vibe_quant.dashboard.pages.{module}").render, title=title, icon=icon,
                url_path=module, default=i == 0)
        for i, (module, title, icon) in enumerate(PAGES)
    ]  # fmt: skip
    page = st.navigation(pages)
    st.sidebar.markdown("**vibe-quant** Mission Control")
    common.sidebar()
    page.run()


if __name__ == "__main__":  # `streamlit run` (and AppTest) run the script as __main__; importing it shows nothing
    main()
