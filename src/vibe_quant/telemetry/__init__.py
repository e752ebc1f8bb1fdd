"""Prometheus telemetry for paper/live sessions and background jobs (docs/specs.md#telemetry).

``metrics`` defines the metrics on a dedicated registry (session state from the status snapshot,
order latencies from the node's message bus, job heartbeats from the state database);
``exporter`` serves a registry over HTTP on 127.0.0.1 and bundles what a session needs
(:class:`~vibe_quant.telemetry.exporter.PaperTelemetry`).
"""
