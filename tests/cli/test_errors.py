"""One error path: one line on stderr and a documented exit status; ``--debug`` shows the
traceback; ``--env`` never imports a module unless asked to (issue 9)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from twinrl import cli
from twinrl.cli import main
from twinrl.errors import ConfigError, OutputDirError

TRAIN = ["train", "--algo", "ql", "--budget", "10", "--set", "env_kwargs.n_tasks=3", "--no-progress"]  # fmt: skip


def _raises(exc: BaseException) -> Any:
    def fake_train(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fake_train


@pytest.mark.parametrize(
    ("exc", "status", "text"),
    [
        (ConfigError("budget='x' is not allowed"), 2, "twinrl train: error: budget='x'"),
        (MemoryError(), 2, "twinrl train: error: out of memory"),
        (
            OSError(28, "No space left on device", "/full/x"),
            2,
            "No space left on device: '/full/x'",
        ),
        (
            RuntimeError("boom\nsecond line"),
            1,
            "twinrl train: internal error: RuntimeError: boom second line; run with --debug",
        ),
        (KeyboardInterrupt(), 130, "twinrl train: interrupted"),
    ],
)
def test_every_failure_is_one_line_with_its_exit_status(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    exc: BaseException,
    status: int,
    text: str,
) -> None:
    monkeypatch.setattr(cli, "train", _raises(exc))
    assert main([*TRAIN, "--out", str(tmp_path / "o")]) == status
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and text in err, err
    assert not (tmp_path / "o").exists()  # the directory it created for nothing is gone again


def test_messages_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setattr(cli, "train", _raises(RuntimeError("x" * 100_000)))
    assert main([*TRAIN, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert len(err) <= 501 and err.endswith("run with --debug for the traceback\n")
    assert main([*TRAIN, "--out", str(tmp_path / ("y" * 5000))]) == 2
    assert len(capsys.readouterr().err) <= 501


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    args = [*TRAIN, "--out", ""]
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    with pytest.raises(OutputDirError, match="--out is empty"):
        main(args)
    monkeypatch.setattr(cli, "train", _raises(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", *TRAIN, "--out", str(tmp_path / "o")])


def test_debug_in_a_real_process_prints_a_traceback(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "twinrl.cli", *args, *TRAIN, "--out", ""],
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    plain, debug = run(), run("--debug")
    assert plain.returncode == 2 and plain.stderr.count("\n") == 1
    assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr


def test_env_with_a_module_is_refused_before_importing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "twinrl_probe_module.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('imported').write_text('yes')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for env in ("twinrl_probe_module:Foo-v0", "os:Foo-v0"):
        assert main([*TRAIN, "--env", env, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert "--allow-import" in err and len(err.splitlines()) == 1
    assert "twinrl_probe_module" not in sys.modules and not (tmp_path / "imported").exists()
    assert not (tmp_path / "o").exists()


def test_unknown_env_lists_twinrl_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*TRAIN, "--env", "Nope-v0", "--out", str(tmp_path / "o")]) == 2
    assert "twinrl/EdgeScheduling-v0" in capsys.readouterr().err


def test_allow_import_imports_the_module(tmp_path: Path) -> None:
    env = "twinrl.envs:twinrl/EdgeScheduling-v0"
    assert main([*TRAIN, "--env", env, "--allow-import", "--out", str(tmp_path / "o")]) == 0
    assert main([*TRAIN, "--env", "no_such_module_x:E-v0", "--allow-import",
                 "--out", str(tmp_path / "p")]) == 2  # fmt: skip


def test_main_restores_the_signal_handlers(capsys: pytest.CaptureFixture[str]) -> None:
    import signal

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    assert main(["list"]) == 0
    assert {s: signal.getsignal(s) for s in before} == before
