"""The ``fidelity`` experiment: a tiny preset end to end, error level 0 equals the perfect twin,
determinism, and a harmful level is measured as twin error."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from twinrl.experiments import episodic, fidelity_report, fidelity_study
from twinrl.experiments.ap_figures import AGENT, ENV_ID
from twinrl.experiments.episodic import EpisodicJob, Variant
from twinrl.outdir import to_json

TINY = fidelity_study.Preset(ap_episodes=6, ap_seeds=2, ap_eval_episodes=1, edge_n=4, edge_phi=4,
                             edge_budget=30, edge_seeds=2, window=3)  # fmt: skip


@pytest.fixture(scope="module")
def summary() -> dict:
    return fidelity_study.run_preset(TINY, seed=3)  # type: ignore[arg-type]


def test_tiny_preset_runs_end_to_end(summary: dict, tmp_path: Path) -> None:
    out = fidelity_report.write_fidelity(summary, tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "Access-point selection" in text and "Edge scheduling" in text
    assert "Not run: the uav case study" in text
    json.loads(to_json(out))  # strict JSON
    rows = out["rows"]
    cases = {"ap": fidelity_study.AP_CASE, "edge": fidelity_study.EDGE_CASE}
    assert len(rows) == sum(len(fidelity_study.grid(c)) for c in cases.values())
    for row in rows:
        assert row["seeds"] == 2
        assert row["verdict"][next(iter(row["verdict"]))] == "too few seeds to decide"
    # the aggregate statistics of one row by hand: 2 seeds, so the IQM is the mean
    row = next(r for r in rows if r["case"] == "ap" and r["mitigation"] == "none")
    by = {(r["label"], r["seed"]): r for r in summary["cases"]["ap"]["runs"]}
    seeds = sorted(s for lb, s in by if lb == row["label"])
    twin = [by[(row["label"], s)]["greedy_reward"] for s in seeds]
    ref = [by[("physical", s)]["greedy_reward"] for s in seeds]
    agg = row["aggregate"]["greedy_reward"]
    assert agg["iqm"]["point"] == pytest.approx(np.mean(twin))
    higher = [(a > b) + 0.5 * (a == b) for a in twin for b in ref]
    assert agg["p_improvement"]["point"] == pytest.approx(np.mean(higher))
    assert agg["few_seeds_warning"] and "P(twin better)" in text
    for name in cases:
        assert len(out["headline"][name]) == 3
        if importlib.util.find_spec("matplotlib") is not None:
            assert (tmp_path / f"fidelity_{name}.png").exists()


def test_a_preset_chooses_levels_and_uav_mitigations() -> None:
    p = replace(TINY, levels=(0, 2), uav_mitigations=("none", "recalibrate"))
    ap, uav = fidelity_study.case_for("ap", p), fidelity_study.case_for("uav", p)
    assert [a.levels for a in ap.axes] == [(0.0, -0.5), (0.0, 1.0), (1, 5)]
    assert [a.mitigations() for a in ap.axes] == [
        ("none", "start_below", "recalibrate"), ("none", "average", "start_below"),
        ("none", "start_below")]  # fmt: skip
    assert [a.mitigations() for a in uav.axes] == [("none", "recalibrate"), ("none",), ("none",)]
    assert fidelity_study.case_for("ap", fidelity_study.asdict(p)) == ap  # from a summary


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_the_uav_case_runs_and_is_reported(tmp_path: Path) -> None:
    p = replace(TINY, ap_episodes=3, ap_seeds=1, edge_budget=10, edge_seeds=1, uav_episodes=1,
                uav_seeds=1, levels=(0, 1), uav_mitigations=("none", "recalibrate"))  # fmt: skip
    summary = fidelity_study.run_preset(p, seed=1)  # type: ignore[arg-type]
    assert "uav" in summary["cases"] and not summary["skipped"]
    out = fidelity_report.write_fidelity(summary, tmp_path)
    text = (tmp_path / "table.md").read_text()
    assert "## Multi-UAV" in text and "user_speed_std bias" in text
    uav_rows = [r for r in out["rows"] if r["case"] == "uav"]
    assert len(uav_rows) == len(fidelity_study.grid(fidelity_study.case_for("uav", p)))
    recal = [r for r in summary["cases"]["uav"]["runs"] if r["label"].endswith("recalibrate")]
    assert recal and all(r["twin_evaluations"] > 0 for r in recal)


def _ap_job(variant: Variant, seed: int = 5) -> EpisodicJob:
    return EpisodicJob(ENV_ID, (), variant, seed, 5, tuple(AGENT.items()), eval_episodes=1)


@pytest.mark.parametrize("case", [fidelity_study.AP_CASE])
def test_level_zero_is_the_perfect_twin_bit_for_bit(case: fidelity_study.Case) -> None:
    base = Variant("", "dteql", n_trials=5)
    perfect = _strip(episodic.run_episodic(_ap_job(replace(base, label="x"))))
    for axis in case.axes:
        v = fidelity_study.twin_variant(case, axis, axis.levels[0], "none", base)
        assert v.fidelity == () and not v.imperfect
        assert _strip(episodic.run_episodic(_ap_job(replace(v, label="x")))) == perfect
    # a bias of exactly 0 given explicitly: another (measured) twin, the same learning
    zero = replace(base, label="x", fidelity=(("bias", {"ap_rates": 0.0}),))
    run = episodic.run_episodic(_ap_job(zero))
    assert run["twin_error"]["reward"] == 0.0
    assert _strip(run) == perfect


def _strip(run: dict) -> dict:
    return {k: v for k, v in run.items()
            if k not in ("wall_time", "variant", "twin_error", "twin_started")}  # fmt: skip


def test_level_zero_of_edge_is_the_perfect_twin() -> None:
    base = Variant("x", "dteql")
    job = fidelity_study.EdgeJob(base, 0, 4, 4, 30, 5, 1)
    perfect = fidelity_study.run_edge_job(job)
    for axis in fidelity_study.EDGE_CASE.axes:
        v = replace(fidelity_study.twin_variant(fidelity_study.EDGE_CASE, axis, axis.levels[0],
                                                "none", base), label="x")  # fmt: skip
        assert fidelity_study.run_edge_job(replace(job, variant=v)) == perfect


def test_same_seed_same_summary(summary: dict) -> None:
    again = fidelity_study.run_preset(TINY, seed=3)  # type: ignore[arg-type]
    assert to_json(again) == to_json(summary)  # the outcomes kept hold no wall times


def test_a_harmful_level_is_measured() -> None:
    case = fidelity_study.AP_CASE
    axis = case.axes[0]
    assert axis.levels[-1] == -0.75
    v = fidelity_study.twin_variant(case, axis, -0.75, "none", Variant("", "dteql", n_trials=5))
    run = episodic.run_episodic(_ap_job(v))
    assert run["twin_error"]["reward"] > 0
    # start_below at a threshold the biased twin never meets: the run is physical-only QL
    gated = fidelity_study.twin_variant(case, axis, -0.75, "start_below", Variant("", "dteql",
                                                                                  n_trials=5))  # fmt: skip
    out = episodic.run_episodic(_ap_job(gated))
    ql = episodic.run_episodic(_ap_job(Variant(gated.label, "ql")))
    assert out["twin_started"] is None and out["twin_evaluations"] == 0
    assert out["episode_return"] == ql["episode_return"]
    assert out["greedy_return"] == ql["greedy_return"]
