"""``twinrl reproduce --engine ray`` (issue 14, item 1): the same outputs as the local engine,
``--resume`` across engines, a worker that dies is retried once and then named (never a hang),
and clear errors for a missing Ray, a dead ``--address`` and an address without the engine.

The tests that run Ray share one local instance of 2 CPUs (the session's ``ray_instance``), and
are skipped without the ``ray`` extra; the errors for a missing Ray are tested either way."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_resume import NAMES, PRESET, RUNS, _lines, _outputs, install, tiny  # noqa: F401
from twinrl import __version__
from twinrl.cli import main
from twinrl.errors import ConfigError, WorkerLostError
from twinrl.experiments import ray_engine
from twinrl.experiments.parallel import (
    Interrupted,
    interrupts_raise,
    on_result,
    run_jobs,
    use_engine,
)


def _reproduce(out: Path, *extra: str, preset: str = PRESET) -> int:
    return main(["reproduce", *NAMES, "--preset", preset, "--out", str(out), "--no-progress",
                 *extra])  # fmt: skip


def test_a_dead_address_fails_at_once_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    start = time.monotonic()
    for address, says in [("127.0.0.1:1", "no Ray cluster could be reached there"),
                          ("no-port", "is not a Ray cluster address")]:  # fmt: skip
        args = ("--engine", "ray", "--address", address)
        assert _reproduce(tmp_path / "out", *args, preset="quick") == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and f"--address {address!r}" in err and says in err
    assert time.monotonic() - start < 20
    assert not (tmp_path / "out").exists()


@pytest.mark.usefixtures("tiny")
def test_the_ray_engine_writes_the_local_engines_outputs(
    tmp_path: Path, ray_instance: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    install()
    assert _reproduce(tmp_path / "local", "--workers", "1") == 0
    assert _reproduce(tmp_path / "ray", "--engine", "ray") == 0
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")
    assert "on a local Ray instance" not in (tmp_path / "local" / "report.md").read_text()
    assert len(_lines(tmp_path / "ray" / "partial" / "edge.jsonl")) == RUNS


@pytest.mark.slow
def test_table1_table2_quick_are_identical_on_both_engines(
    tmp_path: Path, ray_instance: Any
) -> None:
    """The issue's command on the quick preset, one task set per N (about 20 CPU-s each)."""
    args = ("--instances", "1", "--workers", "2")
    assert _reproduce(tmp_path / "local", *args, preset="quick") == 0
    assert _reproduce(tmp_path / "ray", *args, "--engine", "ray", preset="quick") == 0
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")


@pytest.mark.usefixtures("tiny")
@pytest.mark.parametrize("first, then", [("local", "ray"), ("ray", "local")])
def test_either_engine_resumes_the_others_run(
    tmp_path: Path,
    ray_instance: Any,
    capsys: pytest.CaptureFixture[str],
    first: str,
    then: str,
) -> None:
    install()
    reference, out = tmp_path / "reference", tmp_path / "out"
    assert _reproduce(reference, "--workers", "1") == 0
    assert _reproduce(out, "--engine", first, "--workers", "1") == 0
    kept_file = out / "partial" / "edge.resume.jsonl"
    lines = _lines(kept_file)
    kept_file.write_text("".join(f"{line}\n" for line in lines[:4]))  # 5 runs to do again
    capsys.readouterr()
    assert _reproduce(out, "--engine", then, "--resume") == 0
    assert "4 finished run(s) found" in capsys.readouterr().err
    assert sorted(_lines(kept_file)) == sorted(lines)  # the 5 others ran again, once each
    assert _outputs(out) == _outputs(reference)


@dataclass(frozen=True)
class Job:
    index: int
    flag: str
    """Exit the worker while this file does not exist (creating it: once), or always if
    ``"always"``; ``""`` never."""


def _work(job: Job) -> dict[str, Any]:
    if job.flag == "always" or (job.flag and not os.path.exists(job.flag)):
        if job.flag != "always":
            Path(job.flag).write_text("exited once")
        os._exit(1)
    return {"index": job.index, "square": job.index**2}


def _fail(job: Job) -> dict[str, Any]:
    raise ValueError(f"job {job.index} is bad")


def test_a_job_error_is_raised_as_it_is(ray_instance: Any) -> None:
    with pytest.raises(ValueError, match="job 0 is bad"), use_engine("ray"):
        list(run_jobs(_fail, [Job(0, "")]))


def test_a_task_whose_worker_dies_once_is_run_again(tmp_path: Path, ray_instance: Any) -> None:
    flag = str(tmp_path / "exited")
    jobs = [Job(i, flag if i == 2 else "") for i in range(6)]
    start = time.monotonic()
    with use_engine("ray"):
        results = sorted(run_jobs(_work, jobs), key=lambda r: r["index"])
    assert time.monotonic() - start < 30
    assert Path(flag).exists()  # the worker really died
    assert results == [{"index": i, "square": i * i} for i in range(6)]


def test_a_task_that_always_kills_its_worker_fails_within_seconds_naming_it(
    ray_instance: Any,
) -> None:
    jobs = [Job(i, "always" if i == 3 else "") for i in range(6)]
    seen: list[int] = []
    start = time.monotonic()
    with (
        pytest.raises(WorkerLostError, match=r"job Job\(index=3, flag='always'\)") as err,
        on_result(lambda r: seen.append(r["index"])),
        use_engine("ray"),
    ):
        list(run_jobs(_work, jobs))
    assert time.monotonic() - start < 30
    assert "run once more" in str(err.value) and "index=0," not in str(err.value)


def _sleep(job: Job) -> dict[str, Any]:
    time.sleep(30)
    return {"index": job.index}


def test_sigterm_during_a_ray_wait_raises_interrupted_naming_it(ray_instance: Any) -> None:
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGTERM))
    start = time.monotonic()
    try:
        with pytest.raises(Interrupted) as err, interrupts_raise(), use_engine("ray"):
            timer.start()
            list(run_jobs(_sleep, [Job(i, "") for i in range(2)]))
    finally:
        timer.cancel()  # never a SIGTERM after the handler is gone
    # Ray turns our exception into a plain KeyboardInterrupt in its wait: the signal is kept
    assert err.value.signum == signal.SIGTERM
    assert time.monotonic() - start < 20
    # the sleeping tasks were cancelled: both CPUs are free for the next job at once
    start = time.monotonic()
    with use_engine("ray"):
        assert list(run_jobs(_work, [Job(7, "")])) == [{"index": 7, "square": 49}]
    assert time.monotonic() - start < 20


def test_a_worker_of_another_twinrl_version_is_refused() -> None:
    shown = f"a Ray worker runs twinrl {__version__}, the driver twinrl 0.0.1"
    with pytest.raises(ConfigError, match=re.escape(shown)):
        ray_engine.call(_fail, Job(0, ""), "0.0.1")


def test_missing_ray_and_an_address_without_the_engine_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _reproduce(out, "--address", "127.0.0.1:6379", preset="quick") == 2
    assert "--address '127.0.0.1:6379' names a Ray cluster: it needs --engine ray" in (
        capsys.readouterr().err
    )
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert _reproduce(out, "--engine", "ray", preset="quick") == 2
    err = capsys.readouterr().err
    assert err == (
        "twinrl reproduce: error: --engine ray needs ray, which is not installed: from a twinrl "
        'checkout, pip install -e ".[ray]"\n'
    )
    assert not out.exists()
