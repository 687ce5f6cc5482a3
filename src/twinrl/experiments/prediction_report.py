"""The ``prediction`` experiment's table.md, figures and summary rows, from a run's summary
(:func:`twinrl.experiments.prediction.run_preset`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from twinrl.experiments import episodic, metrics, stats
from twinrl.experiments import prediction as pred
from twinrl.experiments import prediction_design as design
from twinrl.experiments.plotting import band, pyplot, save

PAPER = (
    "training with prediction (k-step targets averaged over m twin trajectories) beats n-step "
    "learning and plain DQL in dynamic networks (paper 000, Section II-B and Fig. 5; no numbers)"
)
DEFINITIONS = """\
Definitions. Every outcome is normalized by the reference policies on the run seeds' evaluation
episodes (their mean), in the cell's own reward: 0 = random moves, 1 = the static k-means placement.
*AUC* = the area under the learning curve: the mean over training episodes of the reward per step
(exploration included), normalized. *Greedy after b* = the greedy policy's reward per step on 10
evaluation episodes of the physical network after a share b of the physical steps, normalized.
Per arm: the IQM over seeds with a 95% stratified bootstrap interval. *A - B* = the mean over seeds
of the per-seed difference with its 95% Student-t interval (every arm of a seed sees the same users
in the same episodes); the verdict (`metrics.verdict`) is *met* when the interval lies above 0,
*NOT met* below, *too few seeds to decide* when it contains 0 or rests on fewer than 5 seeds.
*P(AUC > DQL's)* = the probability of improvement with its 95% bootstrap interval. *Gap* = |best
reference - DQL's greedy score after the full budget| (normalized); *seeds needed* = the fewest
seeds whose 95% half-width of DT-DQL m=4 - DQL (AUC) would be below a quarter of the gap, from this
run's spread. *Twin steps / physical step* = the twin's work (k x m, less near episode ends)."""


def write_prediction(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """``table.md``, ``curves.png`` and ``differences.png`` in ``out``; returns the summary rows
    and the verdicts."""
    out.mkdir(parents=True, exist_ok=True)
    result = pred.analyse(summary)
    p = summary["preset"]
    lines = [
        "# Training with prediction: a pre-registered grid (paper 000, Fig. 5 setting)",
        "",
        f"Paper: {PAPER}. Preset `{p['name']}`. Base learner `{summary['base']}`; k = n = "
        f"{summary['k']}; {p['seeds']} seeds x {p['steps']} physical steps per arm and cell; DQN "
        "settings "
        f"{summary['agent_config']} (the rest are `DQNConfig` defaults). Predictions and decision "
        "rule: docs/prediction.md (committed before the decisive run).",
        "",
        "## Pre-registered predictions (primary outcome: normalized AUC)",
        "",
        "| id | prediction | estimate (paired, 95% CI) | margin | verdict | seeds needed |",
        "|---|---|---|---|---|---|",
    ]
    for v in result["predictions"]:
        est = v["estimate"]
        lines.append(
            f"| {v['id']} | {v['prediction']} | {est['mean']:+.3f} ± {est['ci95']:.3f} "
            f"(n={est['n']}) | {'±' if v['rule'] == 'equivalence' else ''}"
            f"{v['margin']:.3f} | {v['verdict']} | {v['seeds_needed']} |"
        )
    lines += ["", "P1 is met when the whole interval lies inside ± the margin (a quarter of the "
              "DQL-to-best-reference gap), NOT met when it lies wholly beyond the margin; the "
              "others are met when the interval of the per-seed difference of gains lies above "
              "0 (NOT met: below 0).", ""]  # fmt: skip
    lines += _exploratory_lines(result["exploratory"])
    for cell, st in result["cells"].items():
        lines += _cell_lines(cell, st, summary)
    lines += ["", DEFINITIONS, "", "![curves](curves.png)", "", "![differences](differences.png)",
              ""]  # fmt: skip
    (out / "table.md").write_text("\n".join(lines))
    _plot_curves(summary, out / "curves.png")
    _plot_differences(result, out / "differences.png")
    return {"cells": result["cells"], "predictions": result["predictions"],
            "exploratory": result["exploratory"],
            "checks": [f"{v['id']} {v['prediction']}: {v['verdict']}"
                       for v in result["predictions"]]}  # fmt: skip


def _exploratory_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The exploratory expectations beside their paired estimates (no rule decides them)."""
    if not rows:
        return []
    lines = [
        "## Exploratory expectations (written before the run, not decided by a rule)",
        "",
        "| id | expectation | cell | a - b | AUC (paired, 95% CI) | greedy after the budget |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = " | ".join(_diff(r, k) for k in (pred.PRIMARY, "greedy"))
        lines.append(f"| {r['id']} | {r['expectation']} | {r['cell']} | {r['a']} - {r['b']} | "
                     f"{cells} |")  # fmt: skip
    return [*lines, "", "Here *met* only says the interval lies above 0 (*NOT met*: below).", ""]


def _cell_lines(cell: str, st: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    budgets = ", ".join(f"{b:g}" for b in design.BUDGET_FRACTIONS)
    mean_ref = {n: pred.reference(summary, cell, n) for n in pred.REFERENCES}
    lines = [
        f"### {cell}",
        "",
        f"Env {summary['cells'][cell]['env']}, agent {summary['cells'][cell]['agent']}, "
        f"{summary['cells'][cell]['episodes']} episodes. References (reward per step): "
        + ", ".join(f"{n} {v:.4g}" for n, v in mean_ref.items())
        + f". Gap {st['gap']:.3f}; margin {st['margin']:.3f}; seeds needed "
        f"{st['seeds_needed']}.",
        "",
        f"| arm | AUC IQM [95% CI] | greedy after {budgets} (IQM) | AUC - DQL | AUC - n-step | "
        "greedy - DQL | P(AUC > DQL's) | twin steps / physical step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    nstep = f"n-step n={design.K}"
    for arm, row in st["arms"].items():
        greedy = ", ".join(f"{row[f'greedy@{i}']['point']:.3f}"
                           for i in range(len(design.BUDGET_FRACTIONS)))  # fmt: skip
        last = f"greedy@{len(design.BUDGET_FRACTIONS) - 1}"
        ref = "DQL 2 steps" if "data" in arm else "DQL"
        p_above = row.get("p_auc_above_dql")
        lines.append(
            f"| {arm} | {_iqm(row['auc'])} | {greedy} | {_diff(row, f'auc - {ref}', ref)} | "
            f"{_diff(row, f'auc - {nstep}')} | {_diff(row, f'{last} - {ref}', ref)} | "
            f"{'' if p_above is None else _iqm(p_above)} | {row['twin_per_step']:.1f} |"
        )
    warn = stats.seed_warning(int(min(r["auc"]["n"] for r in st["arms"].values())))
    return [*lines, *(["", f"Warning: {warn}."] if warn else []), ""]


def _iqm(d: dict[str, Any]) -> str:
    return f"{d['point']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}]"


def _diff(row: dict[str, Any], key: str, ref: str = "") -> str:
    d = row.get(key)
    if d is None:
        return ""
    against = f" vs {ref}" if ref == "DQL 2 steps" else ""
    return f"{d['mean']:+.3f} ± {d['ci95']:.3f}{against} ({d['verdict']})"


def _plot_curves(summary: dict[str, Any], path: Path) -> None:
    """One panel per cell: each arm's normalized per-episode reward (moving average), mean over
    seeds with a 95% band; 1 = static k-means, 0 = random moves."""
    plt = pyplot()
    if plt is None:
        return
    cells = list(summary["cells"])
    cols = 3
    rows = -(-len(cells) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), squeeze=False)
    window = summary["preset"]["window"]
    for ax, cell in zip(axes.flat, cells, strict=False):
        arms = dict.fromkeys(r["arm"] for r in summary["runs"] if r["cell"] == cell)
        for arm in arms:
            group = [r for r in summary["runs"] if r["cell"] == cell and r["arm"] == arm]
            curves = np.array([episodic.moving_average(
                [pred.normalized(summary, r, x) for x in r["curve"]], window) for r in group])  # fmt: skip
            half = [metrics.mean_ci(curves[:, e]).half_width for e in range(curves.shape[1])]
            band(ax, np.arange(1, curves.shape[1] + 1), curves.mean(axis=0), np.array(half), arm)
        ax.axhline(1.0, color="k", ls=":", lw=0.9)
        ax.set(title=cell, xlabel="physical episode", ylabel="normalized reward (k-means = 1)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    for ax in list(axes.flat)[len(cells) :]:
        ax.set_visible(False)
    fig.suptitle(f"Learning curves (moving average {window}; 95% bands over seeds)")
    save(plt, fig, path)


def _plot_differences(result: dict[str, Any], path: Path) -> None:
    """Paired AUC differences with 95% CIs: every arm against DQL (its control for the data arm),
    per cell, and the predictions' estimates with their margins."""
    plt = pyplot()
    if plt is None:
        return
    labels, means, halves = [], [], []
    for cell, st in result["cells"].items():
        for arm, row in st["arms"].items():
            ref = "DQL 2 steps" if "data" in arm else "DQL"
            d = row.get(f"auc - {ref}")
            if d is not None:
                labels.append(f"{cell}: {arm} - {ref}")
                means.append(d["mean"])
                halves.append(d["ci95"])
    for v in result["predictions"]:
        labels.append(f"{v['id']}: {v['prediction']}")
        means.append(v["estimate"]["mean"])
        halves.append(v["estimate"]["ci95"])
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(labels) + 1.2))
    y = np.arange(len(labels))[::-1]
    ax.errorbar(means, y, xerr=np.nan_to_num(halves), fmt="o", ms=3, capsize=2)
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_yticks(y, labels, fontsize=6)
    ax.set(xlabel="paired difference of normalized AUC (95% CI)",
           title="Paired differences per seed")  # fmt: skip
    ax.grid(alpha=0.3, axis="x")
    save(plt, fig, path)


__all__ = ["DEFINITIONS", "PAPER", "write_prediction"]
