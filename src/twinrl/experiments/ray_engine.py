"""The Ray engine of :func:`~twinrl.experiments.parallel.run_jobs`: every job is one Ray task.

Used inside :func:`~twinrl.experiments.parallel.use_engine` (``twinrl reproduce --engine ray``).
Each task runs the same function on the same job as the local engine, so the results are the
same; Ray places the tasks on the CPUs of the local instance or the cluster. A task whose worker
process dies (killed by a signal, by the kernel or by Ray's memory monitor, or its node lost) is
run once more, as in the local engine; if it dies again, :class:`~twinrl.errors.WorkerLostError`
names it, and the tasks still running are cancelled. Interrupting cancels them too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from twinrl import __version__
from twinrl.errors import ConfigError, WorkerLostError
from twinrl.experiments.parallel import as_interrupted, one_thread
from twinrl.twin.ray_session import require_ray

T = TypeVar("T")

MAX_RETRIES = 1
"""Times a task whose worker died is run again (the local engine's one fresh pool)."""


def call(fn: Callable[[T], dict[str, Any]], job: T, version: str) -> dict[str, Any]:
    """Run ``fn(job)`` in a Ray worker, one torch thread, refusing another twinrl version (a
    cluster node with another version could compute other numbers)."""
    if version != __version__:
        raise ConfigError(
            f"a Ray worker runs twinrl {__version__}, the driver twinrl {version}: install the "
            "same twinrl on every node of the cluster"
        )
    one_thread()
    return fn(job)


def ray_results(
    fn: Callable[[T], dict[str, Any]], jobs: Sequence[T], label: Callable[[T], str]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(job number, result)`` of every job, in completion order, each job a Ray task of one
    CPU (Ray must be connected: :func:`twinrl.twin.ray_session.connected`).

    Raises:
        WorkerLostError: a task's worker died, and again when the task was run once more.
        Exception: a job's own exception, as the job raised it.
    """
    ray = require_ray("--engine ray")
    from ray.exceptions import RayError, RayTaskError

    task = ray.remote(call).options(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)
    pending = {task.remote(fn, job, __version__): i for i, job in enumerate(jobs)}
    try:
        while pending:
            try:
                done, _ = ray.wait(list(pending), num_returns=1)
            except KeyboardInterrupt as exc:
                raise as_interrupted(exc) from None
            for ref in done:
                i = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except RayTaskError as exc:  # the job raised: raise its own exception, with
                    # Ray's error (holding the worker's traceback) as its cause, for --debug
                    if isinstance(exc.cause, BaseException):
                        raise exc.cause from exc
                    raise
                except RayError as exc:
                    raise WorkerLostError(
                        f"a Ray worker died ({type(exc).__name__}) while running job "
                        f"{label(jobs[i])}, and again when it was run once more; run it alone "
                        "(--engine local --workers 1) or with less memory in use to find out why"
                    ) from None
                yield i, result
    finally:
        for ref in pending:  # never leave tasks running after an error or an interrupt
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
