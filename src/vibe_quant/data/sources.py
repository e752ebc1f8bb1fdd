"""Where raw files come from: a local directory or the Binance archive over HTTP.

Both sources turn a request (dataset, symbol, date range) into a plan of official archive
files and fetch their bytes. A directory is searched recursively by official file names, so
the mirror layout (``data/futures/um/monthly/klines/...``) and flat folders both work; files
under another market's folders (``spot``, ``futures/cm``, ``futures/um``, ``option``) are
ignored, files outside any market folder count for the requested market. Over HTTP the
official URLs are built (monthly files for whole months, daily files for partial months and
always for tick datasets, which keeps one file's bytes to a day), downloaded with bounded
retries and verified against their published ``.CHECKSUM``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from vibe_quant.data.archive import sha256_hex
from vibe_quant.data.files import (
    FUNDING,
    KLINE_INTERVAL,
    TICK_DATASETS,
    ArchiveFile,
    market_of_path,
    next_month,
    parse_path,
    plan_files,
)
from vibe_quant.errors import ChecksumMismatchError, UserError, VenueError

log = logging.getLogger(__name__)

DEFAULT_ARCHIVE_URL = "https://data.binance.vision"


@dataclass(frozen=True)
class Planned:
    """One file to ingest and the part of its span to keep (``[clip_start, clip_end)``)."""

    file: ArchiveFile
    clip_start: dt.date
    clip_end: dt.date
    location: str  # path or URL


@dataclass(frozen=True)
class Fetched:
    planned: Planned
    data: bytes
    sha256: str


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _clip(af: ArchiveFile, start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    return max(af.start, start or af.start), min(af.end, end or af.end)


def _verify(name: str, data: bytes, checksum_text: str | None) -> str:
    digest = sha256_hex(data)
    if checksum_text is not None:
        expected = checksum_text.strip().split()[0].lower() if checksum_text.strip() else ""
        if expected != digest:
            raise ChecksumMismatchError(
                name,
                f"sha256 {digest} does not match the published .CHECKSUM {expected or '(empty)'}",
                fix="the download is corrupt or the file was altered; delete it and fetch it again",
            )
    return digest


class LocalSource:
    """Official-named Binance files found recursively under a directory.

    Parameters
    ----------
    root : str or Path
        A mirror root (``.../binance-vision``) or any folder holding official file names.

    Raises
    ------
    UserError
        If `root` is not a directory.
    """

    def __init__(self, root: str | Path, market: str = "um"):
        self.root = Path(root).expanduser().resolve()
        self.market = market
        if not self.root.is_dir():
            raise UserError(f"--source {root}: not a directory and not an http(s) URL")
        self.files: dict[tuple[str, str | None, str, str, dt.date], Path] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel = Path(dirpath).relative_to(self.root).parts
            if market_of_path(rel) not in (None, market):
                dirnames.clear()
                continue
            dirnames.sort()
            for fname in sorted(filenames):
                af = parse_path(rel, fname, market)
                if af is None:
                    continue
                key = (af.dataset, af.interval, af.symbol, af.kind, af.start)
                # Prefer the zip as served over an unzipped copy of the same file.
                if key not in self.files or af.ext == "zip":
                    self.files[key] = Path(dirpath) / fname

    def describe(self) -> str:
        return str(self.root)

    def symbols(self, dataset: str, interval: str | None = KLINE_INTERVAL) -> set[str]:
        return {symbol for (ds, iv, symbol, _, _) in self.files if ds == dataset and iv in (None, interval)}

    def plan(
        self,
        dataset: str,
        symbol: str,
        start: dt.date | None,
        end: dt.date | None,
        interval: str | None = KLINE_INTERVAL,
    ) -> tuple[list[Planned], list[str]]:
        """Pick the files covering ``[start, end)`` (all files when both are None).

        Monthly files are used for whole months, daily files otherwise; when only one kind is
        on disk for a month it is used (a monthly file clipped to a partial range).
        """
        mine = {
            (kind, day): path
            for (ds, iv, sym, kind, day), path in self.files.items()
            if ds == dataset and sym == symbol and iv in (None, interval)
        }
        if start is None or end is None:
            days = sorted(day for _, day in mine)
            if not days:
                return [], [f"no {symbol} {dataset} files in {self.root}"]
            start = start or days[0].replace(day=1)
            end = end or next_month(max(days))
        planned: list[Planned] = []
        missing: list[str] = []
        month = start.replace(day=1)
        while month < end:
            nxt = next_month(month)
            whole = start <= month and nxt <= end
            monthly = mine.get(("monthly", month))
            lo, hi = max(start, month), min(end, nxt)
            dailies = [(day, mine[("daily", day)]) for day in _days(lo, hi) if ("daily", day) in mine]
            use_monthly = monthly is not None and (whole or not dailies or dataset == FUNDING)
            if use_monthly and dailies and dataset in TICK_DATASETS:  # ticks: one day's bytes at a time
                use_monthly = False
            if monthly is not None and use_monthly:
                af = self._file(monthly)
                planned.append(Planned(af, *_clip(af, lo, hi), str(monthly)))
            elif dailies:
                for _day, path in dailies:
                    af = self._file(path)
                    planned.append(Planned(af, af.start, af.end, str(path)))
                absent = [d for d in _days(lo, hi) if ("daily", d) not in mine]
                if absent:
                    missing.append(
                        f"{symbol} {dataset}: no file for {len(absent)} day(s) of {month:%Y-%m} in {self.root}"
                    )
            else:
                missing.append(f"{symbol} {dataset}: no file for {month:%Y-%m} in {self.root}")
            month = nxt
        return planned, missing

    def _file(self, path: Path) -> ArchiveFile:
        af = parse_path(path.parent.relative_to(self.root).parts, path.name, self.market)
        assert af is not None  # it was indexed from this name
        return af

    def fetch(self, planned: Planned, client: httpx.Client | None = None, stored: object = None) -> Fetched:
        path = Path(planned.location)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror}") from exc
        checksum = path.with_name(path.name + ".CHECKSUM")
        text = checksum.read_text(encoding="utf-8", errors="replace") if checksum.exists() else None
        return Fetched(planned, data, _verify(str(path), data, text))


def _daily(af: ArchiveFile) -> list[ArchiveFile]:
    return [
        ArchiveFile(af.dataset, af.symbol, d, d + dt.timedelta(days=1), "daily", af.ext, af.market, af.interval)
        for d in _days(af.start, af.end)
    ]


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for transient HTTP failures (timeouts, 429, 5xx)."""

    attempts: int = 4
    backoff_s: float = 0.5  # doubles after each failed attempt
    max_retry_after_s: float = 30.0


class HttpSource:
    """The Binance public archive (or a mirror of it) over HTTP.

    Parameters
    ----------
    root_url : str
        Archive root, default ``https://data.binance.vision``.
    retry : RetryPolicy, optional
        Retries for timeouts, 429 and 5xx answers; 404 means "no such file" (skipped).
    """

    def __init__(
        self,
        root_url: str = DEFAULT_ARCHIVE_URL,
        retry: RetryPolicy | None = None,
        timeout_s: float = 60.0,
        market: str = "um",
    ):
        self.root_url = root_url.rstrip("/")
        self.market = market
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s

    def describe(self) -> str:
        return self.root_url

    def client(self) -> httpx.Client:
        return httpx.Client(
            timeout=self.timeout_s,
            follow_redirects=True,
            headers={"User-Agent": "vibe-quant (+https://github.com/vibe-quant)"},
        )

    def plan(
        self,
        dataset: str,
        symbol: str,
        start: dt.date | None,
        end: dt.date | None,
        interval: str | None = KLINE_INTERVAL,
    ) -> tuple[list[Planned], list[str]]:
        if start is None or end is None:
            raise UserError("downloading needs a date range: pass --years N or --start/--end")
        files = plan_files(dataset, symbol, start, end, self.market, interval)
        if dataset in TICK_DATASETS:  # a month of ticks is gigabytes: fetch it day by day
            files = [d for f in files for d in (_daily(f) if f.kind == "monthly" else [f])]
        return [Planned(af, *_clip(af, start, end), af.url(self.root_url)) for af in files], []

    def get(self, client: httpx.Client, url: str) -> bytes | None:
        """GET `url` with retries; return the body, or None on 404.

        Raises
        ------
        VenueError
            After the last retry of a timeout/429/5xx, or on another unexpected status.
        """
        delay = self.retry.backoff_s
        last = ""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                resp = client.get(url)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    return resp.content
                if resp.status_code == 404:
                    return None
                last = f"HTTP {resp.status_code}"
                if resp.status_code not in (408, 429) and resp.status_code < 500:
                    raise VenueError(f"{url}: {last}; not retrying ({resp.text[:200]!r})")
                if resp.status_code == 429 and resp.headers.get("Retry-After", "").isdigit():
                    delay = min(float(resp.headers["Retry-After"]), self.retry.max_retry_after_s)
            if attempt < self.retry.attempts:
                log.warning("%s failed (%s), retry %d/%d in %.1fs", url, last, attempt, self.retry.attempts - 1, delay)
                time.sleep(delay)
                delay *= 2
        raise VenueError(f"{url}: {last} after {self.retry.attempts} attempts; try again later")

    def fetch(
        self, planned: Planned, client: httpx.Client, stored: Callable[[str], bytes | None] | None = None
    ) -> Fetched | None:
        """Download one file and its checksum; None when the archive has no such file (404).

        `stored(sha256)` may return bytes already in the raw lake: a file whose published
        checksum is already stored is not downloaded again.
        """
        url = planned.location
        checksum = self.get(client, url + ".CHECKSUM")
        if checksum is not None and stored is not None:
            expected = checksum.decode("utf-8", "replace").strip().split()[0].lower() if checksum.strip() else ""
            data = stored(expected)
            if data is not None:
                return Fetched(planned, data, expected)
        for attempt in (1, 2):
            data = self.get(client, url)
            if data is None:
                return None
            if checksum is None:
                log.warning("%s has no published .CHECKSUM; stored unverified", url)
                return Fetched(planned, data, sha256_hex(data))
            try:
                return Fetched(planned, data, _verify(url, data, checksum.decode("utf-8", "replace")))
            except ChecksumMismatchError:
                if attempt == 2:
                    raise
                log.warning("%s: checksum mismatch, downloading once more", url)
        raise AssertionError("unreachable")


def open_source(source: str, market: str = "um") -> LocalSource | HttpSource:
    """Return the source for `source` (an http(s) archive root or a local directory) and `market`."""
    return HttpSource(source, market=market) if is_url(source) else LocalSource(source, market)
