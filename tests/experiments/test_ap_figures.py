"""fig4 / safety: a short real run through the writers (the full presets are too long for CI)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from twinrl.envs.ap_dynamics import APSelectionParams
from twinrl.experiments import ap_figures, ap_metrics, episodic, metrics

VERDICT = re.compile(r": (met|NOT met|too few seeds to decide \(.+\))$")
"""How every fig4 check ends: a verdict, or the reason none can be stated."""


def _stays_from(ok: np.ndarray) -> int | None:
    """Reference: the first 1-based episode from which every later entry is true, by a loop."""
    first = None
    for i in range(len(ok) - 1, -1, -1):
        if not ok[i]:
            break
        first = i + 1
    return first


@pytest.fixture(scope="module")
def summary() -> dict:
    runs = episodic.run_variants(
        ap_figures.ENV_ID, {}, ap_figures.variants(5), seeds=2, episodes=25, seed=3,
        agent_config=ap_figures.AGENT,
    )  # fmt: skip
    hard = ap_figures._run_road(
        ap_figures.HARD_ROAD, ap_figures.hard_variants(), ap_figures.Preset(6, 2, 3),
        preset="test", n_seeds=None, seed=3, workers=1, progress=False,
    )  # fmt: skip
    return {
        "preset": {"episodes": 25, "seeds": 2, "window": 5, "name": "test"},
        "seed": 3, "n_aps": 5, "agent_config": ap_figures.AGENT, "runs": runs,
        "params": ap_figures._params(APSelectionParams()),
        "baselines": ap_figures._baselines(APSelectionParams(), episodes=3, seed=0),
        "hard": hard,
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
    assert "## Hard road: M = 8 access points, 50 road cells" in text
    for png in ("fig4/fig4.png", "fig4/fig4_hard.png", "safety/safety.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    # default: speed, final reward, fall with n; hard: speed for n = 2 and 5, final, fall with n
    assert len(fig4["roads"]["default"]["checks"]) == 3
    assert len(fig4["roads"]["hard"]["checks"]) == 4
    assert fig4["checks"] == fig4["roads"]["default"]["checks"] + fig4["roads"]["hard"]["checks"]
    for check in fig4["checks"]:  # 2 seeds cannot decide: no check may say met or NOT met
        assert VERDICT.search(check), check
        assert check.endswith(": too few seeds to decide (2 paired seeds < 5; the paper preset "
                              "decides)"), check  # fmt: skip
    failures = {lb: np.mean([sum(r["episode_failures"]) for r in summary["runs"] if r["label"] == lb])
                for lb in ("QL", "DT-QL n=5 + safe")}  # fmt: skip
    assert safety["failure_cut"] == pytest.approx(1 - failures["DT-QL n=5 + safe"] / failures["QL"])
    for check in safety["checks"][
        :2
    ]:  # the failure cut and the final reward: 2 seeds decide nothing
        assert check.endswith(": too few seeds to decide (2 paired seeds < 5; the paper preset "
                              "decides)"), check  # fmt: skip
    rows = {r["method"]: r for r in fig4["roads"]["default"]["rows"]}
    assert np.isclose(rows["QL"]["final_reward"]["mean"],
                      np.mean([np.mean(r["episode_return"][-2:]) for r in summary["runs"]
                               if r["label"] == "QL"]))  # fmt: skip
    json.dumps(fig4["checks"])
    # the aggregate columns: the IQM of the failure totals and P(fewer failures than QL), by hand
    totals = {lb: [sum(r["episode_failures"]) for r in summary["runs"] if r["label"] == lb]
              for lb in ("QL", "DT-QL n=5 + safe")}  # fmt: skip
    safe = {r["method"]: r for r in safety["rows"]}["DT-QL n=5 + safe"]["failures_vs_ql"]
    assert safe["iqm"]["point"] == pytest.approx(np.mean(totals["DT-QL n=5 + safe"]))  # 2 runs
    pairs = [(a < b) + 0.5 * (a == b) for a in totals["DT-QL n=5 + safe"] for b in totals["QL"]]
    assert safe["p_improvement"]["point"] == pytest.approx(np.mean(pairs))
    assert "P(fewer than QL's)" in (tmp_path / "safety" / "table.md").read_text()
    ql_row = rows["QL"]
    assert ql_row["auc_vs_ql"]["p_improvement"] is None  # QL is the reference
    dt = rows["DT-QL n=5"]
    aucs = {lb: [float(np.mean(r["episode_return"])) for r in summary["runs"] if r["label"] == lb]
            for lb in ("QL", "DT-QL n=5")}  # fmt: skip
    pairs = [(a > b) + 0.5 * (a == b) for a in aucs["DT-QL n=5"] for b in aucs["QL"]]
    assert dt["auc_vs_ql"]["p_improvement"]["point"] == pytest.approx(np.mean(pairs))
    assert "P(AUC > QL's)" in text and "IQM" in text


def test_summary_rows_hold_episodes_to_ql_final_against_a_direct_computation(
    summary: dict, tmp_path: Path
) -> None:
    fig4 = ap_figures.write_fig4(summary, tmp_path / "fig4")
    for name, road in (("default", summary), ("hard", summary["hard"])):
        window = road["preset"]["window"]
        by = {(r["label"], r["seed"]): r for r in road["runs"]}
        for row in fig4["roads"][name]["rows"]:
            n = row["n_trials"]
            assert n == (0 if row["method"] == "QL" else int(row["method"].split("=")[1]))
            for seed, t, scaled in zip(row["seeds"], row["episodes_to_ql_final"],
                                       row["episodes_to_ql_final_twin_normalised"], strict=True):  # fmt: skip
                level = episodic.moving_average(by["QL", seed]["episode_return"], window)[-1]
                curve = episodic.moving_average(by[row["method"], seed]["episode_return"], window)
                expected = _stays_from(curve >= level)
                assert t == expected and scaled == (None if t is None else (1 + n) * t)
            auc = [np.mean(by[row["method"], s]["episode_return"]) for s in row["seeds"]]
            assert np.isclose(row["auc"]["mean"], np.mean(auc))
    hard = {r["method"]: r for r in fig4["roads"]["hard"]["rows"]}
    assert set(hard) == {"QL", "DT-QL n=2", "DT-QL n=5"}
    assert fig4["roads"]["hard"]["n_aps"] == 8 and fig4["roads"]["hard"]["params"]["n_steps"] == 50
    assert all(r["n_trials"] < 8 for r in hard.values())


def test_hard_road_runs_are_deterministic(summary: dict) -> None:
    hard = summary["hard"]
    again = episodic.run_variants(
        ap_figures.ENV_ID, ap_figures.HARD_ROAD, ap_figures.hard_variants()[1:2], seeds=2,
        episodes=6, seed=3, agent_config=ap_figures.AGENT,
    )  # fmt: skip
    first = [r for r in hard["runs"] if r["label"] == "DT-QL n=2"]
    assert [r["episode_return"] for r in again] == [r["episode_return"] for r in first]
    assert all(r["twin_evaluations"] == 6 * 50 * 2 for r in first)


def test_a_summary_without_the_hard_road_still_writes(summary: dict, tmp_path: Path) -> None:
    old = {k: v for k, v in summary.items() if k != "hard"}
    fig4 = ap_figures.write_fig4(old, tmp_path / "fig4")
    assert set(fig4["roads"]) == {"default"}
    assert "No hard road" in (tmp_path / "fig4" / "table.md").read_text()


def test_presets_keep_the_hard_road_harder_than_the_trials() -> None:
    params = APSelectionParams(**ap_figures.HARD_ROAD)
    assert params.n_aps == 8 and params.n_steps == 50
    assert max(ap_figures.HARD_TRIALS) < params.n_aps
    assert ap_figures.HARD_PRESETS["paper"].seeds >= metrics.MIN_SEEDS_TO_DECIDE
    assert ap_figures.PRESETS["paper"].seeds >= metrics.MIN_SEEDS_TO_DECIDE


QL_VARIANT = {"algorithm": "ql", "n_trials": 1}
SAFE_VARIANT = {"algorithm": "dteql", "n_trials": 5}


@pytest.mark.parametrize(
    ("safe_failures", "verdict"), [(5.0, metrics.MET), (20.0, metrics.NOT_MET), (10.0, None)]
)
def test_safety_targets_are_judged_on_paired_seeds(
    safe_failures: float, verdict: str | None
) -> None:
    """QL fails 100 times per seed; SafeExploration about ``safe_failures`` times (a cut of
    95%, 80% or 90%, each seed within one failure): 5 seeds decide the 90% target unless the
    interval contains it. Final rewards: SafeExploration 1 higher on every seed."""
    runs = []
    for s in range(5):
        wobble = (s - 2) * 0.5
        runs.append({"label": "QL", "seed": s, "episode_failures": [60.0, 40.0],
                     "episode_return": [0.0, 10.0 + s], "variant": QL_VARIANT})  # fmt: skip
        runs.append({"label": "safe", "seed": s, "episode_failures": [safe_failures + wobble],
                     "episode_return": [0.0, 11.0 + s], "variant": SAFE_VARIANT})  # fmt: skip
    summary = {"runs": runs, "preset": {"name": "paper", "window": 1}}
    checks = ap_figures._safety_checks(summary, "safe", 1 - safe_failures / 100)
    cut = 1 - safe_failures / 100
    assert checks[0].startswith(
        f"SafeExploration cuts cumulative physical failures by {cut:.1%} against QL (per seed, "
        f"paired: {cut:.1%} ± "
    )
    expected = verdict or f"{metrics.UNDECIDED} (the paired 95% CI includes the threshold"
    assert checks[0].split("): ", 1)[1].startswith(expected), checks[0]
    final = ap_metrics.final_reward([0.0, 11.0]) - ap_metrics.final_reward([0.0, 10.0])
    assert checks[1].startswith(f"final reward with SafeExploration - QL = {final:+.4g} ± 0 ")
    assert checks[1].endswith(f": {metrics.MET}")
