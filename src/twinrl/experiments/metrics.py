"""The metrics every twinrl table reports, defined once (DESIGN.md section 3, docs/metrics.md).

* **Convergence time**: the first physical iteration ``t`` (1-based) such that the evaluated greedy
  policy is within tolerance of the reference at ``t`` and at every later iteration of the run.
  ``None`` (reported ``> budget``) when the greedy policy is not within tolerance at the end.
  With the exact optimum as reference and zero tolerance this is "the greedy policy stays optimal".
* **Normalized reward**: ``(C_worst - C) / (C_worst - C*)`` for a cost ``C``: 1 at the exact
  optimum ``C*``, 0 at the worst order ``C_worst``, averaged over instances. Paper 002's normalized
  reward exceeds 1 and is affine in delay, so its reference was not the optimum; ours never exceeds 1.
* **Deadline miss ratio**: fraction of tasks finishing after their deadline.
* **Mean delay per task**: mean completion time ``T_comp`` over the tasks of an order, in seconds.
* **Area under the learning curve**: the mean of a run's per-episode rewards over its training
  episodes (the area under the reward-per-episode curve divided by the number of episodes).
* Every aggregate is a mean with a 95% confidence interval (Student t) over instances and seeds.
* A **verdict** on a target is decided only by a 95% CI that excludes the target's threshold over
  at least :data:`MIN_SEEDS_TO_DECIDE` seeds; otherwise it is :data:`UNDECIDED`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Two-sided 95% Student t quantiles t_{0.975, df} for df = 1..30; beyond, the normal 1.96 is within 2%.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    """Mean and 95% confidence half-width of ``n`` values."""

    mean: float
    half_width: float
    n: int

    def to_dict(self) -> dict[str, float]:
        """``{"mean", "ci95", "n"}`` for summary files."""
        return {"mean": self.mean, "ci95": self.half_width, "n": self.n}

    def __str__(self) -> str:
        if self.n == 0 or math.isnan(self.mean):
            return "n/a"
        return f"{self.mean:.4g} ± {self.half_width:.2g}"


def mean_ci(values: Sequence[float] | NDArray[np.float64]) -> Estimate:
    """Mean and 95% Student-t confidence half-width (0 for a single value, NaN for none)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return Estimate(math.nan, math.nan, 0)
    if x.size == 1:
        return Estimate(float(x[0]), 0.0, 1)
    df = x.size - 1
    t = _T975[df - 1] if df <= len(_T975) else 1.96
    return Estimate(float(x.mean()), float(t * x.std(ddof=1) / math.sqrt(x.size)), int(x.size))


def convergence_time(
    values: NDArray[np.float64],
    reference: float,
    *,
    rtol: float = 0.0,
    higher_is_better: bool = True,
) -> int | None:
    """First 1-based iteration from which ``values`` stays within ``rtol`` of ``reference``.

    Args:
        values: the evaluated greedy policy's value after each physical iteration.
        reference: the value to reach (e.g. minus the exact optimum's cost).
        rtol: relative tolerance; 0 means "at least as good as the reference", up to 1e-12 for
            rounding.
        higher_is_better: whether larger values are better (rewards) or smaller (costs).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("convergence_time needs at least one value")
    if rtol < 0:
        raise ValueError(f"rtol={rtol} is out of range; allowed: >= 0")
    slack = max(rtol, 1e-12) * abs(reference)
    good = values >= reference - slack if higher_is_better else values <= reference + slack
    if not good[-1]:
        return None
    bad = np.flatnonzero(~good)
    return 1 if bad.size == 0 else int(bad[-1]) + 2


def normalized_reward(cost: float, best: float, worst: float) -> float:
    """``(worst - cost) / (worst - best)``; 1.0 when every order costs the same."""
    span = worst - best
    return 1.0 if span <= 0 else (worst - cost) / span


def median_time(times: Sequence[int | None]) -> float:
    """Median convergence time over runs, counting a run that never converged as +inf."""
    return float(np.median([math.inf if t is None else t for t in times]))


def censored(times: Sequence[int | None], budget: int) -> NDArray[np.float64]:
    """Times as numbers, a time that never came (None) counted as ``budget + 1``: what a
    rank-based or paired statistic of convergence times compares."""
    return np.array([budget + 1 if t is None else t for t in times], dtype=np.float64)


def format_convergence(times: Sequence[int | None], budget: int) -> str:
    """Median convergence time over runs, ``> budget`` where most never converged, with the share
    of runs that converged."""
    if not times:
        return "n/a"
    median = median_time(times)
    share = sum(t is not None for t in times) / len(times)
    label = f"> {budget}" if math.isinf(median) else f"{median:.0f}"
    return f"{label} ({share:.0%} conv.)"


MIN_SEEDS_TO_DECIDE = 5
"""Fewest paired seeds on which a verdict is stated."""
MET = "met"
NOT_MET = "NOT met"
UNDECIDED = "too few seeds to decide"


def area_under_curve(rewards: Sequence[float] | NDArray[np.float64]) -> float:
    """Area under a per-episode reward curve divided by its length: the mean episode reward over
    training, so runs of one budget compare on one scale (higher: learned sooner or better)."""
    x = np.asarray(rewards, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(
            f"area_under_curve needs a 1-D sequence of at least one reward, got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError("area_under_curve needs finite rewards; drop or fill the NaN/inf entries")
    return float(x.mean())


def verdict(
    estimate: Estimate,
    threshold: float,
    *,
    higher_is_better: bool = True,
    min_seeds: int = MIN_SEEDS_TO_DECIDE,
) -> str:
    """:data:`MET` if the 95% CI of ``estimate`` lies wholly on the good side of ``threshold``,
    :data:`NOT_MET` if wholly on the bad side, :data:`UNDECIDED` if it includes the threshold or
    rests on fewer than ``min_seeds`` values (or is NaN).

    Args:
        estimate: a mean with its 95% CI, e.g. of paired per-seed differences.
        threshold: the value the target names (0 for "at least as high", log 3 for "3x faster" on
            log ratios).
        higher_is_better: whether the target asks for values above the threshold.
        min_seeds: fewest values that may decide.
    """
    if min_seeds < 1:
        raise ValueError(f"min_seeds={min_seeds} is out of range; allowed: an int >= 1")
    if estimate.n < min_seeds or math.isnan(estimate.mean) or math.isnan(estimate.half_width):
        return UNDECIDED
    lo, hi = estimate.mean - estimate.half_width, estimate.mean + estimate.half_width
    if lo <= threshold <= hi:
        return UNDECIDED
    above = lo > threshold
    return MET if above == higher_is_better else NOT_MET
