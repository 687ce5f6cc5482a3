"""The ``scale`` experiment: a tiny grid end to end, the rollout's guarantee, determinism, the
report and its goal verdicts against hand-made summaries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")

from twinrl.baselines.edge_exact import brute_force
from twinrl.envs.edge_scheduling import EdgeParams
from twinrl.experiments import metrics, scale_report, scale_study
from twinrl.experiments.runner import EXPERIMENTS

TINY = scale_study.ScalePreset(ns=(4,), instances=3, episodes=25, restarts=2, validation=2)


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    return scale_study.run_grid(TINY, seed=3)


def test_every_method_is_judged_against_the_exact_optimum(summary: dict[str, Any]) -> None:
    (run,) = summary["runs"]
    params = EdgeParams(**scale_study.params_for(4))  # type: ignore[arg-type]
    tasks = scale_study.held_out(4, TINY.instances, 3)
    assert run["train_physical_steps"] == 2 * 4 * 25
    for row, t in zip(run["instances"], tasks, strict=True):
        assert row["optimum"] == brute_force(params, t).cost
        for cost in row["costs"].values():
            assert cost >= row["optimum"] * (1 - 1e-12)
        # the rollout algorithm never does worse than the greedy order of any base policy
        assert row["costs"]["DT rollout"] <= row["costs"]["DQN greedy"] * (1 + 1e-12)
        assert row["greedy_physical_steps"] == row["rollout_physical_steps"] == 4
        assert row["rollout_twin_evaluations"] == 2 * (16 + 9 + 4 + 1)  # restarts x sum (N-k)^2


def test_same_seed_same_numbers(summary: dict[str, Any]) -> None:
    again = scale_study.run_n((4, TINY, 3))
    (run,) = summary["runs"]
    assert [r["costs"] for r in again["instances"]] == [r["costs"] for r in run["instances"]]
    assert again["restart_validation_costs"] == run["restart_validation_costs"]


def test_report_files_and_rows(summary: dict[str, Any], tmp_path: Path) -> None:
    out = scale_report.write_scale(summary, tmp_path / "scale")
    text = (tmp_path / "scale" / "table.md").read_text()
    for method in scale_study.METHODS:
        assert f"| 4 | {method} |" in text
    assert "Goal at N = 4" in text
    json.dumps(out)  # the rows and verdicts are JSON-able as written to summary.json
    assert {r["method"] for r in out["rows"]} == set(scale_study.METHODS)
    if (tmp_path / "scale" / "gap_vs_n.png").exists() is False:
        pytest.importorskip("matplotlib")
        pytest.fail("matplotlib is installed but the figure was not written")


def _made_up(rollout: list[float], spt: list[float], local: list[float]) -> dict[str, Any]:
    """A summary whose gaps are given (optimum 1, so a cost is 1 + gap)."""
    rows = []
    for i, (a, b, c) in enumerate(zip(rollout, spt, local, strict=True)):
        costs = {"EDF": 2.0, "SPT": 1 + b, "Johnson": 2.0, "local search": 1 + c,
                 "DQN greedy": 1.5, "DT rollout": 1 + a}  # fmt: skip
        rows.append({"instance": i, "optimum": 1.0, "costs": costs, "dp_cpu_seconds": 0.0,
                     "greedy_physical_steps": 20, "rollout_physical_steps": 20,
                     "rollout_twin_evaluations": 2870})  # fmt: skip
    return {"runs": [{"n": 20, "instances": rows}]}


def test_goal_verdicts_by_hand() -> None:
    goal = scale_report.goals(_made_up([0.01] * 6, [0.05] * 6, [0.001] * 6))
    assert goal["within_2pct"]["mean"] == pytest.approx(0.01)
    assert goal["within_2pct"]["verdict"] == metrics.MET  # every gap 1% < 2%, CI of width 0
    assert goal["vs_best_rule"]["against"] == "SPT"
    assert goal["vs_best_rule"]["mean_difference"] == pytest.approx(-0.04)
    assert goal["vs_best_rule"]["verdict"] == metrics.MET
    assert goal["vs_best_rule"]["probability_of_improvement"] == 1.0
    assert goal["vs_local_search"]["verdict"] == metrics.NOT_MET
    assert goal["vs_local_search"]["probability_of_improvement"] == 0.0
    spread = scale_report.goals(_made_up([0.0, 0.04] * 3, [0.05] * 6, [0.001] * 6))
    assert spread["within_2pct"]["verdict"] == metrics.UNDECIDED  # mean 2%: the CI includes it
    few = scale_report.goals(_made_up([0.01] * 3, [0.05] * 3, [0.0] * 3))
    assert few["within_2pct"]["verdict"] == metrics.UNDECIDED  # fewer than 5 task sets


def test_registered_as_an_optional_torch_experiment() -> None:
    exp = EXPERIMENTS["scale"]
    assert exp.needs == ("torch",) and exp.extra == "torch" and not exp.default
    assert exp.write is scale_report.write_scale
    quick = scale_study.PRESETS["quick"]
    assert quick.ns == (10, 12, 16, 20) and scale_study.PRESETS["paper"].ns == quick.ns
    assert np.all(np.array(quick.ns) <= 20)
