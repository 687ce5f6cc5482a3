"""The ``differential`` experiment: a short real run through the writer (the presets are too long
for CI), its registration, and the report's comparisons checked against hand computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twinrl.experiments import differential, differential_report, metrics, runner


def _tiny(only: tuple[str, ...]) -> dict:
    saved = dict(differential.PRESETS)
    differential.PRESETS["quick"] = {"ap": (6, 2), "uav": (2, 2)}
    try:
        return differential.run_preset("quick", seed=3, only=only)
    finally:
        differential.PRESETS.clear()
        differential.PRESETS.update(saved)


@pytest.fixture(scope="module")
def summary() -> dict:
    return _tiny(("ap",))


def test_registered_not_default_and_every_method_runs_paired(summary: dict) -> None:
    exp = runner.EXPERIMENTS["differential"]
    assert exp.group == "differential" and not exp.default
    runs = [r for r in summary["runs"] if r["case"] == "ap"]
    labels = [m.label for m in differential.tabular_methods()]
    assert [r["label"] for r in runs] == [lb for lb in labels for _ in range(2)]
    seeds = {lb: [r["seed"] for r in runs if r["label"] == lb] for lb in labels}
    assert len({tuple(s) for s in seeds.values()}) == 1  # the same seeds for every method
    for r in runs:
        assert len(r["episode_return"]) == 6 and r["iterations"] == 6 * 20
        twin = {"dt-diff": 5, "dt-diff-distill": 5, "dteql": 5}.get(r["variant"]["algorithm"], 0)
        assert r["twin_evaluations"] == twin * r["iterations"]  # one step per domain and step
    diff = next(r for r in runs if r["label"] == "DT-diff adopt")["differential"]
    assert diff["decisions"] == 1 and diff["distinct_pairs"] > 0  # one sync moment after the first


def test_report_writes_tables_figures_and_the_hand_computed_comparison(
    summary: dict, tmp_path: Path
) -> None:
    result = differential_report.write_differential(summary, tmp_path)
    table = (tmp_path / "table.md").read_text()
    assert "Best single configuration in hindsight" in table
    assert (tmp_path / "differential_ap.png").stat().st_size > 0
    json.dumps(result, allow_nan=True)  # plain values only
    runs = [r for r in summary["runs"] if r["case"] == "ap"]
    greedy = {lb: np.array([r["greedy_reward"] for r in runs if r["label"] == lb])
              for lb in {r["label"] for r in runs}}  # fmt: skip
    case = result["cases"]["ap"]
    singles = differential.SINGLES["ap"]
    assert case["best_single"] == max(singles, key=lambda lb: greedy[lb].mean())
    comp = case["comparisons"][0]
    assert (comp["method"], comp["versus"]) == ("DT-diff adopt", "QL")
    expected = metrics.mean_ci(greedy["DT-diff adopt"] - greedy["QL"])
    assert comp["greedy_diff"]["mean"] == pytest.approx(expected.mean)
    assert comp["greedy_diff"]["ci95"] == pytest.approx(expected.half_width)
    assert "too few seeds to decide" in case["checks"][0]  # 2 seeds never decide
    assert "uav" not in result["cases"]


@pytest.mark.slow
def test_the_deep_case_runs_dqn_variants_through_the_writer(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    summary = _tiny(("uav",))
    runs = summary["runs"]
    assert {r["label"] for r in runs} == {m.label for m in differential.cases("quick")[1].methods}
    diff = next(r for r in runs if r["label"] == "DT-diff DQN adopt")["differential"]
    assert diff["fits"] == {"dqn": True, "dqn lr x2": True, "dqn 3-step": True,
                            "dqn dueling": False, "dqn wide": False}  # fmt: skip
    result = differential_report.write_differential(summary, tmp_path)
    assert (tmp_path / "differential_uav.png").exists() and "uav" in result["cases"]
