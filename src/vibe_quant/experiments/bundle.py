"""The result bundle of an LPI experiment: ``runs/<experiment_id>/`` (``docs/specs.md#lpi-experiments``).

======================== ==================================================================
``config_resolved.yaml`` the experiment with every default written out (what the id hashes)
``manifest_ref.json``    the data digest, the code version, the catalog datasets read
``fills.csv``            every fill in a scored span: run (strategy/baseline), fold, the fill
``positions.csv``        round trips entered in a scored span (run, fold, the trades table)
``account_report.csv``   equity at each bar close of each fold's run (run, fold, ts, equity)
``markouts.csv``         the strategy's fill markouts (fold, order, horizon, mid, bps)
``signal_trace.parquet`` the LPI snapshots of the period (``lpi.params.SNAPSHOT_DTYPE``)
``summary.json``         per-fold and aggregate metrics, the baseline, the comparison, labels
======================== ==================================================================

Written through a staging directory and moved into place only when complete (a failed run leaves
the previous bundle of that id, or nothing). No wall times or temporary paths: byte-identical for
the same config, data and code.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import yaml

from vibe_quant.experiments.runner import ExperimentResult
from vibe_quant.home import Home

if TYPE_CHECKING:
    import pandas as pd

FILES = ("config_resolved.yaml", "manifest_ref.json", "fills.csv", "positions.csv", "account_report.csv",
         "markouts.csv", "signal_trace.parquet", "summary.json")  # fmt: skip
MARKOUT_COLUMNS = ("fold", "ts", "order_id", "side", "fill_price", "horizon_ms", "mid", "markout_bps")


def _table(rows: list[dict], columns: list[str] | tuple[str, ...]) -> bytes:
    import pandas as pd

    return pd.DataFrame(rows, columns=list(columns)).to_csv(index=False, lineterminator="\n").encode()


def _runs(result: ExperimentResult):
    yield "strategy", result.folds
    yield "baseline", result.baseline


def bundle_files(result: ExperimentResult) -> dict[str, bytes]:
    """The bundle's files by name (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vibe_quant import code_version
    from vibe_quant.backtest.persist import TRADE_COLUMNS, trade_row
    from vibe_quant.backtest.recorder import FillRecord

    out: dict[str, bytes] = {}
    out["config_resolved.yaml"] = yaml.safe_dump(msgspec.to_builtins(result.experiment), sort_keys=True).encode()
    out["manifest_ref.json"] = (json.dumps({
        "experiment_id": result.experiment_id, "data_digest": result.data_digest, "code_version": code_version(),
        "catalog": "$VQ_HOME/catalog", "instruments": list(result.experiment.instruments),
        "datasets": ["trade_tick", "quote_tick", "funding_rate_update", "custom_binance_oi_metrics", "custom_binance_book_depth"],
    }, indent=2, sort_keys=True) + "\n").encode()  # fmt: skip
    fill_cols = [f.name for f in dataclasses.fields(FillRecord)]
    out["fills.csv"] = _table([{"run": run, "fold": f.fold.index, **dataclasses.asdict(x)}
                               for run, rows in _runs(result) for f in rows for x in f.fills],
                              ["run", "fold", *fill_cols])  # fmt: skip
    out["positions.csv"] = _table([{"run": run, "fold": f.fold.index, **trade_row(t)}
                                   for run, rows in _runs(result) for f in rows for t in f.trades],
                                  ["run", "fold", *TRADE_COLUMNS])  # fmt: skip
    out["account_report.csv"] = _table([{"run": run, "fold": f.fold.index, "ts": int(ts), "equity": float(eq)}
                                        for run, rows in _runs(result) for f in rows
                                        for ts, eq in zip(f.equity_ts, f.equity, strict=True)],
                                       ["run", "fold", "ts", "equity"])  # fmt: skip
    out["markouts.csv"] = _table([{"fold": f.fold.index, **{k: e.get(k) for k in MARKOUT_COLUMNS[1:]}}
                                  for f in result.folds for e in f.markouts], MARKOUT_COLUMNS)  # fmt: skip
    trace = result.trace
    table = pa.table({name: trace[name] for name in trace.dtype.names})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    out["signal_trace.parquet"] = sink.getvalue()
    out["summary.json"] = (json.dumps(result.summary(), indent=2, sort_keys=True) + "\n").encode()
    return out


def write_experiment_bundle(home: Home, result: ExperimentResult) -> Path:
    """Write ``runs/<experiment_id>/`` atomically (replacing an earlier bundle of the same id)."""
    from vibe_quant.staging import OnExists, StagingArea

    home.runs.mkdir(parents=True, exist_ok=True)
    staging = StagingArea(home.runs)
    try:
        for name, data in bundle_files(result).items():
            staging.write_bytes(f"{result.experiment_id}/{name}", data, OnExists.REPLACE)
        staging.commit()
    except BaseException:
        staging.abort()
        raise
    return home.runs / result.experiment_id


def read_summary(home: Home, ref: str) -> tuple[Path, dict]:
    """The bundle `ref` names (an experiment id under ``runs/``, or a bundle directory) and its summary.

    Raises
    ------
    UserError
        No such bundle (lists the experiments present).
    """
    from vibe_quant.errors import UserError

    path = Path(ref)
    if not (path / "summary.json").is_file():
        path = home.runs / ref
    if not (path / "summary.json").is_file():
        known = sorted(p.parent.name for p in home.runs.glob("*/markouts.csv")) if home.runs.is_dir() else []
        raise UserError(f"no experiment bundle {ref!r} in {home.runs}; experiments: {', '.join(known) or 'none yet'} "
                        "(run one with `vq lpi run experiment.yaml`)")  # fmt: skip
    return path, json.loads((path / "summary.json").read_text())


# -- reading -------------------------------------------------------------------------------------


def is_bundle(path: Path) -> bool:
    """Whether `path` is an experiment bundle (its summary and markouts written; a backtest's bundle has no markouts)."""
    return (path / "summary.json").is_file() and (path / "markouts.csv").is_file()


def list_bundles(home: Home) -> list[Path]:
    """The experiment bundles under ``runs/``, newest first (by when their ``summary.json`` was written)."""
    if not home.runs.is_dir():
        return []
    found = [p for p in home.runs.iterdir() if p.is_dir() and is_bundle(p)]
    return sorted(found, key=lambda p: ((p / "summary.json").stat().st_mtime_ns, p.name), reverse=True)


@dataclasses.dataclass(frozen=True)
class ExperimentBundle:
    """A written bundle, its tables read as they are stored (``fills``, ``positions``, ``equity`` (the
    account report), ``markouts``: DataFrames with the CSV columns; see the module docstring)."""

    path: Path
    summary: dict
    fills: pd.DataFrame
    positions: pd.DataFrame
    equity: pd.DataFrame
    markouts: pd.DataFrame

    @property
    def experiment_id(self) -> str:
        return self.summary["experiment_id"]

    def text(self, name: str) -> str:
        """One of the bundle's text files (``config_resolved.yaml``, ``manifest_ref.json``)."""
        return (self.path / name).read_text()

    def trace(self, columns: list[str] | tuple[str, ...] | None = None) -> pd.DataFrame:
        """``signal_trace.parquet`` as a DataFrame of `columns` (default: every ``SNAPSHOT_DTYPE`` field);
        read on demand, a year of volume-clock buckets is millions of rows."""
        import pyarrow.parquet as pq

        return pq.read_table(self.path / "signal_trace.parquet", columns=list(columns) if columns else None).to_pandas()

    def sensitivity(self) -> pd.DataFrame | None:
        """The sensitivity grid this experiment belongs to: ``runs/<id>.sensitivity.csv`` of the sweep it
        is the base of, else of a sweep listing it as a point; None without one."""
        import pandas as pd

        runs = self.path.parent
        own = runs / f"{self.experiment_id}.sensitivity.csv"
        for path in [own, *sorted(p for p in runs.glob("*.sensitivity.csv") if p != own)]:
            if path.is_file():
                grid = pd.read_csv(path)
                if path == own or self.experiment_id in set(grid.get("experiment_id", ())):
                    return grid
        return None


def read_bundle(home: Home, ref: str) -> ExperimentBundle:
    """The bundle `ref` names (as :func:`read_summary`) with its tables.

    Raises
    ------
    UserError
        No such bundle (lists the experiments present).
    """
    import pandas as pd

    path, summary = read_summary(home, ref)
    tables = {name: pd.read_csv(path / f"{name}.csv") for name in ("fills", "positions", "account_report", "markouts")}
    return ExperimentBundle(path, summary, tables["fills"], tables["positions"], tables["account_report"],
                            tables["markouts"])  # fmt: skip
