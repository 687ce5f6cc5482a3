"""The ``differential`` experiment's report: tables, verdicts and learning-curve figures from the
runs of :mod:`twinrl.experiments.differential`.

Every comparison pairs the runs of one seed. The outcomes, per run:

* **greedy reward**: the trained greedy policy's mean reward per step on the seed's physical
  evaluation episodes (the same episodes for every method of a seed);
* **AUC**: the mean physical reward per step over all training episodes (higher: learned sooner);
* **episodes to the single learner's level**: the first physical episode from which the run's
  smoothed curve stays at or above the final smoothed level of the same seed's single physical
  learner (``QL`` / ``DQL``), :func:`twinrl.experiments.ap_metrics.episodes_to_level`.

The **best single configuration** is the single configuration (one differential learner trained
alone physically) with the highest mean greedy reward over seeds: chosen in hindsight, on the
very runs it is compared with, so it is an optimistic reference.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from twinrl.experiments import ap_metrics, metrics, stats
from twinrl.experiments.differential import DIFFERENTIAL, SINGLES
from twinrl.experiments.episodic import moving_average
from twinrl.experiments.plotting import band, finish, pyplot

PAPER = (
    "users can adopt the best-performing agent directly, draw on parameters stored from "
    "different training methods, or share all policies with a new agent by knowledge "
    "distillation (paper 000, Section II-B; no numbers are given)"
)
TITLES = {"ap": "access-point selection (tabular)", "uav": "multi-UAV (deep)"}
BOOTSTRAP_SEED = 0


def write_differential(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """``table.md`` and one ``differential_<case>.png`` per case; returns the per-case rows,
    comparisons and checks for ``summary.json``."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Differential twins: K learners in their own free-running domains (paper 000, II-B)",
        "",
        f"Paper: {PAPER}. Every method's run is paired with the same seed's runs of the others; "
        "policies are judged on the physical env (seeded greedy evaluation episodes).",
    ]
    result: dict[str, Any] = {"cases": {}, "checks": []}
    for name in summary["cases"]:
        runs = [r for r in summary["runs"] if r["case"] == name]
        section, case = _case(summary, name, runs)
        png = f"differential_{name}.png"
        _plot(summary, name, runs, out / png)
        lines += ["", *section, "", f"![learning curves]({png})"]
        result["cases"][name] = case
        result["checks"] += case["checks"]
    for name in summary.get("skipped", []):
        lines += [
            "",
            f"Not run: the {TITLES[name]} case (needs torch: pip install 'twinrl[torch]').",
        ]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    return result


def _case(
    summary: dict[str, Any], name: str, runs: list[dict[str, Any]]
) -> tuple[list[str], dict[str, Any]]:
    info, preset = summary["cases"][name], summary["preset"][name]
    ref, window = info["reference"], preset["window"]
    labels = info["methods"]
    by = {lb: sorted((r for r in runs if r["label"] == lb), key=lambda r: r["seed"])
          for lb in labels}  # fmt: skip
    seeds = [r["seed"] for r in by[ref]]
    level = {r["seed"]: float(moving_average(r["episode_return"], window)[-1]) for r in by[ref]}
    greedy = {lb: np.array([r["greedy_reward"] for r in rs]) for lb, rs in by.items()}
    auc = {lb: np.array([metrics.area_under_curve(r["episode_return"]) for r in rs])
           for lb, rs in by.items()}  # fmt: skip
    singles = [lb for lb in SINGLES[name] if lb in by]
    best_single = max(singles, key=lambda lb: float(greedy[lb].mean()))
    rows = []
    for lb in labels:
        times = [ap_metrics.episodes_to_level(r["episode_return"], level[r["seed"]], window)
                 for r in by[lb]]  # fmt: skip
        work = np.mean([r["twin_evaluations"] / r["iterations"] for r in by[lb]])
        rows.append({
            "method": lb,
            "seeds": len(by[lb]),
            "greedy_reward": metrics.mean_ci(greedy[lb]).to_dict(),
            "greedy_iqm": _interval(greedy[lb]),
            "auc": metrics.mean_ci(auc[lb]).to_dict(),
            "episodes_to_reference_level": times,
            "median_episodes": metrics.median_time(times),
            "twin_steps_per_physical_step": float(work),
            "pairs_per_step": _pairs(by[lb]),
        })  # fmt: skip
    comparisons, checks = [], []
    for lb in (lb for lb in DIFFERENTIAL[name] if lb in by):
        for other in dict.fromkeys((ref, best_single)):  # once where the best is the reference
            comp, diff = _compare(by, greedy, auc, lb, other)
            comparisons.append(comp)
            verdict = ap_metrics.decided(comp["greedy_verdict"], comp["n"],
                                         preset=summary["preset"]["name"])  # fmt: skip
            low, high = comp["p_improvement_ci"]
            checks.append(
                f"{name}: greedy reward {lb} - {other} = {diff} (paired over {comp['n']} seeds; "
                f"AUC difference {comp['auc_text']}; P({lb} > {other}) = "
                f"{comp['p_improvement']:.2f} [{low:.2f}, {high:.2f}]; target: above 0): {verdict}"
            )
    winners = _winners(by, DIFFERENTIAL[name])
    table = _table(rows, preset["episodes"], preset["seeds"])
    section = [
        f"## {TITLES[name]}",
        "",
        f"{preset['seeds']} paired seeds, {preset['episodes']} physical episodes, sync (and twin "
        f"evaluation) every {preset['sync_every']} physical steps; reference: {ref} (its final "
        f"smoothed level per seed, window {window}). Best single configuration in hindsight: "
        f"**{best_single}**.",
        "",
        *table,
        "",
        "Paired comparisons (greedy reward on the physical evaluation episodes):",
        "",
        *[f"* {c}" for c in checks],
        "",
        "Which learner won the twin evaluations (share of sync moments, over seeds; the last "
        "winner per seed):",
        "",
        *[f"* {lb}: {w['text']}" for lb, w in winners.items()],
    ]
    case = {"rows": rows, "best_single": best_single, "comparisons": comparisons,
            "winners": winners, "checks": checks, "reference_level": [level[s] for s in seeds]}  # fmt: skip
    return section, case


def _interval(x: np.ndarray) -> dict[str, float]:
    est = stats.stratified_bootstrap_ci(x, seed=BOOTSTRAP_SEED)
    return {"iqm": est.point, "low": est.low, "high": est.high, "n": est.n}


def _pairs(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Distinct (state, action) pairs per physical step: the physical data's, the re-synced twin
    domains' (ActionTrials) and the free-running domains' (DifferentialTwins), where recorded."""
    out: dict[str, float] = {}
    for key, get in (("physical", lambda r: r.get("physical_pairs")),
                     ("twin_resynced", lambda r: r.get("twin_pairs_resynced")),
                     ("twin_free_running",
                      lambda r: r.get("differential", {}).get("distinct_pairs"))):  # fmt: skip
        values = [get(r) / r["iterations"] for r in runs if get(r)]
        if values:
            out[key] = float(np.mean(values))
    return out


def _compare(
    by: dict[str, list[dict[str, Any]]],
    greedy: dict[str, np.ndarray],
    auc: dict[str, np.ndarray],
    lb: str,
    other: str,
) -> tuple[dict[str, Any], metrics.Estimate]:
    """The paired greedy-reward and AUC differences of ``lb`` over ``other`` on the seeds both
    ran, the verdict on the first, and P(lb > other) with its bootstrap CI."""
    mine, theirs = ([r["seed"] for r in by[x]] for x in (lb, other))
    common = sorted(set(mine) & set(theirs))
    i, j = [mine.index(s) for s in common], [theirs.index(s) for s in common]
    diff = metrics.mean_ci(greedy[lb][i] - greedy[other][j])
    auc_diff = metrics.mean_ci(auc[lb][i] - auc[other][j])
    poi = stats.probability_of_improvement_ci(greedy[lb][i], greedy[other][j],
                                              seed=BOOTSTRAP_SEED)  # fmt: skip
    return {
        "method": lb,
        "versus": other,
        "n": diff.n,
        "greedy_diff": diff.to_dict(),
        "greedy_verdict": metrics.verdict(diff, 0.0),
        "auc_diff": auc_diff.to_dict(),
        "auc_text": str(auc_diff),
        "p_improvement": poi.point,
        "p_improvement_ci": [poi.low, poi.high],
    }, diff


def _winners(by: dict[str, list[dict[str, Any]]], labels: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for lb in labels:
        records = [r["differential"] for r in by.get(lb, []) if "differential" in r]
        if not records:
            continue
        total = sum(rec["decisions"] for rec in records)
        wins: dict[str, int] = {}
        for rec in records:
            for learner, count in rec["wins"].items():
                wins[learner] = wins.get(learner, 0) + count
        share = {k: v / max(total, 1) for k, v in wins.items()}
        last = [rec["winner"] for rec in records]
        adoptions = sum(rec["adoptions"] for rec in records) / max(total, 1)
        text = (", ".join(f"{k} {v:.0%}" for k, v in sorted(share.items(), key=lambda kv: -kv[1]))
                + f"; last winner per seed: {', '.join(map(str, last))}; adopted at "
                f"{adoptions:.0%} of the sync moments")  # fmt: skip
        distill = [rec["distillations"] for rec in records if rec["distillations"]["count"]]
        if distill:
            before = np.mean([d["before_mean"] for d in distill])
            after = np.mean([d["after_mean"] for d in distill])
            text += (f"; the student's disagreement with the consensus (share of the learners' "
                     f"states) {before:.3f} before, {after:.3f} after each distillation")  # fmt: skip
        out[lb] = {"share": share, "last": last, "adoptions": adoptions, "text": text}
    return out


def _table(rows: list[dict[str, Any]], episodes: int, seeds: int) -> list[str]:
    head = ("| method | greedy reward (physical) | IQM [95% CI] | AUC | episodes to the single "
            "learner's level (median) | twin steps / physical step | distinct (s, a) / "
            "physical step |")  # fmt: skip
    out = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        g, a, q = r["greedy_reward"], r["auc"], r["greedy_iqm"]
        med = r["median_episodes"]
        reach = f"> {episodes}" if math.isinf(med) else f"{med:.0f}"
        pairs = "; ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in r["pairs_per_step"].items())
        fewer = "" if r["seeds"] == seeds else f" ({r['seeds']} seeds)"
        out.append(
            f"| {r['method']}{fewer} | {g['mean']:.4g} ± {g['ci95']:.2g} | {q['iqm']:.4g} "
            f"[{q['low']:.4g}, {q['high']:.4g}] | {a['mean']:.4g} ± {a['ci95']:.2g} | {reach} | "
            f"{r['twin_steps_per_physical_step']:.3g} | {pairs or '-'} |"
        )
    return out


def _plot(summary: dict[str, Any], name: str, runs: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return
    window = summary["preset"][name]["window"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for lb in summary["cases"][name]["methods"]:
        curves = np.array([moving_average(r["episode_return"], window)
                           for r in runs if r["label"] == lb])  # fmt: skip
        half = np.array([metrics.mean_ci(curves[:, e]).half_width for e in range(curves.shape[1])])
        band(ax, np.arange(1, curves.shape[1] + 1), curves.mean(axis=0), half, lb)
    ax.set_xlabel("physical episode")
    ax.set_ylabel(f"reward per step (moving average, {window} episodes)")
    ax.set_title(f"Differential twins: {TITLES[name]}")
    finish(plt, fig, ax, path)
