"""The ``construction`` experiment: a tiny preset end to end over the three case studies (multi-UAV
with torch), the access-point part equal to the single-case study it extends, T_c = 0 is the
fidelity study's perfect twin, the twin is blocked before T_c, a T_c past the budget is physical
QL, calibration, online recalibration, the break-even rule, determinism."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from twinrl.algorithms import build_algorithm
from twinrl.envs.edge_scheduling import EdgeParams
from twinrl.experiments import (
    construction_design,
    construction_report,
    construction_study,
    episodic,
    fidelity_study,
)
from twinrl.experiments.ap_figures import AGENT, ENV_ID
from twinrl.experiments.construction_design import CaseSize, EdgeSize, Preset
from twinrl.experiments.episodic import EpisodicJob, Variant
from twinrl.experiments.fidelity_study import EdgeJob
from twinrl.experiments.parallel import on_result
from twinrl.outdir import to_json
from twinrl.training import train

HAS_TORCH = importlib.util.find_spec("torch") is not None
TINY_AP = CaseSize(episodes=6, seeds=2, eval_episodes=1, fractions=(0.0, 0.5, 1.5),
                   improve_episodes=3, calibration_episodes=(1, 4), window=3)  # fmt: skip
TINY_EDGE = EdgeSize(episodes=400, seeds=2, n_tasks=4, phi=20, fractions=(0.0, 0.5),
                     improve_episodes=40, calibration_episodes=(1,), settle=60)  # fmt: skip
TINY_UAV = CaseSize(episodes=2, seeds=1, eval_episodes=1, fractions=(0.0,), bias=2.0,
                    improve_episodes=1, calibration_episodes=(1,), window=2)  # fmt: skip
TINY = Preset(ap=TINY_AP, edge=TINY_EDGE, uav=TINY_UAV)  # without torch: skipped, "needs torch"
RUN_KEYS = ("seed", "curve", "final_level", "greedy_reward", "failures", "physical_steps")
AP_REFERENCE = {
    "runs": "094de2f7f154cede7726e6b8a04dab70b56319aa86ef378fd54c8b166a6a6971",
    "rows": "acf988a9b40e531929ea4fa4523824f44c57cb6ee663eadd88f314d96e5d9160",
    "contrasts": "f6f655da8763da986d26fbe76ea6a980571720578483c495cf971dfe4a3a3f96",
}
"""SHA-256 of ``json.dumps(x, sort_keys=True)`` of the runs, report rows and schedule contrasts
of the access-point-only study (commit ee5d3a4) for ``TINY_AP`` with seed 3, computed once with
that code before the edge and multi-UAV case studies were added. Should AP-selection dynamics or
QL change on purpose, recompute them with that commit's construction_study/-report."""


@pytest.fixture(scope="module")
def summary() -> dict:
    return construction_study.run_preset(TINY, seed=3)


def _runs(summary: dict, case: str, label: str) -> list[dict]:
    return [r for r in summary["cases"][case]["runs"] if r["label"] == label]


def _sha(x: Any) -> str:
    return hashlib.sha256(json.dumps(x, sort_keys=True).encode()).hexdigest()


def test_tiny_preset_runs_end_to_end(summary: dict, tmp_path: Path) -> None:
    out = construction_report.write_construction(summary, tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "Construction delay" in text and "too few seeds to decide" in text
    json.loads(to_json({**out, "grid": summary}))  # strict JSON
    cases = ["ap", "edge", "uav"] if HAS_TORCH else ["ap", "edge"]
    assert list(out["cases"]) == list(summary["cases"]) == cases
    if not HAS_TORCH:
        assert "needs torch" in summary["skipped"]["uav"] and "Not run: the uav" in text
    for name in cases:
        size, study = getattr(TINY, name), construction_design.STUDIES[name]
        labels = construction_design.labels(size, study)
        result = out["cases"][name]
        assert [r["label"] for r in result["rows"]] == labels[1:]
        assert len(summary["cases"][name]["runs"]) == len(labels) * size.seeds
        assert result["break_even"]["verdict"] == "too few seeds to decide"
        assert [c["first"] for c in result["contrasts"]][:4] == [
            a for a, _ in construction_report.CONTRASTS
        ]
        assert result["contrasts"][-1]["second"] == labels[-2]  # the last calibration budget
        for row in result["rows"]:
            assert set(row["verdict"].values()) == {"too few seeds to decide"}
        if importlib.util.find_spec("matplotlib") is not None:
            assert (tmp_path / f"construction_{name}.png").exists()
        assert f"## {construction_report.TITLES[name]}" in text


def test_access_point_part_equals_the_single_case_study(summary: dict) -> None:
    """The AP runs, rows and schedule contrasts are those of the AP-only study it extends."""
    recalibration = construction_design.RECALIBRATION
    runs = [r for r in summary["cases"]["ap"]["runs"] if r["label"] != recalibration]
    assert _sha(runs) == AP_REFERENCE["runs"]
    rows = construction_report.rows(summary, "ap")
    # the rows as they were then: the aggregate statistics were added to them later
    then = [{k: v for k, v in r.items() if k != "aggregate"} for r in rows]
    assert _sha([r for r in then if r["label"] != recalibration]) == AP_REFERENCE["rows"]
    pairs = construction_report.contrasts(summary, "ap")[:4]
    assert _sha(pairs) == AP_REFERENCE["contrasts"]


def test_zero_construction_time_is_the_fidelity_studys_perfect_twin(summary: dict) -> None:
    axis = fidelity_study.AP_CASE.axes[0]
    perfect = fidelity_study.twin_variant(fidelity_study.AP_CASE, axis, axis.levels[0], "none",
                                          Variant("", "dteql", n_trials=5))  # fmt: skip
    for run in _runs(summary, "ap", construction_design.construction_label(0.0)):
        job = EpisodicJob(ENV_ID, (), perfect, run["seed"], TINY_AP.episodes,
                          tuple(sorted(AGENT.items())), TINY_AP.eval_episodes)  # fmt: skip
        theirs = fidelity_study._episodic_outcomes(episodic.run_episodic(job), TINY_AP.window)
        assert run["ready_after"] == 0 and run["twin_evaluations"] > 0
        for key in (*RUN_KEYS, "twin_evaluations"):
            assert run[key] == theirs[key], key
    edge = fidelity_study.EDGE_CASE
    perfect = fidelity_study.twin_variant(edge, edge.axes[0], 0.0, "none", Variant("", "dteql"))
    for run in _runs(summary, "edge", construction_design.construction_label(0.0)):
        job = EdgeJob(perfect, run["seed"], TINY_EDGE.n_tasks, TINY_EDGE.phi,
                      run["physical_steps"], TINY_EDGE.eval_every, 3)  # fmt: skip
        theirs = fidelity_study.run_edge_job(job)
        for key in ("convergence", "normalized_reward", "physical_steps", "twin_evaluations"):
            assert run[key] == theirs[key], key


def test_edge_twin_is_blocked_before_t_c(summary: dict) -> None:
    """DTEQL tries phi actions in the twin per physical iteration once the twin is built, none
    before: every twin-assisted edge run without start_below has phi x (iterations - T_c)."""
    physical = summary["cases"]["edge"]["design"]["physical"]
    runs = [r for r in summary["cases"]["edge"]["runs"] if r["label"] != physical]
    assert {r["ready_after"] for r in runs} >= {0, 1, TINY_EDGE.improve_episodes}
    for run in runs:
        if run["start_below"] is None:
            expected = TINY_EDGE.phi * (run["physical_steps"] - run["ready_after"])
            assert run["twin_evaluations"] == expected, run["label"]
    for run in _runs(summary, "edge", physical):
        assert run["twin_evaluations"] == 0 and run["physical_steps"] == TINY_EDGE.episodes


def test_construction_past_the_budget_is_physical_ql(summary: dict) -> None:
    late = _runs(summary, "ap", construction_design.construction_label(1.5))
    for run, ql in zip(late, _runs(summary, "ap", "QL"), strict=True):
        assert run["ready_after"] > TINY_AP.episodes * summary["cases"]["ap"]["horizon"]
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


def test_construction_iterations_are_physical_ql_iterations_on_edge() -> None:
    """The same for DTEQL on an edge instance: QL's first T_c rewards, then the twin helps."""
    from twinrl.twin import DigitalTwin, Fidelity

    tasks, _, _, seed = fidelity_study.edge_instance(EdgeJob(Variant("", "ql"), 1, 5, 30,
                                                                 0, 5, 3))  # fmt: skip
    runs = {}
    for name, twin in (("ql", None), ("dteql", Fidelity(ready_after=40))):
        env = gym.make(construction_design.EDGE_ID, n_tasks=5)
        agent, assists = build_algorithm(name, env, seed, n_trials=30)
        extra = {} if twin is None else {"twin": DigitalTwin(env, fidelity=twin)}
        runs[name] = train(env, agent, assists=assists, budget=80, seed=seed,
                           reset_options={"tasks": tasks}, eval_every=5, **extra)  # fmt: skip
    ql, dt = runs["ql"].history, runs["dteql"].history
    for key in ("reward", "greedy_return"):
        np.testing.assert_array_equal(ql[key][:40], dt[key][:40])
    assert not np.array_equal(ql["greedy_return"], dt["greedy_return"])  # the twin helped
    assert runs["dteql"].twin_evaluations == 30 * (80 - 40)


def test_calibrated_twin_is_exact_once_every_ap_delivered() -> None:
    job = EpisodicJob(ENV_ID, (), Variant("QL", "ql"), 7, 1, tuple(sorted(AGENT.items())))
    model = construction_study.calibrate(job, 100 * 20)
    params = gym.make(ENV_ID).unwrapped.params  # type: ignore[attr-defined]
    np.testing.assert_allclose(model["ap_rates"], params.ap_rates, rtol=1e-12)
    assert model["speed"] == pytest.approx(params.speed, rel=1e-12)


def test_calibrated_edge_twin_is_exact_after_one_iteration(summary: dict) -> None:
    params = EdgeParams(n_tasks=TINY_EDGE.n_tasks)
    for run in _runs(summary, "edge", construction_design.calibration_label(1, "iterations")):
        assert run["ready_after"] == 1 and "not_built" not in run
        assert run["model"]["rate"] == pytest.approx(params.rate, rel=1e-12)
        assert run["model"]["f_ser"] == pytest.approx(params.f_ser, rel=1e-12)


def test_calibration_without_every_ap_builds_no_twin(summary: dict) -> None:
    for run in _runs(summary, "ap", construction_design.calibration_label(1)):
        if "not_built" in run:
            assert run["model"] is None and run["twin_evaluations"] == 0
            assert "cannot estimate" in run["not_built"]


def test_online_recalibration_recalibrates(summary: dict) -> None:
    """The recalibrating twin starts from the biased prior and re-estimates its model: on edge
    scheduling every 50 iterations (one re-estimate in the tiny runs), on access points every
    200 steps once every AP has delivered a task."""
    runs = _runs(summary, "edge", construction_design.RECALIBRATION)
    for run in runs:
        assert run["ready_after"] == 0 and run["recalibrations"] >= 1
    study = construction_design.STUDIES["ap"]
    variant = construction_design.recalibration_variant(TINY_AP, study)[2]
    assert dict(variant.fidelity) == {"bias": {"ap_rates": TINY_AP.bias}}
    job = EpisodicJob(ENV_ID, (), variant, 5, 12, tuple(sorted(AGENT.items())), 1)
    run = construction_study.run_job(construction_study.ConstructionJob(job, "recalibration", 0))
    assert run["recalibrations"] == 1 and run["twin_evaluations"] == 12 * 20 * 5


def _row(level: float, mean: float, half: float, seeds: int = 3, key: str = "reach") -> dict:
    lo, hi = mean - half, mean + half
    verdict = "twin better" if hi < 0 else "twin WORSE" if lo > 0 else "no significant difference"
    return {"part": "construction", "level": level, "seeds": seeds,
            "t_c_episodes": {"mean": 100 * level}, "verdict": {key: verdict}}  # fmt: skip


def test_break_even_follows_the_largest_level_with_a_significant_speed_up() -> None:
    rows = [_row(0.0, -300, 20), _row(0.5, -100, 50), _row(1.0, -5, 10), _row(1.5, 0, 0)]
    even = construction_report.break_even(rows)
    assert even["fraction"] == 1.0 and even["pays_off_up_to"] == 0.5
    assert even["not_significant_below"] == []
    noisy = [_row(0.0, -300, 400), _row(0.25, -200, 100), _row(0.5, -5, 10)]
    even = construction_report.break_even(noisy)  # few seeds: T_c = 0 not significant
    assert (even["fraction"], even["pays_off_up_to"]) == (0.5, 0.25)
    assert even["not_significant_below"] == [0.0] and "not significant at the smaller T_c = 0%" in (
        construction_report._even_text(even)
    )
    never = construction_report.break_even([_row(0.0, 5, 10), _row(0.5, 0, 0)])
    assert (never["fraction"], never["pays_off_up_to"]) == (0.0, None)
    assert "not even T_c = 0" in construction_report._even_text(never)
    assert construction_report.break_even(rows[:2])["verdict"] == "pays off at every level"
    assert construction_report.break_even([_row(0.0, -300, 20, seeds=2)])["fraction"] is None
    edge = [_row(0.0, -300, 20, key="convergence"), _row(0.5, 10, 50, key="convergence")]
    assert construction_report.break_even(edge, "convergence")["fraction"] == 0.5


def test_same_seed_same_summary_and_each_distinct_run_once(summary: dict) -> None:
    ran: list[dict] = []
    with on_result(ran.append):
        again = construction_study.run_preset(TINY, seed=3)
    assert to_json(again) == to_json(summary)
    # TINY_AP's "wait (accurate)" (3 episodes) is its "T_c = 50%" (QL's time is 6): run once
    runs = [r for case in summary["cases"].values() for r in case["runs"]]
    assert len(ran) == len(runs) - TINY_AP.seeds
    wait, half = (_runs(summary, "ap", lb) for lb in ("wait (accurate)", "T_c = 50% of QL's time"))
    for a, b in zip(wait, half, strict=True):
        assert a["ready_after"] == b["ready_after"] and a["curve"] == b["curve"]
