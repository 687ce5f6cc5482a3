"""A worker that dies never hangs ``run_jobs``: its jobs are retried once, then named (issue 9)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from twinrl.errors import WorkerLostError
from twinrl.experiments.parallel import job_label, on_result, run_jobs


@dataclass(frozen=True)
class Job:
    index: int
    flag: str
    """Kill the worker while this file does not exist (it is created first: once), or always if
    ``"always"``; ``""`` never."""


def _work(job: Job) -> dict[str, Any]:
    if job.flag == "always" or (job.flag and not os.path.exists(job.flag)):
        if job.flag != "always":
            Path(job.flag).write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return {"index": job.index, "square": job.index**2}


def _no_workers_left() -> bool:
    """No child process of this one is still running, within 3 s (a killed worker may take a
    moment to be reaped)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if not mp.active_children():
            return True
        time.sleep(0.05)
    return False


def _fail(job: Job) -> dict[str, Any]:
    raise ValueError(f"job {job.index} is bad")


def test_a_worker_killed_once_is_replaced_and_results_are_unchanged(tmp_path: Path) -> None:
    flag = str(tmp_path / "killed")
    jobs = [Job(i, flag if i == 3 else "") for i in range(8)]
    start = time.monotonic()
    results = sorted(run_jobs(_work, jobs, workers=2), key=lambda r: r["index"])
    assert time.monotonic() - start < 10
    assert Path(flag).exists()  # the worker really died
    assert results == [{"index": i, "square": i * i} for i in range(8)]
    assert results == sorted(run_jobs(_work, jobs, workers=1), key=lambda r: r["index"])
    assert _no_workers_left()


def test_a_job_that_always_kills_its_worker_raises_naming_it() -> None:
    jobs = [Job(i, "always" if i == 5 else "") for i in range(8)]
    seen: list[int] = []
    start = time.monotonic()
    with (
        pytest.raises(WorkerLostError, match=r"index=5") as err,
        on_result(lambda r: seen.append(r["index"])),
    ):
        list(run_jobs(_work, jobs, workers=2))
    assert time.monotonic() - start < 10
    assert "fresh pool" in str(err.value) and "index=0," not in str(err.value)
    assert 0 in seen  # finished jobs were reported before the failure
    assert _no_workers_left()  # no worker outlives the error


def test_a_job_error_is_raised_as_it_is() -> None:
    with pytest.raises(ValueError, match="job 0 is bad"):
        list(run_jobs(_fail, [Job(0, "")], workers=2))
    assert _no_workers_left()


def test_job_label_names_scalar_fields_and_nested_labels() -> None:
    @dataclass(frozen=True)
    class Variant:
        label: str

    @dataclass(frozen=True)
    class Outer:
        env: str
        variant: Variant
        data: tuple[int, ...]

    assert job_label((Job(2, ""), [1, 2, 3])) == "Job(index=2, flag='')"
    assert (
        job_label(Outer("e", Variant("DT-QL n=3"), (1,))) == "Outer(env='e', variant='DT-QL n=3')"
    )
    assert len(job_label(list(range(10_000)))) <= 160
