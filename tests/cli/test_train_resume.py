"""``twinrl train --checkpoint-every N`` and ``--resume DIR`` (issue 14, item 2): a real ``twinrl
train`` process SIGKILLed at three points (early, mid-episode, near the end) and resumed each time
ends with the same metrics.csv, summary.json, config.json and final checkpoint, byte for byte, as
an uninterrupted run, for ql, dteql, dtaql and dt-dqn (torch); TensorBoard's view of the resumed
run equals the uninterrupted run's; every bad ``--resume`` is refused with one line and exit 2,
changing nothing."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.tb_events import tensorboard_view
from twinrl import tblog
from twinrl.cli import main
from twinrl.outdir import MARKER

ROOT = Path(__file__).resolve().parents[2]
SEQUENTIAL = ["--set", "env_kwargs.formulation=sequential", "--set", "env_kwargs.observation=index",
              "--set", "env_kwargs.n_tasks=4"]  # fmt: skip
"""Episodes of 4 physical steps, so checkpoints every 7 iterations fall mid-episode."""
CASES: dict[str, list[str]] = {
    "ql": ["--algo", "ql", "--budget", "240", *SEQUENTIAL],
    "dteql": ["--algo", "dteql", "--budget", "240", "--set", "n_trials=5", *SEQUENTIAL],
    "dtaql": [
        "--algo",
        "dtaql",
        "--budget",
        "240",
        "--set",
        "n_agents=6",
        "--set",
        "sync_every=20",
        *SEQUENTIAL,
    ],
    "dt-dqn": [
        "--algo",
        "dt-dqn",
        "--env",
        "twinrl/MultiUAV-v0",
        "--budget",
        "150",
        "--set",
        "agent.hidden=[16]",
        "--set",
        "agent.buffer_capacity=300",
        "--set",
        "agent.learning_starts=30",
        "--set",
        "agent.batch_size=8",
        "--set",
        "k=2",
        "--set",
        "m=2",
    ],
}
EVERY = {"ql": 7, "dteql": 7, "dtaql": 7, "dt-dqn": 20}
KILLS = {"ql": (2, 15, 17), "dteql": (2, 15, 17), "dtaql": (2, 15, 17), "dt-dqn": (1, 2, 4)}
"""The n-th checkpoint of each session after which it is killed: iterations 14, 119 and 238 of
240 (each mid-episode: 14 % 4, 119 % 4 and 238 % 4 are not 0); for dt-dqn 20, 60 and 140 of 150
(episodes of 50 steps)."""
COMPARED = ("metrics.csv", "summary.json", "config.json", "checkpoint.npz")
"""The files compared byte for byte (config.json without its git commit: the code's, not the
run's; it changes if a commit lands while a test runs)."""


def drive(n: int, *argv: str) -> None:
    """``twinrl train ARGV`` that kills itself with SIGKILL right after its ``n``-th checkpoint
    (run in a subprocess by the tests)."""
    from twinrl import resume

    real = resume.save_checkpoint
    saves = 0

    def save_then_die(*args: Any, **kwargs: Any) -> None:
        nonlocal saves
        real(*args, **kwargs)
        saves += 1
        if saves == n:
            os.kill(os.getpid(), signal.SIGKILL)

    resume.save_checkpoint = save_then_die  # type: ignore[assignment]
    sys.exit(main(list(argv)))


def _killed(n: int, argv: list[str]) -> None:
    """Run :func:`drive` in a child process forked from this one (twinrl already imported, so
    the child spends its time training, not importing), which SIGKILLs itself."""
    child = multiprocessing.get_context("fork").Process(target=drive, args=(n, *argv))
    child.start()
    child.join(timeout=300)
    assert child.exitcode == -signal.SIGKILL, child.exitcode


def _files(out: Path) -> dict[str, bytes]:
    files = {name: (out / name).read_bytes() for name in COMPARED}
    files["config.json"] = re.sub(rb'"git_commit": [^\n]*', b"", files["config.json"])
    return files


@pytest.mark.parametrize("algo", list(CASES))
def test_killed_three_times_and_resumed_equals_an_uninterrupted_run(
    algo: str, tmp_path: Path
) -> None:
    if algo == "dt-dqn":
        pytest.importorskip("torch")
    base = ["train", *CASES[algo], "--checkpoint-every", str(EVERY[algo]), "--no-progress"]
    full, out = tmp_path / "full", tmp_path / "killed"
    assert main([*base, "--out", str(full)]) == 0
    _killed(KILLS[algo][0], [*base, "--out", str(out)])
    for n in KILLS[algo][1:]:
        assert (out / "resume.npz").is_file()
        assert json.loads((out / MARKER).read_text())["complete"] is False
        _killed(n, ["train", "--resume", str(out), "--no-progress"])  # the recorded options
    assert main(["train", "--resume", str(out), "--no-progress", *CASES[algo][:2]]) == 0
    assert _files(out) == _files(full)
    marker, expected = (json.loads((d / MARKER).read_text()) for d in (out, full))
    sessions = {tblog.event_file(k) for k in range(4)} if tblog.available() else set()
    assert set(marker["files"]) == set(expected["files"]) | sessions  # one events file a session
    assert marker["complete"] is True and not (out / "resume.npz").exists()
    if tblog.available():  # TensorBoard's view: the killed sessions' extra events are purged
        assert tensorboard_view(out / "tensorboard") == tensorboard_view(full / "tensorboard")


def test_killed_from_outside_at_any_moment_resumes_exactly(tmp_path: Path) -> None:
    """The parent SIGKILLs the process as soon as its first checkpoint exists, wherever the
    process is then (mid-iteration, mid-write of the next checkpoint)."""
    base = ["train", *CASES["ql"][:2], "--budget", "1500", *SEQUENTIAL, "--checkpoint-every",
            "50", "--no-progress", "--no-tensorboard"]  # fmt: skip
    full, out = tmp_path / "full", tmp_path / "killed"
    assert main([*base, "--out", str(full)]) == 0
    code = (
        f"import sys; from twinrl.cli import main; sys.exit(main({[*base, '--out', str(out)]!r}))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "resume.npz").exists() and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    if proc.returncode == 0:  # finished before the signal: nothing to resume, nothing to test
        pytest.skip("the run finished before it could be killed")
    assert main(["train", "--resume", str(out), "--no-progress", "--no-tensorboard"]) == 0
    assert _files(out) == _files(full)


# --- refusals -------------------------------------------------------------------------------------
QUICK = ["train", "--algo", "dteql", "--budget", "60", "--set", "n_trials=3", *SEQUENTIAL,
         "--checkpoint-every", "5", "--no-progress", "--no-tensorboard"]  # fmt: skip


def _interrupted(
    out: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, *extra: str, after: int = 3
) -> None:
    """An in-process run of QUICK stopped by an interrupt after its ``after``-th checkpoint."""
    from twinrl import resume

    real, saves = resume.save_checkpoint, []

    def save_then_stop(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        saves.append(1)
        if len(saves) == after:
            raise KeyboardInterrupt

    monkeypatch.setattr(resume, "save_checkpoint", save_then_stop)
    assert main([*QUICK, *extra, "--out", str(out)]) == 130
    assert f"continue with twinrl train --resume {out}" in capsys.readouterr().err
    monkeypatch.setattr(resume, "save_checkpoint", real)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _refused(argv: list[str], capsys: Any, root: Path, *needles: str) -> None:
    before = _snapshot(root)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("twinrl train: error: "), err
    assert all(n in err for n in needles), err
    assert _snapshot(root) == before  # nothing created, changed or removed


def test_bad_resumes_are_refused_with_one_line_and_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    out, other, done = tmp_path / "run", tmp_path / "other", tmp_path / "done"
    _interrupted(out, monkeypatch, capsys)
    _interrupted(other, monkeypatch, capsys, "--seed", "1")
    assert main([*QUICK, "--out", str(done)]) == 0
    resume = ["train", "--resume", str(out), "--no-progress"]
    _refused([*resume, "--budget", "61"], capsys, tmp_path, "budget: 60 there, 61 here")
    _refused([*resume, "--overwrite"], capsys, tmp_path, "--resume and --overwrite")
    _refused([*resume, "--out", str(other)], capsys, tmp_path, "drop --out")
    _refused(["train", "--resume", str(tmp_path / "nope")], capsys, tmp_path, "does not exist")
    _refused(["train", "--resume", str(done)], capsys, tmp_path, "holds no resume.npz")
    _refused(["train", "--resume", ""], capsys, tmp_path, "--resume is empty")
    good = (out / "resume.npz").read_bytes()
    shutil.copy(other / "resume.npz", out / "resume.npz")  # another seed: another config hash
    _refused(resume, capsys, tmp_path, "belongs to another run", "config hash")
    shutil.copy(done / "checkpoint.npz", out / "resume.npz")  # a final checkpoint, not a resume one
    _refused(resume, capsys, tmp_path, "belongs to another run", "content")
    for offset in (0, len(good) // 3, len(good) // 2, len(good) - 1):
        damaged = bytearray(good)
        damaged[offset] ^= 0x10
        (out / "resume.npz").write_bytes(bytes(damaged))
        _refused(resume, capsys, tmp_path, "resume.npz")
    (out / "resume.npz").write_bytes(good)  # the intact checkpoint still resumes
    assert main([*resume, "--no-tensorboard"]) == 0
    assert _files(out) == _files(done)


def test_resume_with_the_same_options_given_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    out, full = tmp_path / "run", tmp_path / "full"
    _interrupted(out, monkeypatch, capsys, after=1)
    assert main([*QUICK, "--out", str(full)]) == 0
    assert main([*QUICK, "--resume", str(out), "--out", str(out)]) == 0
    assert _files(out) == _files(full)
    assert "wall_time_s" in json.loads((out / "timing.json").read_text())
