"""``python -m vibe_quant`` is ``vq``."""

from vibe_quant.cli import main

main()
