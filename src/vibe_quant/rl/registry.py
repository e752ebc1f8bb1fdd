"""The RL model registry: trained policies with their provenance, evaluation and stage.

A model is identified by its content: ``model_id`` is the first 16 hex of the sha256 of its artifact
files (by name and bytes) and its metadata, so registering the same thing twice returns the same
record. Rows live in the state database (tables ``models`` and ``model_decisions``, migration
``0011_models.sql``); artifacts under ``$VQ_HOME/models/<model_id>/``, copied to a temporary folder
and renamed into place, so a failed registration never leaves half a model.

Stages: a model enters as ``candidate``; ``staging`` and ``retired`` are set by hand
(:func:`set_stage`); ``champion`` is reached only through the promotion rules
(:func:`vibe_quant.rl.promotion.promote`), one per symbol and timeframe. Every stage change is a
decision row with its reasons.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from vibe_quant.errors import ConfigError, UserError, did_you_mean
from vibe_quant.home import Home
from vibe_quant.state.db import connect, transaction

Algo = Literal["sac", "ppo", "dqn"]
Stage = Literal["candidate", "staging", "champion", "retired"]
DecisionKind = Literal["promoted", "rejected", "staged", "retired"]

ALGOS: tuple[str, ...] = ("sac", "ppo", "dqn")
STAGES: tuple[str, ...] = ("candidate", "staging", "champion", "retired")
ID_HEX = 16
MODELS_DIR = "models"
# Stages set by hand, and the decision each records; champion only through promotion.promote.
MANUAL_STAGES: dict[str, str] = {"staging": "staged", "retired": "retired"}

Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]
JSON_FIX = (
    "Fix: give hyperparameters, env_config and evaluation details as plain JSON values (str, int, float, "
    "bool, None, lists and dicts of them; float(x) for numpy numbers)"
)
_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


class UnknownModelError(UserError):
    """No model in the registry has this id (or id prefix), or the prefix names several."""


class Metrics(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A model's out-of-sample evaluation, net of fees and funding: what the promotion rules read.

    Parameters
    ----------
    net_return : float
        Total return over the evaluation period as a fraction (0.12 = +12%), after fees and funding.
    max_drawdown : float
        Largest peak-to-trough fall of equity, a positive fraction in [0, 1] (0.2 = 20% below the peak).
    sharpe, sortino : float
        Annualised with the evaluation's ``periods_per_year`` (crypto trades 365 days).
    turnover : float
        Traded notional divided by mean equity, per year (>= 0): 2.0 = the equity bought and sold once a year.
    cvar : float
        Expected loss in the worst 5% of periods, a positive fraction (how the evaluation measured it is
        its own business; the registry stores it).
    n_trades : int
        Closed trades (>= 0).
    largest_trade_share : float
        |PnL| of the single largest trade over the sum of |PnL| of every trade, in [0, 1].
    window_returns : tuple of float
        Net return of each walk-forward test window, in time order.
    """

    net_return: float
    max_drawdown: Fraction
    sharpe: float
    sortino: float
    turnover: NonNegative
    cvar: float
    n_trades: Annotated[int, msgspec.Meta(ge=0)]
    largest_trade_share: Fraction
    window_returns: tuple[float, ...]

    def __post_init__(self) -> None:
        figures = {f: getattr(self, f) for f in ("net_return", "max_drawdown", "sharpe", "sortino", "turnover", "cvar")}
        figures.update({f"window_returns[{i}]": v for i, v in enumerate(self.window_returns)})
        for name, value in figures.items():
            if not math.isfinite(value):
                raise ConfigError(f"metric {name} must be a finite number, got {value}")


class EvaluationReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A model's evaluation report.

    Parameters
    ----------
    metrics : Metrics
        The figures the promotion rules read.
    details : dict, default {}
        Anything else the evaluation wants kept (periods, per-window metrics, regimes); JSON values.
    """

    metrics: Metrics
    details: dict[str, Any] = {}


class ModelMeta(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a trainer says about a model when it registers it (everything but the artifact bytes).

    Parameters
    ----------
    name : str
        A label for people (not unique; the id is).
    algo : {"sac", "ppo", "dqn"}
        The Stable-Baselines3 algorithm.
    symbol, timeframe : str
        The market it trades, e.g. ``"BTCUSDT"`` and ``"5m"``; a champion is per symbol and timeframe.
    training_data_hash : str
        Content hash of the data it was trained on.
    feature_version : str
        Version of the feature pipeline its observations come from.
    hyperparameters : dict
        The algorithm's hyperparameters (JSON values).
    env_config : dict
        The trading environment's configuration (JSON values).
    evaluation : EvaluationReport
        Its out-of-sample evaluation.
    """

    name: Annotated[str, msgspec.Meta(min_length=1)]
    algo: Algo
    symbol: Annotated[str, msgspec.Meta(min_length=1)]
    timeframe: Annotated[str, msgspec.Meta(min_length=1)]
    training_data_hash: Annotated[str, msgspec.Meta(min_length=1)]
    feature_version: Annotated[str, msgspec.Meta(min_length=1)]
    hyperparameters: dict[str, Any]
    env_config: dict[str, Any]
    evaluation: EvaluationReport


class ModelRecord(msgspec.Struct, frozen=True):
    """One registered model, as stored.

    Parameters
    ----------
    model_id : str
        16 hex: the content id.
    created_at : str
        ISO 8601 UTC of the first registration.
    artifact_path : str
        Its artifact folder relative to the home (``models/<model_id>``); see :func:`artifact_path`.
    stage : {"candidate", "staging", "champion", "retired"}
    The other fields are those of :class:`ModelMeta`.
    """

    model_id: str
    name: str
    algo: Algo
    symbol: str
    timeframe: str
    created_at: str
    artifact_path: str
    training_data_hash: str
    feature_version: str
    hyperparameters: dict[str, Any]
    env_config: dict[str, Any]
    evaluation: EvaluationReport
    stage: Stage

    @property
    def metrics(self) -> Metrics:
        return self.evaluation.metrics


class Check(msgspec.Struct, frozen=True):
    """One rule applied to a model, and its outcome: a reason of a decision.

    Parameters
    ----------
    rule : str
        The rule's name (``net_return_gain``, ``max_drawdown``, ..., or ``manual`` for a stage set by hand).
    passed : bool
    value : float or None
        The figure the rule read (None when it read none).
    threshold : float or None
        The bound it was held to (None when none applies).
    message : str
        One sentence a person reads.
    """

    rule: str
    passed: bool
    value: float | None
    threshold: float | None
    message: str


class DecisionRecord(msgspec.Struct, frozen=True):
    """One recorded decision about a model.

    Parameters
    ----------
    id : int
        Row id (decisions are in id order).
    model_id : str
    champion_id : str or None
        The champion of the model's symbol and timeframe when the decision was taken.
    decided_at : str
        ISO 8601 UTC.
    decision : {"promoted", "rejected", "staged", "retired"}
    reasons : tuple of Check
    """

    id: int
    model_id: str
    champion_id: str | None
    decided_at: str
    decision: DecisionKind
    reasons: tuple[Check, ...]


def parse_meta(data: Mapping[str, Any] | ModelMeta) -> ModelMeta:
    """Return `data` (plain JSON-like data, or a :class:`ModelMeta` built directly) as a checked ModelMeta.

    Structs built by calling the class skip the field constraints (fractions in [0, 1], ...); this
    checks them.

    Raises
    ------
    ConfigError
        A field is missing, unknown, of the wrong type or out of range: the message names it; or
        ``hyperparameters``/``env_config``/``details`` hold a value JSON cannot carry (a numpy scalar, a Path).
    """
    meta = _convert(data, ModelMeta, "model metadata")
    try:
        msgspec.json.encode(meta)
    except (TypeError, msgspec.EncodeError) as exc:
        raise ConfigError(f"model metadata: {exc}. {JSON_FIX}") from None
    return meta


def parse_metrics(data: Mapping[str, Any] | Metrics) -> Metrics:
    """Return `data` (a metrics dict, or a :class:`Metrics`) as checked :class:`Metrics`.

    Raises
    ------
    ConfigError
        A metric is missing, unknown, not finite or out of range: the message names it.
    """
    return _convert(data, Metrics, "metrics")


def models_dir(home: Home) -> Path:
    """Return ``$VQ_HOME/models``, where each model's artifacts live in a folder named by its id."""
    return home.root / MODELS_DIR


def artifact_path(home: Home, record: ModelRecord) -> Path:
    """Return the absolute folder of `record`'s artifact files in `home`."""
    return home.root / record.artifact_path


def content_id(artifact_files: Mapping[str, Path], meta: ModelMeta) -> str:
    """Return the model id of these artifacts and metadata: first 16 hex of a sha256.

    The digest covers each artifact's name and the sha256 of its bytes, and the canonical JSON of
    `meta` (sorted keys); never the paths the files were read from nor the time.

    Raises
    ------
    ConfigError
        No artifact, an artifact name that is not a plain file name, or metadata out of range.
    UserError
        An artifact file does not exist.
    """
    files = _checked_files(artifact_files)
    meta = parse_meta(meta)
    digests = {name: _file_sha256(path) for name, path in files.items()}
    canonical = msgspec.json.encode({"artifacts": digests, "meta": meta}, order="sorted")
    return hashlib.sha256(canonical).hexdigest()[:ID_HEX]


def register(
    home: Home, artifact_files: Mapping[str, Path], meta: ModelMeta, now: dt.datetime | None = None
) -> ModelRecord:
    """Copy a model's artifacts into the home and record it as a candidate.

    Registering the same artifacts and metadata again returns the existing record (its stage and
    ``created_at`` unchanged): the id is the content's.

    Parameters
    ----------
    home : Home
        The data home; its layout is created if missing.
    artifact_files : mapping of str to Path
        Artifact name (a plain file name, e.g. ``"policy.zip"``) to the file to copy.
    meta : ModelMeta
        Everything else about the model.
    now : datetime, optional
        The registration time (aware); default the current UTC time.

    Returns
    -------
    ModelRecord
        Stage ``candidate`` for a new model.

    Raises
    ------
    ConfigError
        No artifact, a name that is not a plain file name, or metadata out of range (see :func:`parse_meta`).
    UserError
        An artifact file does not exist, or the home cannot be created.
    """
    meta = parse_meta(meta)
    model_id = content_id(artifact_files, meta)
    home.ensure()
    final = models_dir(home) / model_id
    created = _place_artifacts(final, _checked_files(artifact_files))
    row = {
        "model_id": model_id,
        "name": meta.name,
        "algo": meta.algo,
        "symbol": meta.symbol,
        "timeframe": meta.timeframe,
        "created_at": _iso(now),
        "artifact_path": f"{MODELS_DIR}/{model_id}",
        "training_data_hash": meta.training_data_hash,
        "feature_version": meta.feature_version,
        "hyperparameters": _json(meta.hyperparameters),
        "env_config": _json(meta.env_config),
        "evaluation": _json(meta.evaluation),
        "stage": "candidate",
    }
    try:
        with _db(home) as conn, transaction(conn):
            conn.execute(
                f"INSERT INTO models ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)}) "
                "ON CONFLICT(model_id) DO NOTHING",
                list(row.values()),
            )
            return _record(_row(conn, model_id))
    except BaseException:
        if created:  # no row points at it: leave nothing behind
            shutil.rmtree(final, ignore_errors=True)
        raise


def get(home: Home, model_id: str) -> ModelRecord:
    """Return the model whose id is `model_id` or starts with it.

    Raises
    ------
    UnknownModelError
        No model has that id or prefix (the message suggests the closest id), or several do.
    """
    with _db(home, reading=True) as conn:
        return _record(_row(conn, _resolve(conn, home, model_id)))


def list_models(home: Home, stage: str | None = None, symbol: str | None = None) -> list[ModelRecord]:
    """Return the registered models, oldest first, optionally of one stage and/or one symbol.

    Parameters
    ----------
    home : Home
    stage : {"candidate", "staging", "champion", "retired"}, optional
    symbol : str, optional

    Raises
    ------
    UserError
        `stage` is not a stage.
    """
    if stage is not None:
        _check_stage(stage, STAGES)
    if not home.db_path.exists():
        return []
    where, args = [], []
    for column, value in (("stage", stage), ("symbol", symbol)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    with _db(home, reading=True) as conn:
        rows = conn.execute(f"SELECT * FROM models{clause} ORDER BY created_at, model_id", args).fetchall()
    return [_record(row) for row in rows]


def champion(home: Home, symbol: str, timeframe: str) -> ModelRecord | None:
    """Return the champion of `symbol` and `timeframe`, or None if there is none."""
    if not home.db_path.exists():
        return None
    with _db(home, reading=True) as conn:
        row = _champion_row(conn, symbol, timeframe)
    return None if row is None else _record(row)


def set_stage(
    home: Home, model_id: str, stage: str, reasons: str | Sequence[Check], now: dt.datetime | None = None
) -> ModelRecord:
    """Move a model to ``staging`` or ``retired`` by hand and record the decision with its reasons.

    Champion is not set here: :func:`vibe_quant.rl.promotion.promote` applies the promotion rules.
    Retiring a champion leaves its symbol and timeframe without one until the next promotion.

    Parameters
    ----------
    home : Home
    model_id : str
        An id or a unique prefix.
    stage : {"staging", "retired"}
    reasons : str or sequence of Check
        Why; a string becomes one passed ``manual`` check.
    now : datetime, optional
        The decision time (aware); default the current UTC time.

    Returns
    -------
    ModelRecord
        The model in its new stage.

    Raises
    ------
    UserError
        `stage` is not staging or retired, or the model is already in it.
    UnknownModelError
        No such model (see :func:`get`).
    """
    _check_stage(stage, tuple(MANUAL_STAGES))
    checks = (Check("manual", True, None, None, reasons),) if isinstance(reasons, str) else tuple(reasons)
    with _db(home) as conn, transaction(conn):
        model = resolve(conn, home, model_id)
        if model.stage == stage:
            raise UserError(f"model {model.model_id} is already {stage}")
        record_decision(conn, model, MANUAL_STAGES[stage], checks, now)
        update_stage(conn, model.model_id, stage)
        return _record(_row(conn, model.model_id))


def decisions(home: Home, model_id: str | None = None) -> list[DecisionRecord]:
    """Return the recorded decisions, oldest first: every one, or those about one model.

    Raises
    ------
    UnknownModelError
        `model_id` is given and names no model (see :func:`get`).
    """
    if not home.db_path.exists():
        if model_id is not None:
            raise UnknownModelError(f"unknown model {model_id!r}: the registry in {home.root} is empty")
        return []
    with _db(home, reading=True) as conn:
        if model_id is None:
            rows = conn.execute("SELECT * FROM model_decisions ORDER BY id").fetchall()
        else:
            full = _resolve(conn, home, model_id)
            rows = conn.execute("SELECT * FROM model_decisions WHERE model_id = ? ORDER BY id", (full,)).fetchall()
    return [
        DecisionRecord(
            id=r["id"],
            model_id=r["model_id"],
            champion_id=r["champion_id"],
            decided_at=r["decided_at"],
            decision=r["decision"],
            reasons=msgspec.json.decode(r["reasons"], type=tuple[Check, ...]),
        )
        for r in rows
    ]


# -- for promotion.promote: the same connection and transaction ----------------------------------


@contextmanager
def open_registry(home: Home) -> Iterator[sqlite3.Connection]:
    """Yield a connection to `home`'s state database (created if missing) and close it after."""
    home.ensure()
    with _db(home) as conn:
        yield conn


def resolve(conn: sqlite3.Connection, home: Home, model_id: str) -> ModelRecord:
    """Return the model `model_id` (an id or a unique prefix) through an open connection.

    Raises
    ------
    UnknownModelError
        See :func:`get`.
    """
    return _record(_row(conn, _resolve(conn, home, model_id)))


def champion_in(conn: sqlite3.Connection, symbol: str, timeframe: str) -> ModelRecord | None:
    """Return the champion of `symbol` and `timeframe` through an open connection, or None."""
    row = _champion_row(conn, symbol, timeframe)
    return None if row is None else _record(row)


def record_decision(
    conn: sqlite3.Connection,
    model: ModelRecord,
    decision: str,
    reasons: Sequence[Check],
    now: dt.datetime | None = None,
) -> int:
    """Insert a decision about `model` (champion_id: its market's champion now) and return its row id."""
    current = _champion_row(conn, model.symbol, model.timeframe)
    cur = conn.execute(
        "INSERT INTO model_decisions (model_id, champion_id, decided_at, decision, reasons) VALUES (?, ?, ?, ?, ?)",
        (model.model_id, None if current is None else current["model_id"], _iso(now), decision, _json(tuple(reasons))),
    )
    return int(cur.lastrowid)


def update_stage(conn: sqlite3.Connection, model_id: str, stage: str) -> None:
    """Set a model's stage through an open connection (the caller holds the transaction)."""
    conn.execute("UPDATE models SET stage = ? WHERE model_id = ?", (stage, model_id))


# -- helpers ---------------------------------------------------------------------------------------


@contextmanager
def _db(home: Home, reading: bool = False) -> Iterator[sqlite3.Connection]:
    if reading and not home.db_path.exists():
        raise UnknownModelError(f"no model registered in {home.root} (no state database yet)")
    conn = connect(home.db_path)
    try:
        yield conn
    finally:
        conn.close()


def _checked_files(artifact_files: Mapping[str, Path]) -> dict[str, Path]:
    if not artifact_files:
        raise ConfigError("a model needs at least one artifact file (e.g. {'policy.zip': path})")
    out = {}
    for name, path in artifact_files.items():
        if not _ARTIFACT_NAME.match(name):
            raise ConfigError(
                f"artifact name {name!r} is not a plain file name. Fix: use letters, digits, '.', '_' or '-', "
                "without a folder (e.g. 'policy.zip')"
            )
        path = Path(path)
        if not path.is_file():
            raise UserError(f"artifact {name!r}: no file at {path}")
        out[name] = path
    return out


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _place_artifacts(final: Path, files: Mapping[str, Path]) -> bool:
    """Copy `files` into `final` through a temporary sibling folder; True if this call created it."""
    if final.is_dir():  # same content id: the same bytes are already there
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        for name, source in files.items():
            shutil.copyfile(source, staging / name)
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():
                raise
            return False  # another registration of the same content won the rename
        return True
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _resolve(conn: sqlite3.Connection, home: Home, model_id: str) -> str:
    key = model_id.strip().lower()
    if re.fullmatch(r"[0-9a-f]{1,16}", key):
        matches = [r[0] for r in conn.execute("SELECT model_id FROM models WHERE substr(model_id, 1, ?) = ?",
                                              (len(key), key))]  # fmt: skip
    else:
        matches = []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UnknownModelError(
            f"model id prefix {model_id!r} is ambiguous: {', '.join(sorted(matches))}. Fix: give more characters"
        )
    known = [r[0] for r in conn.execute("SELECT model_id FROM models ORDER BY model_id")]
    hint = did_you_mean(key, known) if known else " The registry is empty."
    raise UnknownModelError(f"unknown model {model_id!r} in {home.root}.{hint} (list_models shows them)")


def _row(conn: sqlite3.Connection, model_id: str) -> sqlite3.Row:
    return conn.execute("SELECT * FROM models WHERE model_id = ?", (model_id,)).fetchone()


def _champion_row(conn: sqlite3.Connection, symbol: str, timeframe: str) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT * FROM models WHERE symbol = ? AND timeframe = ? AND stage = 'champion'", (symbol, timeframe)
    ).fetchone()


def _record(row: sqlite3.Row) -> ModelRecord:
    data = dict(row)
    for column in ("hyperparameters", "env_config", "evaluation"):
        data[column] = json.loads(data[column])
    return msgspec.convert(data, ModelRecord)


def _check_stage(stage: str, allowed: tuple[str, ...]) -> None:
    if stage not in allowed:
        hint = did_you_mean(stage, allowed)
        raise UserError(f"stage {stage!r} is not one of {', '.join(allowed)}.{hint}")


def _convert(data: Any, kind: type, what: str) -> Any:
    try:
        raw = msgspec.to_builtins(data) if isinstance(data, msgspec.Struct) else data
    except TypeError as exc:
        raise ConfigError(f"{what}: {exc}. {JSON_FIX}") from None
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{what}: {exc}") from None


def _json(value: Any) -> str:
    return msgspec.json.encode(value, order="sorted").decode()


def _iso(now: dt.datetime | None) -> str:
    when = dt.datetime.now(dt.UTC) if now is None else now
    if when.tzinfo is None:
        raise UserError(f"decision time {when} has no time zone. Fix: pass an aware datetime (UTC)")
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")
