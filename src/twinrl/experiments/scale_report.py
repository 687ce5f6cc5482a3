"""The ``scale`` experiment's table, figure and goal verdicts from a summary
(:func:`twinrl.experiments.scale_study.run_grid`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from twinrl.experiments import metrics, stats
from twinrl.experiments.plotting import pyplot, save
from twinrl.experiments.scale_study import HEURISTICS, LEARNED, METHODS

GOAL_GAP = 0.02
"""The issue's goal: a mean gap to the exact optimum within 2% at the largest N."""
EXACT_RTOL = 1e-9
"""A schedule counts as solved exactly when its cost is within this relative slack of the optimum."""
PRIORITY_RULES = ("EDF", "SPT", "Johnson")

DEFINITIONS = """\
Definitions: *gap* = C / C* - 1 of a method's order on a held-out task set, C* the exact optimum
(`exact_optimum`, subset DP); mean ± 95% CI (Student t) over task sets, and the IQM with its
stratified-bootstrap 95% CI (`experiments/stats.py`). *Exact* = share of task sets solved to the
optimum (relative slack 1e-9). *Physical steps* per task set when judged (N: one schedule on the
physical env); *twin evaluations* = twin domain steps per task set (DT rollout: every unsent task
tried as the next one, each schedule completed by the greedy policy of every restart's network).
Training: *physical steps* of all restarts (N per episode, random task sets, no twin), *CPU s* of
training. *DP CPU s*: mean (max) per task set of the exact solver. The goal verdicts use
`metrics.verdict` on the paired per-task-set differences (met / not met only when the 95% CI
excludes the threshold)."""


def _gaps(run: dict[str, Any], method: str) -> np.ndarray:
    return np.array([r["costs"][method] / r["optimum"] - 1.0 for r in run["instances"]])


def aggregate(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (N, method): gap statistics, exact share, physical and twin work."""
    rows = []
    for run in summary["runs"]:
        insts = run["instances"]
        for method in METHODS:
            gaps = _gaps(run, method)
            est = metrics.mean_ci(gaps)
            boot = stats.stratified_bootstrap_ci(gaps, seed=run["n"])
            physical = {
                "DQN greedy": "greedy_physical_steps",
                "DT rollout": "rollout_physical_steps",
            }
            rows.append({
                "n": run["n"], "method": method, "gap_mean": est.mean, "gap_ci": est.half_width,
                "gap_iqm": boot.point, "gap_iqm_low": boot.low, "gap_iqm_high": boot.high,
                "exact": float(np.mean(gaps <= EXACT_RTOL)), "instances": len(insts),
                "physical_steps": float(np.mean([r[physical[method]] for r in insts]))
                if method in physical else 0.0,
                "twin_evaluations": float(np.mean([r["rollout_twin_evaluations"] for r in insts]))
                if method == "DT rollout" else 0.0,
            })  # fmt: skip
    return rows


def goals(summary: dict[str, Any]) -> dict[str, Any]:
    """The issue's goal at the largest N: DT rollout within 2% of the optimum on average, and
    better than the best priority rule and than local search (paired per task set)."""
    run = max(summary["runs"], key=lambda r: r["n"])
    rollout = _gaps(run, "DT rollout")
    rules = {m: float(np.mean(_gaps(run, m))) for m in PRIORITY_RULES}
    best_rule = min(rules, key=lambda m: rules[m])
    out: dict[str, Any] = {"n": run["n"], "instances": len(rollout)}
    within = metrics.mean_ci(rollout)
    out["within_2pct"] = {"mean": within.mean, "ci": within.half_width,
                          "verdict": metrics.verdict(within, GOAL_GAP, higher_is_better=False)}  # fmt: skip
    for key, other in (("vs_best_rule", best_rule), ("vs_local_search", "local search")):
        diff = metrics.mean_ci(rollout - _gaps(run, other))
        better = stats.probability_of_improvement(-rollout, -_gaps(run, other))
        out[key] = {"against": other, "mean_difference": diff.mean, "ci": diff.half_width,
                    "probability_of_improvement": better,
                    "verdict": metrics.verdict(diff, 0.0, higher_is_better=False)}  # fmt: skip
    return out


def _pct(x: float) -> str:
    return "—" if math.isnan(x) else f"{100 * x:.2f}%"


def _table(rows: list[dict[str, Any]], summary: dict[str, Any]) -> list[str]:
    lines = ["| N | method | gap mean ± 95% CI | gap IQM [95% CI] | exact | physical steps | "
             "twin evaluations |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        iqm = f"{_pct(r['gap_iqm'])} [{_pct(r['gap_iqm_low'])}, {_pct(r['gap_iqm_high'])}]"
        lines.append(
            f"| {r['n']} | {r['method']} | {_pct(r['gap_mean'])} ± {_pct(r['gap_ci'])} | {iqm} | "
            f"{r['exact']:.0%} | {r['physical_steps']:.0f} | {r['twin_evaluations']:,.0f} |"
        )
    lines += ["", "| N | training physical steps | training CPU s | DP CPU s per set, mean (max) "
              "| priority rule optimal on (EDF / SPT / Johnson) |", "|---|---|---|---|---|"]  # fmt: skip
    for run in summary["runs"]:
        dp = [r["dp_cpu_seconds"] for r in run["instances"]]
        optimal = " / ".join(f"{np.mean(_gaps(run, m) <= EXACT_RTOL):.0%}" for m in PRIORITY_RULES)
        lines.append(
            f"| {run['n']} | {run['train_physical_steps']:,} | {run['train_cpu_seconds']:.0f} | "
            f"{np.mean(dp):.2f} ({np.max(dp):.2f}) | {optimal} |"
        )
    return lines


def _verdict(verdict: str, n: int) -> str:
    """``metrics.verdict``'s word, saying why when it is undecided with enough task sets."""
    if verdict == metrics.UNDECIDED and n >= metrics.MIN_SEEDS_TO_DECIDE:
        return "undecided (the 95% CI includes the threshold)"
    return verdict


def _goal_lines(goal: dict[str, Any]) -> list[str]:
    w, n = goal["within_2pct"], goal["instances"]
    lines = [f"Goal at N = {goal['n']}: DT rollout's mean gap {_pct(w['mean'])} ± {_pct(w['ci'])}"
             f" against 2%: **{_verdict(w['verdict'], n)}**."]  # fmt: skip
    for key in ("vs_best_rule", "vs_local_search"):
        g = goal[key]
        lines.append(
            f"DT rollout minus {g['against']} (paired gap difference): {_pct(g['mean_difference'])}"
            f" ± {_pct(g['ci'])}, P(DT rollout better) = {g['probability_of_improvement']:.2f}: "
            f"**{_verdict(g['verdict'], n)}** (better = the CI lies below 0)."
        )
    return lines


def plot_gaps(rows: list[dict[str, Any]], path: Path) -> None:
    """Mean gap to the optimum (%) vs N per method, with 95% CI bars (clipped at 0), on a symlog
    axis (linear below 1%)."""
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method in METHODS:
        sel = [r for r in rows if r["method"] == method]
        ns = [r["n"] for r in sel]
        style = "-o" if method in LEARNED else "--s"
        mean = np.array([100 * r["gap_mean"] for r in sel])
        half = np.array([100 * r["gap_ci"] for r in sel])
        below = np.minimum(half, mean)  # a gap is never negative: clip the bar at 0
        ax.errorbar(ns, mean, yerr=[below, half], fmt=style, capsize=3, label=method,
                    markersize=4)  # fmt: skip
    ax.axhline(100 * GOAL_GAP, color="grey", lw=0.8, ls=":", label="goal (2%)")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("tasks N")
    ax.set_ylabel("gap to the exact optimum (%)")
    ax.set_title("Edge scheduling beyond the paper (deadlines setting)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    save(plt, fig, path)


def write_scale(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """``table.md`` and ``gap_vs_n.png`` of the ``scale`` experiment; returns rows and goals."""
    rows = aggregate(summary)
    goal = goals(summary)
    p = summary["preset"]
    lines = ["# Edge scheduling beyond the paper: N up to 20", "",
             f"Deadlines setting (R = 2 Mbit/s, ζ = 2 s per miss), sequential formulation; one DQN "
             f"per N ({p['restarts']} restart(s) of {p['episodes']} training episodes on random "
             f"task sets), judged on {p['instances']} held-out task sets per N on the physical "
             f"env. Heuristics: {', '.join(HEURISTICS)}.", ""]  # fmt: skip
    lines += [*_table(rows, summary), "", *_goal_lines(goal), "", DEFINITIONS, "",
              "![gap vs N](gap_vs_n.png)", ""]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text("\n".join(lines))
    plot_gaps(rows, out / "gap_vs_n.png")
    return {"rows": rows, "goals": goal}
