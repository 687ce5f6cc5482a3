"""The ``construction`` report: paired per-seed differences (DT-QL minus QL, same seeds) per
construction time, build schedule and calibration budget; the break-even construction time,
table.md and ``construction.png`` (episodes to QL's final level vs T_c, with QL's line).

The outcomes, their censoring and the verdicts are the ``fidelity`` report's
(:mod:`twinrl.experiments.fidelity_report`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from twinrl.experiments import metrics
from twinrl.experiments.fidelity_report import (
    MIN_SEEDS,
    OUTCOMES,
    _by_label,
    _fmt,
    _outcome,
    _verdict,
)
from twinrl.experiments.plotting import pyplot, save

PARTS = {
    "construction": "Construction time: the twin (perfect once built) is usable after T_c "
    "physical steps; before that DT-QL learns physically",
    "schedule": "A twin under construction: its ap_rates bias shrinks to 0 while it is built",
    "calibration": "A twin calibrated from the run's first physical transitions "
    "(calibrator_for(env)), usable from then on",
}


def rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per twin-assisted variant: paired differences to QL and absolute outcomes."""
    runs = _by_label(summary["runs"])
    physical = runs[summary["design"]["physical"]]
    horizon, steps = summary["preset"]["episodes"], summary["horizon"]
    out = []
    for label in summary["design"]["labels"]:
        if label == summary["design"]["physical"]:
            continue
        twin = runs[label]
        seeds = sorted(set(twin) & set(physical))
        mine = {s: _outcome("ap", twin[s], physical[s], horizon) for s in seeds}
        ref = {s: _outcome("ap", physical[s], physical[s], horizon) for s in seeds}
        keys = [k for k, _, _ in OUTCOMES["ap"]]
        diff = {k: metrics.mean_ci([mine[s][k] - ref[s][k] for s in seeds]) for k in keys}
        first = twin[seeds[0]]
        out.append({
            "part": first["part"], "label": label, "level": first["level"], "seeds": len(seeds),
            "t_c_episodes": metrics.mean_ci([math.nan if "not_built" in twin[s]
                                             else twin[s]["ready_after"] / steps for s in seeds])
            .to_dict(),  # over the seeds where a twin was built
            "reach": metrics.mean_ci([mine[s]["reach"] for s in seeds]).to_dict(),
            "difference": {k: e.to_dict() for k, e in diff.items()},
            "verdict": {k: _verdict(diff[k], low) for k, _, low in OUTCOMES["ap"]},
            "twin_error_reward": metrics.mean_ci(
                [twin[s].get("twin_error", {}).get("reward", 0.0) for s in seeds]).to_dict(),
            "twin_started": [twin[s].get("twin_started") for s in seeds],
            "not_built": sum("not_built" in twin[s] for s in seeds),
            "twin_evaluations": float(np.mean([twin[s]["twin_evaluations"] for s in seeds])),
            "physical_steps": float(np.mean([twin[s]["physical_steps"] for s in seeds])),
        })  # fmt: skip
    return out


CONTRASTS = (("early (noisy)", "T_c = 0 (perfect twin)"), ("early (noisy)", "wait (accurate)"),
             ("start_below", "early (noisy)"), ("start_below", "wait (accurate)"))  # fmt: skip
"""Paired contrasts between twins (first minus second, same seeds): the build schedules."""


def contrasts(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Per :data:`CONTRASTS` pair present: the paired differences of every outcome."""
    runs = _by_label(summary["runs"])
    physical = runs[summary["design"]["physical"]]
    horizon = summary["preset"]["episodes"]
    out = []
    for a, b in (c for c in CONTRASTS if c[0] in runs and c[1] in runs):
        seeds = sorted(set(runs[a]) & set(runs[b]))
        mine = [_outcome("ap", runs[a][s], physical[s], horizon) for s in seeds]
        theirs = [_outcome("ap", runs[b][s], physical[s], horizon) for s in seeds]
        diff = {k: metrics.mean_ci([x[k] - y[k] for x, y in zip(mine, theirs, strict=True)])
                for k, _, _ in OUTCOMES["ap"]}  # fmt: skip
        out.append({"first": a, "second": b, "seeds": len(seeds),
                    "difference": {k: e.to_dict() for k, e in diff.items()},
                    "verdict": {k: _verdict(diff[k], low).replace("twin", "first")
                                for k, _, low in OUTCOMES["ap"]}})  # fmt: skip
    return out


def break_even(table: list[dict[str, Any]]) -> dict[str, Any]:
    """The smallest construction time whose paired speed-up is no longer significant (the CI of
    "episodes to QL's level" minus QL's reaches 0), and the largest one still paying off."""
    mine = sorted((r for r in table if r["part"] == "construction"), key=lambda r: r["level"])
    if any(r["seeds"] < MIN_SEEDS for r in mine):
        return {"fraction": None, "pays_off_up_to": None, "verdict": "too few seeds to decide"}
    paying = None
    for r in mine:
        if r["verdict"]["reach"] != "twin better":
            return {"fraction": r["level"], "t_c_episodes": r["t_c_episodes"]["mean"],
                    "pays_off_up_to": paying, "verdict": "decided"}  # fmt: skip
        paying = r["level"]
    return {"fraction": None, "pays_off_up_to": paying, "verdict": "pays off at every level"}


def write_construction(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """table.md and construction.png; rows and the break-even for summary.json."""
    out.mkdir(parents=True, exist_ok=True)
    table = rows(summary)
    even = break_even(table)
    p = summary["preset"]
    reach = list(summary["ql_reach"].values())
    lines = [
        "# When does building a twin pay off? Construction delay (issue 11)",
        "",
        f"Access-point selection, QL vs DT-QL n = 5: {p['seeds']} seeds x {p['episodes']} "
        f"episodes of {summary['horizon']} steps, {p['eval_episodes']} physical greedy evaluation "
        "episodes. Paired per-seed differences, DT-QL minus QL (same env and agent seeds), mean ± "
        "95% CI (Student t). Construction steps are physical steps of the same run, so the "
        "episodes to QL's final level include them; a run that never got there counts as the "
        f"budget + 1. Verdicts need at least {MIN_SEEDS} seeds. QL's own time to its final "
        f"level (per seed, sets T_c): {', '.join(map(str, reach))} episodes.",
        "",
        "| part | variant | T_c (episodes) | episodes to QL's level | "
        + " | ".join(f"Δ {h}" for _, h, _ in OUTCOMES["ap"])
        + " | twin error | twin evals / physical steps | verdict (reach; greedy; failures) |",
        "|" + "---|" * 10,
    ]
    for r in table:
        diffs = " | ".join(_fmt(r["difference"][k]) for k, _, _ in OUTCOMES["ap"])
        note = f" ({r['not_built']} seeds: no twin, some AP unseen)" if r["not_built"] else ""
        lines.append(
            f"| {r['part']} | {r['label']}{note} | {_fmt(r['t_c_episodes'])} | {_fmt(r['reach'])} "
            f"| {diffs} | {_fmt(r['twin_error_reward'])} | "
            f"{r['twin_evaluations']:.0f} / {r['physical_steps']:.0f} | "
            f"{'; '.join(r['verdict'].values())} |"
        )
    lines += ["", *(f"* **{k}**: {v}." for k, v in PARTS.items()), "", _even_text(even), ""]
    pairs = contrasts(summary)
    lines += ["Build schedules against each other (paired, first minus second):", "",
              "| first | second | " + " | ".join(f"Δ {h}" for _, h, _ in OUTCOMES["ap"])
              + " | verdict |", "|" + "---|" * 6]  # fmt: skip
    for c in pairs:
        diffs = " | ".join(_fmt(c["difference"][k]) for k, _, _ in OUTCOMES["ap"])
        lines.append(f"| {c['first']} | {c['second']} | {diffs} | "
                     f"{'; '.join(c['verdict'].values())} |")  # fmt: skip
    lines.append("")
    if _plot(summary, table, out / "construction.png"):
        lines += ["![construction](construction.png)", ""]
    (out / "table.md").write_text("\n".join(lines))
    return {"rows": table, "break_even": even, "contrasts": pairs}


def _even_text(even: dict[str, Any]) -> str:
    if even["verdict"] != "decided":
        return f"Break-even construction time: {even['verdict']}."
    up = even["pays_off_up_to"]
    paying = "at no tested T_c" if up is None else f"up to T_c = {up:.0%} of QL's time"
    return (f"Break-even construction time: the twin pays off {paying}; from T_c = "
            f"{even['fraction']:.0%} of QL's time (~{even['t_c_episodes']:.0f} episodes) the "
            "paired speed-up is no longer significant.")  # fmt: skip


def _plot(summary: dict[str, Any], table: list[dict[str, Any]], path: Path) -> bool:
    """Episodes to QL's final level vs T_c (construction and calibration), QL's line."""
    plt = pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for part, marker in (("construction", "o"), ("calibration", "s")):
        mine = sorted((r for r in table if r["part"] == part), key=lambda r: r["level"])
        x = np.array([r["t_c_episodes"]["mean"] for r in mine])
        y = np.array([r["reach"]["mean"] for r in mine])
        half = np.nan_to_num(np.array([r["reach"]["ci95"] for r in mine]))
        (line,) = ax.plot(x, y, marker=marker, label=f"DT-QL n=5, {part}")
        ax.fill_between(x, y - half, y + half, alpha=0.2, color=line.get_color())
    horizon = summary["preset"]["episodes"]
    ql = metrics.mean_ci([_outcome("ap", r, r, horizon)["reach"] for r in summary["runs"]
                          if r["label"] == summary["design"]["physical"]])  # fmt: skip
    ax.axhline(ql.mean, color="k", lw=1.0, label="QL (physical only)")
    ax.axhspan(ql.mean - ql.half_width, ql.mean + ql.half_width, color="k", alpha=0.1)
    ax.set(xlabel="T_c: physical episodes before the twin is usable",
           ylabel="physical episodes to QL's final level")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Access-point selection: construction delay vs benefit")
    save(plt, fig, path)
    return True
