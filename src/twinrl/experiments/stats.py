"""Aggregate statistics over runs: the estimators of Agarwal et al., "Deep Reinforcement Learning
at the Edge of the Statistical Precipice" (NeurIPS 2021), in numpy: their ``rliable`` package
needs scipy, arch, pandas and seaborn. The point estimates equal rliable's (the tests compare them
with ``scipy.stats`` when it is installed); the intervals follow rliable's procedure, drawn from
our own random streams.

* **Interquartile mean** (:func:`iqm`): pool the runs of every task, sort them, drop
  ``floor(n / 4)`` of the ``n`` values at each end, average the rest. This is rliable's
  ``aggregate_iqm`` (``scipy.stats.trim_mean(scores, 0.25, axis=None)``), which trims whole runs
  and weights nothing fractionally: with 2 or 3 runs it trims nothing and equals the mean.
  ``fractional=True`` gives the textbook IQM instead: the mean over the middle half of the sorted
  values where the runs straddling the quartiles count with the fraction of them that lies inside
  (it differs from rliable's when ``n`` is not a multiple of 4).
* **Stratified bootstrap CI** (:func:`stratified_bootstrap_ci`): ``reps`` times, resample the
  runs of each task (stratum) with replacement, independently per task and keeping each task's
  number of runs, and evaluate the statistic; the interval is the ``(1 - level) / 2`` and
  ``(1 + level) / 2`` quantiles of those values (the percentile bootstrap, linear interpolation),
  rliable's ``get_interval_estimates(method="percentile")``.
* **Probability of improvement** (:func:`probability_of_improvement`): per task, the share of
  pairs (run of X, run of Y) where X scored higher, a tie counting 1/2 (the Mann-Whitney U of X
  divided by ``n_x * n_y``), averaged over tasks. Its CI (:func:`probability_of_improvement_ci`)
  resamples X's and Y's runs independently within each task (rliable's
  ``StratifiedIndependentBootstrap``).

Every resample is drawn from streams spawned from one ``seed``, one per task (and per side), so a
result is a function of the scores and the seed alone. A verdict resting on fewer than
:data:`MIN_SEEDS_FOR_VERDICT` seeds carries :data:`FEW_SEEDS_WARNING` (:func:`seed_warning`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twinrl.errors import ConfigError, ConfigTypeError, short_repr
from twinrl.validation import check_bool, check_float, check_int

MIN_SEEDS_FOR_VERDICT = 5
"""Fewest seeds behind a verdict that reports state without a warning (the paper's advice)."""
FEW_SEEDS_WARNING = f"fewer than {MIN_SEEDS_FOR_VERDICT} seeds back this verdict"
"""The warning a report prints beside a verdict resting on fewer seeds."""
DEFAULT_REPS = 10_000
"""Bootstrap resamples per interval (rliable defaults to 50,000; 10,000 keeps the 2.5% and 97.5%
quantiles on 250 resamples each and a report's intervals to milliseconds)."""
MIN_REPS = 100
"""Fewest resamples accepted: below, a 95% interval rests on a couple of values per tail."""

Strata = list[NDArray[np.float64]]
"""One 1-D array of run scores per task (stratum); tasks may have different numbers of runs."""
Statistic = Callable[[Strata], float]
"""Maps the runs of every task to one number, e.g. :func:`iqm`."""


@dataclass(frozen=True)
class IntervalEstimate:
    """A point estimate with its percentile-bootstrap confidence interval ``[low, high]``."""

    point: float
    low: float
    high: float
    n: int
    """Fewest runs in any task (of either side, for the probability of improvement): the number
    of seeds that :func:`seed_warning` judges."""
    level: float
    reps: int

    def to_dict(self) -> dict[str, float | int]:
        """``{"point", "ci_low", "ci_high", "n", "level", "reps"}`` for summary files."""
        return {"point": self.point, "ci_low": self.low, "ci_high": self.high, "n": self.n,
                "level": self.level, "reps": self.reps}  # fmt: skip

    def __str__(self) -> str:
        return f"{self.point:.4g} [{self.low:.4g}, {self.high:.4g}]"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IntervalEstimate:
        """The estimate :meth:`to_dict` wrote (e.g. read back from a summary file)."""
        return cls(d["point"], d["ci_low"], d["ci_high"], d["n"], d["level"], d["reps"])


def strata(scores: ArrayLike | Sequence[ArrayLike], name: str = "scores") -> Strata:
    """``scores`` as one float array per task: a flat sequence of numbers is one task, a sequence
    of sequences (or a 2-D array, rows = tasks) is one task per element.

    Raises:
        ConfigError: no task, a task without runs, a task that is not 1-D, or a NaN/inf score;
            the message names ``name`` and the task index.
    """
    if isinstance(scores, (str, bytes)) or not np.iterable(scores):
        raise ConfigTypeError(f"{name} must be a sequence of scores, got {short_repr(scores)}")
    items = list(scores)
    if not items:
        raise ConfigError(f"{name} is empty; give at least one run's score")
    one_task = all(_is_number(item) for item in items)
    tasks = [items] if one_task else items
    return [_task(task, name if one_task else f"{name}[{m}]") for m, task in enumerate(tasks)]


def _is_number(item: Any) -> bool:
    return isinstance(item, (int, float, np.number)) or (
        isinstance(item, np.ndarray) and item.ndim == 0
    )


def _task(task: Any, name: str) -> NDArray[np.float64]:
    try:
        x = np.asarray(task, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigTypeError(
            f"{name} must hold numbers (one score per run), got {short_repr(task)}"
        ) from None
    if x.ndim != 1:
        raise ConfigError(f"{name} must be a 1-D sequence of run scores, got shape {x.shape}")
    if x.size == 0:
        raise ConfigError(f"{name} is empty; give at least one run's score")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise ConfigError(
            f"{name} holds {x[bad[0]]} at run {bad[0]}; drop or fill the NaN/inf scores first"
        )
    return x


def iqm(scores: ArrayLike | Sequence[ArrayLike], *, fractional: bool = False) -> float:
    """Interquartile mean of the runs of every task pooled.

    Default (rliable, ``scipy.stats.trim_mean(x, 0.25)``): drop ``floor(n / 4)`` sorted values at
    each end and average the rest. ``fractional=True``: weight sorted value ``i`` (0-based) by the
    length of ``[i, i + 1]`` inside ``[n / 4, 3n / 4]`` and divide by ``n / 2``.

    Example: ``iqm([1, ..., 8]) == 4.5`` (the mean of 3, 4, 5, 6) both ways;
    ``iqm([0, 1, 2, 6, 100]) == 3.0`` (the mean of 1, 2, 6) but ``2.9`` with ``fractional=True``
    (``(0.75 * 1 + 2 + 0.75 * 6) / 2.5``).
    """
    x = np.sort(np.concatenate(strata(scores)))
    n = x.size
    if not check_bool("fractional", fractional):
        return float(_iqm_rows(x[None, :])[0])
    i = np.arange(n)
    weights = np.clip(np.minimum(i + 1, 0.75 * n) - np.maximum(i, 0.25 * n), 0.0, None)
    return float(weights @ x / (0.5 * n))


def _iqm_rows(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """:func:`iqm` (rliable's) of each row."""
    n = rows.shape[1]
    cut = n // 4
    result: NDArray[np.float64] = np.sort(rows, axis=1)[:, cut : n - cut].mean(axis=1)
    return result


def probability_of_improvement(
    x: ArrayLike | Sequence[ArrayLike], y: ArrayLike | Sequence[ArrayLike]
) -> float:
    """P(X > Y): per task, the share of (run of X, run of Y) pairs where X scored higher, ties
    counting 1/2 (the Mann-Whitney U statistic of X over ``n_x * n_y``), averaged over tasks.

    Raises:
        ConfigError: as :func:`strata`, or when ``x`` and ``y`` have different numbers of tasks.
    """
    xs, ys = _paired_strata(x, y)
    return float(
        np.mean([_improvement(a[None, :], b[None, :])[0] for a, b in zip(xs, ys, strict=True)])
    )


def _paired_strata(
    x: ArrayLike | Sequence[ArrayLike], y: ArrayLike | Sequence[ArrayLike]
) -> tuple[Strata, Strata]:
    xs, ys = strata(x, "x"), strata(y, "y")
    if len(xs) != len(ys):
        raise ConfigError(
            f"x has {len(xs)} task(s) and y has {len(ys)}; give both the same tasks, in one order"
        )
    return xs, ys


def _improvement(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row-wise P(A > B) for resamples ``a`` (reps, n_x) and ``b`` (reps, n_y)."""
    diff = a[:, :, None] - b[:, None, :]
    result: NDArray[np.float64] = (diff > 0).mean(axis=(1, 2)) + 0.5 * (diff == 0).mean(axis=(1, 2))
    return result


def stratified_bootstrap_ci(
    scores_per_task: ArrayLike | Sequence[ArrayLike],
    statistic: Statistic = iqm,
    *,
    reps: int = DEFAULT_REPS,
    level: float = 0.95,
    seed: int = 0,
) -> IntervalEstimate:
    """``statistic`` of the scores with its stratified percentile-bootstrap interval.

    Args:
        scores_per_task: one sequence of run scores per task (a flat sequence: one task). This is
            rliable's ``(runs, tasks)`` matrix transposed: pass ``list(matrix.T)``.
        statistic: maps the tasks' runs (a list of 1-D arrays) to a number; default :func:`iqm`.
        reps: bootstrap resamples, at least :data:`MIN_REPS`.
        level: coverage of the interval, in (0, 1).
        seed: non-negative integer; task ``m`` resamples from the ``m``-th stream spawned from it.

    Raises:
        ConfigError: bad scores (see :func:`strata`), ``reps``, ``level`` or ``seed``.
    """
    tasks = strata(scores_per_task, "scores_per_task")
    if not callable(statistic):
        raise ConfigTypeError(f"statistic must be a function of the tasks' runs, got {statistic!r}")
    reps, level, rngs = _bootstrap_setup(reps, level, seed, len(tasks))
    resampled = [
        t[rng.integers(0, t.size, size=(reps, t.size))] for t, rng in zip(tasks, rngs, strict=True)
    ]
    if statistic is iqm:  # the same numbers as the loop below, sorted in one array operation
        values = _iqm_rows(np.concatenate(resampled, axis=1))
    else:
        values = np.array([statistic([r[k] for r in resampled]) for k in range(reps)])
    return _interval(statistic(tasks), values, min(t.size for t in tasks), level, reps)


def probability_of_improvement_ci(
    x: ArrayLike | Sequence[ArrayLike],
    y: ArrayLike | Sequence[ArrayLike],
    *,
    reps: int = DEFAULT_REPS,
    level: float = 0.95,
    seed: int = 0,
) -> IntervalEstimate:
    """:func:`probability_of_improvement` of ``x`` over ``y`` with its percentile-bootstrap
    interval: ``x``'s and ``y``'s runs are resampled independently within each task (pairs across
    seeds are what P(X > Y) counts, so no pairing by seed is kept). Arguments as
    :func:`stratified_bootstrap_ci`; x's task ``m`` draws from stream ``2m``, y's from ``2m + 1``.
    """
    xs, ys = _paired_strata(x, y)
    reps, level, rngs = _bootstrap_setup(reps, level, seed, 2 * len(xs))
    values = np.zeros(reps)
    for m, (a, b) in enumerate(zip(xs, ys, strict=True)):
        ra = a[rngs[2 * m].integers(0, a.size, size=(reps, a.size))]
        rb = b[rngs[2 * m + 1].integers(0, b.size, size=(reps, b.size))]
        values += _improvement(ra, rb) / len(xs)
    n = min(min(a.size, b.size) for a, b in zip(xs, ys, strict=True))
    return _interval(probability_of_improvement(xs, ys), values, n, level, reps)


def _bootstrap_setup(
    reps: int, level: float, seed: int, streams: int
) -> tuple[int, float, list[np.random.Generator]]:
    reps = check_int("reps", reps, MIN_REPS, 10**7)
    level = check_float("level", level, 0.0, 1.0, low_open=True, high_open=True)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    children = np.random.SeedSequence(seed).spawn(streams)
    return reps, level, [np.random.default_rng(child) for child in children]


def _interval(
    point: float, values: NDArray[np.float64], n: int, level: float, reps: int
) -> IntervalEstimate:
    low, high = np.quantile(values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return IntervalEstimate(float(point), float(low), float(high), n, level, reps)


def too_few_seeds(n: int) -> bool:
    """Whether ``n`` seeds are fewer than :data:`MIN_SEEDS_FOR_VERDICT`."""
    return check_int("n", n, 0, 2**63 - 1) < MIN_SEEDS_FOR_VERDICT


def seed_warning(n: int) -> str:
    """:data:`FEW_SEEDS_WARNING` with the count (``"... (3 seeds)"``) for fewer than
    :data:`MIN_SEEDS_FOR_VERDICT` seeds, else the empty string."""
    return f"{FEW_SEEDS_WARNING} ({n} seed{'s' * (n != 1)})" if too_few_seeds(n) else ""


@dataclass(frozen=True)
class Aggregate:
    """A method's runs against a reference's, as every multi-seed report shows them: the IQM of
    the method's scores with its stratified bootstrap CI, the probability that a run of the method
    does better than a run of the reference (None for the reference itself), and the few-seeds
    warning."""

    iqm: IntervalEstimate
    improvement: IntervalEstimate | None
    warning: str

    def to_dict(self) -> dict[str, Any]:
        """``{"iqm", "p_improvement", "few_seeds_warning"}`` for summary files."""
        better = None if self.improvement is None else self.improvement.to_dict()
        return {"iqm": self.iqm.to_dict(), "p_improvement": better,
                "few_seeds_warning": self.warning}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Aggregate:
        """The aggregate :meth:`to_dict` wrote."""
        better = d["p_improvement"]
        return cls(IntervalEstimate.from_dict(d["iqm"]),
                   None if better is None else IntervalEstimate.from_dict(better),
                   d["few_seeds_warning"])  # fmt: skip

    def cells(self) -> tuple[str, str]:
        """Two markdown table cells: ``IQM [low, high]`` and ``P [low, high]`` (a dash for the
        reference), each marked with ``*`` when fewer than :data:`MIN_SEEDS_FOR_VERDICT` seeds
        back it."""
        mark = "*" if self.warning else ""
        better = "(reference)" if self.improvement is None else f"{self.improvement}{mark}"
        return f"{self.iqm}{mark}", better


AGGREGATE_NOTE = (
    "IQM: interquartile mean over runs with its stratified bootstrap 95% CI; P(better): the "
    "probability that a run of the method beats a run of the reference (ties count 1/2) with its "
    f"95% CI (Agarwal et al., NeurIPS 2021; `twinrl.experiments.stats`); * marks fewer than "
    f"{MIN_SEEDS_FOR_VERDICT} seeds."
)
"""The sentence a report prints under a table with :meth:`Aggregate.cells` columns."""


def aggregate(
    scores: ArrayLike | Sequence[ArrayLike],
    reference: ArrayLike | Sequence[ArrayLike] | None = None,
    *,
    higher_is_better: bool = True,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> Aggregate:
    """The :class:`Aggregate` of ``scores`` (one task: a flat sequence of per-run scores; several:
    one sequence per task) against ``reference`` (None: the scores are the reference).

    ``higher_is_better=False`` (episodes to converge, failures): "better" means lower, so the
    probability of improvement is P(score < reference score); the IQM is of the scores as given.
    NaN scores are refused (:func:`strata`): map a censored outcome (never converged) to a number
    first, e.g. the budget plus one.
    """
    check_bool("higher_is_better", higher_is_better)
    sign = 1.0 if higher_is_better else -1.0
    tasks = strata(scores, "scores")
    center = stratified_bootstrap_ci(tasks, reps=reps, seed=seed)
    if reference is None:
        return Aggregate(center, None, seed_warning(center.n))
    ref = strata(reference, "reference")
    better = probability_of_improvement_ci(
        [sign * t for t in tasks], [sign * r for r in ref], reps=reps, seed=seed
    )
    return Aggregate(center, better, seed_warning(min(center.n, better.n)))


__all__ = [
    "AGGREGATE_NOTE",
    "DEFAULT_REPS",
    "FEW_SEEDS_WARNING",
    "MIN_REPS",
    "MIN_SEEDS_FOR_VERDICT",
    "Aggregate",
    "IntervalEstimate",
    "Statistic",
    "Strata",
    "aggregate",
    "iqm",
    "probability_of_improvement",
    "probability_of_improvement_ci",
    "seed_warning",
    "strata",
    "stratified_bootstrap_ci",
    "too_few_seeds",
]
