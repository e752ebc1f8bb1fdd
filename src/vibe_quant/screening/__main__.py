"""``python -m vibe_quant.screening run|top ...`` is ``vq screen ...``."""

import sys

from vibe_quant.cli import run
from vibe_quant.cli.screen import screen_app

sys.exit(run(screen_app))
