"""The ``prediction`` experiment: its design, its statistics against hand-computed values, the
verdicts on a synthetic grid with known effects, and one real run of a job."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from twinrl.envs.multi_uav import MultiUAVParams
from twinrl.experiments import metrics
from twinrl.experiments import prediction as pred
from twinrl.experiments import prediction_design as design
from twinrl.experiments.runner import EXPERIMENTS, GROUPS


def test_registered_as_a_torch_experiment_outside_the_default_set() -> None:
    exp = EXPERIMENTS["prediction"]
    assert exp.group == "prediction" and "prediction" in GROUPS
    assert exp.needs == ("torch",) and exp.default is False


def test_cells_vary_one_factor_at_a_time_from_the_base_cell() -> None:
    base = design.BASE_CELL
    for cell in design.CELLS[1:]:
        changed = [f for f in ("reward", "mobility", "horizon")
                   if getattr(cell, f) != getattr(base, f)]  # fmt: skip
        assert len(changed) == 1, cell
    for cell in design.CELLS:  # every cell is a valid env
        MultiUAVParams(**cell.env_kwargs())
    levels = {(c.reward, c.mobility, c.horizon) for c in design.CELLS}
    assert {r for r, _, _ in levels} == set(design.REWARDS)
    assert {m for _, m, _ in levels} == set(design.MOBILITY)
    assert {h for _, _, h in levels} == set(design.HORIZONS)


def test_arms_run_at_matched_gradient_steps_and_horizons() -> None:
    for cell in design.CELLS:
        arms = design.variants(cell)
        labels = [v.label for v in arms]
        assert len(set(labels)) == len(labels)
        expected = set(design.arm_names()) if cell in design.MECHANISM_CELLS else set(
            design.CORE_ARMS)  # fmt: skip
        assert {lb.split(": ", 1)[1] for lb in labels} == expected
        for v in arms:
            agent = dict(v.agent)
            assert agent["gamma"] == cell.agent()["gamma"]
            two = v.label.endswith(("data", "DQL 2 steps"))
            assert agent.get("gradient_steps", 1) == (2 if two else 1), v.label
            if v.algorithm in ("dt-dqn", "nstep-dqn"):
                assert v.k == design.K
            base = design.BASE_LEARNERS[design.BASE]
            assert dict(v.env_kwargs) == {**cell.env_kwargs(), **dict(base.env)}
    mech = {v.label.split(": ", 1)[1]: v for v in design.variants(design.MECHANISM_CELLS[0])}
    assert dict(mech["DT-DQL m=1 physical future"].prediction) == {"future": "physical"}
    assert mech["DT-DQL m=1 physical future"].m == 1
    assert dict(mech["DT-DQL m=4 varied first actions"].prediction) == {"first_actions": "varied"}
    assert sorted(v.m for lb, v in mech.items() if lb.startswith("DT-DQL m=") and
                  not v.prediction and "data" not in lb) == list(design.MS)  # fmt: skip


def test_every_arm_uses_the_base_learner() -> None:
    """The base learner's env and agent settings reach every job (the vdn base: per-UAV
    observation blocks, one shared network, summed utilities), beside the preset's schedule."""
    base = design.BASE_LEARNERS[design.BASE]
    assert design.BASE == "vdn" and dict(base.agent) == {"head": "sum", "shared_branches": True}
    for job in pred.jobs(design.Preset(steps=3000, seeds=1), seed=0, seeds=1):
        assert dict(job.variant.env_kwargs)["observation"] == "per_uav"
        assert {**dict(job.agent_config), **dict(base.agent)} == dict(job.agent_config)
        assert job.variant.algorithm in base.algorithms


def test_every_cell_gets_the_same_physical_steps() -> None:
    preset = design.Preset(steps=3000, seeds=1)
    for cell in design.CELLS:
        length = MultiUAVParams(**cell.env_kwargs()).episode_steps
        assert design.episodes(preset, cell) * length == 3000
    jobs = pred.jobs(preset, seed=0, seeds=2)
    assert len(jobs) == 2 * sum(len(design.variants(c)) for c in design.CELLS)
    assert {j.eval_at for j in jobs if "long" in j.variant.label} == {(5, 10)}
    assert {j.eval_at for j in jobs if "short" in j.variant.label} == {(15, 30)}


def test_seeds_needed_matches_the_student_t_half_width_by_hand() -> None:
    sd_one = list(pred._unit_spread(7))
    assert np.std(sd_one, ddof=1) == pytest.approx(1.0)
    # t_{0.975,16} / sqrt(17) = 2.120 / 4.123 = 0.514 >= 0.5; t_{0.975,17} / sqrt(18) = 0.497
    assert pred.seeds_needed(sd_one, 0.5) == 18
    assert pred.seeds_needed([2 * x for x in sd_one], 1.0) == 18
    assert pred.seeds_needed([0.3], 0.5) is None
    assert pred.seeds_needed(sd_one, 0.0) is None


@pytest.mark.parametrize(
    ("mean", "half", "n", "verdict"),
    [
        (0.0, 0.1, 10, metrics.MET),  # inside +-0.2
        (0.15, 0.1, 10, metrics.UNDECIDED),  # [0.05, 0.25] crosses the margin
        (0.5, 0.1, 10, metrics.NOT_MET),  # wholly beyond +0.2
        (-0.5, 0.1, 10, metrics.NOT_MET),
        (0.0, 0.1, 3, metrics.UNDECIDED),  # too few seeds
    ],
)
def test_no_effect_rule(mean: float, half: float, n: int, verdict: str) -> None:
    assert pred.judge("equivalence", metrics.Estimate(mean, half, n), 0.2) == verdict


def _synthetic(seeds: int = 6) -> dict[str, Any]:
    """A grid where references are 0 (random) and 1 (k-means), so normalized = raw. DT-DQL m=4
    equals DQL + noise in the base cell, gains 0.2 over DQL in the sparse cell, and gains less
    over n-step in the fast cell than in the base cell."""
    rng = np.random.default_rng(0)
    runs = []
    gains = {"dense/slow/short": (0.0, 0.1), "sparse/slow/short": (0.2, 0.1),
             "dense/fast/short": (0.0, -0.2)}  # fmt: skip
    for cell, (over_dql, over_nstep) in gains.items():
        for s in range(seeds):
            base = rng.normal(0.5, 0.1)
            for arm, value in (("DQL", base), (f"n-step n={design.K}", base + over_dql - over_nstep),
                               (f"DT-DQL m={design.M_MAIN}", base + over_dql)):  # fmt: skip
                v = value + rng.normal(0.0, 0.005)
                runs.append({"label": f"{cell}: {arm}", "cell": cell, "arm": arm, "seed": s,
                             "curve": [v] * 4, "auc": v, "greedy": [v, v, v],
                             "twin_per_step": 19.2 if "DT" in arm else 0.0})  # fmt: skip
    refs = {c: {str(s): {"hover": -0.5, "random": 0.0, "kmeans": 1.0} for s in range(seeds)}
            for c in gains}  # fmt: skip
    cells = {c: {"env": {}, "agent": {}, "episodes": 4} for c in gains}
    return {"preset": {"seeds": seeds, "steps": 200, "window": 2, "name": "custom"},
            "base": "dqn", "k": design.K,
            "agent_config": {}, "cells": cells, "runs": runs, "references": refs}  # fmt: skip


def test_verdicts_on_a_grid_with_known_effects() -> None:
    result = pred.analyse(_synthetic())
    verdicts = {v["id"]: v for v in result["predictions"]}
    assert set(verdicts) == {"P1", "P2a", "P3a"}  # the other cells are not in this grid
    assert verdicts["P1"]["verdict"] == metrics.MET
    assert verdicts["P2a"]["verdict"] == metrics.MET
    assert verdicts["P2a"]["estimate"]["mean"] == pytest.approx(0.2, abs=0.01)
    assert verdicts["P3a"]["verdict"] == metrics.NOT_MET
    assert verdicts["P3a"]["estimate"]["mean"] == pytest.approx(-0.3, abs=0.01)
    base = result["cells"]["dense/slow/short"]
    # DQL's greedy score is about 0.5, the best reference (k-means) 1: gap 0.5, margin 0.125
    assert base["margin"] == pytest.approx(base["gap"] / 4)
    assert 0.4 < base["gap"] < 0.6
    dt = base["arms"][f"DT-DQL m={design.M_MAIN}"]
    assert dt["twin_per_step"] == 19.2
    assert dt["auc - DQL"]["verdict"] == metrics.UNDECIDED  # a tiny noise difference


def test_exploratory_rows_are_paired_differences_of_the_named_arms(tmp_path: Path) -> None:
    from twinrl.experiments.prediction_report import write_prediction

    summary = _synthetic()
    varied = f"DT-DQL m={design.M_MAIN} varied first actions"
    main = f"sparse/slow/short: DT-DQL m={design.M_MAIN}"
    for r in [r for r in summary["runs"] if r["label"] == main]:
        gain = 0.1 + 0.01 * r["seed"]  # a known per-seed gain over the main arm
        v = r["auc"] + gain
        summary["runs"].append({**r, "label": f"sparse/slow/short: {varied}", "arm": varied,
                                "auc": v, "greedy": [v, v, v - 0.3]})  # fmt: skip
    rows = pred.explore(summary)
    assert [r["id"] for r in rows] == ["E3"]  # the other arms did not run in this grid
    e3 = rows[0]
    assert (e3["a"], e3["b"]) == (varied, f"DT-DQL m={design.M_MAIN}")
    assert e3["auc"]["mean"] == pytest.approx(0.1 + 0.01 * np.mean(range(6)))
    assert e3["auc"]["verdict"] == metrics.MET
    assert e3["greedy"]["mean"] == pytest.approx(e3["auc"]["mean"] - 0.3)
    assert e3["greedy"]["verdict"] == metrics.NOT_MET
    assert pred.analyse(summary)["exploratory"] == rows
    text = write_prediction(summary, tmp_path) and (tmp_path / "table.md").read_text()
    assert (
        f"| E3 | varied first actions help in the sparse cell | sparse/slow/short | {varied}"
        in text
    )


def test_too_few_seeds_never_decide() -> None:
    result = pred.analyse(_synthetic(seeds=3))
    assert {v["verdict"] for v in result["predictions"]} == {metrics.UNDECIDED}


def test_report_files(tmp_path: Path) -> None:
    from twinrl.experiments.prediction_report import write_prediction

    out = write_prediction(_synthetic(), tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "| P2a |" in text and "### sparse/slow/short" in text
    assert "Exploratory" not in text  # no mechanism arm ran in this grid
    assert out["checks"][0].endswith(": met")
    pytest.importorskip("matplotlib")
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert (tmp_path / "differences.png").stat().st_size > 0


def test_equal_references_are_refused_by_name() -> None:
    summary = _synthetic()
    for refs in summary["references"]["dense/slow/short"].values():
        refs["kmeans"] = 0.0
    with pytest.raises(ValueError, match="dense/slow/short"):
        pred.analyse(summary)


def test_one_job_evaluates_at_budgets_without_changing_training() -> None:
    pytest.importorskip("torch")
    from twinrl.experiments.episodic import run_episodic

    preset = design.Preset(steps=150, seeds=1, eval_episodes=1)
    job = next(j for j in pred.jobs(preset, seed=0, seeds=1)
               if j.variant.label.endswith("varied first actions"))  # fmt: skip
    job = replace(job, agent_config=(("hidden", (16,)), ("learning_starts", 20)))
    with_eval = run_episodic(job)
    without = run_episodic(replace(job, eval_at=()))
    assert with_eval["episode_return"] == without["episode_return"]
    assert len(with_eval["greedy_at"]) == 2 and "greedy_at" not in without
    scored = pred._score(dict(with_eval))
    assert len(scored["greedy"]) == 3 and math.isfinite(scored["auc"])
    assert scored["twin_per_step"] > 4  # k x m = 20, fewer near episode ends
