"""The dashboard pages: one module per page, each with ``render()`` (registered in ``dashboard/app.py``)."""
