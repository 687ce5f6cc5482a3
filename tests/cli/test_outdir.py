"""``--out`` is checked before any work, and twinrl never deletes or overwrites what it did not
write (issue 9)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from twinrl import cli, tblog
from twinrl.cli import main
from twinrl.errors import OutputDirError
from twinrl.experiments import runner
from twinrl.outdir import MARKER, RunDir, to_json

TRAIN = ["train", "--algo", "ql", "--budget", "20", "--set", "env_kwargs.n_tasks=3", "--no-progress"]  # fmt: skip


def _no_training(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("training ran although --out is unusable")


def _strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def fake_experiments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cheap experiments ``a`` and ``b`` of one group whose summary holds NaN and inf."""

    def write(summary: dict[str, Any], out: Path) -> dict[str, Any]:
        out.mkdir(parents=True)
        (out / "table.md").write_text(f"# {out.name}\n")
        (out / "fig.png").write_bytes(b"png")
        return {"value": summary["value"]}

    def run(preset: str, **_: Any) -> dict[str, Any]:
        return {"value": float("nan"), "worst": float("-inf"), "runs": []}

    monkeypatch.setattr(runner, "GROUPS", {"g": runner.Group(run)})
    monkeypatch.setattr(runner, "EXPERIMENTS", {
        "a": runner.Experiment("first", "g", write),
        "b": runner.Experiment("second", "g", write),
    })  # fmt: skip


@pytest.mark.parametrize("command", ["train", "reproduce"])
def test_unrelated_file_in_out_survives_and_exits_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    monkeypatch.setattr(cli, "train", _no_training)
    monkeypatch.setattr(runner, "GROUPS", {})  # any run would fail with a KeyError
    out = tmp_path / "results"
    out.mkdir()
    data = os.urandom(1000)
    (out / "thesis.tex").write_bytes(data)
    args = TRAIN if command == "train" else ["reproduce", "table1"]
    assert main([*args, "--out", str(out)]) == 2
    assert main([*args, "--out", str(out), "--overwrite"]) == 2  # not a twinrl run either
    assert (out / "thesis.tex").read_bytes() == data and os.listdir(out) == ["thesis.tex"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(
        str(out) in line and "empty or new directory" in line for line in err
    )


def test_out_dot_and_empty_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "train", _no_training)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("keep me")
    assert main([*TRAIN, "--out", "."]) == 2
    assert "'.'" in capsys.readouterr().err
    assert main([*TRAIN, "--out", ""]) == 2
    assert "--out is empty" in capsys.readouterr().err
    assert main(["reproduce", "table1", "--out", ""]) == 2
    assert os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "file.txt" / "out", "which is a file"),
        (lambda tmp: tmp / "file.txt", "is a file"),
        (lambda tmp: tmp / ("x" * 300), "File name too long"),
        (lambda tmp: Path("/proc/twinrl-out"), "cannot be created"),
    ],
)
def test_unusable_out_exits_2_before_any_training(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make: Any,
    message: str,
) -> None:
    monkeypatch.setattr(cli, "train", _no_training)
    (tmp_path / "file.txt").write_text("a file")
    assert main([*TRAIN, "--out", str(make(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1 and len(err) < 400
    assert (tmp_path / "file.txt").read_text() == "a file"


def test_read_only_out_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    monkeypatch.setattr(cli, "train", _no_training)
    (tmp_path / "ro").mkdir(mode=0o555)
    assert main([*TRAIN, "--out", str(tmp_path / "ro")]) == 2


def test_rerun_needs_overwrite_and_keeps_files_twinrl_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    first = (out / "metrics.csv").read_bytes()
    (out / "my-notes.md").write_text("mine")
    assert main([*TRAIN, "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main([*TRAIN, "--out", str(out), "--overwrite"]) == 0
    assert (out / "my-notes.md").read_text() == "mine"
    assert (out / "metrics.csv").read_bytes() == first
    marker = json.loads((out / MARKER).read_text())
    assert marker["kind"] == "train" and marker["complete"] is True
    written = {"config.json", "metrics.csv", "summary.json", "timing.json", "checkpoint.npz"}
    if tblog.available():  # --tensorboard is on by default then; its events are listed too
        written.add(tblog.event_file(0))
    assert set(marker["files"]) == written
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    # a train run is not a reproduce run: reproduce refuses it even with --overwrite
    assert main(["reproduce", "table1", "--out", str(out), "--overwrite"]) == 2
    assert "twinrl 'train' run" in capsys.readouterr().err


def test_reproduce_overwrite_replaces_only_its_own_files(
    tmp_path: Path, fake_experiments: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rep"
    assert main(["reproduce", "a", "b", "--out", str(out), "--workers", "1"]) == 0
    assert (out / "b" / "fig.png").is_file()
    (out / "a" / "mine.txt").write_text("mine")
    (out / "top.txt").write_text("top")
    assert main(["reproduce", "a", "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["reproduce", "a", "--out", str(out), "--overwrite"]) == 0
    assert not (out / "b").exists()  # b/ held only twinrl's files of the previous run
    assert (out / "a" / "mine.txt").read_text() == "mine" and (out / "top.txt").read_text() == "top"
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"] == ["a/fig.png", "a/summary.json", "a/table.md", "report.md"]
    # a file twinrl would write but did not write is never overwritten
    (out / "b").mkdir()
    (out / "b" / "table.md").write_text("the user's")
    assert main(["reproduce", "a", "b", "--out", str(out), "--overwrite"]) == 2
    assert "b/table.md" in capsys.readouterr().err
    assert (out / "b" / "table.md").read_text() == "the user's"


def test_summaries_are_strict_json_with_nan_as_null(tmp_path: Path, fake_experiments: None) -> None:
    assert main(["reproduce", "a", "--out", str(tmp_path / "r")]) == 0
    summary = _strict((tmp_path / "r" / "a" / "summary.json").read_text())
    assert summary["value"] is None and summary["grid"]["worst"] is None
    _strict((tmp_path / "r" / MARKER).read_text())
    # train without evaluation: the final greedy return is NaN inside, null in the file
    assert main([*TRAIN, "--set", "evaluate=false", "--out", str(tmp_path / "t")]) == 0
    assert _strict((tmp_path / "t" / "summary.json").read_text())["final_greedy_return"] is None
    _strict((tmp_path / "t" / "config.json").read_text())


def test_to_json_is_strict() -> None:
    import numpy as np

    text = to_json({"a": np.float32("nan"), "b": np.arange(2), 3: (np.inf, 1.5)}, indent=None)
    assert _strict(text) == {"a": None, "b": [0, 1], "3": [None, 1.5]}
    with pytest.raises(TypeError, match="object"):
        to_json({"x": object()})


def test_a_marker_listing_files_outside_out_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"kind": "train", "files": ["../victim.txt"]}))
    with pytest.raises(OutputDirError, match="outside"):
        RunDir.open(out, "train", overwrite=True)
    (out / MARKER).write_text("{not json")
    with pytest.raises(OutputDirError, match="unreadable"):
        RunDir.open(out, "train", overwrite=True)
    assert victim.read_text() == "precious"


def test_a_failed_run_removes_only_the_empty_directories_it_created(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper"
    run_dir = RunDir.open(out, "train")
    assert out.is_dir()
    run_dir.abandon()
    assert not (tmp_path / "new").exists() and tmp_path.is_dir()
