"""``python -m vibe_quant.validation run ...`` is ``vq backtest run ...``."""

import sys

from vibe_quant.cli import run
from vibe_quant.cli.backtest import backtest_app

sys.exit(run(backtest_app))
