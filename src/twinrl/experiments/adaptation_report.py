"""The report of the ``adaptation`` experiment: per-run outcomes, paired contrasts with 95% CIs
and verdicts, learning-curve figures around the deployment and the change point.

Outcomes (per run; :mod:`.adaptation_design` names the arms):

* held-out: ``jump`` (the greedy policy's mean reward per task before any physical step on the
  new scenario: the jump-start), ``auc`` (mean of the greedy curve over the physical episodes)
  and ``reach`` (physical episodes until the curve, smoothed over :data:`SMOOTH` points, stays
  within :data:`RTOL` of the same seed's ``scratch`` final level; censored at the budget + one
  evaluation interval).
* change: ``auc_after`` (mean of the greedy curve after the change) and ``recover`` (physical
  episodes after the change until the smoothed curve stays within :data:`RTOL` of the same seed's
  ``scratch`` final level; censored likewise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from twinrl.experiments import metrics, stats
from twinrl.experiments.adaptation_design import CHANGE_ARMS, HELD_OUT_ARMS, RTOL, SMOOTH
from twinrl.experiments.episodic import moving_average
from twinrl.experiments.plotting import band, finish, pyplot

OUTCOMES = {
    "held-out": (("jump", "jump-start (reward/task)", False), ("auc", "mean greedy reward", False),
                 ("reach", "episodes to scratch's level", True)),
    "change": (("auc_after", "mean greedy reward after the change", False),
               ("recover", "episodes to recover", True)),
}  # fmt: skip
"""Per part: (key, label, lower is better)."""
CONTRASTS = {
    "held-out": (("twin: sampled", "scratch"), ("twin: sampled", "fine-tune"),
                 ("fine-tune", "scratch"), ("twin: target", "scratch"),
                 ("twin: target", "fine-tune"), ("twin: target", "twin: sampled")),
    "change": (("twin", "fine-tune"), ("twin", "scratch"), ("fine-tune", "scratch"),
               ("twin + aware replay", "twin + uniform replay"),
               ("twin + aware replay", "twin")),
}  # fmt: skip
"""Per part: (arm, reference) pairs, compared seed by seed."""


def _final(values: list[float]) -> float:
    tail = max(1, len(values) // 5)
    return float(np.mean(values[-tail:]))


def _time_to(episodes: list[int], values: list[float], level: float, censor: int) -> int:
    """Episodes until the smoothed curve stays within RTOL of ``level`` (``censor`` if never)."""
    smooth = moving_average(values, SMOOTH)
    i = metrics.convergence_time(smooth, level, rtol=RTOL)
    return censor if i is None else int(episodes[i - 1])


def outcomes(summary: dict[str, Any]) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """``{part: {arm: {seed: {outcome: value}}}}``."""
    size = summary["preset"]
    runs: dict[str, dict[str, dict[int, dict[str, Any]]]] = {"held-out": {}, "change": {}}
    for r in summary["runs"]:
        runs[r["part"]].setdefault(r["label"], {})[r["seed"]] = r
    out: dict[str, dict[str, dict[int, dict[str, float]]]] = {"held-out": {}, "change": {}}
    censor = size["episodes"] + size["eval_every"]
    for label, by_seed in runs["held-out"].items():
        for s, r in by_seed.items():
            level = _final(runs["held-out"]["scratch"][s]["greedy"])
            out["held-out"].setdefault(label, {})[s] = {
                "jump": r["greedy"][0], "auc": float(np.mean(r["greedy"])),
                "reach": _time_to(r["episodes"], r["greedy"], level, censor),
                "twin_steps": r["twin_steps"], "prior_physical_steps": r["prior_physical_steps"],
            }  # fmt: skip
    for label, by_seed in runs["change"].items():
        for s, r in by_seed.items():
            ep, g = _after(r, size["before"])
            level = _final(_after(runs["change"]["scratch"][s], size["before"])[1])
            out["change"].setdefault(label, {})[s] = {
                "auc_after": float(np.mean(g)),
                "recover": _time_to([e - size["before"] for e in ep], g, level, censor),
                "twin_steps": r["twin_steps"], "prior_physical_steps": 0,
            }  # fmt: skip
    return out


def _after(run: dict[str, Any], before: int) -> tuple[list[int], list[float]]:
    pairs = [(e, v) for e, v in zip(run["episodes"], run["greedy"], strict=True) if e > before]
    return [e for e, _ in pairs], [v for _, v in pairs]


def _verdict(diff: metrics.Estimate, lower_is_better: bool) -> str:
    v = metrics.verdict(diff, 0.0, higher_is_better=not lower_is_better)
    if v == metrics.UNDECIDED and diff.n >= metrics.MIN_SEEDS_TO_DECIDE:
        return "undecided (the CI includes 0)"
    return {metrics.MET: "better", metrics.NOT_MET: "WORSE"}.get(v, v)


def contrast_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Every contrast's paired differences (mean ± t CI, IQM with a bootstrap CI, probability of
    improvement with its CI) and verdict, per outcome."""
    table = outcomes(summary)
    rows = []
    for part, pairs in CONTRASTS.items():
        for arm, ref in pairs:
            if arm not in table[part] or ref not in table[part]:
                continue
            seeds = sorted(set(table[part][arm]) & set(table[part][ref]))
            row: dict[str, Any] = {"part": part, "arm": arm, "reference": ref,
                                   "seeds": len(seeds), "outcomes": {}}  # fmt: skip
            for key, _, low in OUTCOMES[part]:
                a = np.array([table[part][arm][s][key] for s in seeds], dtype=np.float64)
                b = np.array([table[part][ref][s][key] for s in seeds], dtype=np.float64)
                diff = metrics.mean_ci(a - b)
                better_a, better_b = (-a, -b) if low else (a, b)
                row["outcomes"][key] = {
                    "difference": diff.to_dict(),
                    "iqm": stats.stratified_bootstrap_ci(a - b).to_dict(),
                    "p_improvement": stats.probability_of_improvement_ci(better_a, better_b)
                    .to_dict(),
                    "verdict": _verdict(diff, low),
                }  # fmt: skip
            rows.append(row)
    return rows


def arm_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Per part and arm: each outcome's mean ± 95% CI, and the twin and prior physical work."""
    table = outcomes(summary)
    rows = []
    for part, arms in (("held-out", HELD_OUT_ARMS), ("change", CHANGE_ARMS)):
        for arm in arms:
            if arm not in table[part]:
                continue
            runs = list(table[part][arm].values())
            keys = [k for k, _, _ in OUTCOMES[part]] + ["twin_steps", "prior_physical_steps"]
            rows.append({"part": part, "arm": arm, "seeds": len(runs),
                         **{k: metrics.mean_ci([r[k] for r in runs]).to_dict() for k in keys}})  # fmt: skip
    return rows


def write_adaptation(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """table.md, ``adaptation_held_out.png`` and ``adaptation_change.png``; the rows and
    contrasts for summary.json."""
    out.mkdir(parents=True, exist_ok=True)
    size = summary["preset"]
    arms, pairs = arm_rows(summary), contrast_rows(summary)
    lines = [
        "# Scenario adaptation: pre-training across scenarios and re-training after a change "
        "(issue 13)", "",
        f"Access-point selection, tabular Q-learning, {size['seeds']} paired seeds "
        f"({size['name']} preset{'; ' * stats.too_few_seeds(size['seeds'])}"
        f"{stats.seed_warning(size['seeds'])}). Every policy is judged on "
        "the physical system: the greedy policy's mean reward per task over 10 passes of the "
        f"road in the current scenario, every {size['eval_every']} physical episodes. Held-out: "
        f"{size['episodes']} physical episodes on a scenario never trained on; the twin arms "
        f"pre-train for {size['twin_steps']} twin steps (across {size['scenarios']} sampled "
        f"scenarios, or in a twin of the target), fine-tune trains {size['before']} physical "
        "episodes on the base scenario first. Change: the network changes scenario after "
        f"{size['before']} physical episodes (an AP may fail) and runs {size['episodes']} more; "
        f"the twin re-trains for {size['twin_steps']} twin steps when it detects the change. "
        f"Times to a level: the curve smoothed over {SMOOTH} evaluations must stay within "
        f"{RTOL:.0%} of the same seed's scratch final level; censored runs count the budget + "
        "one interval.", "",
    ]  # fmt: skip
    for part in ("held-out", "change"):
        lines += ["", f"**{part}**: mean ± 95% CI over seeds", "",
                  "| arm | " + " | ".join(lb for _, lb, _ in OUTCOMES[part])
                  + " | twin steps | prior physical steps |",
                  "|---" * (3 + len(OUTCOMES[part])) + "|"]  # fmt: skip
        for r in (r for r in arms if r["part"] == part):
            cells = [str(metrics.Estimate(**_est(r[k]))) for k, _, _ in OUTCOMES[part]]
            lines.append(f"| {r['arm']} | " + " | ".join(cells) + f" | {r['twin_steps']['mean']:.0f}"
                         f" | {r['prior_physical_steps']['mean']:.0f} |")  # fmt: skip
    lines += ["", "Paired differences, arm minus reference: mean ± 95% CI (Student t), IQM "
              "[95% stratified bootstrap CI], P(arm better) [CI]; verdict from the t interval "
              f"(at least {metrics.MIN_SEEDS_TO_DECIDE} seeds).", "",
              "| part | arm - reference | outcome | mean ± CI | IQM [CI] | P(better) [CI] | "
              "verdict |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in pairs:
        for key, o in c["outcomes"].items():
            lines.append(
                f"| {c['part']} | {c['arm']} - {c['reference']} | {key} | "
                f"{metrics.Estimate(**_est(o['difference']))} | {_iv(o['iqm'])} | "
                f"{_iv(o['p_improvement'])} | {o['verdict']} |"
            )
    for name, plot in (("adaptation_held_out.png", _plot_held_out),
                       ("adaptation_change.png", _plot_change)):  # fmt: skip
        if plot(summary, out / name):
            lines += ["", f"![{name}]({name})"]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    return {"arms": arms, "contrasts": pairs}


def _est(d: dict[str, Any]) -> dict[str, Any]:
    return {"mean": d["mean"], "half_width": d["ci95"], "n": d["n"]}


def _iv(d: dict[str, Any]) -> str:
    return f"{d['point']:.3g} [{d['ci_low']:.3g}, {d['ci_high']:.3g}]"


def _curves(summary: dict[str, Any], part: str, arm: str) -> tuple[np.ndarray, np.ndarray]:
    runs = [r for r in summary["runs"] if r["part"] == part and r["label"] == arm]
    return np.asarray(runs[0]["episodes"]), np.array([r["greedy"] for r in runs])


def _plot(summary: dict[str, Any], part: str, arms: tuple[str, ...], path: Path,
          xmin: float, change: float | None) -> bool:  # fmt: skip
    plt = pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for arm in arms:
        if not any(r["label"] == arm and r["part"] == part for r in summary["runs"]):
            continue
        x, curves = _curves(summary, part, arm)
        half = [metrics.mean_ci(curves[:, j]).half_width for j in range(curves.shape[1])]
        keep = x >= xmin
        band(ax, x[keep], curves.mean(axis=0)[keep], np.asarray(half)[keep], arm)
    if change is not None:
        ax.axvline(change, color="k", lw=1.0, ls="--", label="scenario change")
    ax.set(xlabel="physical episodes", ylabel="greedy reward per task (physical)")
    ax.set_title(f"scenario adaptation, {part} ({summary['preset']['seeds']} seeds, 95% CI)",
                 fontsize=10)  # fmt: skip
    finish(plt, fig, ax, path)
    return True


def _plot_held_out(summary: dict[str, Any], path: Path) -> bool:
    return _plot(summary, "held-out", HELD_OUT_ARMS, path, 0, None)


def _plot_change(summary: dict[str, Any], path: Path) -> bool:
    before = summary["preset"]["before"]
    return _plot(summary, "change", CHANGE_ARMS, path, max(0, before - 100), before)


__all__ = ["CONTRASTS", "OUTCOMES", "arm_rows", "contrast_rows", "outcomes", "write_adaptation"]
