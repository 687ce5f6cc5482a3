"""``twinrl reproduce --resume`` (issue 14, item 2): a command stopped by SIGTERM and resumed runs
only the runs that had not finished, and writes the same outputs as an uninterrupted command;
damaged or foreign kept lines are ignored; a directory that is not a previous run of the same
command is refused."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from twinrl.checkpoint.results import _digest, read_results
from twinrl.cli import main

ROOT = Path(__file__).resolve().parents[2]
PRESET = "tiny-resume"
NAMES = ["table1", "table2"]
RUNS = 9  # 3 task sets x (DTEQL phi=50, QL, QL from the pessimistic start)


def install(log: str | None = None, delay: float = 0.0) -> None:
    """A tiny Table I/II preset (N = 4, 200 iterations), and ``run_fused`` slowed by ``delay``
    seconds and logging ``algorithm seed start`` of each run it finishes to ``log``."""
    from twinrl import cli
    from twinrl.experiments import edge_tables, runner

    edge_tables.PRESETS[PRESET] = edge_tables.Preset(
        ns=(4,), instances=3, budget=200, methods=("DTEQL φ=50", "QL"), pessimistic=("QL",)
    )
    runner.PRESET_NAMES = cli.PRESET_NAMES = (*runner.PRESET_NAMES, PRESET)
    real = edge_tables.run_fused

    def run_fused(algorithm: str, *args: Any, **kwargs: Any) -> Any:
        time.sleep(delay)
        result = real(algorithm, *args, **kwargs)
        if log:
            start = "pessimistic" if kwargs["agent_config"].reward_offset else "optimistic"
            with open(log, "a") as fh:  # one short write per line: whole lines from 2 workers
                fh.write(f"{algorithm} {kwargs['seed']} {start}\n")
        return result

    edge_tables.run_fused = run_fused  # type: ignore[assignment]


def drive(out: str, log: str, delay: float, *extra: str) -> None:
    """``twinrl reproduce table1 table2 --preset tiny-resume --workers 2 --out OUT ...``."""
    install(log, delay)
    args = ["reproduce", *NAMES, "--preset", PRESET, "--workers", "2", "--out", out]
    sys.exit(main([*args, "--no-progress", *extra]))


def _command(out: Path, log: Path, delay: float, *extra: str) -> list[str]:
    code = (
        f"from tests.cli.test_resume import drive; drive(*{[str(out), str(log), delay, *extra]!r})"
    )
    return [sys.executable, "-c", code]


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """:func:`install` in this process, undone after the test."""
    from twinrl import cli
    from twinrl.experiments import edge_tables, runner

    monkeypatch.setattr(runner, "PRESET_NAMES", runner.PRESET_NAMES)
    monkeypatch.setattr(cli, "PRESET_NAMES", cli.PRESET_NAMES)
    monkeypatch.setattr(edge_tables, "run_fused", edge_tables.run_fused)
    monkeypatch.setitem(edge_tables.PRESETS, PRESET, edge_tables.PRESETS["quick"])


def _outputs(out: Path) -> dict[str, str]:
    """Every summary and table, with the command's own wall time and git commit blanked (the
    only lines that differ between two uninterrupted commands)."""
    texts = {}
    for name in NAMES:
        for file in ("summary.json", "table.md"):
            text = (out / name / file).read_text()
            text = re.sub(r'"(seconds|git_commit)": [^,\n]*', r'"\1": -', text)
            texts[f"{name}/{file}"] = text
    return texts


def _lines(path: Path) -> list[str]:
    """The complete lines of ``path`` (a killed writer may leave an incomplete last one)."""
    return path.read_text().split("\n")[:-1] if path.exists() else []


def _identity(line: str) -> str:
    run = json.loads(line)["result"]
    return f"{run['algorithm']} {run['seed']} {run['start']}"


def test_a_terminated_reproduce_resumes_to_the_uninterrupted_outputs(
    tmp_path: Path, tiny: None
) -> None:
    reference = tmp_path / "reference"
    install(str(tmp_path / "reference.log"))
    assert main(["reproduce", *NAMES, "--preset", PRESET, "--workers", "1",
                 "--out", str(reference), "--no-progress"]) == 0  # fmt: skip
    assert len(_lines(tmp_path / "reference.log")) == RUNS

    out, first_log, second_log = tmp_path / "out", tmp_path / "first.log", tmp_path / "second.log"
    kept_file = out / "partial" / "edge.resume.jsonl"
    proc = subprocess.Popen(_command(out, first_log, 0.4), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(_lines(kept_file)) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    kept = [_identity(line) for line in _lines(kept_file)]
    assert 3 <= len(kept) < RUNS and len(set(kept)) == len(kept)
    assert not (out / "table1" / "summary.json").exists()

    done = subprocess.run(_command(out, second_log, 0.0, "--resume"), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"{len(kept)} finished run(s) found" in done.stderr
    rerun = _lines(second_log)
    # only the runs that had not finished ran again, each once
    assert len(rerun) == RUNS - len(kept) and not set(rerun) & set(kept)
    assert sorted(rerun + kept) == sorted(_lines(tmp_path / "reference.log"))
    assert _outputs(out) == _outputs(reference)
    assert len(_lines(out / "partial" / "edge.jsonl")) == RUNS
    assert len(_lines(kept_file)) == RUNS
    marker = json.loads((out / "twinrl-run.json").read_text())
    assert marker["complete"] is True


def _forge(line: str, change: Any) -> str:
    """``line`` changed by ``change(dict)``, with a valid checksum again."""
    data = json.loads(line)
    del data["sha256"]
    change(data)
    data["sha256"] = _digest(data)
    return json.dumps(data, separators=(",", ":")) + "\n"


def test_damaged_and_foreign_kept_lines_are_ignored_and_run_again(
    tmp_path: Path, tiny: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out, log = tmp_path / "out", tmp_path / "runs.log"
    install(str(log))
    args = ["reproduce", *NAMES, "--preset", PRESET, "--workers", "1", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    reference = _outputs(out)
    kept_file = out / "partial" / "edge.resume.jsonl"
    lines = [line + "\n" for line in _lines(kept_file)]
    assert len(lines) == RUNS
    damaged = [_identity(lines[i]) for i in (0, 1, 2, 3, 4, 5, 8)]

    def set_(key: str, value: Any) -> Any:
        return lambda data: data.__setitem__(key, value)

    def object_array(data: dict[str, Any]) -> None:
        # a valid checksum around a pickled object array: refused by dtype, never unpickled
        data["result"]["cost"] = {"$": "ndarray", "dtype": "|O", "shape": [1], "data": "gAN9"}

    lines[0] = lines[0].replace('"cost":', '"cost":1', 1)  # checksum mismatch
    lines[1] = _forge(lines[1], set_("seed", 1))  # another seed
    lines[2] = _forge(lines[2], set_("version", "0.0.1"))  # another twinrl version
    lines[3] = _forge(lines[3], set_("preset", "quick"))  # another preset
    lines[4] = _forge(lines[4], object_array)
    lines[5] = "{not json\n"
    lines[8] = lines[8][: len(lines[8]) // 2]  # the last line, cut mid-write
    kept_file.write_text("".join(lines))
    assert not kept_file.read_text().endswith("\n")

    log.unlink()
    assert main([*args, "--resume"]) == 0
    assert "2 finished run(s) found; 7 stored line(s) ignored" in capsys.readouterr().err
    assert sorted(_lines(log)) == sorted(damaged)
    assert _outputs(out) == reference
    scope = {"version": "0.1.0", "preset": PRESET, "seed": 0}
    assert len(read_results(kept_file, scope).lines) == RUNS


def test_resume_refuses_overwrite_and_directories_that_are_not_the_same_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(out: Path, *extra: str) -> str:
        args = ["reproduce", "table1", "--out", str(out), "--no-progress", "--resume", *extra]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and err.startswith("twinrl reproduce: error: "), err
        return err

    assert "--resume and --overwrite exclude each other" in refused(tmp_path, "--overwrite")
    assert "does not exist" in refused(tmp_path / "new")
    assert not (tmp_path / "new").exists()  # nothing created
    (tmp_path / "empty").mkdir()
    assert "is empty" in refused(tmp_path / "empty")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    assert "holds no twinrl-run.json" in refused(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"
    train = tmp_path / "train"
    assert main(["train", "--algo", "ql", "--budget", "5", "--set", "env_kwargs.n_tasks=4",
                 "--no-progress", "--out", str(train)]) == 0  # fmt: skip
    capsys.readouterr()
    assert "holds a twinrl 'train' run" in refused(train)

    # a reproduce run of another command: its options are named; so is an older run's marker
    other = tmp_path / "other"
    other.mkdir()
    command = {"names": ["table1"], "preset": "paper", "seed": 3, "instances": None, "seeds": None}
    marker = {"kind": "reproduce", "version": "0.1.0", "complete": False, "files": [],
              "command": command}  # fmt: skip
    (other / "twinrl-run.json").write_text(json.dumps(marker))
    err = refused(other)
    assert "another command (preset: 'paper' there, 'quick' here; seed: 3 there, 0 here)" in err
    del marker["command"]
    (other / "twinrl-run.json").write_text(json.dumps(marker))
    assert "did not record its command" in refused(other)
    assert os.listdir(other) == ["twinrl-run.json"]
