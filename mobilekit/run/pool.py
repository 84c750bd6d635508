"""Where parity's shards run: in the build's own process, in N local worker processes, or on a Ray cluster.

Each place holds one :class:`~mobilekit.run.shards.ShardEvaluator` per worker for the worker's lifetime (its
interpreters and emulators are built once) and yields :class:`~mobilekit.run.shards.ShardResult` in image order,
so the caller merges them into the same metrics whatever ran them. Local workers are spawned processes (TensorFlow,
LiteRT and the emulators are not fork-safe); a worker that dies in native code ends the build with one line.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from mobilekit.data.datasets import ImageRecord
from mobilekit.run.shards import ParityJob, Shard, ShardEvaluator, ShardResult, Truth, quiet_worker

_evaluator: ShardEvaluator | None = None  # a local worker's own, built by _init


def shards(records: list[ImageRecord], truth: Truth | None, size: int) -> list[Shard]:
    """``records`` cut into shards of ``size`` images: (index of the first image, records, their labels)."""
    return [(first, records[first:first + size], truth[first:first + size] if truth is not None else None)
            for first in range(0, len(records), size)]


def threads_per_worker(workers: int) -> int:
    """LiteRT and TensorFlow threads each of ``workers`` processes uses: the cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // max(workers, 1))


def evaluate(job: ParityJob, parts: list[Shard], workers: int = 1, ray_address: str | None = None
             ) -> Iterator[ShardResult]:
    """Every shard's result, in image order: here (``workers`` 1), on ``workers`` local processes, or as Ray actor
    tasks on the cluster at ``ray_address`` (``auto``: the one this machine belongs to)."""
    if ray_address is not None:
        from mobilekit.run.ray import evaluate_ray

        yield from evaluate_ray(job, parts, ray_address, max(workers, 1))
    elif workers <= 1:
        evaluator = ShardEvaluator(job)
        for first, records, truth in parts:
            yield evaluator(first, records, truth)
    else:
        yield from _local(job, parts, workers)


def _local(job: ParityJob, parts: list[Shard], workers: int) -> Iterator[ShardResult]:
    """Shards on ``workers`` spawned processes, at most two per worker in flight (finished results are not held:
    memory stays bounded by the shards in flight)."""
    import multiprocessing

    from mobilekit.process import NativeCrash

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init,
                               initargs=(job,))
    pending: deque[tuple[int, Future]] = deque()
    todo = iter(parts)
    try:
        while True:
            while len(pending) < 2 * workers and (part := next(todo, None)) is not None:
                pending.append((part[0], pool.submit(_run, *part)))
            if not pending:
                return
            first, future = pending.popleft()
            try:
                yield future.result()
            except BrokenProcessPool as e:
                raise NativeCrash(f"a parity worker process died (natively, or killed) while evaluating the shard "
                                  f"from evaluation image {first}", fix="run the build without --workers: its "
                                  "line names the artifact and kernels that crash") from e
    finally:  # an error or an interrupt: queued shards are dropped, not waited for
        pool.shutdown(wait=True, cancel_futures=True)


def _init(job: ParityJob) -> None:
    """A local worker's start; its evaluator is kept for the worker's lifetime."""
    global _evaluator
    from mobilekit.process import die_with_parent

    die_with_parent()  # a build that dies takes its workers with it
    quiet_worker(job)
    _evaluator = ShardEvaluator(job)


def _run(first: int, records: list[ImageRecord], truth: Truth | None) -> ShardResult:
    assert _evaluator is not None
    return _evaluator(first, records, truth)
