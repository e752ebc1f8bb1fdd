"""The script Streamlit runs for Mission Control (``vq dashboard``, or ``streamlit run`` on this file).

It lives in a folder of its own because Streamlit treats a ``pages/`` folder beside the script it runs as
old-style pages: until the first ``st.navigation`` call in the server, a link to ``/strategies`` would run
``dashboard/pages/strategies.py`` as a script (a blank page) instead of the app.
"""

from vibe_quant.dashboard.app import main

main()
