"""Run one measurement in a fresh spawned process (clean peak RSS, no warm caches)."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module


def run_in_child(target, *args) -> dict:
    """Call ``target(queue, *args)`` in a spawned process and return what it puts on the queue.

    Raises
    ------
    RuntimeError
        If the child dies without a result (instead of waiting forever).
    """
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    proc = ctx.Process(target=target, args=(results, *args))
    proc.start()
    while True:
        try:
            result = results.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"{target.__name__} died with exit code {proc.exitcode}") from None
    proc.join()
    return result
