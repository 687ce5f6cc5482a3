"""The ``construction`` experiment: a tiny preset end to end, T_c = 0 is the fidelity study's
perfect twin, a T_c past the budget is physical QL, a calibrated twin is exact once every AP was
seen, the break-even rule, determinism."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from twinrl.experiments import construction_report, construction_study, episodic, fidelity_study
from twinrl.experiments.ap_figures import AGENT, ENV_ID
from twinrl.experiments.episodic import EpisodicJob, Variant
from twinrl.outdir import to_json

TINY = construction_study.Preset(episodes=6, seeds=2, eval_episodes=1, fractions=(0.0, 0.5, 1.5),
                                 improve_episodes=3, calibration_episodes=(1, 4), window=3)  # fmt: skip
RUN_KEYS = ("seed", "curve", "final_level", "greedy_reward", "failures", "physical_steps")


@pytest.fixture(scope="module")
def summary() -> dict:
    return construction_study.run_preset(TINY, seed=3)


def _runs(summary: dict, label: str) -> list[dict]:
    return [r for r in summary["runs"] if r["label"] == label]


def test_tiny_preset_runs_end_to_end(summary: dict, tmp_path: Path) -> None:
    out = construction_report.write_construction(summary, tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "Construction delay" in text and "too few seeds to decide" in text
    json.loads(to_json({**out, "grid": summary}))  # strict JSON
    labels = construction_study.labels(TINY)
    assert [r["label"] for r in out["rows"]] == labels[1:]
    assert len(summary["runs"]) == len(labels) * TINY.seeds
    assert out["break_even"]["verdict"] == "too few seeds to decide"
    assert [(c["first"], c["second"]) for c in out["contrasts"]] == list(
        construction_report.CONTRASTS
    )
    for row in out["rows"]:
        assert row["seeds"] == 2 and row["verdict"]["reach"] == "too few seeds to decide"
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "construction.png").exists()


def test_zero_construction_time_is_the_fidelity_studys_perfect_twin(summary: dict) -> None:
    axis = fidelity_study.AP_CASE.axes[0]
    perfect = fidelity_study.twin_variant(fidelity_study.AP_CASE, axis, axis.levels[0], "none",
                                          Variant("", "dteql", n_trials=5))  # fmt: skip
    for run in _runs(summary, construction_study.construction_label(0.0)):
        job = EpisodicJob(ENV_ID, (), perfect, run["seed"], TINY.episodes,
                          tuple(sorted(AGENT.items())), TINY.eval_episodes)  # fmt: skip
        theirs = fidelity_study._episodic_outcomes(episodic.run_episodic(job), TINY.window)
        assert run["ready_after"] == 0 and run["twin_evaluations"] > 0
        for key in (*RUN_KEYS, "twin_evaluations"):
            assert run[key] == theirs[key], key


def test_construction_past_the_budget_is_physical_ql(summary: dict) -> None:
    late = _runs(summary, construction_study.construction_label(1.5))
    for run, ql in zip(late, _runs(summary, "QL"), strict=True):
        assert run["ready_after"] > TINY.episodes * summary["horizon"]
        assert run["twin_evaluations"] == 0
        assert {k: run[k] for k in RUN_KEYS} == {k: ql[k] for k in RUN_KEYS}


def test_construction_steps_are_physical_ql_steps() -> None:
    """Before the twin is built, DT-QL learns exactly as QL (so a calibrator may observe QL's
    first transitions as the same run's): the first T_c steps' episode returns agree."""
    job = EpisodicJob(ENV_ID, (), Variant("QL", "ql"), 11, 8, tuple(sorted(AGENT.items())))
    ql = episodic.run_episodic(job)
    late = Variant("x", "dteql", n_trials=5, fidelity=(("ready_after", 5 * 20),))
    dt = episodic.run_episodic(EpisodicJob(ENV_ID, (), late, 11, 8, job.agent_config))
    assert dt["episode_return"][:5] == ql["episode_return"][:5]
    assert dt["episode_return"] != ql["episode_return"]
    assert dt["twin_evaluations"] == 3 * 20 * 5


def test_calibrated_twin_is_exact_once_every_ap_delivered() -> None:
    job = EpisodicJob(ENV_ID, (), Variant("QL", "ql"), 7, 1, tuple(sorted(AGENT.items())))
    model = construction_study.calibrate(job, 100 * 20)
    params = gym.make(ENV_ID).unwrapped.params  # type: ignore[attr-defined]
    np.testing.assert_allclose(model["ap_rates"], params.ap_rates, rtol=1e-12)
    assert model["speed"] == pytest.approx(params.speed, rel=1e-12)


def test_calibration_without_every_ap_builds_no_twin(summary: dict) -> None:
    for run in _runs(summary, construction_study.calibration_label(1)):
        if "not_built" in run:
            assert run["model"] is None and run["twin_evaluations"] == 0
            assert "cannot estimate" in run["not_built"]


def _row(level: float, mean: float, half: float, seeds: int = 3) -> dict:
    lo, hi = mean - half, mean + half
    verdict = "twin better" if hi < 0 else "twin WORSE" if lo > 0 else "no significant difference"
    return {"part": "construction", "level": level, "seeds": seeds,
            "t_c_episodes": {"mean": 100 * level}, "verdict": {"reach": verdict}}  # fmt: skip


def test_break_even_is_the_first_level_without_a_significant_speed_up() -> None:
    rows = [_row(0.0, -300, 20), _row(0.5, -100, 50), _row(1.0, -5, 10), _row(1.5, 0, 0)]
    even = construction_report.break_even(rows)
    assert even["fraction"] == 1.0 and even["pays_off_up_to"] == 0.5
    assert construction_report.break_even(rows[:2])["verdict"] == "pays off at every level"
    assert construction_report.break_even([_row(0.0, -300, 20, seeds=2)])["fraction"] is None


def test_same_seed_same_summary(summary: dict) -> None:
    again = construction_study.run_preset(TINY, seed=3)
    assert to_json(again) == to_json(summary)
