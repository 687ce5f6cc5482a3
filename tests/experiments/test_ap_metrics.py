"""fig4's paired metrics and verdicts against hand-computed references, bad input, determinism,
and the docs quoting the code's definitions word for word."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from twinrl.experiments import ap_metrics, metrics
from twinrl.experiments.metrics import Estimate

DOC = Path(__file__).resolve().parents[2] / "docs" / "ap-selection.md"


def _run(label: str, seed: int, rewards: list[float], n: int = 0) -> dict:
    algorithm = "ql" if n == 0 else "dteql"
    return {"label": label, "seed": seed, "episode_return": rewards,
            "variant": {"algorithm": algorithm, "n_trials": max(n, 1)}}  # fmt: skip


# Two seeds by hand, window 2 (the smoothed value at episode t is the mean of episodes t-1, t).
QL0 = [0.0, 2.0, 4.0, 6.0, 8.0, 8.0]  # smoothed 0, 1, 3, 5, 7, 8: level 8, reached at 6
QL1 = [0.0, 0.0, 0.0, 2.0, 2.0, 2.0]  # smoothed 0, 0, 0, 1, 2, 2: level 2, reached at 5
DT0 = [0.0, 8.0, 8.0, 8.0, 8.0, 8.0]  # smoothed 0, 4, 8, 8, 8, 8: >= 8 from episode 3
DT1 = [0.0, 2.0, 2.0, 2.0, 2.0, 2.0]  # smoothed 0, 1, 2, 2, 2, 2: >= 2 from 3 (never >= 8)
LOW = [0.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # smoothed ends at 1: below both seeds' levels
RUNS = [_run("QL", 0, QL0), _run("QL", 1, QL1), _run("DT", 0, DT0, 2), _run("DT", 1, DT1, 2),
        _run("low", 0, LOW, 5), _run("low", 1, LOW, 5)]  # fmt: skip


def test_episodes_to_ql_final_by_hand_and_paired_by_seed() -> None:
    out = ap_metrics.paired_outcomes(RUNS, window=2)
    assert out["QL"]["ql_final_level"] == [8.0, 2.0]
    assert out["QL"]["episodes_to_ql_final"] == [6, 5]
    # seed 1's DT run is measured against seed 1's QL level (2), not seed 0's (8): paired
    assert out["DT"]["episodes_to_ql_final"] == [3, 3]
    assert out["DT"]["episodes_to_ql_final_twin_normalised"] == [9, 9]  # (1 + 2) x 3
    assert out["low"]["episodes_to_ql_final"] == [None, None]
    assert out["low"]["episodes_to_ql_final_twin_normalised"] == [None, None]
    assert out["QL"]["n_trials"] == 0 and out["low"]["n_trials"] == 5
    # speed-up: 6/3 and 5/3, geometric mean sqrt(10/3); 'never' counts as budget + 1 = 7
    sp = ap_metrics.speedup(out["DT"]["log_speedup"])
    assert sp["geometric_mean"] == pytest.approx(math.sqrt(10 / 3))
    half = 12.706 * np.std([math.log(2), math.log(5 / 3)], ddof=1) / math.sqrt(2)
    assert sp["ci95_high"] == pytest.approx(math.sqrt(10 / 3) * math.exp(half))
    low = ap_metrics.speedup(out["low"]["log_speedup"])
    assert low["geometric_mean"] == pytest.approx(math.sqrt(6 / 7 * 5 / 7))
    assert ap_metrics.speedup(out["QL"]["log_speedup"])["geometric_mean"] == 1.0


def test_area_under_curve_and_final_reward_by_hand() -> None:
    out = ap_metrics.paired_outcomes(RUNS, window=2)
    # AUC = mean episode reward: QL 28/6 and 6/6, DT 40/6 and 10/6
    assert out["QL"]["auc"].mean == pytest.approx((28 / 6 + 1.0) / 2)
    assert out["DT"]["auc_minus_ql"].mean == pytest.approx((12 / 6 + 4 / 6) / 2)
    assert out["QL"]["auc_minus_ql"].mean == 0.0
    # final reward: the last 10% of 6 episodes is the last one
    assert out["DT"]["final_minus_ql"].mean == pytest.approx(0.0)
    assert out["low"]["final_minus_ql"].mean == pytest.approx(((1 - 8) + (1 - 2)) / 2)
    assert metrics.area_under_curve([1.0, 2.0, 6.0]) == pytest.approx(3.0)
    assert ap_metrics.final_reward(list(map(float, range(20)))) == pytest.approx(18.5)


def test_paired_outcomes_is_deterministic_and_ignores_run_order() -> None:
    a = ap_metrics.paired_outcomes(RUNS, window=2)
    b = ap_metrics.paired_outcomes(RUNS[::-1], window=2)
    for label in a:
        assert a[label]["episodes_to_ql_final"] == b[label]["episodes_to_ql_final"]
        assert a[label]["log_speedup"] == b[label]["log_speedup"]
        assert a[label]["auc_minus_ql"] == b[label]["auc_minus_ql"]


def test_bad_input_raises_with_a_fix() -> None:
    with pytest.raises(ValueError, match="'QL' runs"):
        ap_metrics.paired_outcomes(RUNS[2:], window=2)
    with pytest.raises(ValueError, match="no seed in common"):
        ap_metrics.paired_outcomes([*RUNS[:2], _run("DT", 9, DT0, 2)], window=2)
    with pytest.raises(ValueError, match="at least one episode"):
        ap_metrics.paired_outcomes([*RUNS[:2], _run("DT", 0, [], 2)], window=2)
    with pytest.raises(ValueError, match="window"):
        ap_metrics.paired_outcomes(RUNS, window=0)
    for bad in ([], [1.0, math.nan], [[1.0, 2.0]]):
        with pytest.raises(ValueError, match="area_under_curve"):
            metrics.area_under_curve(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_seeds"):
        metrics.verdict(Estimate(1.0, 0.1, 5), 0.0, min_seeds=0)
    out = ap_metrics.paired_outcomes(RUNS, window=2)
    out["DT"]["seeds"] = [0, 9]
    with pytest.raises(ValueError, match="share the seeds"):
        ap_metrics.monotone_check(out, ["DT", "low"], budget=6, preset="paper", road="r")


@pytest.mark.parametrize(
    ("estimate", "higher_is_better", "expected"),
    [
        (Estimate(5.0, 1.0, 5), True, metrics.MET),  # CI 4..6, wholly above 3
        (Estimate(1.0, 1.0, 5), True, metrics.NOT_MET),  # 0..2, wholly below
        (Estimate(3.5, 1.0, 5), True, metrics.UNDECIDED),  # 2.5..4.5 includes 3
        (Estimate(4.0, 1.0, 5), True, metrics.UNDECIDED),  # 3..5: touches the threshold
        (Estimate(5.0, 1.0, 4), True, metrics.UNDECIDED),  # clear, but 4 < 5 seeds
        (Estimate(math.nan, math.nan, 0), True, metrics.UNDECIDED),
        (Estimate(1.0, 1.0, 5), False, metrics.MET),  # lower is better: 0..2 below 3
        (Estimate(5.0, 1.0, 5), False, metrics.NOT_MET),
    ],
)
def test_verdict_decides_only_on_a_ci_that_excludes_the_threshold(
    estimate: Estimate, higher_is_better: bool, expected: str
) -> None:
    assert metrics.verdict(estimate, 3.0, higher_is_better=higher_is_better) == expected


def _seeds(times: dict[str, list[int]], budget: int = 100) -> dict[str, dict]:
    """Paired outcomes from per-seed episode counts, one constant-reward run per seed: a run
    reaches QL's level (1) at its count, so the counts are the episodes to QL's final level."""
    runs = []
    for label, counts in times.items():
        for seed, t in enumerate(counts):
            rewards = [0.0] * (t - 1) + [1.0] * (budget - t + 1)
            runs.append(_run(label, seed, rewards, 0 if label == "QL" else 2))
    return ap_metrics.paired_outcomes(runs, window=1)


def test_checks_state_a_verdict_only_where_the_seeds_decide() -> None:
    kw = {"budget": 100, "road": "default"}
    fast = _seeds({"QL": [60, 62, 58, 61, 59], "DT": [10, 11, 9, 10, 12]})
    assert ap_metrics.speed_check(fast, "DT", preset="paper", **kw).endswith(": met")
    slow = _seeds({"QL": [60, 62, 58, 61, 59], "DT": [40, 41, 39, 40, 42]})
    assert ap_metrics.speed_check(slow, "DT", preset="paper", **kw).endswith(": NOT met")
    spread = _seeds({"QL": [60, 62, 58, 61, 59], "DT": [5, 40, 10, 45, 12]})
    assert ap_metrics.speed_check(spread, "DT", preset="paper", **kw).endswith(
        ": too few seeds to decide (the paired 95% CI includes the threshold; add seeds with "
        "--seeds)"
    )
    two = _seeds({"QL": [60, 62], "DT": [10, 11]})
    text = ap_metrics.speed_check(two, "DT", preset="quick", **kw)
    assert text.endswith(": too few seeds to decide (2 paired seeds < 5; the paper preset decides)")
    assert "in 10 physical episodes ((1 + n) x episodes: 32), QL in 61: 5.82x faster" in text
    # final reward: constant 1 for every run after its count, so the paired difference is 0
    assert ap_metrics.final_check(fast, "DT", preset="paper", road="r").endswith(
        ": too few seeds to decide (the paired 95% CI includes the threshold; add seeds with "
        "--seeds)"
    )


def test_monotone_check_met_not_met_and_undecided() -> None:
    kw = {"budget": 100, "preset": "paper", "road": "r"}
    ql = [60, 62, 58, 61, 59]
    falls = _seeds({"QL": ql, "a": [40, 41, 39, 42, 40], "b": [20, 21, 19, 22, 20]})
    assert ap_metrics.monotone_check(falls, ["a", "b"], **kw).endswith(": met")
    # b faster than a overall, but the middle step c -> b is significantly slower
    bump = _seeds({"QL": ql, "a": [40, 41, 39, 42, 40], "c": [10, 11, 9, 12, 10],
                   "b": [20, 21, 19, 22, 20]})  # fmt: skip
    assert ap_metrics.monotone_check(bump, ["a", "c", "b"], **kw).endswith(": NOT met")
    rises = _seeds({"QL": ql, "a": [20, 21, 19, 22, 20], "b": [40, 41, 39, 42, 40]})
    assert ap_metrics.monotone_check(rises, ["a", "b"], **kw).endswith(": NOT met")
    flat = _seeds({"QL": ql, "a": [20, 25, 19, 22, 20], "b": [21, 20, 22, 20, 23]})
    assert ap_metrics.monotone_check(flat, ["a", "b"], **kw).endswith(
        ": too few seeds to decide (the paired 95% CI includes the threshold; add seeds with "
        "--seeds)"
    )


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_docs_quote_every_definition_of_the_code() -> None:
    doc = _words(DOC.read_text())
    for term, definition in ap_metrics.DEFINITIONS.items():
        assert _words(f"* *{term}*: {definition}") in doc, term
    assert f"{ap_metrics.SPEEDUP_TARGET:g}x" in doc
