"""The aggregate estimators (IQM, stratified bootstrap, probability of improvement) against
hand-computed values and brute-force counts, determinism, every bad input, and the worked example
of docs/metrics.md computed by the code."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest

from twinrl.errors import ConfigError, ConfigTypeError
from twinrl.experiments import metrics, stats

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def _mean(tasks: list[np.ndarray]) -> float:
    return float(np.concatenate(tasks).mean())


# --- interquartile mean ---------------------------------------------------------------------


def test_iqm_by_hand() -> None:
    assert stats.iqm([1, 2, 3, 4, 5, 6, 7, 8]) == 4.5  # mean of 3, 4, 5, 6
    assert stats.iqm([8, 1, 7, 2, 6, 3, 5, 4]) == 4.5  # order does not matter
    assert stats.iqm([[1, 2, 3, 4], [5, 6, 7, 8]]) == 4.5  # tasks are pooled
    assert stats.iqm([0, 1, 2, 6, 100]) == 3.0  # floor(5 / 4) = 1 dropped each end: 1, 2, 6
    assert stats.iqm([1, 2, 30]) == 11.0  # floor(3 / 4) = 0: nothing trimmed, the mean
    assert stats.iqm([7.5]) == 7.5


def test_fractional_iqm_by_hand() -> None:
    assert stats.iqm(range(1, 9), fractional=True) == 4.5  # n = 8: no fractional weight
    # n = 5: quartiles at 1.25 and 3.75; 1 and 6 weigh 0.75, over n / 2 = 2.5
    assert stats.iqm([0, 1, 2, 6, 100], fractional=True) == pytest.approx(
        (0.75 * 1 + 2 + 0.75 * 6) / 2.5
    )
    assert stats.iqm([0, 1, 2, 6, 100], fractional=True) == pytest.approx(2.9)
    # Wikipedia's "Interquartile mean" example: 9 values, 2.25 at each end, 5 and 13 weigh 0.75
    assert stats.iqm([1, 3, 5, 7, 9, 11, 13, 15, 17], fractional=True) == pytest.approx(9.0)
    assert stats.iqm([1, 2, 30], fractional=True) == pytest.approx((0.25 + 2 + 0.25 * 30) / 1.5)


@pytest.mark.parametrize("n", range(1, 14))
def test_fractional_iqm_is_the_plain_iqm_of_four_copies(n: int) -> None:
    # four copies of each of n values: a quarter is exactly n copies, so nothing is fractional
    x = np.random.default_rng(n).normal(size=n)
    copies = np.sort(np.repeat(x, 4))
    assert stats.iqm(x, fractional=True) == pytest.approx(copies[n : 3 * n].mean())
    assert stats.iqm(np.repeat(x, 4)) == pytest.approx(copies[n : 3 * n].mean())


def test_iqm_matches_scipy_trim_mean_when_available() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for n in range(1, 25):
        x = rng.integers(0, 4, size=n).astype(float)  # ties included
        assert stats.iqm(x) == pytest.approx(scipy_stats.trim_mean(x, 0.25))
        y = rng.integers(0, 4, size=rng.integers(1, 7)).astype(float)
        u = scipy_stats.mannwhitneyu(x, y, alternative="greater").statistic
        assert stats.probability_of_improvement(x, y) == pytest.approx(u / (x.size * y.size))


# --- probability of improvement ----------------------------------------------------------------


def _brute_force(x: list[float], y: list[float]) -> float:
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(x, y))
    return wins / (len(x) * len(y))


def test_probability_of_improvement_by_hand() -> None:
    # 1 > 0; 2 > 0, 2 = 2; 3 > 0, 3 > 2: 4.5 of 9 pairs
    assert stats.probability_of_improvement([1, 2, 3], [0, 2, 5]) == 0.5
    # 3 > 1, 2, = 3; 4 > 1, 2, 3: 5.5 of 6
    assert stats.probability_of_improvement([3, 4], [1, 2, 3]) == pytest.approx(5.5 / 6)
    assert stats.probability_of_improvement([1, 2], [1, 2]) == 0.5  # identical runs
    assert stats.probability_of_improvement([5, 6], [1, 2]) == 1.0
    # averaged over tasks, each task weighing the same whatever its number of runs
    assert stats.probability_of_improvement([[5, 6], [0]], [[1, 2], [1, 2, 3]]) == 0.5


def test_probability_of_improvement_against_brute_force_counting() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        x = rng.integers(0, 5, size=rng.integers(1, 7)).tolist()
        y = rng.integers(0, 5, size=rng.integers(1, 7)).tolist()
        p = stats.probability_of_improvement(x, y)
        assert p == pytest.approx(_brute_force(x, y))
        assert p + stats.probability_of_improvement(y, x) == pytest.approx(1.0)


# --- stratified bootstrap ----------------------------------------------------------------------


def test_bootstrap_of_two_runs_by_hand() -> None:
    # resample means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    ci = stats.stratified_bootstrap_ci([0.0, 1.0], _mean, seed=0)
    assert (ci.point, ci.low, ci.high, ci.n, ci.level, ci.reps) == (0.5, 0.0, 1.0, 2, 0.95, 10_000)
    ci = stats.stratified_bootstrap_ci([0.0, 1.0], _mean, level=0.4, seed=0)  # quantiles .3, .7
    assert (ci.low, ci.high) == (0.5, 0.5)


def test_bootstrap_resamples_within_each_task() -> None:
    # three runs of each task in every resample: the pooled mean never moves
    ci = stats.stratified_bootstrap_ci([[0.0] * 3, [10.0] * 3], _mean, seed=1)
    assert (ci.point, ci.low, ci.high, ci.n) == (5.0, 5.0, 5.0, 3)

    def sizes(tasks: list[np.ndarray]) -> float:
        assert [t.size for t in tasks] == [2, 5]
        return 0.0

    stats.stratified_bootstrap_ci([[1, 2], [3, 4, 5, 6, 7]], sizes, reps=100)


def test_bootstrap_interval_contains_the_point_and_narrows_with_runs() -> None:
    rng = np.random.default_rng(7)
    few, many = rng.normal(size=5), rng.normal(size=80)
    ci_few, ci_many = (stats.stratified_bootstrap_ci(x, seed=2) for x in (few, many))
    for ci in (ci_few, ci_many):
        assert ci.low <= ci.point <= ci.high
    assert ci_many.high - ci_many.low < (ci_few.high - ci_few.low) / 2
    narrow = stats.stratified_bootstrap_ci(many, level=0.5, seed=2)
    assert ci_many.low < narrow.low <= narrow.high < ci_many.high


def test_iqm_fast_path_equals_calling_the_statistic() -> None:
    scores = [[1.0, 4.0, 2.5, 9.0, 3.0, 3.5], [7.0, 1.0, 2.0]]
    fast = stats.stratified_bootstrap_ci(scores, stats.iqm, reps=500, seed=4)
    slow = stats.stratified_bootstrap_ci(scores, lambda t: stats.iqm(t), reps=500, seed=4)
    assert fast == slow


def test_bootstrap_is_deterministic_given_the_seed() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=9), rng.normal(size=7)  # continuous: another seed moves the bounds
    for compute in (
        lambda s: stats.stratified_bootstrap_ci([x, y], reps=200, seed=s),
        lambda s: stats.probability_of_improvement_ci(x, y, reps=200, seed=s),
    ):
        a, b, c = compute(11), compute(11), compute(12)
        assert repr(a.to_dict()).encode() == repr(b.to_dict()).encode()
        assert np.array([a.low, a.high]).tobytes() == np.array([b.low, b.high]).tobytes()
        assert (a.low, a.high) != (c.low, c.high)


def test_probability_of_improvement_interval() -> None:
    x, y = [3.0, 5.0, 1.0, 9.0, 4.0, 7.0], [2.0, 4.0, 4.0, 6.0]
    ci = stats.probability_of_improvement_ci(x, y, seed=0)
    assert ci.point == pytest.approx(14 / 24) and ci.low <= ci.point <= ci.high and ci.n == 4
    assert 0.0 <= ci.low < ci.high <= 1.0
    sure = stats.probability_of_improvement_ci([5, 6, 7], [1, 2], seed=0)
    assert (sure.point, sure.low, sure.high) == (1.0, 1.0, 1.0)
    # x = [1] always; y resamples to (0, 0), (0, 2)/(2, 0), (2, 2): P = 1, 1/2, 0 w.p. 1/4, 1/2, 1/4
    ci = stats.probability_of_improvement_ci([1.0], [0.0, 2.0], level=0.4, seed=0)
    assert (ci.point, ci.low, ci.high, ci.n) == (0.5, 0.5, 0.5, 1)
    ci = stats.probability_of_improvement_ci([1.0], [0.0, 2.0], seed=0)
    assert (ci.low, ci.high) == (0.0, 1.0)


def test_interval_estimate_prints_and_serialises() -> None:
    ci = stats.IntervalEstimate(0.58333, 0.2, 0.91667, 4, 0.95, 10_000)
    assert str(ci) == "0.5833 [0.2, 0.9167]"
    assert ci.to_dict() == {"point": 0.58333, "ci_low": 0.2, "ci_high": 0.91667, "n": 4,
                            "level": 0.95, "reps": 10_000}  # fmt: skip


# --- seeds behind a verdict --------------------------------------------------------------------


def test_too_few_seeds_and_the_warning() -> None:
    assert stats.MIN_SEEDS_FOR_VERDICT == 5 == metrics.MIN_SEEDS_TO_DECIDE
    assert [stats.too_few_seeds(n) for n in (0, 1, 4, 5, 30)] == [True, True, True, False, False]
    assert stats.FEW_SEEDS_WARNING == "fewer than 5 seeds back this verdict"
    assert stats.seed_warning(3) == "fewer than 5 seeds back this verdict (3 seeds)"
    assert stats.seed_warning(1) == "fewer than 5 seeds back this verdict (1 seed)"
    assert stats.seed_warning(5) == ""


# --- bad input ---------------------------------------------------------------------------------

BAD_SCORES = [
    ([], "scores is empty"),
    (np.array([]), "scores is empty"),
    ([[1.0, 2.0], []], r"scores\[1\] is empty"),
    ([1.0, math.nan], "scores holds nan at run 1"),
    ([[1.0], [2.0, math.inf]], r"scores\[1\] holds inf at run 1"),
    ([[[1.0, 2.0]]], r"scores\[0\] must be a 1-D sequence"),
]


@pytest.mark.parametrize(("scores", "message"), BAD_SCORES)
def test_bad_scores_are_refused_by_name(scores: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        stats.iqm(scores)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message.replace("scores", "scores_per_task", 1)):
        stats.stratified_bootstrap_ci(scores)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message.replace("scores", "x", 1)):
        stats.probability_of_improvement(scores, [1.0])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message.replace("scores", "y", 1)):
        stats.probability_of_improvement_ci([1.0], scores)  # type: ignore[arg-type]


@pytest.mark.parametrize("scores", ["abc", 3.0, None, [["a", "b"]], [[1.0, [2.0]]]])
def test_scores_of_the_wrong_type_are_refused(scores: object) -> None:
    with pytest.raises(ConfigTypeError, match="scores"):
        stats.iqm(scores)  # type: ignore[arg-type]


def test_mismatched_strata_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"x has 2 task.* y has 1"):
        stats.probability_of_improvement([[1.0], [2.0]], [1.0])
    with pytest.raises(ConfigError, match=r"x has 1 task.* y has 3"):
        stats.probability_of_improvement_ci([1.0, 2.0], [[1.0], [2.0], [3.0]])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"level": 0.0}, ConfigError, "level=0.0 is out of range"),
        ({"level": 1.0}, ConfigError, "level=1.0 is out of range"),
        ({"level": 95}, ConfigError, "level=95 is out of range"),
        ({"level": math.nan}, ConfigError, "level=nan"),
        ({"level": True}, ConfigTypeError, "level must be"),
        ({"reps": 99}, ConfigError, "reps=99 is out of range"),
        ({"reps": 0}, ConfigError, "reps=0"),
        ({"reps": 1e4}, ConfigTypeError, "reps must be an integer"),
        ({"seed": -1}, ConfigError, "seed=-1 is out of range"),
        ({"seed": 1.5}, ConfigTypeError, "seed must be an integer"),
    ],
)
def test_bad_level_reps_and_seed_are_refused_by_name(
    kwargs: dict, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        stats.stratified_bootstrap_ci([1.0, 2.0], **kwargs)
    with pytest.raises(error, match=message):
        stats.probability_of_improvement_ci([1.0, 2.0], [1.0], **kwargs)


def test_other_bad_arguments_are_refused_by_name() -> None:
    with pytest.raises(ConfigTypeError, match="statistic must be a function"):
        stats.stratified_bootstrap_ci([1.0, 2.0], "iqm")  # type: ignore[arg-type]
    with pytest.raises(ConfigTypeError, match="fractional must be true or false"):
        stats.iqm([1.0, 2.0], fractional="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n=-1 is out of range"):
        stats.too_few_seeds(-1)
    with pytest.raises(ConfigTypeError, match="n must be an integer"):
        stats.seed_warning(2.0)  # type: ignore[arg-type]
    assert issubclass(ConfigError, ValueError)  # so `except ValueError` catches all of the above


# --- the documentation's worked example --------------------------------------------------------


def test_docs_worked_example_numbers_are_the_codes() -> None:
    section = DOC.read_text().split("## Aggregate statistics over seeds", 1)[1]
    example = section.split("Worked example", 1)[1].split("```python", 1)[0]
    x, y = [3.0, 5.0, 1.0, 9.0, 4.0, 7.0], [2.0, 4.0, 4.0, 6.0]
    assert "X score 3, 5, 1, 9, 4, 7" in example and "Y score 2, 4, 4, 6" in example

    def interval(ci: stats.IntervalEstimate) -> str:
        return f"[{ci.low:g}, {ci.high:g}]"

    expected = [
        f"{stats.iqm(x):g}",
        f"{stats.iqm(x, fractional=True):.3f}",
        f"{stats.probability_of_improvement(x, y):.4f}",
        f"{stats.probability_of_improvement([x, [10.0, 12.0]], [y, [11.0]]):.4f}",
        interval(stats.stratified_bootstrap_ci([0.0, 1.0], _mean)),
        interval(stats.stratified_bootstrap_ci([0.0, 1.0], _mean, level=0.4)),
        interval(stats.stratified_bootstrap_ci([[0.0] * 3, [10.0] * 3], _mean)),
    ]
    assert re.findall(r"\*\*(.+?)\*\*", example) == expected
    assert expected[:4] == ["4.75", "4.667", "0.5833", "0.5417"]  # and by hand
    assert stats.FEW_SEEDS_WARNING in section and f"{stats.MIN_REPS} `reps`" in section


def test_aggregate_by_hand() -> None:
    # x = (1, 2, 3, 4) vs y = (0, 2, 5, 5): pairs x > y: 1>0, 2>0, 3>0, 3>2, 4>0, 4>2 = 6 wins,
    # one tie (2 = 2) = 0.5, of 16 pairs: P = 6.5 / 16
    x, y = [1.0, 2.0, 3.0, 4.0], [0.0, 2.0, 5.0, 5.0]
    agg = stats.aggregate(x, y, reps=200)
    assert agg.iqm.point == pytest.approx(2.5)  # IQM of 4 runs: drop 1 each end -> mean(2, 3)
    assert agg.improvement is not None
    assert agg.improvement.point == pytest.approx(6.5 / 16)
    assert agg.warning == stats.seed_warning(4)
    # lower is better: P(x < y) = (16 - 6 - 1) wins + 0.5 tie = 9.5 / 16
    low = stats.aggregate(x, y, higher_is_better=False, reps=200)
    assert low.improvement is not None
    assert low.improvement.point == pytest.approx(9.5 / 16)
    assert low.iqm == agg.iqm  # the IQM is of the scores as given
    ref = stats.aggregate(y, reps=200)
    assert ref.improvement is None
    assert ref.cells()[1] == "(reference)"


def test_aggregate_cells_mark_few_seeds_and_serialise() -> None:
    few = stats.aggregate([1.0, 2.0], [0.0, 1.0], reps=200)
    many = stats.aggregate([1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 1.0, 2.0, 3.0, 4.0], reps=200)
    assert few.cells()[0].endswith("*") and few.cells()[1].endswith("*")
    assert not many.cells()[0].endswith("*") and many.warning == ""
    d = many.to_dict()
    # x = 1..5 vs y = 0..4: x_i beats i of the y's (15 wins) and ties one for x_i <= 4 (4 ties)
    assert d["p_improvement"]["point"] == pytest.approx((15 + 0.5 * 4) / 25)
    assert set(d) == {"iqm", "p_improvement", "few_seeds_warning"}


def test_aggregate_refuses_a_non_bool_direction() -> None:
    with pytest.raises(ConfigTypeError, match="higher_is_better"):
        stats.aggregate([1.0], [2.0], higher_is_better="yes")  # type: ignore[arg-type]


def test_aggregate_round_trips_through_its_dict() -> None:
    for agg in (
        stats.aggregate([1.0, 2.0, 4.0], [0.0, 3.0], reps=200),
        stats.aggregate([1.0, 2.0]),
    ):
        assert stats.Aggregate.from_dict(agg.to_dict()) == agg
        assert stats.Aggregate.from_dict(agg.to_dict()).cells() == agg.cells()


def test_censored_times_count_never_as_budget_plus_one() -> None:
    assert metrics.censored([3, None, 7], 10).tolist() == [3.0, 11.0, 7.0]
