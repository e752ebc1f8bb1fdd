"""``python -m vibe_quant.lpi ...`` is ``vq lpi ...``."""

import sys

from vibe_quant.cli import run
from vibe_quant.cli.lpi import lpi_app

sys.exit(run(lpi_app))
