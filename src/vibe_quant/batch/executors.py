"""Where grid points run: a local process pool, or Ray (a local instance or a cluster).

Both keep at most ``2 * workers`` points in flight (memory stays bounded whatever the grid
size), start one :class:`~vibe_quant.batch.worker.PointWorker` per worker (data loaded
once, engine reused) and yield results as they finish. Closing the generator early (a
cancellation) stops the workers without waiting for the points in flight.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from vibe_quant.batch.worker import WorkerSpec, init_process, run_in_process
from vibe_quant.errors import UserError

EXECUTORS = ("process", "ray")


def run_points(
    points: Sequence[tuple[int, dict]], spec: WorkerSpec, workers: int, executor: str = "process",
    address: str | None = None,
) -> Iterator[dict]:  # fmt: skip
    """Yield one result dict per ``(index, params)``, ``(index, params, (start, end))`` or
    ``(index, params, (start, end) or None, document)`` in `points`, in completion order."""
    if executor == "process":
        return _process_pool(points, spec, workers)
    if executor == "ray":
        return _ray(points, spec, workers, address)
    raise UserError(f"executor {executor!r}: choose process or ray")


class WorkerPool:
    """Workers kept across several batches of points (discovery's generations: the workers load the data and
    warm their engine once, not once per batch). ``process``: one process pool for the pool's life (a
    worker that dies falls back to :func:`run_points`' isolation for that batch, and the next batch starts
    a fresh pool); ``ray``: one set of actors (and a private local Ray, unless one is running or `address`
    names a cluster) for the pool's life.
    """

    def __init__(self, spec: WorkerSpec, workers: int, executor: str = "process", address: str | None = None):
        if executor not in EXECUTORS:
            raise UserError(f"executor {executor!r}: choose process or ray")
        self.spec, self.workers, self.executor, self.address = spec, workers, executor, address
        self._pool: ProcessPoolExecutor | None = None
        self._ray: _RayActors | None = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close(wait=exc[0] is None)

    def run(self, points: Sequence[tuple]) -> Iterator[dict]:
        """Yield one result per point, in completion order (as :func:`run_points`)."""
        if self.executor == "ray":
            if self._ray is None:
                self._ray = _RayActors(self.spec, self.workers, self.address)
            yield from self._ray.run(points)
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=init_process, initargs=(self.spec,))  # fmt: skip
        queue = deque(points)
        lost: list = []
        finished = False
        try:
            yield from _drain(self._pool, queue, self.workers, lost)
            finished = True
        finally:
            if not finished or lost:  # cancelled or broken: stop the workers, the next batch starts new ones
                self.close(wait=False)
        if lost:
            yield from _process_pool([*lost, *queue], self.spec, self.workers)

    def close(self, wait: bool = True) -> None:
        if self._ray is not None:
            self._ray.close()
            self._ray = None
        if self._pool is None:
            return
        if wait:
            self._pool.shutdown(wait=True)
        else:
            _terminate(self._pool)
        self._pool = None


def _process_pool(points, spec: WorkerSpec, workers: int) -> Iterator[dict]:
    """Run `points` on `workers` processes; a worker that dies (a crash in the engine, the OOM
    killer) breaks the pool: the points it had in flight are re-run one at a time on a fresh
    worker, so a point that kills its worker again is recorded as an error instead of failing
    the sweep, and the others complete."""
    queue = deque(points)
    while queue:
        lost: list = []
        yield from _pool_round(queue, spec, workers, lost)
        for item in lost:  # isolate: one point, one fresh worker
            solo: list = []
            yield from _pool_round(deque([item]), spec, 1, solo)
            if solo:
                index, params, period = (*item, None)[:3]
                yield {"index": index, "params": params, "period": period, "metrics": None, "returns": None,
                       "warnings": [], "elapsed_s": 0.0, "engine": None,
                       "rss_mb": 0.0, "error": "the worker process died running this point, twice (a crash or out of memory)"}  # fmt: skip


def _pool_round(queue: deque, spec: WorkerSpec, workers: int, lost: list) -> Iterator[dict]:
    """Run points from `queue` until it is empty or the pool breaks (then `lost` gets the points in flight)."""
    # spawn: workers start clean (no copy of the parent's threads, locks or open database).
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=init_process, initargs=(spec,))  # fmt: skip
    finished = False
    try:
        yield from _drain(pool, queue, workers, lost)
        finished = not lost
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:  # cancelled, failed or broken: do not wait for the points in flight
            _terminate(pool)


def _drain(pool: ProcessPoolExecutor, queue: deque, workers: int, lost: list) -> Iterator[dict]:
    """Run points from `queue` on `pool`, at most ``2 * workers`` in flight, until the queue is empty or the pool
    breaks (then `lost` gets the points that were in flight; the rest stay in `queue`)."""
    in_flight: dict = {}
    while queue or in_flight:
        while queue and len(in_flight) < 2 * workers:
            item = queue.popleft()
            in_flight[pool.submit(run_in_process, *item)] = item
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        for future in done:
            item = in_flight.pop(future)
            try:
                result = future.result()
            except BrokenProcessPool:
                lost.append(item)
                continue
            yield result
        if lost:
            lost.extend(in_flight.values())
            return


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop `pool` without waiting for the points in flight."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _ray(points, spec: WorkerSpec, workers: int, address: str | None) -> Iterator[dict]:
    actors = _RayActors(spec, workers, address)
    try:
        yield from actors.run(points)
    finally:
        actors.close()


class _RayActors:
    """`workers` Ray actors, each holding one PointWorker, on a private local Ray (or `address`'s cluster)."""

    def __init__(self, spec: WorkerSpec, workers: int, address: str | None):
        if address is None and "ray" not in sys.modules:
            # A private local Ray runs its actors with this interpreter on this checkout. Under `uv run`, Ray's
            # uv hook would copy the project into a per-session directory instead, where numba finds no
            # compiled perp kernel and every actor compiles it again (~20 s each).
            os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'vibe-quant[ray]'") from None
        self.ray = ray
        self.started_here = not ray.is_initialized()
        if self.started_here:
            # No address: a private local Ray instance with `workers` CPUs (what the tests use).
            kwargs = {"address": address} if address else {"num_cpus": workers}
            ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR", **kwargs)
        actor_cls = ray.remote(num_cpus=1)(_RayWorker)
        self.actors = [actor_cls.remote(spec) for _ in range(workers)]

    def run(self, points) -> Iterator[dict]:
        ray, actors = self.ray, self.actors
        todo = iter(points)
        in_flight: dict = {}
        for k, item in enumerate(_take(todo, 2 * len(actors))):
            actor = actors[k % len(actors)]
            in_flight[actor.run.remote(*item)] = actor
        while in_flight:
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                actor = in_flight.pop(ref)
                yield ray.get(ref)
                for item in _take(todo, 1):
                    in_flight[actor.run.remote(*item)] = actor

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started_here:
            self.ray.shutdown()


class _RayWorker:
    """A Ray actor holding one PointWorker (data and engine live as long as the actor)."""

    def __init__(self, spec: WorkerSpec):
        init_process(spec)

    def run(
        self, index: int, params: dict, period: tuple[str, str] | None = None, document: dict | None = None
    ) -> dict:
        return run_in_process(index, params, period, document)


def _take(iterator, n: int) -> list:
    out = []
    for item in iterator:
        out.append(item)
        if len(out) == n:
            break
    return out
