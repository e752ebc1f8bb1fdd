"""Mission Control: the Streamlit dashboard (``vq dashboard``); ``app.py`` lists the pages, each a module of
``pages/`` with a ``render()``, reading through ``readers`` and writing through the stages' own functions."""
