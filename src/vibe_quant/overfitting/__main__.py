"""``python -m vibe_quant.overfitting run|show ...`` is ``vq overfit ...``."""

import sys

from vibe_quant.cli import run
from vibe_quant.cli.overfit import overfit_app

sys.exit(run(overfit_app))
