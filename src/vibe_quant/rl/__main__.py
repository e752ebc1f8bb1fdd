"""``python -m vibe_quant.rl ...`` is ``vq rl ...``."""

import sys

from vibe_quant.cli import run
from vibe_quant.cli.rl import rl_app

sys.exit(run(rl_app))
