"""The command line: one module per verb (``vq data|dsl|backtest|screen|overfit|sizing|risk|demo``).

Verbs only parse options, call a stage function and print with ``vibe_quant.present``; stage
logic never lives here and no stage imports this package.
"""

from vibe_quant.cli.app import app, main, run

__all__ = ["app", "main", "run"]
