"""Serve metrics over HTTP for Prometheus (docs/specs.md#telemetry), and what a paper session needs.

:func:`start_exporter` serves one registry at ``http://ADDRESS:PORT/metrics`` from a daemon
thread, bound to 127.0.0.1 unless told otherwise (the metrics name positions and equity: expose
them beyond this machine only behind something that authenticates). :class:`PaperTelemetry` is
a session's whole telemetry: its registry, :class:`~vibe_quant.telemetry.metrics.SessionMetrics`,
:class:`~vibe_quant.telemetry.metrics.LatencyProbe` and exporter.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from vibe_quant.errors import UserError
from vibe_quant.telemetry.metrics import JobHeartbeatCollector, LatencyProbe, SessionMetrics

log = logging.getLogger(__name__)

LOCAL = ("127.0.0.1", "localhost", "::1")


class Exporter:
    """A running metrics HTTP server (what :func:`start_exporter` returns first); :meth:`stop` ends it."""

    def __init__(self, server, thread):
        self.server, self.thread = server, thread

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout)
        self.server = None


def start_exporter(registry: CollectorRegistry, port: int = 0, address: str = "127.0.0.1") -> tuple[Exporter, int]:
    """Serve `registry` at ``http://ADDRESS:PORT/metrics`` from a daemon thread.

    Parameters
    ----------
    registry : CollectorRegistry
    port : int, default 0
        0: a free port the system picks (returned).
    address : str, default "127.0.0.1"
        Any other than a loopback address logs a warning: the metrics are served unauthenticated.

    Returns
    -------
    (Exporter, int)
        The server (``.stop()`` it) and the port it listens on.

    Raises
    ------
    UserError
        The port is taken or the address cannot be bound.
    """
    if address not in LOCAL:
        log.warning("the metrics exporter binds %s: positions and equity are served, unauthenticated, to every "
                    "host that reaches it (127.0.0.1 keeps them on this machine)", address)  # fmt: skip
    try:
        server, thread = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise UserError(f"--metrics-port {port}: cannot listen on {address}:{port} ({exc}); pick a free port "
                        "or 0 for any") from None  # fmt: skip
    exporter = Exporter(server, thread)
    return exporter, exporter.port


def jobs_registry(db_path: str | Path) -> CollectorRegistry:
    """A registry holding the background jobs' heartbeat ages of the state database at `db_path`."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(JobHeartbeatCollector(db_path))
    return registry


class PaperTelemetry:
    """A paper/live session's metrics, served while it runs.

    Parameters
    ----------
    session_id : int
    port : int
        The exporter's port (0: any free one, see :attr:`port`).
    address : str, default "127.0.0.1"
    linger_s : float, default 0.0
        Seconds :meth:`close` keeps serving the last values (so a scraper sees a finished session's end).
    """

    def __init__(self, session_id: int, port: int, address: str = "127.0.0.1", linger_s: float = 0.0):
        if linger_s < 0:
            raise UserError(f"--metrics-linger {linger_s}: seconds, >= 0")
        self.session_id, self.linger_s = session_id, linger_s
        self.registry = CollectorRegistry(auto_describe=True)
        self.metrics: SessionMetrics | None = None
        self.probe = LatencyProbe(self.registry, session_id)
        self.exporter, self.port = start_exporter(self.registry, port, address)
        log.info("session %s metrics at http://%s:%d/metrics", session_id, address, self.port)

    def attach(self, node) -> None:
        """Watch `node` (a built, not yet started, ReplayNode or live node: ``node.kernel.msgbus``)."""
        plan = getattr(node, "plan", None)
        self.metrics = SessionMetrics(self.registry, self.session_id, plan.symbols if plan is not None else ())
        self.probe.attach(node.kernel.msgbus)

    def update(self, snapshot: dict) -> None:
        """Set the session's gauges from its status snapshot."""
        if self.metrics is None:
            self.metrics = SessionMetrics(self.registry, self.session_id)
        self.metrics.update(snapshot)

    def close(self) -> None:
        """Detach from the bus and stop the exporter at once (idempotent)."""
        self.probe.detach()
        self.exporter.stop()

    async def close_async(self) -> None:
        """Detach from the bus, serve the last values `linger_s` seconds more, stop the exporter."""
        self.probe.detach()
        if self.exporter.server is not None and self.linger_s > 0:
            await asyncio.sleep(self.linger_s)
        self.exporter.stop()
