"""``python -m vibe_quant.data ...`` is ``vq data ...`` (docs/specs.md#acceptance-commands)."""

import sys

from vibe_quant.cli import run
from vibe_quant.cli.data import data_app

sys.exit(run(data_app))
