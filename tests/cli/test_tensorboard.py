"""``twinrl train --tensorboard`` (issue 14, item 3): the event files, read back by hand
(:mod:`tests.tb_events`), hold the values of metrics.csv: each episode's physical return, each new
greedy evaluation, epsilon and reward at the stride, the twin's work and the agent's learning
statistic; they are listed in the run marker; ``--no-tensorboard`` writes none, and
``--tensorboard`` without the package is refused with one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.tb_events import events, tensorboard_view
from twinrl import tblog
from twinrl.cli import main
from twinrl.outdir import MARKER

TRAIN = ["train", "--algo", "dteql", "--budget", "300", "--set", "n_trials=4", "--set",
         "env_kwargs.formulation=sequential", "--set", "env_kwargs.observation=index",
         "--set", "env_kwargs.n_tasks=4", "--no-progress"]  # fmt: skip


def _metrics(out: Path) -> dict[str, np.ndarray]:
    with (out / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def test_event_files_hold_the_metrics_of_the_run(tmp_path: Path) -> None:
    pytest.importorskip("tensorboardX")
    out = tmp_path / "run"
    assert main([*TRAIN, "--tensorboard", "--out", str(out)]) == 0
    marker = json.loads((out / MARKER).read_text())
    assert tblog.event_file(0) in marker["files"]
    assert events(out / tblog.event_file(0))[0].file_version == "brain.Event:2"
    view = tensorboard_view(out / "tensorboard")
    m = _metrics(out)
    # episode returns: the sums of the rewards of each 4-step episode, at its last iteration
    returns = m["reward"].reshape(-1, 4).sum(axis=1)
    assert [s for s, _ in view["physical/episode_return"]] == list(range(4, 301, 4))
    assert np.allclose([v for _, v in view["physical/episode_return"]], returns, rtol=1e-6)
    # greedy evaluations: every change of metrics.csv's greedy_return, at its iteration
    greedy = m["greedy_return"]
    changes = [i + 1 for i in range(len(greedy)) if np.isfinite(greedy[i])
               and (i == 0 or greedy[i] != greedy[i - 1])]  # fmt: skip
    assert [s for s, _ in view["eval/greedy_return"]] == changes
    assert np.allclose([v for _, v in view["eval/greedy_return"]], greedy[np.array(changes) - 1])
    # per-iteration curves: every iteration (budget 300 < 1000 points), float32 values
    for tag, column in (("agent/epsilon", "epsilon"), ("physical/reward", "reward")):
        steps, values = zip(*view[tag], strict=True)
        assert list(steps) == list(range(1, 301))
        assert np.array_equal(np.float32(values), m[column].astype(np.float32))
    evaluations = [v for _, v in view["twin/evaluations"]]
    # min(4 trials, valid actions) a step: 4 + 3 + 2 + 1 a 4-step episode, 75 episodes
    assert evaluations == sorted(evaluations) and evaluations[-1] == 75 * 10
    assert {"learn/td_abs_mean", "twin/calls"} <= view.keys()


def test_no_tensorboard_writes_none_and_a_missing_package_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    out = tmp_path / "plain"
    assert main([*TRAIN, "--budget", "8", "--no-tensorboard", "--out", str(out)]) == 0
    assert not (out / "tensorboard").exists()
    monkeypatch.setattr(tblog, "available", lambda: False)
    capsys.readouterr()
    assert main([*TRAIN, "--budget", "8", "--tensorboard", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "pip install 'twinrl[tensorboard]'" in err, err
    assert main([*TRAIN, "--budget", "8", "--out", str(tmp_path / "auto")]) == 0  # off: absent
    assert not (tmp_path / "auto" / "tensorboard").exists()
