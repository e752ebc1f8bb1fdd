"""Derive tick/step/listing entries for instrument_specs.yaml from the real data in ../shared/data.

Used once to write the ``derived`` entries of ``src/vibe_quant/instruments/instrument_specs.yaml``
and kept so the derivation can be reviewed and re-run. For every USDT-M symbol found in
``perps-1d-1h/`` and ``binance-vision/data/futures/um/`` it takes the largest number of
significant decimals seen in prices (-> tick size) and volumes (-> step size), and the first
daily bar as the listing date unless it is the source's own start (2020-05-31), where the true
listing is earlier and unknown to this data.

    uv run python scripts/derive_instrument_specs.py ../shared/data > /tmp/derived.yaml
"""

from __future__ import annotations

import csv
import io
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

SOURCE_START = "2020-05-31"  # perps-1d-1h starts here for symbols listed earlier: not a listing


def significant_decimals(text: str) -> int:
    if "." not in text:
        return 0
    return len(text.split(".", 1)[1].rstrip("0"))


def scan(root: Path) -> dict[str, dict]:
    seen: dict[str, dict] = defaultdict(lambda: {"price": 0, "size": 0, "first": None})
    for path in sorted((root / "perps-1d-1h").glob("*_USDT_*.csv")):
        entry = seen[path.name.split("_USDT_")[0] + "USDT"]
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            next(reader)
            for i, row in enumerate(reader):
                if i == 0 and path.name.endswith("_1d.csv"):
                    entry["first"] = row[6][:10]
                entry["price"] = max(entry["price"], *(significant_decimals(x) for x in row[1:5]))
                entry["size"] = max(entry["size"], significant_decimals(row[5]))
    klines = root / "binance-vision/data/futures/um/monthly/klines"
    for path in sorted(klines.glob("*/1m/*.zip")):
        entry = seen[path.parts[-3]]
        with zipfile.ZipFile(path) as zf:
            reader = csv.reader(io.TextIOWrapper(zf.open(zf.namelist()[0]), encoding="utf-8"))
            next(reader)
            for row in reader:
                entry["price"] = max(entry["price"], *(significant_decimals(x) for x in row[1:5]))
                entry["size"] = max(entry["size"], significant_decimals(row[5]))
    return seen


def increment(decimals: int) -> str:
    return "1" if decimals == 0 else "0." + "0" * (decimals - 1) + "1"


def main(root: str) -> None:
    for symbol, entry in sorted(scan(Path(root)).items()):
        listed = entry["first"] if entry["first"] and entry["first"] != SOURCE_START else None
        fields = [
            f"base: {symbol[:-4]!r}" if not symbol[:-4].isascii() else f"base: {symbol[:-4]}",
            f'tick_size: "{increment(entry["price"])}"',
            f'step_size: "{increment(entry["size"])}"',
        ]
        if listed:
            fields.append(f"listed: {listed}")
        fields.append("source: derived")
        print(f"  {symbol}: {{{', '.join(fields)}}}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
