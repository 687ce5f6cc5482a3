"""The ``adaptation`` experiment: a tiny preset end to end, determinism, the outcomes against
hand-built curves, and its registration (named only, not in the default set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from twinrl.experiments import adaptation_report, adaptation_study
from twinrl.experiments.adaptation_design import CHANGE_ARMS, HELD_OUT_ARMS, PartSize
from twinrl.experiments.runner import EXPERIMENTS, GROUPS
from twinrl.outdir import to_json

TINY = PartSize(seeds=2, episodes=5, before=5, twin_steps=100, scenarios=2, eval_every=5)


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    return adaptation_study.run_preset(TINY, seed=3)


@pytest.mark.slow  # about 10 CPU-seconds: 18 runs
def test_every_arm_runs_on_every_seed_and_the_report_is_written(
    summary: dict[str, Any], tmp_path: Path
) -> None:
    runs = summary["runs"]
    assert len(runs) == 2 * (len(HELD_OUT_ARMS) + len(CHANGE_ARMS))
    for r in runs:
        assert r["episodes"] == ([0, 5] if r["part"] == "held-out" else [0, 5, 10])
    change = {
        r["label"]: r for r in runs if r["part"] == "change" and r["seed"] == summary["seeds"][0]
    }
    assert change["twin"]["detected_at"] == [5 * 20 + 1]  # the first step under the new scenario
    assert change["twin"]["twin_steps"] == TINY.twin_steps
    assert change["fine-tune"]["twin_steps"] == 0 and change["fine-tune"]["detected_at"] == []
    # before the change, every arm that keeps its agent learns the same (no twin until then)
    assert change["twin"]["greedy"][:2] == change["fine-tune"]["greedy"][:2]
    result = adaptation_report.write_adaptation(summary, tmp_path)
    assert (tmp_path / "table.md").read_text().startswith("# Scenario adaptation")
    assert {c["arm"] for c in result["contrasts"]} >= {"twin: sampled", "twin + aware replay"}
    assert all(o["verdict"] == "too few seeds to decide" for c in result["contrasts"]
               for o in c["outcomes"].values())  # fmt: skip


@pytest.mark.parametrize(("part", "label"), [("change", "twin + aware replay"),
                                            ("held-out", "twin: sampled")])  # fmt: skip
def test_a_run_is_deterministic(part: str, label: str) -> None:
    job = adaptation_study.AdaptationJob(part, label, 11, TINY)
    one, two = adaptation_study.run_job(job), adaptation_study.run_job(job)
    assert to_json(one) == to_json(two)
    assert one["twin_steps"] == TINY.twin_steps


def _run(part: str, label: str, seed: int, greedy: list[float], twin: int = 0) -> dict[str, Any]:
    episodes = [5 * i for i in range(len(greedy))]
    return {"part": part, "label": label, "seed": seed, "episodes": episodes, "greedy": greedy,
            "twin_steps": twin, "prior_physical_steps": 0}  # fmt: skip


def test_outcomes_against_hand_built_curves() -> None:
    size = {"seeds": 1, "episodes": 25, "before": 10, "eval_every": 5}
    summary = {"preset": size, "runs": [
        _run("held-out", "scratch", 1, [0.0, 2.0, 4.0, 5.0, 5.0, 5.0]),
        _run("held-out", "twin: sampled", 1, [5.0, 5.0, 5.0, 5.0, 5.0, 5.0], 100),
        _run("change", "scratch", 1, [0.0, 6.0, 6.0, 1.0, 3.0, 3.0, 3.0, 3.0]),
        _run("change", "twin", 1, [0.0, 6.0, 6.0, 3.0, 3.0, 3.0, 3.0, 3.0], 100),
        _run("change", "fine-tune", 1, [0.0, 6.0, 6.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ]}  # fmt: skip
    out = adaptation_report.outcomes(summary)
    # scratch's final level (last 20% of 6 points: the last one) is 5; the smoothed curve
    # (trailing mean of 3) is 0, 1, 2, 3.67, 4.67, 5: within 5% of 5 from the 6th point on
    assert out["held-out"]["scratch"][1] == {"jump": 0.0, "auc": 3.5, "reach": 25,
                                             "twin_steps": 0, "prior_physical_steps": 0}  # fmt: skip
    assert out["held-out"]["twin: sampled"][1]["reach"] == 0
    assert out["held-out"]["twin: sampled"][1]["jump"] == 5.0
    # after the change (episodes 15..35): scratch 1, 3, 3, 3, 3 -> smoothed 1, 2, 2.33, 3, 3
    assert out["change"]["scratch"][1]["recover"] == 20
    assert out["change"]["twin"][1]["recover"] == 5
    assert out["change"]["fine-tune"][1]["recover"] == 25 + 5  # censored
    assert out["change"]["twin"][1]["auc_after"] == 3.0


def test_adaptation_is_registered_but_not_a_default() -> None:
    assert EXPERIMENTS["adaptation"].group == "adaptation" and "adaptation" in GROUPS
    assert not EXPERIMENTS["adaptation"].default
