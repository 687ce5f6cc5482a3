"""Fig. 4's paired speed metrics and verdicts (issue 12, item 2), defined once for the code and
docs/ap-selection.md (a test checks that the docs quote :data:`DEFINITIONS` word for word).

Every method's run of seed ``s`` is paired with physical QL's run of the same seed: the headline
speed is the number of physical episodes a method needs to reach *that* run's final smoothed
level. Beside it: the same count times ``1 + n`` (twin evaluations included) and the area under
the learning curve. A verdict is stated only where the paired 95% CI over at least
:data:`~twinrl.experiments.metrics.MIN_SEEDS_TO_DECIDE` seeds excludes the target's threshold.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from twinrl.experiments import metrics, stats
from twinrl.experiments.episodic import moving_average

DEFINITIONS: dict[str, str] = {
    "smoothed curve": "the trailing moving average of a run's physical episode rewards over the "
    "preset's window (over fewer episodes at the start), as the paper plots.",
    "final reward": "the mean physical episode reward over the last 10% of training episodes "
    "(exploration included); mean ± 95% CI over seeds.",
    "QL's final level": "the last value of the same seed's smoothed QL curve, i.e. the mean "
    "reward of QL's last window episodes; every method's run of a seed is paired with QL's run of "
    "that seed.",
    "episodes to QL's final level": "the first physical episode from which a run's smoothed "
    "curve stays at or above the same seed's QL final level until the end of training "
    "(DESIGN.md's convergence time with zero tolerance); never (> budget) if the curve ends "
    "below it. QL's own count is the episode from which it stays at its final level, so it "
    "cannot exceed the budget. Median over seeds, with the range and the seeds that got there.",
    "(1 + n) x episodes": "episodes to QL's final level times 1 + n, with n the actions tried in "
    "the twin per physical step (0 for QL): physical plus twin evaluations, in episodes' worth of "
    "steps. The safety audit's twin checks are not counted: they never change the run.",
    "speed-up": "per seed, QL's episodes to its final level divided by the method's (a method "
    "that never gets there counts as budget + 1); geometric mean over seeds with a 95% CI "
    "(Student t on the log ratios).",
    "AUC": "the area under the learning curve: the mean physical episode reward over all training "
    "episodes (not smoothed, exploration included). AUC - QL is the paired per-seed difference "
    "to QL; mean ± 95% CI over seeds.",
    "IQM and P(better)": "beside the paired means, the interquartile mean over seeds of the "
    "episodes to QL's final level (never = budget + 1) and of the AUC, each with a stratified "
    "bootstrap 95% CI, and the probability that a run of the method is faster than (reaches a "
    "higher AUC than) a run of QL, ties counting 1/2, with its 95% CI (Agarwal et al., 2021).",
    "verdict": "met or NOT met only when the paired 95% CI over at least 5 seeds lies wholly on "
    "one side of the target's threshold; otherwise too few seeds to decide.",
}
"""Every term fig4's table uses, as the report and docs/ap-selection.md print it."""

SPEEDUP_TARGET = 3.0
"""The headline target: DT-QL reaches QL's final level at least this many times faster."""


def definitions_text() -> str:
    """:data:`DEFINITIONS` as markdown bullets (``* *term*: definition``)."""
    return "\n".join(f"* *{term}*: {text}" for term, text in DEFINITIONS.items())


def trials_per_step(run: dict[str, Any]) -> int:
    """n, the actions a run tried in the twin per physical step (0 for physical QL; a safety
    audit, which never changes the run, does not count)."""
    v = run["variant"]
    return int(v["n_trials"]) if v["algorithm"] == "dteql" else 0


def episodes_to_level(rewards: list[float], level: float, window: int) -> int | None:
    """Episodes until the smoothed curve of ``rewards`` stays at or above ``level`` (``None``:
    it ends below)."""
    if len(rewards) == 0:
        raise ValueError("episodes_to_level needs at least one episode reward")
    return metrics.convergence_time(moving_average(rewards, window), level)


def final_reward(rewards: list[float]) -> float:
    """The mean episode reward over the last 10% of episodes (at least one)."""
    if len(rewards) == 0:
        raise ValueError("final_reward needs at least one episode reward")
    return float(np.mean(rewards[-max(1, len(rewards) // 10) :]))


def paired_outcomes(runs: list[dict[str, Any]], *, window: int) -> dict[str, dict[str, Any]]:
    """Per method (``label``), each seed paired with the same seed's ``"QL"`` run, as
    :data:`DEFINITIONS` states: QL's final level, episodes to reach it (``None``: never), the same
    times (1 + n), the speed-up over QL (as a log-ratio estimate), the area under the curve and
    its paired difference to QL, and the paired final-reward difference.

    Args:
        runs: results of :func:`~twinrl.experiments.episodic.run_episodic` (``label``, ``seed``,
            ``variant``, ``episode_return``).
        window: the moving-average window of the smoothed curves.

    Raises:
        ValueError: no QL run, a method with no seed in common with QL, or an empty run.
    """
    ql = {r["seed"]: r for r in runs if r["label"] == "QL"}
    if not ql:
        raise ValueError("paired_outcomes needs the 'QL' runs: every method is paired with them")
    if any(len(r["episode_return"]) == 0 for r in runs):
        raise ValueError("paired_outcomes needs at least one episode per run")
    level = {s: float(moving_average(r["episode_return"], window)[-1]) for s, r in ql.items()}
    out: dict[str, dict[str, Any]] = {}
    for label in dict.fromkeys(r["label"] for r in runs):
        group = sorted((r for r in runs if r["label"] == label and r["seed"] in ql),
                       key=lambda r: r["seed"])  # fmt: skip
        if not group:
            raise ValueError(f"{label!r} has no seed in common with QL's seeds {sorted(ql)}")
        out[label] = _paired(group, ql, level, window)
    return out


def _paired(
    group: list[dict[str, Any]], ql: dict[int, dict[str, Any]], level: dict[int, float], window: int
) -> dict[str, Any]:
    n = trials_per_step(group[0])
    own = group[0]["label"] == "QL"  # QL against itself: the reference of P(better)
    seeds = [r["seed"] for r in group]
    times = [episodes_to_level(r["episode_return"], level[r["seed"]], window) for r in group]
    # a run that never gets there counts as budget + 1; QL's own count never does (its curve ends
    # at its final level)
    mine = [_or_over(t, r) for t, r in zip(times, group, strict=True)]
    ql_times = [_or_over(episodes_to_level(ql[s]["episode_return"], level[s], window), ql[s])
                for s in seeds]  # fmt: skip
    auc = [metrics.area_under_curve(r["episode_return"]) for r in group]
    ql_auc = [metrics.area_under_curve(ql[s]["episode_return"]) for s in seeds]
    final = [final_reward(r["episode_return"]) for r in group]
    ql_final = [final_reward(ql[s]["episode_return"]) for s in seeds]
    return {
        "n_trials": n,
        "seeds": seeds,
        "ql_final_level": [level[s] for s in seeds],
        "episodes_to_ql_final": times,
        "episodes_to_ql_final_twin_normalised": [None if t is None else (1 + n) * t for t in times],
        "log_speedup": metrics.mean_ci(np.log(np.divide(ql_times, mine))),
        "auc": metrics.mean_ci(auc),
        "auc_minus_ql": metrics.mean_ci(np.subtract(auc, ql_auc)),
        "final_minus_ql": metrics.mean_ci(np.subtract(final, ql_final)),
        "episodes_vs_ql": stats.aggregate(mine, None if own else ql_times, higher_is_better=False),
        "auc_vs_ql": stats.aggregate(auc, None if own else ql_auc),
    }


def _or_over(t: int | None, run: dict[str, Any]) -> int:
    return len(run["episode_return"]) + 1 if t is None else t


def speedup(log_speedup: metrics.Estimate) -> dict[str, float]:
    """The geometric-mean speed-up and its 95% CI from the log-ratio estimate."""
    m, h = log_speedup.mean, log_speedup.half_width
    return {"geometric_mean": math.exp(m), "ci95_low": math.exp(m - h),
            "ci95_high": math.exp(m + h), "n": log_speedup.n}  # fmt: skip


# --- verdicts ----------------------------------------------------------------------------------


def decided(verdict: str, n: int, *, preset: str) -> str:
    """A verdict with, if undecided, the reason and where a decision can come from."""
    if verdict != metrics.UNDECIDED:
        return verdict
    if n < metrics.MIN_SEEDS_TO_DECIDE:
        where = "the paper preset decides" if preset != "paper" else "add seeds with --seeds"
        return f"{verdict} ({n} paired seeds < {metrics.MIN_SEEDS_TO_DECIDE}; {where})"
    return f"{verdict} (the paired 95% CI includes the threshold; add seeds with --seeds)"


def episodes_text(times: list[int | None], budget: int) -> str:
    """Median over seeds (``> budget`` if most never got there)."""
    median = metrics.median_time(times)
    return f"> {budget}" if math.isinf(median) else f"{median:.0f}"


def speed_check(
    outcomes: dict[str, dict[str, Any]], label: str, *, budget: int, preset: str, road: str
) -> str:
    """The headline: ``label`` reaches QL's final level at least :data:`SPEEDUP_TARGET`x faster."""
    mine, ql = outcomes[label], outcomes["QL"]
    est = mine["log_speedup"]
    sp = speedup(est)
    verdict = metrics.verdict(est, math.log(SPEEDUP_TARGET))
    scaled = (1 + mine["n_trials"]) * budget
    normalised = episodes_text(mine["episodes_to_ql_final_twin_normalised"], scaled)
    return (
        f"{road}: {label} reaches QL's final level in "
        f"{episodes_text(mine['episodes_to_ql_final'], budget)} physical episodes "
        f"((1 + n) x episodes: {normalised}), QL in "
        f"{episodes_text(ql['episodes_to_ql_final'], budget)}: "
        f"{sp['geometric_mean']:.3g}x faster (paired geometric mean over {est.n} seeds, 95% CI "
        f"{sp['ci95_low']:.3g}-{sp['ci95_high']:.3g}x; AUC - QL {mine['auc_minus_ql']}; target: "
        f"at least {SPEEDUP_TARGET:g}x): {decided(verdict, est.n, preset=preset)}"
    )


def final_check(outcomes: dict[str, dict[str, Any]], label: str, *, preset: str, road: str) -> str:
    """``label``'s final reward is at least QL's (paired difference above 0)."""
    est = outcomes[label]["final_minus_ql"]
    verdict = metrics.verdict(est, 0.0)
    return (
        f"{road}: final reward {label} - QL = {est} (paired over {est.n} seeds; target: at "
        f"least as high): {decided(verdict, est.n, preset=preset)}"
    )


def monotone_check(
    outcomes: dict[str, dict[str, Any]], labels: list[str], *, budget: int, preset: str, road: str
) -> str:
    """Episodes to QL's final level fall as n grows: the largest n is faster than the smallest
    (paired), and no step to the next n is significantly slower. ``labels`` in order of n."""
    seeds = outcomes[labels[0]]["seeds"]
    if any(outcomes[lb]["seeds"] != seeds for lb in labels):
        raise ValueError(f"monotone_check pairs seeds: {labels} must share the seeds {seeds}")
    times = {lb: metrics.censored(outcomes[lb]["episodes_to_ql_final"], budget) for lb in labels}
    steps = [metrics.mean_ci(times[a] - times[b]) for a, b in itertools.pairwise(labels)]
    overall = metrics.mean_ci(times[labels[0]] - times[labels[-1]])
    step_verdicts = [metrics.verdict(d, 0.0) for d in steps]
    if metrics.NOT_MET in step_verdicts or metrics.verdict(overall, 0.0) == metrics.NOT_MET:
        verdict = metrics.NOT_MET
    else:
        verdict = metrics.verdict(overall, 0.0)
    medians = ", ".join(
        episodes_text(outcomes[lb]["episodes_to_ql_final"], budget) for lb in labels
    )
    ns = ", ".join(str(outcomes[lb]["n_trials"]) for lb in labels)
    return (
        f"{road}: episodes to QL's final level fall as n grows (n = {ns}: {medians}; "
        f"first n - last n = {overall} episodes, paired; target: the last n faster, no step "
        f"slower): {decided(verdict, overall.n, preset=preset)}"
    )
