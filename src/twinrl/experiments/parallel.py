"""Run independent jobs in worker processes, with an optional progress bar."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def run_jobs(
    fn: Callable[[T], dict[str, Any]],
    jobs: Sequence[T],
    *,
    workers: int = 1,
    progress: bool = False,
    desc: str = "runs",
) -> Iterator[dict[str, Any]]:
    """``fn(job)`` for every job, in completion order (each result should say which job it was).

    ``workers > 1`` forks that many processes (the jobs' results must be picklable).
    """
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit="run")
    try:
        if workers <= 1:
            for job in jobs:
                yield fn(job)
                if bar is not None:
                    bar.update()
            return
        with mp.get_context("fork").Pool(workers) as pool:
            for result in pool.imap_unordered(fn, jobs):
                yield result
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            bar.close()
