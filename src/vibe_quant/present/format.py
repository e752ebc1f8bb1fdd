"""Numbers and times as the terminal views print them."""

from __future__ import annotations

import math

from vibe_quant.timeutil import iso

__all__ = ["fmt", "iso", "plain"]


def fmt(value, spec: str | None = None) -> str:
    """`value` for a table cell: ``-`` for None/nan, ``inf``; with `spec` ``format(value, spec)``;
    otherwise floats with 4 decimals below 100 (2 above), integers with thousands separators."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if spec is not None:
        return format(value, spec)
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 100 else f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def plain(line: str) -> str:
    """A terminal line without its rich markup (for HTML and the dashboard)."""
    from rich.text import Text

    return Text.from_markup(line).plain
