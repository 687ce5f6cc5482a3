"""SIGINT and SIGTERM stop ``twinrl reproduce`` at once: one line, exit 130 / 143, workers gone,
finished runs kept, nothing staged beside ``--out`` (issue 9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from twinrl.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _job(index: int) -> dict[str, Any]:
    time.sleep(0.05 if index == 0 else 60)  # the first run finishes; the others are stopped
    return {"index": index, "values": [float("nan"), 1.0]}


def drive(out: str) -> None:
    """``twinrl reproduce slow --workers 2 --out OUT`` with one fast and three 60 s runs."""
    from twinrl.experiments import parallel, runner

    def run(preset: str, *, workers: int, **_: Any) -> dict[str, Any]:
        return {"runs": list(parallel.run_jobs(_job, [0, 1, 2, 3], workers=workers))}

    def write(summary: dict[str, Any], path: Path) -> dict[str, Any]:
        raise AssertionError("the run should have been interrupted")

    runner.GROUPS = {"slow": runner.Group(run)}
    runner.EXPERIMENTS = {"slow": runner.Experiment("slow", "slow", write)}
    sys.exit(main(["reproduce", "slow", "--workers", "2", "--out", out, "--no-progress"]))


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _interrupt(
    command: list[str], partial: Path, sig: int, *, group: bool = False
) -> tuple[int, str, list[int]]:
    """Start ``command``, send ``sig`` once ``partial`` holds a finished run (to the whole process
    group, as a terminal's Ctrl-C does, if ``group``); returns the exit status, stderr and the
    worker pids."""
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (partial.exists() and partial.read_text().endswith("\n")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        workers = _children(proc.pid)
        sent = time.monotonic()
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)
        assert time.monotonic() - sent < 10
    finally:
        proc.kill()
    time.sleep(0.2)  # let init reap the killed workers
    return proc.returncode, err, workers


def _check_out(out: Path, partial: Path) -> list[dict[str, Any]]:
    hidden = [p for p in out.parent.rglob(".*")]
    assert hidden == [], hidden  # no staging directory or temporary file beside or inside out
    lines = partial.read_text().splitlines()
    assert lines
    marker = json.loads((out / "twinrl-run.json").read_text())
    assert marker["complete"] is False and str(partial.relative_to(out)) in marker["files"]
    return [
        json.loads(line, parse_constant=lambda c: pytest.fail(f"not JSON: {c}")) for line in lines
    ]


@pytest.mark.parametrize(
    ("sig", "status", "group"),
    [(signal.SIGINT, 130, False), (signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)],
    ids=["SIGINT", "Ctrl-C", "SIGTERM"],
)
def test_interrupted_reproduce_stops_workers_and_keeps_finished_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sig: int, status: int, group: bool
) -> None:
    out = tmp_path / "out"
    partial = out / "partial" / "slow.jsonl"
    command = [sys.executable, "-c", f"from tests.cli.test_interrupts import drive; drive({str(out)!r})"]  # fmt: skip
    code, err, workers = _interrupt(command, partial, sig, group=group)
    assert code == status
    assert len(err.splitlines()) == 1 and "1 finished run(s) kept in" in err, err
    assert len(workers) == 2 and not any(_alive(pid) for pid in workers)
    assert _check_out(out, partial) == [{"index": 0, "values": [None, 1.0]}]
    # the kept runs are not overwritten by accident
    assert main(["reproduce", "table1", "--out", str(out)]) == 2
    assert "unfinished (interrupted) twinrl reproduce run" in capsys.readouterr().err


def test_workers_die_with_a_killed_command(tmp_path: Path) -> None:
    out = tmp_path / "out"
    partial = out / "partial" / "slow.jsonl"
    command = [sys.executable, "-c", f"from tests.cli.test_interrupts import drive; drive({str(out)!r})"]  # fmt: skip
    code, _, workers = _interrupt(command, partial, signal.SIGKILL)
    assert code == -signal.SIGKILL and len(workers) == 2
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in workers)
    assert sorted(os.listdir(out)) == ["partial", "twinrl-run.json"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_interrupted_table1_keeps_its_finished_runs(tmp_path: Path, sig: int, status: int) -> None:
    out = tmp_path / "out"
    partial = out / "partial" / "edge.jsonl"
    twinrl = Path(sys.executable).with_name("twinrl")
    command = [str(twinrl), "reproduce", "table1", "--preset", "quick", "--instances", "2",
               "--out", str(out), "--no-progress"]  # fmt: skip
    code, err, workers = _interrupt(command, partial, sig)
    assert code == status and len(err.splitlines()) == 1 and "kept in" in err, err
    assert not any(_alive(pid) for pid in workers)
    runs = _check_out(out, partial)
    assert {"setting", "n", "instance", "label", "convergence"} <= set(runs[0])
    assert sorted(os.listdir(out)) == ["partial", "twinrl-run.json"]
