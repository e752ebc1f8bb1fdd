"""Event loops for nodes: a TradingNode needs a running loop of its own, and its kernel installs signal
handlers, which only the main thread may do.

A caller may already run a loop in its thread (a notebook, a service, a test session holding
Playwright's synchronous API open): :func:`run_async` then runs the node's loop in a worker thread,
and :func:`node_signals` lets a node be built there (without the kernel's signal handlers: the
session is stopped through its commands, ``vq paper stop``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def run_async(make_coroutine):
    """Run ``make_coroutine()`` on a new event loop and return its result (in a worker thread when
    this thread already runs a loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coroutine())
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="vq-node") as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()


@contextmanager
def node_signals() -> Iterator[None]:
    """Construct a node inside this block: off the main thread, the kernel's signal set-up is skipped."""
    import nautilus_trader.system.kernel as kernel_module

    setup_loop = kernel_module.NautilusKernel._setup_loop
    if threading.current_thread() is not threading.main_thread():
        kernel_module.NautilusKernel._setup_loop = lambda self: None
    try:
        yield
    finally:
        kernel_module.NautilusKernel._setup_loop = setup_loop


def add_stop_handlers(loop, callback) -> list:
    """Call `callback` on SIGTERM and SIGINT (main thread only); return the signals handled."""
    import signal

    handled = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, callback)
            handled.append(sig)
        except (ValueError, RuntimeError):  # not the main thread: stop through the session's commands
            break
    return handled
