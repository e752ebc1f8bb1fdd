"""Regenerate tests/backtest/goldens/*.json. Run only on purpose, and commit the diff for review.

uv run python scripts/regen_backtest_goldens.py
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.backtest.golden_cases import CASES, END, GOLDEN_DIR, START, golden_payload  # noqa: E402

from vibe_quant.backtest.engine import run_backtest  # noqa: E402
from vibe_quant.backtest.market_data import load_market_data  # noqa: E402
from vibe_quant.backtest.plan import plan_run  # noqa: E402
from vibe_quant.data.ingest import IngestRequest, run_ingest  # noqa: E402
from vibe_quant.home import Home  # noqa: E402
from vibe_quant.instruments.specs import InstrumentSpecs  # noqa: E402

MIRROR = ROOT.parent / "shared" / "data" / "binance-vision"


def encode(value):
    return None if isinstance(value, float) and (math.isnan(value) or math.isinf(value)) else value


def main() -> None:
    specs = InstrumentSpecs()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp)).ensure()
        run_ingest(
            home,
            IngestRequest(str(MIRROR), ("FILUSDT", "NEARUSDT"), ("klines",), START, END + dt.timedelta(days=1)),
            specs,
        )
        GOLDEN_DIR.mkdir(exist_ok=True)
        for name, config in CASES.items():
            plan = plan_run(config)
            result = run_backtest(plan, load_market_data(home.catalog, plan, specs), run_id=name)
            payload = golden_payload(result)
            payload["metrics"] = {k: encode(v) for k, v in payload["metrics"].items()}
            (GOLDEN_DIR / f"{name}.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
            print(f"{name}: {payload['fills']} fills, total_return {payload['metrics']['total_return']:.6f}")


if __name__ == "__main__":
    main()
