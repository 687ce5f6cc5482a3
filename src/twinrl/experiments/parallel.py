"""Run independent jobs in worker processes, with an optional progress bar; never hang.

Workers are forked by a :class:`~concurrent.futures.ProcessPoolExecutor`, which notices a worker
that dies (killed by a signal, or by the kernel when memory runs out) within moments. The jobs that
had not finished are then run once more in a fresh pool; if that pool loses a worker too,
:class:`~twinrl.errors.WorkerLostError` names the jobs that were running. On an interrupt
(:class:`Interrupted`, raised by :func:`interrupts_raise` for SIGINT and SIGTERM) the workers are
killed before the exception propagates, so none outlives the command. Workers ignore SIGINT (a
Ctrl-C reaches the whole process group; the parent decides) and die with their parent on Linux.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextvars import ContextVar
from types import FrameType
from typing import Any, TypeVar

from twinrl.errors import WorkerLostError, short_repr

T = TypeVar("T")

_ON_RESULT: ContextVar[Callable[[dict[str, Any]], None] | None] = ContextVar(
    "twinrl_on_result", default=None
)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (``signum`` says which); ``kept`` says what finished work was
    kept, for the command's one-line message."""

    def __init__(self, signum: int = signal.SIGINT, kept: str = "") -> None:
        super().__init__(signum, kept)
        self.signum = int(signum)
        self.kept = kept


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """While active, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (so the code
    unwinds through its ``finally`` blocks); the previous handlers are restored on exit. Does
    nothing outside the main thread, where handlers cannot be installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def on_result(callback: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Call ``callback(result)`` in this process as each job of :func:`run_jobs` finishes (used
    by ``twinrl reproduce`` to keep finished runs of an interrupted command)."""
    token = _ON_RESULT.set(callback)
    try:
        yield
    finally:
        _ON_RESULT.reset(token)


def job_label(job: object) -> str:
    """A short readable name of a job: its scalar fields (and the ``label`` of nested ones) if it
    is a dataclass or a tuple starting with one, else its shortened repr."""
    item = job[0] if isinstance(job, tuple) and job else job
    if not dataclasses.is_dataclass(item) or isinstance(item, type):
        return short_repr(item, 160)
    parts = []
    for field in dataclasses.fields(item):
        value = getattr(item, field.name)
        if isinstance(value, (str, int, float, bool)):
            parts.append(f"{field.name}={value!r}")
        elif isinstance(getattr(value, "label", None), str):
            parts.append(f"{field.name}={value.label!r}")
    text = f"{type(item).__name__}({', '.join(parts)})"
    return text if len(text) <= 160 else text[:157] + "..."


def run_jobs(
    fn: Callable[[T], dict[str, Any]],
    jobs: Sequence[T],
    *,
    workers: int = 1,
    progress: bool = False,
    desc: str = "runs",
    label: Callable[[T], str] = job_label,
) -> Iterator[dict[str, Any]]:
    """``fn(job)`` for every job, in completion order (each result should say which job it was).

    ``workers > 1`` forks that many processes (``fn`` and the jobs' results must be picklable).
    A job whose worker dies is run again once in a fresh pool; ``label(job)`` names it in the
    error if it cannot be finished.

    Raises:
        WorkerLostError: a worker died in the fresh pool too.
    """
    sink = _ON_RESULT.get()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit="run")
    try:
        results = (fn(job) for job in jobs) if workers <= 1 else _in_pools(fn, jobs, workers, label)
        for result in results:
            if sink is not None:
                sink(result)
            if bar is not None:
                bar.update()
            yield result
    finally:
        if bar is not None:
            bar.close()


class _PoolBroke(Exception):
    def __init__(self, running: list[int]) -> None:
        super().__init__(running)
        self.running = running


def _in_pools(
    fn: Callable[[T], dict[str, Any]],
    jobs: Sequence[T],
    workers: int,
    label: Callable[[T], str],
) -> Iterator[dict[str, Any]]:
    """The results of every job; a pool that loses a worker is replaced once."""
    unfinished = list(range(len(jobs)))
    try:
        yield from _one_pool(fn, jobs, unfinished, workers)
        return
    except _PoolBroke:
        pass  # retry what had not finished, in a fresh pool
    try:
        yield from _one_pool(fn, jobs, unfinished, workers)
    except _PoolBroke as broke:
        names = "; ".join(label(jobs[i]) for i in broke.running[:5])
        more = f" and {len(broke.running) - 5} more" if len(broke.running) > 5 else ""
        raise WorkerLostError(
            "a worker process died (killed by a signal, or out of memory) while running "
            f"job(s) {names}{more}, and again when run once more in a fresh pool; run it alone "
            "(--workers 1) or with less memory in use to find out why"
        ) from None


def _one_pool(
    fn: Callable[[T], dict[str, Any]], jobs: Sequence[T], unfinished: list[int], workers: int
) -> Iterator[dict[str, Any]]:
    """Run the jobs numbered ``unfinished`` (removing each as it finishes) with at most
    ``workers`` in flight, so the jobs running when a worker dies are known.

    Raises:
        _PoolBroke: a worker died; lists the jobs that were running.
    """
    queue = deque(unfinished)
    executor = ProcessPoolExecutor(
        max_workers=min(workers, len(queue)), mp_context=mp.get_context("fork"),
        initializer=_worker_init, initargs=(os.getpid(),),
    )  # fmt: skip
    running: dict[Future[dict[str, Any]], int] = {}
    clean = False
    try:
        while queue or running:
            while queue and len(running) < workers:
                i = queue.popleft()
                running[executor.submit(fn, jobs[i])] = i
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = [f for f in done if isinstance(f.exception(), BrokenProcessPool)]
            for future in sorted(set(done) - set(broken), key=running.__getitem__):
                i = running.pop(future)
                result = future.result()  # re-raises the job's own exception
                unfinished.remove(i)
                yield result
            if broken:
                raise _PoolBroke(sorted(running.values()))
        clean = True
    finally:
        if clean:
            executor.shutdown(wait=True)
        else:
            _stop(executor)


def _stop(executor: ProcessPoolExecutor) -> None:
    """Kill the executor's workers now (they hold nothing that needs cleaning up)."""
    procs = list((getattr(executor, "_processes", None) or {}).values())
    for proc in procs:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            proc.kill()
    executor.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
            proc.join(timeout=5)


def _worker_init(parent: int) -> None:
    """Set up a forked worker: ignore SIGINT (the parent stops workers), die on SIGTERM without
    running the parent's handler, die with the parent, one torch thread."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    _one_thread()


def _one_thread() -> None:
    """Workers share the cores, so each keeps torch to one thread (small networks gain nothing
    from more; two workers with two threads each ran 6x slower on 2 cores than with one)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
