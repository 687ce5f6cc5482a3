"""fig4 / safety: a short real run through the writers (the full presets are too long for CI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twinrl.experiments import ap_figures, episodic


@pytest.fixture(scope="module")
def summary() -> dict:
    runs = episodic.run_variants(
        ap_figures.ENV_ID, {}, ap_figures.variants(5), seeds=2, episodes=25, seed=3,
        agent_config=ap_figures.AGENT,
    )  # fmt: skip
    return {
        "preset": {"episodes": 25, "seeds": 2, "window": 5, "name": "test"},
        "seed": 3, "n_aps": 5, "agent_config": ap_figures.AGENT, "runs": runs,
        "baselines": ap_figures._baselines(
            __import__("twinrl.envs.ap_dynamics", fromlist=["x"]).APSelectionParams(),
            episodes=3, seed=0),
    }  # fmt: skip


def test_runs_are_deterministic_and_safe_exploration_cuts_failures(summary: dict) -> None:
    again = episodic.run_variants(
        ap_figures.ENV_ID, {}, ap_figures.variants(5)[:1], seeds=2, episodes=25, seed=3,
        agent_config=ap_figures.AGENT,
    )  # fmt: skip

    def strip(runs: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "wall_time"} for r in runs]

    assert strip(again) == strip([r for r in summary["runs"] if r["label"] == "QL"])
    plain = episodic.run_variants(
        ap_figures.ENV_ID, {}, [episodic.Variant("QL", "ql")], seeds=2, episodes=25, seed=3,
        agent_config=ap_figures.AGENT,
    )  # fmt: skip
    # auditing (twin checks without veto) leaves the run unchanged
    assert [r["episode_return"] for r in plain] == [r["episode_return"] for r in again]
    audit = again[0]["assists"]["safe_exploration"]
    assert audit["checked"] == 25 * 20 and audit["vetoed"] > 0
    fails = {r["label"]: sum(r["episode_failures"]) for r in summary["runs"] if r["seed"]}
    assert fails["DT-QL n=5 + safe"] < 0.5 * fails["QL"]
    for r in summary["runs"]:
        assert len(r["episode_return"]) == 25 and r["iterations"] == 25 * 20
        expected = 25 * 20 * r["variant"]["n_trials"] if r["variant"]["algorithm"] == "dteql" else 0
        if not r["variant"]["safe_exploration"]:
            assert r["twin_evaluations"] == expected
        else:  # every physical action is also vetted in the twin
            assert r["twin_evaluations"] > expected + 25 * 20


def test_writers_produce_tables_figures_and_checks(summary: dict, tmp_path: Path) -> None:
    fig4 = ap_figures.write_fig4(summary, tmp_path / "fig4")
    safety = ap_figures.write_safety(summary, tmp_path / "safety")
    text = (tmp_path / "fig4" / "table.md").read_text()
    assert "DT-QL n=5" in text and "twin_oracle" in text and "6,000 episodes" in text
    assert (tmp_path / "fig4" / "fig4.png").stat().st_size > 10_000
    assert (tmp_path / "safety" / "safety.png").stat().st_size > 10_000
    assert len(fig4["checks"]) == 3 and all(("met" in c) for c in fig4["checks"])
    assert 0.0 <= safety["failure_cut"] <= 1.0
    rows = {r["method"]: r for r in fig4["rows"]}
    assert np.isclose(rows["QL"]["final_reward"]["mean"],
                      np.mean([np.mean(r["episode_return"][-2:]) for r in summary["runs"]
                               if r["label"] == "QL"]))  # fmt: skip
    json.dumps(fig4["checks"])
