"""``python -m vibe_quant.dsl validate|schema|show|list|save ...`` is ``vq dsl ...``."""

import sys

from vibe_quant.cli import run
from vibe_quant.cli.dsl import dsl_app

sys.exit(run(dsl_app))
