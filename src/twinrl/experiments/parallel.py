"""Run independent jobs in worker processes, with an optional progress bar; never hang.

Workers are forked by a :class:`~concurrent.futures.ProcessPoolExecutor`, which notices a worker
that dies (killed by a signal, or by the kernel when memory runs out) within moments. The jobs that
had not finished are then run once more in a fresh pool; if that pool loses a worker too,
:class:`~twinrl.errors.WorkerLostError` names the jobs that were running. On an interrupt
(:class:`Interrupted`, raised by :func:`interrupts_raise` for SIGINT and SIGTERM) the workers are
killed before the exception propagates, so none outlives the command. Workers ignore SIGINT (a
Ctrl-C reaches the whole process group; the parent decides) and die with their parent on Linux.

Inside :func:`resume_from` (``twinrl reproduce``), each job is matched by :func:`job_key` against
the results kept by an earlier command, and only the jobs without one are run; inside
:func:`use_engine` with ``"ray"`` (``twinrl reproduce --engine ray``), the jobs run as Ray tasks
(:mod:`twinrl.experiments.ray_engine`) instead of in a local pool. Every experiment gets both by
calling :func:`run_jobs`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
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
from typing import Any, Protocol, TypeVar

import numpy as np

from twinrl.errors import ConfigError, WorkerLostError, short_repr

T = TypeVar("T")

_ON_RESULT: ContextVar[Callable[[dict[str, Any]], None] | None] = ContextVar(
    "twinrl_on_result", default=None
)


class ResultStore(Protocol):
    """Results of finished jobs by :func:`job_key`, for :func:`resume_from`."""

    def __contains__(self, key: str) -> bool:
        """A result is kept for ``key``."""

    def result(self, key: str) -> Any:
        """The kept result of ``key`` (a fresh copy at each call)."""

    def keep(self, key: str, job: object, result: dict[str, Any]) -> None:
        """Keep ``result``, just computed for ``job`` (whose key is ``key``)."""


_RESUME: ContextVar[ResultStore | None] = ContextVar("twinrl_resume_from", default=None)
_ENGINE: ContextVar[str] = ContextVar("twinrl_engine", default="local")

ENGINES = ("local", "ray")
"""Where :func:`run_jobs` runs jobs: ``local`` (this process, or a pool of forked workers) or
``ray`` (Ray tasks on a local Ray instance or a cluster; needs the ``ray`` extra)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (``signum`` says which); ``kept`` says what finished work was
    kept, for the command's one-line message."""

    def __init__(self, signum: int = signal.SIGINT, kept: str = "") -> None:
        super().__init__(signum, kept)
        self.signum = int(signum)
        self.kept = kept


_LAST_SIGNAL = [int(signal.SIGINT)]
"""The signal :func:`interrupts_raise` last turned into :class:`Interrupted`."""


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """While active, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (so the code
    unwinds through its ``finally`` blocks); the previous handlers are restored on exit. Does
    nothing outside the main thread, where handlers cannot be installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        _LAST_SIGNAL[0] = signum
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def as_interrupted(exc: KeyboardInterrupt) -> Interrupted:
    """``exc`` as :class:`Interrupted`: a library that catches our exception in its own wait
    (Ray's) raises a plain KeyboardInterrupt instead, losing the signal; the last one caught by
    :func:`interrupts_raise` is the one."""
    if isinstance(exc, Interrupted):
        return exc
    return Interrupted(getattr(exc, "signum", _LAST_SIGNAL[0]))


@contextlib.contextmanager
def on_result(callback: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Call ``callback(result)`` in this process as each job of :func:`run_jobs` finishes (used
    by ``twinrl reproduce`` to keep finished runs of an interrupted command)."""
    token = _ON_RESULT.set(callback)
    try:
        yield
    finally:
        _ON_RESULT.reset(token)


@contextlib.contextmanager
def resume_from(store: ResultStore) -> Iterator[None]:
    """While active, :func:`run_jobs` takes the result of a job whose :func:`job_key` is in
    ``store`` from there instead of running it, and hands every result it computes to
    ``store.keep`` (used by ``twinrl reproduce --resume``). A job without a key always runs."""
    token = _RESUME.set(store)
    try:
        yield
    finally:
        _RESUME.reset(token)


@contextlib.contextmanager
def use_engine(
    engine: str = "local", *, address: str | None = None, workers: int = 1
) -> Iterator[None]:
    """While active, :func:`run_jobs` runs its jobs with ``engine`` (:data:`ENGINES`). ``ray``
    connects to the Ray cluster at ``address`` for the duration, or starts a local Ray instance
    of ``workers`` CPUs (see :func:`twinrl.twin.ray_session.connected`).

    Raises:
        ConfigError: an unknown engine, or an ``address`` without the ``ray`` engine.
        ImportError: ``ray`` without Ray installed (the message says how to install it).
    """
    check_engine(engine, address)
    with contextlib.ExitStack() as stack:
        if engine == "ray":
            from twinrl.twin.ray_session import connected

            stack.enter_context(connected(address, num_cpus=workers))
        token = _ENGINE.set(engine)
        try:
            yield
        finally:
            _ENGINE.reset(token)


def check_engine(engine: str, address: str | None = None) -> None:
    """Refuse what :func:`use_engine` would refuse, before anything starts.

    Raises:
        ConfigError: an unknown engine, or an ``address`` without the ``ray`` engine.
        ImportError: ``ray`` without Ray installed (the message says how to install it).
    """
    if engine not in ENGINES:
        raise ConfigError(
            f"engine={short_repr(engine)} is not allowed; choose one of {', '.join(ENGINES)}"
        )
    if address is not None and engine != "ray":
        raise ConfigError(
            f"--address {short_repr(address)} names a Ray cluster: it needs --engine ray"
        )
    if engine == "ray":
        from twinrl.twin.ray_session import require_ray

        require_ray("--engine ray")


def job_key(fn: Callable[..., object], job: object) -> str | None:
    """SHA-256 (hex) of a canonical text of ``fn`` (module and name) and ``job``, or None if the
    job holds a value with no canonical text (then it cannot be matched to a kept result).

    The text names every dataclass by module and name and each field by name, writes floats
    exactly (:meth:`float.hex`), numpy arrays by dtype, shape and bytes: jobs with the same key
    run the same function on equal inputs, on any machine and in any process."""
    try:
        text = _canonical(job)
    except TypeError:
        return None
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"
    return hashlib.sha256(f"twinrl-job-1\n{name}\n{text}".encode()).hexdigest()


def _canonical(value: Any) -> str:
    """The canonical text of a job value (see :func:`job_key`).

    Raises:
        TypeError: a value of another type (e.g. a function or an open env).
    """
    if isinstance(value, np.ndarray | np.generic):
        array = np.asarray(value)
        if array.dtype.kind not in "biufcSU" or array.dtype.fields is not None:
            raise TypeError(f"no canonical text for dtype {array.dtype}")
        digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
        kind = "ndarray" if isinstance(value, np.ndarray) else "scalar"
        return f"{kind}({array.dtype.str},{list(array.shape)},{digest})"
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__module__}.{type(value).__qualname__}.{value.name}"
    if type(value) is int:
        return f"int({value})"
    if type(value) is float:
        return f"float({value.hex()})"
    if type(value) is str:
        return f"str({value!r})"
    if type(value) in (tuple, list):
        return f"{type(value).__name__}({','.join(_canonical(v) for v in value)})"
    if type(value) is dict:
        items = sorted(f"{_canonical(k)}:{_canonical(v)}" for k, v in value.items())
        return f"dict({','.join(items)})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ",".join(
            f"{f.name}={_canonical(getattr(value, f.name))}" for f in dataclasses.fields(value)
        )
        return f"{type(value).__module__}.{type(value).__qualname__}({fields})"
    raise TypeError(f"no canonical text for {type(value).__name__}")


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

    ``workers > 1`` forks that many processes (``fn`` and the jobs' results must be picklable);
    inside :func:`use_engine` with ``ray``, every job is a Ray task and ``workers`` is not used
    (Ray's CPUs set the parallelism). A job whose worker dies is run again once (in a fresh pool,
    or as a Ray task); ``label(job)`` names it in the error if it cannot be finished. Inside :func:`resume_from`, a job whose result was kept by an
    earlier command is not run again: its kept result is yielded (and handed to :func:`on_result`)
    as if it had just finished.

    Raises:
        WorkerLostError: a worker died in the fresh pool too (or a Ray task's, run once more).
    """
    sink = _ON_RESULT.get()
    store = _RESUME.get()
    keys = [job_key(fn, job) if store is not None else None for job in jobs]
    kept = {i: key for i, key in enumerate(keys) if store is not None and key and key in store}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit="run")
    try:
        for i, result, fresh in _results(fn, jobs, kept, workers, label):
            key = keys[i]
            if store is not None and key is not None and fresh:
                store.keep(key, jobs[i], result)
            if sink is not None:
                sink(result)
            if bar is not None:
                bar.update()
            yield result
    finally:
        if bar is not None:
            bar.close()


def _results(
    fn: Callable[[T], dict[str, Any]],
    jobs: Sequence[T],
    kept: dict[int, str],
    workers: int,
    label: Callable[[T], str],
) -> Iterator[tuple[int, dict[str, Any], bool]]:
    """``(job number, result, computed now)`` of every job; the result of job ``i`` in ``kept``
    comes from the :func:`resume_from` store under key ``kept[i]``. One worker keeps the job
    order; a pool or Ray yields the kept results first, then the others as they finish."""
    store = _RESUME.get()
    ray = _ENGINE.get() == "ray"
    if workers <= 1 and not ray:
        for i, job in enumerate(jobs):
            if i in kept and store is not None:
                yield i, store.result(kept[i]), False
            else:
                yield i, fn(job), True
        return
    if store is not None:
        for i in sorted(kept):
            yield i, store.result(kept[i]), False
    todo = [i for i in range(len(jobs)) if i not in kept]
    if not todo:
        return
    if ray:
        from twinrl.experiments.ray_engine import ray_results

        results = ray_results(fn, [jobs[i] for i in todo], label)
    else:
        results = _in_pools(fn, [jobs[i] for i in todo], workers, label)
    for j, result in results:
        yield todo[j], result, True


class _PoolBroke(Exception):
    def __init__(self, running: list[int]) -> None:
        super().__init__(running)
        self.running = running


def _in_pools(
    fn: Callable[[T], dict[str, Any]],
    jobs: Sequence[T],
    workers: int,
    label: Callable[[T], str],
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(job number, result)`` of every job; a pool that loses a worker is replaced once."""
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
) -> Iterator[tuple[int, dict[str, Any]]]:
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
                yield i, result
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
    # The pool's manager thread closes its wake-up pipe as it ends; CPython 3.11's exit hook
    # writes to that pipe without a lock, so an exit racing the thread printed a traceback
    # ("Bad file descriptor") after the one-line interrupt message. With its workers dead the
    # thread ends at once: wait for it here.
    manager = getattr(executor, "_executor_manager_thread", None)
    if manager is not None:
        with contextlib.suppress(RuntimeError):
            manager.join(timeout=5)


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
    one_thread()


def one_thread() -> None:
    """Workers share the cores, so each keeps torch to one thread (small networks gain nothing
    from more; two workers with two threads each ran 6x slower on 2 cores than with one)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
