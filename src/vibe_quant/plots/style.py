"""Shared look of every figure: colours and the base layout."""

from __future__ import annotations

GREEN = "#2ca02c"
RED = "#d62728"
GREY = "#7f7f7f"
HIGHLIGHT = "#d62728"


def base_layout(title: str, height: int = 380) -> dict:
    """Title, white template, compact margins, unified hover along x."""
    return {
        "title": {"text": title, "x": 0.01, "font": {"size": 15}},
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 60, "r": 30, "t": 50, "b": 40},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.15},
    }
