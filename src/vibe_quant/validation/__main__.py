"""``python -m vibe_quant.validation run ...`` is ``vq backtest run ...``."""

import sys

from vibe_quant.cli import run
from vibe_quant.validation.cli import validation_app

sys.exit(run(validation_app))
