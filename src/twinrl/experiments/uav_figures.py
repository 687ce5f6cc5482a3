"""Multi-UAV trajectories (paper 000, Section IV-B): ``fig5`` and ``observation``.

``fig5``: mean user rate per episode vs physical episodes for physical DQL and DT-enhanced DQL
that learns from k-step returns averaged over m twin trajectories (:class:`PredictiveTargets`),
k in {1, 3, 5}, next to n-step DQN with the same horizons (the paper's "n-step learning" on the one
physical trajectory), with the paper's moving average over 10 episodes and a 95% CI band over seeds.
``observation``: a DQL agent that senses users only within a radius, with and without the twin's
global observation (:class:`GlobalObservation`), next to the fully observed DQL of ``fig5``.
Both share one set of runs; a PNG shows the trained policy's UAV trajectories over the users' paths.

The runs (presets, variants, :func:`run_preset`) are in :mod:`twinrl.experiments.uav_runs` and
re-exported here; this module writes the tables, claims and figures from a run's summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from twinrl.envs.multi_uav import MultiUAVParams
from twinrl.experiments import episodic, metrics, stats
from twinrl.experiments.plotting import band, finish, pyplot
from twinrl.experiments.uav_runs import (
    BASE_AGENT,
    ENV,
    ENV_ID,
    EVAL_EPISODES,
    KS,
    PRESETS,
    SENSING_RADIUS,
    TRAJECTORIES,
    Preset,
    agent_config,
    fig5_variants,
    observation_variants,
    run_preset,
)

PAPER = (
    "the DT-enhanced DQL converges faster and achieves a higher performance than physical DQL, "
    "improving as k increases (paper 000, Fig. 5; no numbers are given)"
)
BOOTSTRAP_SEED = 0
"""Seed of the bootstrap resamples, so a report is a function of its summary alone."""


def _stats(summary: dict[str, Any], labels: list[str]) -> dict[str, dict[str, Any]]:
    runs = [r for r in summary["runs"] if r["label"] in labels]
    window = summary["preset"]["window"]
    out = episodic.summarise(runs, window=window, reference="DQL")
    kmeans = {int(k): b["kmeans"] for k, b in summary["baselines_by_seed"].items()}
    for label, st in out.items():
        group = [r for r in runs if r["label"] == label]
        st["greedy_rate"] = metrics.mean_ci([r["greedy_rate"] for r in group])
        st["raw_mean"] = np.mean([r["episode_return"] for r in group], axis=0)
        st["vs_dql"] = {key: paired(runs, label, "DQL", key) for key in ("greedy", "mean")}
        st["reach95"] = [reach_fraction(r["episode_return"], window) for r in group]
        st["normalized"] = metrics.mean_ci([r["greedy_rate"] / kmeans[r["seed"]] for r in group])
        st["vs_kmeans"] = metrics.mean_ci([r["greedy_rate"] - kmeans[r["seed"]] for r in group])
        st["greedy_iqm"] = stats.stratified_bootstrap_ci(
            [r["greedy_rate"] for r in group], seed=BOOTSTRAP_SEED
        )
        st["above_dql"] = None if label == "DQL" else improvement(runs, label, "DQL")
    return out


def reach_fraction(rates: list[float], window: int, frac: float = 0.95) -> int | None:
    """First episode from which the run's moving average stays at or above ``frac`` times its
    final rate (the mean of its last 10% of episodes): the issue's "episodes to reach 95% of the
    final reward"."""
    x = np.asarray(rates, dtype=np.float64)
    final = float(x[-max(1, x.size // 10) :].mean())
    return metrics.convergence_time(episodic.moving_average(x, window), frac * final)


def _measure(run: dict[str, Any], key: str) -> float:
    """``greedy``: the trained policy's rate on the evaluation episodes; ``mean``: the mean rate
    over all training episodes (the area under the learning curve: higher = learned faster)."""
    return float(run["greedy_rate"] if key == "greedy" else np.mean(run["episode_return"]))


def paired(runs: list[dict[str, Any]], a: str, b: str, key: str) -> metrics.Estimate:
    """Mean and 95% CI over seeds of ``a - b`` per seed. Every method sees the same users in the
    same training and evaluation episodes for a given seed, so the per-seed difference cancels
    what the episodes share (a layout that is easy for every method) and is a sharper test than
    comparing the two means' CIs."""
    by = {(r["label"], r["seed"]): _measure(r, key) for r in runs}
    seeds = [r["seed"] for r in runs if r["label"] == a and (b, r["seed"]) in by]
    return metrics.mean_ci([by[(a, sd)] - by[(b, sd)] for sd in seeds])


def improvement(runs: list[dict[str, Any]], a: str, b: str) -> stats.IntervalEstimate:
    """P(greedy rate of ``a`` > greedy rate of ``b``) over all pairs of their seeds (ties 1/2),
    with its 95% bootstrap interval (:func:`twinrl.experiments.stats.probability_of_improvement_ci`,
    one task: this env)."""
    x, y = ([r["greedy_rate"] for r in runs if r["label"] == lb] for lb in (a, b))
    return stats.probability_of_improvement_ci(x, y, seed=BOOTSTRAP_SEED)


def _table(
    by_label: dict[str, dict[str, Any]], labels: list[str], summary: dict[str, Any]
) -> list[str]:
    episodes = summary["preset"]["episodes"]
    lines = [
        "| method | training rate, last 10% of episodes | greedy rate after training | "
        "greedy rate IQM [95% bootstrap CI] | normalized (k-means = 1) | greedy rate - k-means' "
        "(paired) | greedy rate - DQL's "
        "(paired) | P(greedy rate > DQL's) [95% CI] | mean training rate - DQL's (paired) | "
        "episodes to 95% of final | episodes to converge | episodes to reach DQL's final | "
        "twin steps / run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lb in labels:
        st = by_label[lb]
        settle = metrics.format_convergence(st["settling_episodes"], episodes)
        reach = (
            "(reference)"
            if lb == "DQL"
            else metrics.format_convergence(st["reach_episodes"], episodes)
        )
        g = st["greedy_rate"]
        diffs = ("(reference)",) * 3 if lb == "DQL" else (_signed(st["vs_dql"]["greedy"]),
            str(st["above_dql"]), _signed(st["vs_dql"]["mean"]))  # fmt: skip
        lines.append(
            f"| {lb} | {st['final_reward']} | {g} | {st['greedy_iqm']} | "
            f"{st['normalized'].mean:.3f} | {_signed(st['vs_kmeans'])} | {' | '.join(diffs)} | "
            f"{metrics.format_convergence(st['reach95'], episodes)} | {settle} | {reach} | "
            f"{st['twin_evaluations']:.0f} |"
        )
    return lines + _seed_warning_lines(min(by_label[lb]["runs"] for lb in labels))


def _seed_warning_lines(seeds: int) -> list[str]:
    """A warning under the table when fewer than 5 seeds per method back its verdicts."""
    if not stats.too_few_seeds(seeds):
        return []
    trims = "" if seeds >= 4 else (
        f"; with {seeds} seeds the IQM trims no run (it is the mean), and percentile "
        "bootstrap intervals over so few seeds are too narrow")  # fmt: skip
    return ["", f"**Warning: {stats.FEW_SEEDS_WARNING}** ({seeds} per method): the intervals "
            f"and the claims below are indicative only{trims}."]  # fmt: skip


def _baseline_lines(summary: dict[str, Any]) -> list[str]:
    lines = ["", "Reference policies on the same evaluation episodes (no learning; mean over the "
             "run seeds' evaluation episodes):", "",
             "| policy | mean rate (Mbit/s) |", "|---|---|"]  # fmt: skip
    names = {"hover": "hover at the hangar", "random": "random moves",
             "kmeans": "static k-means placement (the normalization reference)"}  # fmt: skip
    for name, rate in summary["baselines"].items():
        lines.append(f"| {names.get(name, name)} | {rate:.3f} |")
    return lines


def _settings(summary: dict[str, Any]) -> str:
    p = summary["preset"]
    return (
        f"{p['seeds']} seeds x {p['episodes']} physical episodes of "
        f"{summary['params']['episode_steps']} steps per method; moving average over "
        f"{p['window']} episodes (the paper's window); DQN settings {summary['agent_config']} "
        f"(the rest are `DQNConfig` defaults); env {summary['env']}."
    )


def write_fig5(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    labels = [v.label for v in fig5_variants()]
    by_label = _stats(summary, labels)
    lines = [
        "# Multi-UAV trajectories: DT-enhanced DQL trained with prediction (paper 000, Fig. 5)",
        "",
        f"{_settings(summary)} DT-DQL k: every physical step, the twin rolls m = {TRAJECTORIES} "
        "trajectories k steps ahead (the physical action, then the greedy policy) with its own "
        "guess of the users' future, and the agent learns from their k-step returns "
        "(`PredictiveTargets`, half of each batch). n-step DQN n: the physical trajectory's "
        f"n-step return. Paper: {PAPER}.",
        "",
        *_table(by_label, labels, summary),
        *_baseline_lines(summary),
    ]
    checks = _fig5_checks(summary, by_label)
    lines += ["", "Claims (issue 4):", ""] + [f"* {c}" for c in checks]
    lines += ["", DEFINITIONS, "", "![fig5](fig5.png)", "", "![trajectories](trajectories.png)", ""]
    (out / "table.md").write_text("\n".join(lines))
    _plot_curves(by_label, labels, summary, out / "fig5.png",
                 "DT-enhanced DQL trained with prediction (paper 000, Fig. 5)")  # fmt: skip
    _plot_trajectories(summary, out / "trajectories.png")
    return {"rows": _rows(by_label, labels), "checks": checks}


def write_observation(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    partial, enhanced = (v.label for v in observation_variants())
    labels = ["DQL", partial, enhanced]
    by_label = _stats(summary, labels)
    radius = summary["sensing_radius"]
    lines = [
        "# Observation enhancement: a partially observed DQL agent with the twin's global view",
        "",
        f"{_settings(summary)} Partial: a user is observed only within {radius:g} m (ground "
        "distance) of some UAV; the others read (-1, -1) with a visibility flag of 0. "
        "GlobalObservation: the identical domain mirrors the network every step and gives the "
        "agent every user's position in the same layout (paper 000, II-B). DQL is the fully "
        "observed agent of fig5.",
        "",
        *_table(by_label, labels, summary),
    ]
    runs = summary["runs"]
    checks = [
        f"GlobalObservation beats partial observation: {_claim(runs, enhanced, partial)}",
        f"(reference) partial observation vs the fully observed DQL: "
        f"{_claim(runs, partial, 'DQL')}",
    ]
    lines += ["", "Claims (issue 4):", ""] + [f"* {c}" for c in checks]
    lines += ["", DEFINITIONS, "", "![observation](observation.png)", ""]
    (out / "table.md").write_text("\n".join(lines))
    _plot_curves(by_label, labels, summary, out / "observation.png",
                 f"Partial observation (r = {radius:g} m) with and without the twin's global view")  # fmt: skip
    return {"rows": _rows(by_label, labels), "checks": checks}


DEFINITIONS = """\
Definitions: rates are the mean user rate per step of an episode in Mbit/s (the reward is centred
for learning, see `ENV` in `experiments/uav_figures.py`; the tables add the offset back).
*Training rate* = mean over the last 10% of training episodes (exploration included, epsilon =
0.05 by then), mean ± 95% CI over seeds. *Greedy rate* = the trained policy without exploration
on 10 evaluation episodes, the same for every method. *Episodes to 95% of final* = first episode
from which the moving-average rate stays at or above 95% of the run's own final training rate.
The rate has a high floor (random moves get over 90% of the k-means placement's), so this level
is reached early; *episodes to converge* is stricter: the moving average must stay at or above
start + 95% of (own final - start). *Episodes to reach DQL's final* = the same for DQL's final
training rate. All three are medians over seeds with the share of seeds that got there in
brackets. *Paired* differences are taken per seed (every method sees the same users in the same episodes
for a seed), then mean ± 95% CI over seeds; *mean training rate* is the mean over all training
episodes (higher: learned faster). A claim is *met* when the 95% CI of the paired difference of the
greedy rate (higher) or of the mean training rate (faster) lies above 0, *NOT met* when it lies
below 0, *not resolved* when it contains 0, and *too few seeds to decide* on fewer than 5 seeds. *Normalized* = greedy
rate / the static k-means placement's rate on the same evaluation episodes, mean over seeds.
*Greedy rate IQM* = interquartile mean over seeds (floor(n/4) seeds dropped at each end, as
rliable) with a 95% stratified bootstrap interval; *P(greedy rate > DQL's)* = the share of
(method seed, DQL seed) pairs where the method's greedy rate is higher, ties counting 1/2, with a
95% bootstrap interval resampling each side's seeds (Agarwal et al., NeurIPS 2021; definitions in
docs/metrics.md). A claim resting on fewer than 5 seeds says so."""


def _sign(d: metrics.Estimate) -> bool | None:
    """True if the 95% CI of a difference lies above 0, False if below, None if it contains 0 or
    rests on fewer than :data:`metrics.MIN_SEEDS_TO_DECIDE` seeds (the quick preset decides
    nothing)."""
    if d.n < metrics.MIN_SEEDS_TO_DECIDE:
        return None
    if d.mean - d.half_width > 0:
        return True
    if d.mean + d.half_width < 0:
        return False
    return None


def _verdict(d: metrics.Estimate) -> str:
    if d.n < metrics.MIN_SEEDS_TO_DECIDE:
        return metrics.UNDECIDED
    return {True: "met", False: "NOT met", None: "not resolved (the 95% CI contains 0)"}[_sign(d)]


def _signed(d: metrics.Estimate) -> str:
    return f"{d.mean:+.3f} ± {d.half_width:.2g}"


def _claim(runs: list[dict[str, Any]], a: str, b: str) -> str:
    """``a`` against ``b``: paired greedy-rate and mean-training-rate differences, with verdicts,
    the probability of improvement of the greedy rate, and the few-seeds warning."""
    greedy, mean = paired(runs, a, b, "greedy"), paired(runs, a, b, "mean")
    above = improvement(runs, a, b)
    return (
        f"greedy rate {_signed(greedy)} Mbit/s (higher: {_verdict(greedy)}), mean "
        f"training rate {_signed(mean)} Mbit/s (faster: {_verdict(mean)}), "
        f"P(greedy rate {a} > {b}) = {above}{_warn(min(greedy.n, above.n))}"
    )


def _warn(seeds: int) -> str:
    note = stats.seed_warning(seeds)
    return f"; warning: {note}" if note else ""


def beats_kmeans(summary: dict[str, Any], label: str = "DQL") -> str:
    """The base learner's test: its greedy rate minus the static k-means placement's on the same
    evaluation episodes, per seed; mean with the Student-t 95% CI, the 95% stratified bootstrap
    CI of the mean (:mod:`twinrl.experiments.stats`) and :func:`metrics.verdict` (decided on at
    least 5 seeds)."""
    diffs = [r["greedy_rate"] - summary["baselines_by_seed"][r["seed"]]["kmeans"]
             for r in summary["runs"] if r["label"] == label]  # fmt: skip
    estimate = metrics.mean_ci(diffs)
    boot = stats.stratified_bootstrap_ci(
        diffs, lambda tasks: float(np.mean(tasks[0])), seed=BOOTSTRAP_SEED
    )
    return (
        f"{label} beats the static k-means placement (greedy rate, paired per seed): "
        f"{_signed(estimate)} Mbit/s, bootstrap 95% CI [{boot.low:+.3f}, {boot.high:+.3f}]: "
        f"{metrics.verdict(estimate, 0.0)}{_warn(estimate.n)}"
    )


def _fig5_checks(summary: dict[str, Any], by_label: dict[str, dict[str, Any]]) -> list[str]:
    runs, top = summary["runs"], f"DT-DQL k={max(KS)}"
    checks = [beats_kmeans(summary), f"{top} vs DQL: {_claim(runs, top, 'DQL')}"]
    rates = [by_label[f"DT-DQL k={k}"]["greedy_rate"].mean for k in KS]
    gain = paired(runs, top, f"DT-DQL k={min(KS)}", "greedy")
    checks.append(
        f"DT-DQL improves with k = {', '.join(map(str, KS))}: greedy rates "
        f"{', '.join(f'{r:.3f}' for r in rates)}; k={max(KS)} - k={min(KS)} {_signed(gain)} "
        f"(paired): {_verdict(gain)}{_warn(gain.n)}"
    )
    for k in KS:
        if k > 1:
            checks.append(
                f"DT-DQL k={k} vs n-step DQN n={k} (same horizon): "
                f"{_claim(runs, f'DT-DQL k={k}', f'n-step DQN n={k}')}"
            )
    return checks


def _rows(by_label: dict[str, dict[str, Any]], labels: list[str]) -> list[dict[str, Any]]:
    out = []
    for lb in labels:
        st = by_label[lb]
        above = st["above_dql"]
        out.append({
            **episodic.summary_row(lb, st),
            "final_rate": st["final_reward"].to_dict(), "greedy_rate": st["greedy_rate"].to_dict(),
            "greedy_rate_iqm": st["greedy_iqm"].to_dict(),
            "normalized": st["normalized"].to_dict(), "episodes_to_95pct_final": st["reach95"],
            "greedy_minus_kmeans": st["vs_kmeans"].to_dict(),
            "greedy_minus_dql": st["vs_dql"]["greedy"].to_dict(),
            "p_greedy_above_dql": None if above is None else above.to_dict(),
            "mean_rate_minus_dql": st["vs_dql"]["mean"].to_dict(),
            "few_seeds_warning": stats.seed_warning(st["runs"]),
        })  # fmt: skip
    return out


def _plot_curves(
    by_label: dict[str, Any], labels: list[str], summary: dict[str, Any], path: Path, title: str
) -> None:
    """The paper's style: the raw per-episode mean over seeds dashed, its moving average solid
    with a 95% CI band over seeds; the reference policies as horizontal lines."""
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(8, 4.6))
    for lb in labels:
        st = by_label[lb]
        x = np.arange(1, st["curve_mean"].size + 1)
        band(ax, x, st["curve_mean"], st["curve_ci95"], lb)
        ax.plot(x, st["raw_mean"], ls="--", lw=0.6, alpha=0.5, color=ax.lines[-1].get_color())
    for name, style in (("kmeans", ":"), ("random", "-.")):
        ax.axhline(summary["baselines"][name], color="k", ls=style, lw=0.9,
                   label=f"{name} (no learning)")  # fmt: skip
    ax.set(xlabel="physical episode", title=title,
           ylabel=f"mean user rate, Mbit/s (moving average {summary['preset']['window']})")  # fmt: skip
    finish(plt, fig, ax, path)


def _plot_trajectories(summary: dict[str, Any], path: Path) -> None:
    from twinrl.experiments.uav_plots import plot_trajectories

    given: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in summary["params"].items()
    }
    params = MultiUAVParams(**given)
    runs = {name: (np.asarray(t["uavs"]), np.asarray(t["users"]), t["rate"])
            for name, t in summary["trajectories"].items()}  # fmt: skip
    plot_trajectories(params, runs, path)


__all__ = [
    "BASE_AGENT",
    "BOOTSTRAP_SEED",
    "DEFINITIONS",
    "ENV",
    "ENV_ID",
    "EVAL_EPISODES",
    "KS",
    "PAPER",
    "PRESETS",
    "SENSING_RADIUS",
    "TRAJECTORIES",
    "Preset",
    "agent_config",
    "beats_kmeans",
    "fig5_variants",
    "improvement",
    "observation_variants",
    "paired",
    "reach_fraction",
    "run_preset",
    "write_fig5",
    "write_observation",
]
