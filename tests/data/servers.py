"""Real loopback HTTP servers for the downloader and REST-update tests (no mocks).

Each server is a stdlib ``ThreadingHTTPServer`` bound to ``127.0.0.1`` on an ephemeral port,
run in a background thread by :func:`serve` and shut down when the ``with`` block ends. The
behaviour lives in a small "app" object (``respond(path, query) -> Reply``) that also counts
every request, so tests can assert exactly how many times the client asked for what.

* :class:`ArchiveApp` serves a directory laid out like ``data.binance.vision`` (the shared
  ``binance-vision`` mirror), optionally answering chosen paths with error statuses or
  replaced bodies (a wrong ``.CHECKSUM``).
* :class:`BinanceRestApp` imitates the two Binance USD-M REST endpoints ``vq data update``
  uses, ``GET /fapi/v1/time`` and ``GET /fapi/v1/klines``, over REAL klines: the rows of the
  monthly ``FILUSDT-1m-2023-09.zip``, as Binance's JSON arrays with the CSV's number strings.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import threading
import traceback
import zipfile
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

MINUTE_MS = 60_000
BINANCE_MAX_LIMIT = 1500
BINANCE_DEFAULT_LIMIT = 500


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)


class App(Protocol):
    errors: list[str]

    def respond(self, path: str, query: dict[str, list[str]]) -> Reply: ...


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        app = self.server.app
        try:
            reply = app.respond(unquote(split.path), parse_qs(split.query))
        except Exception:  # a bug in the test server must fail the test, not hang the client
            app.errors.append(traceback.format_exc())
            reply = Reply(599, b"test server crashed")
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: App


@contextmanager
def serve(app: App) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (ephemeral port); yield the base URL; shut down on exit."""
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.app = app
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
    assert not thread.is_alive(), "test HTTP server thread did not stop"
    assert not app.errors, "the test server itself failed:\n" + "\n".join(app.errors)


# -- the archive (data.binance.vision) ------------------------------------------------------------


class ArchiveApp:
    """Serve the files under `root` by URL path, like ``python -m http.server`` would.

    ``hits`` counts requests per path. ``fail_first[path]`` holds statuses answered (one per
    request) before the file is served; ``fail_always[path]`` is answered to every request;
    ``overrides[path]`` replaces the body served for `path`.
    """

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.hits: Counter[str] = Counter()
        self.fail_first: dict[str, deque[int]] = {}
        self.fail_always: dict[str, int] = {}
        self.overrides: dict[str, bytes] = {}
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def respond(self, path: str, query: dict[str, list[str]]) -> Reply:
        with self._lock:
            self.hits[path] += 1
            pending = self.fail_first.get(path)
            status = pending.popleft() if pending else self.fail_always.get(path)
        if status is not None:
            return Reply(status, f"<html><body>{status} from the test server</body></html>".encode(), "text/html")
        if path in self.overrides:
            return Reply(200, self.overrides[path])
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return Reply(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
        return Reply(200, target.read_bytes(), "application/zip")

    def hits_matching(self, suffix: str) -> dict[str, int]:
        with self._lock:
            return {p: n for p, n in self.hits.items() if p.endswith(suffix)}

    def reset(self) -> None:
        with self._lock:
            self.hits.clear()


# -- the Binance USD-M REST API --------------------------------------------------------------------


@lru_cache(maxsize=4)
def binance_klines(zip_path: Path) -> tuple[tuple[int, ...], tuple[list, ...]]:
    """Return (open times, ``/fapi/v1/klines`` elements) from a real monthly 1m kline zip.

    Element layout is Binance's: ``[open_time, "open", "high", "low", "close", "volume",
    close_time, "quote_volume", count, "taker_buy_volume", "taker_buy_quote_volume", "0"]``
    with the number strings exactly as the CSV has them.
    """
    with zipfile.ZipFile(zip_path) as zf:
        (member,) = zf.namelist()
        text = zf.read(member).decode()
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    assert header[:2] == ["open_time", "open"], header
    rows = []
    for r in reader:
        rows.append([int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7], int(r[8]), r[9], r[10], r[11]])
    rows.sort(key=lambda row: row[0])
    return tuple(row[0] for row in rows), tuple(rows)


class BinanceRestApp:
    """``GET /fapi/v1/time`` and ``GET /fapi/v1/klines`` over real kline rows.

    Like Binance, klines are those with ``startTime <= open_time <= endTime``, ascending, at
    most ``limit`` (default 500, max 1500), and none that opened after the server clock.
    The kline of the current minute (still open) is served only with ``open_kline=True``,
    as a partial kline (open = high = low = close, volume 1.0) unlike the final real row;
    ``honour_end_time=False`` makes the server ignore ``endTime`` (as if it was not sent).
    ``fail[path]`` answers every request for `path` with that status.
    """

    def __init__(self, zip_path: Path, symbol: str, server_time_ms: int):
        self.open_times, self.rows = binance_klines(zip_path)
        self.symbol = symbol
        self.server_time_ms = server_time_ms
        self.open_kline = False
        self.honour_end_time = True
        self.fail: dict[str, int] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.kline_bodies: list[bytes] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for p, _ in self.requests if p == path)

    def respond(self, path: str, query: dict[str, list[str]]) -> Reply:
        params = {k: v[-1] for k, v in query.items()}
        with self._lock:
            self.requests.append((path, params))
        if path in self.fail:
            return _json(self.fail[path], {"code": -1000, "msg": "An unknown error occured while processing."})
        if path == "/fapi/v1/time":
            return _json(200, {"serverTime": self.server_time_ms})
        if path == "/fapi/v1/klines":
            return self._klines(params)
        return _json(404, {"code": -5000, "msg": "Path not found"})

    def _klines(self, params: dict[str, str]) -> Reply:
        if params.get("symbol") != self.symbol:
            return _json(400, {"code": -1121, "msg": "Invalid symbol."})
        if params.get("interval") != "1m":
            return _json(400, {"code": -1120, "msg": "Invalid interval."})
        limit = int(params.get("limit", BINANCE_DEFAULT_LIMIT))
        if not 1 <= limit <= BINANCE_MAX_LIMIT:
            return _json(400, {"code": -1130, "msg": "Data sent for paramter 'limit' is not valid."})
        open_minute = self.server_time_ms // MINUTE_MS * MINUTE_MS
        start = int(params.get("startTime", 0))
        end = int(params["endTime"]) if "endTime" in params and self.honour_end_time else open_minute
        end = min(end, open_minute)
        lo = bisect.bisect_left(self.open_times, start)
        hi = bisect.bisect_right(self.open_times, end)
        out = list(self.rows[lo:hi])
        if out and out[-1][0] == open_minute:
            out.pop()  # the final row of the current minute does not exist yet
        if self.open_kline and start <= open_minute <= end:
            i = bisect.bisect_left(self.open_times, open_minute)
            assert self.open_times[i] == open_minute, "the open kline must fall inside the served month"
            price = self.rows[i][1]
            out.append(
                [open_minute, price, price, price, price, "1.0", open_minute + 59_999, price, 1, "0.0", "0", "0"]
            )
        body = json.dumps(out[:limit], separators=(",", ":")).encode()
        with self._lock:
            self.kline_bodies.append(body)
        return Reply(200, body, "application/json", {"X-MBX-USED-WEIGHT-1M": "10"})


def _json(status: int, payload: object) -> Reply:
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode(), "application/json")
