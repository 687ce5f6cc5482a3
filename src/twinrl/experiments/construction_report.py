"""The ``construction`` report: per case study (access points, edge scheduling, multi-UAV), the
paired per-seed differences (twin-assisted minus physical-only, same seeds) per construction time,
build schedule, calibration budget and for online recalibration; the break-even construction
time, paired contrasts between the ways of building the twin, table.md and
``construction_<case>.png`` (physical time to converge vs T_c and vs calibration data, with the
physical-only learner's line).

The outcomes, their censoring and the verdicts are the ``fidelity`` report's
(:mod:`twinrl.experiments.fidelity_report`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from twinrl.experiments import metrics
from twinrl.experiments.construction_design import RECALIBRATION, construction_label
from twinrl.experiments.fidelity_report import (
    MIN_SEEDS,
    OUTCOMES,
    TITLES,
    _by_label,
    _outcome,
    _verdict,
    aggregate_cells,
    aggregates,
)
from twinrl.experiments.plotting import pyplot, save
from twinrl.experiments.stats import AGGREGATE_NOTE

PARTS = {
    "construction": "Construction time: the twin (perfect once built) is usable after T_c "
    "physical steps; before that the twin-assisted learner learns physically",
    "schedule": "A twin under construction: its {field} bias of {bias:+g} shrinks to 0 while it "
    "is built; used at once (early), once accurate (wait), or from the fidelity-triggered start "
    "(start_below = {start_below:g})",
    "calibration": "A twin calibrated from the run's first physical transitions "
    "(calibrator_for(env)), usable from then on",
    "recalibration": "The schedule's biased twin ({field} {bias:+g}) used from T_c = 0 and "
    "re-estimated online from the physical transitions it mirrors every {recalibrate_every} "
    "steps (DigitalTwin(recalibrate=Recalibration(every=...)))",
}
PERFECT = construction_label(0.0)
CONTRASTS = (("early (noisy)", PERFECT), ("early (noisy)", "wait (accurate)"),
             ("start_below", "early (noisy)"), ("start_below", "wait (accurate)"))  # fmt: skip
"""Paired contrasts between twins (first minus second, same seeds): the build schedules."""
RECALIBRATION_CONTRASTS = ((RECALIBRATION, PERFECT), (RECALIBRATION, "early (noisy)"))
"""Online recalibration against the perfect twin and the improving twin; :func:`contrasts` adds
each calibration budget (a twin built from a fixed data set)."""


def _budget(summary: dict[str, Any], name: str) -> int:
    return int(summary["preset"][name]["episodes"])


def rows(summary: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """One row per twin-assisted variant of case study ``name``: paired differences to the
    physical-only learner and absolute outcomes (``reach``: its time to converge)."""
    case = summary["cases"][name]
    runs, design = _by_label(case["runs"]), case["design"]
    physical = runs[design["physical"]]
    budget, steps, outcomes = _budget(summary, name), case["horizon"], OUTCOMES[name]
    speed = outcomes[0][0]
    out = []
    for label in design["labels"]:
        if label == design["physical"]:
            continue
        twin = runs[label]
        seeds = sorted(set(twin) & set(physical))
        mine = {s: _outcome(name, twin[s], physical[s], budget) for s in seeds}
        ref = {s: _outcome(name, physical[s], physical[s], budget) for s in seeds}
        diff = {k: metrics.mean_ci([mine[s][k] - ref[s][k] for s in seeds]) for k, _, _ in outcomes}
        first = twin[seeds[0]]
        row = {
            "part": first["part"], "label": label, "level": first["level"], "seeds": len(seeds),
            "t_c_episodes": metrics.mean_ci([math.nan if "not_built" in twin[s]
                                             else twin[s]["ready_after"] / steps for s in seeds])
            .to_dict(),  # over the seeds where a twin was built
            "reach": metrics.mean_ci([mine[s][speed] for s in seeds]).to_dict(),
            "difference": {k: e.to_dict() for k, e in diff.items()},
            "verdict": {k: _verdict(diff[k], low) for k, _, low in outcomes},
            "aggregate": aggregates([mine[s] for s in seeds], [ref[s] for s in seeds], outcomes),
            "twin_error_reward": metrics.mean_ci(
                [twin[s].get("twin_error", {}).get("reward", 0.0) for s in seeds]).to_dict(),
            "twin_started": [twin[s].get("twin_started") for s in seeds],
            "not_built": sum("not_built" in twin[s] for s in seeds),
            "twin_evaluations": float(np.mean([twin[s]["twin_evaluations"] for s in seeds])),
            "physical_steps": float(np.mean([twin[s]["physical_steps"] for s in seeds])),
        }  # fmt: skip
        if "recalibrations" in first:
            row["recalibrations"] = [twin[s]["recalibrations"] for s in seeds]
        out.append(row)
    return out


def contrasts(summary: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Per pair of :data:`CONTRASTS`, :data:`RECALIBRATION_CONTRASTS` and (online recalibration,
    each calibration budget) present: the paired differences of every outcome."""
    case = summary["cases"][name]
    runs = _by_label(case["runs"])
    physical = runs[case["design"]["physical"]]
    budget, outcomes = _budget(summary, name), OUTCOMES[name]
    calibrated = [lb for lb in case["design"]["labels"] if lb.startswith("calibrated after")]
    pairs = [*CONTRASTS, *RECALIBRATION_CONTRASTS, *((RECALIBRATION, lb) for lb in calibrated)]
    out = []
    for a, b in (c for c in pairs if c[0] in runs and c[1] in runs):
        seeds = sorted(set(runs[a]) & set(runs[b]))
        mine = [_outcome(name, runs[a][s], physical[s], budget) for s in seeds]
        theirs = [_outcome(name, runs[b][s], physical[s], budget) for s in seeds]
        diff = {k: metrics.mean_ci([x[k] - y[k] for x, y in zip(mine, theirs, strict=True)])
                for k, _, _ in outcomes}  # fmt: skip
        out.append({"first": a, "second": b, "seeds": len(seeds),
                    "difference": {k: e.to_dict() for k, e in diff.items()},
                    "verdict": {k: _verdict(diff[k], low).replace("twin", "first")
                                for k, _, low in outcomes}})  # fmt: skip
    return out


def break_even(table: list[dict[str, Any]], key: str = "reach") -> dict[str, Any]:
    """Where the twin stops paying off: the largest construction time whose paired speed-up is
    significant (the CI of the time to converge minus the physical learner's is below 0) and the
    next tested one, from which it no longer is; ``key`` is the speed outcome (edge scheduling:
    ``convergence``). Smaller T_c without a significant speed-up (few seeds) are listed."""
    mine = sorted((r for r in table if r["part"] == "construction"), key=lambda r: r["level"])
    if any(r["seeds"] < MIN_SEEDS for r in mine):
        return {"fraction": None, "pays_off_up_to": None, "verdict": "too few seeds to decide"}
    better = [r["level"] for r in mine if r["verdict"][key] == "twin better"]
    paying = max(better) if better else None
    after = [r for r in mine if paying is None or r["level"] > paying]
    if not after:
        return {"fraction": None, "pays_off_up_to": paying, "verdict": "pays off at every level"}
    gaps = [r["level"] for r in mine if paying is not None and r["level"] < paying
            and r["level"] not in better]  # fmt: skip
    return {"fraction": after[0]["level"], "t_c_episodes": after[0]["t_c_episodes"]["mean"],
            "pays_off_up_to": paying, "not_significant_below": gaps, "verdict": "decided"}  # fmt: skip


def write_construction(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """table.md and one ``construction_<case>.png`` per case study; per case its rows, break-even
    and contrasts for summary.json."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# When does building a twin pay off? Construction delay (issue 11)",
        "",
        "Paired per-seed differences, twin-assisted minus physical-only (same env and agent "
        "seeds, same task instance), mean ± 95% CI (Student t). Construction steps are physical "
        "steps of the same run, so the time to converge includes them; a run that never got "
        "there counts as the budget + 1 (censored). T_c fractions are of the same seed's "
        f"physical-only time to converge. Verdicts need at least {MIN_SEEDS} paired seeds. "
        "*twin error* = the measured mean one-step reward error of the twin (0 for a perfect "
        "twin, which is not measured).",
        "",
    ]
    result: dict[str, Any] = {"cases": {}, "skipped": dict(summary.get("skipped", {}))}
    for name in summary["cases"]:
        table = rows(summary, name)
        even = break_even(table, OUTCOMES[name][0][0])
        pairs = contrasts(summary, name)
        result["cases"][name] = {"rows": table, "break_even": even, "contrasts": pairs}
        lines += _case_lines(summary, name, table, even, pairs)
        if _plot(summary, name, table, out / f"construction_{name}.png"):
            lines += [f"![{name}](construction_{name}.png)", ""]
    for name, why in result["skipped"].items():
        lines += [f"Not run: the {name} case study ({why}).", ""]
    (out / "table.md").write_text("\n".join(lines))
    return result


def _size(summary: dict[str, Any], name: str) -> str:
    p, case = summary["preset"][name], summary["cases"][name]
    physical = case["design"]["physical"]
    times = ", ".join(map(str, case["physical_reach"].values()))
    if name == "edge":
        size = (f"N = {p['n_tasks']}, phi = {p['phi']}, {p['episodes']} physical iterations for "
                f"{physical}, {p['seeds']} task instances (one seed each), greedy evaluated every "
                f"{p['eval_every']} iterations; a twin-assisted run stops {p['settle']} "
                "iterations after its twin is built and improved. Speed: iterations until the "
                "greedy evaluation stays at the exact optimum")  # fmt: skip
    else:
        size = (f"{p['seeds']} seeds x {p['episodes']} episodes of {case['horizon']} steps, "
                f"{p['eval_episodes']} physical greedy evaluation episodes. Speed: episodes "
                f"until the moving average ({p['window']} episodes) stays at the same seed's "
                f"{physical} final level")  # fmt: skip
    return f"{size}. {physical}'s own time to converge (per seed, sets T_c): {times}."


def _variant(r: dict[str, Any]) -> str:
    """A row's variant with what happened to its twin."""
    notes = []
    if r["not_built"]:
        notes.append(f"{r['not_built']} seeds: no twin could be calibrated")
    if r["label"] == "start_below":
        opened = [t for t in r["twin_started"] if t is not None]
        notes.append(f"opened at step {min(opened)}-{max(opened)}" if opened else "never opened")
    if "recalibrations" in r:
        notes.append(f"{min(r['recalibrations'])}-{max(r['recalibrations'])} re-estimates")
    return r["label"] + (f" ({'; '.join(notes)})" if notes else "")


def _case_lines(
    summary: dict[str, Any],
    name: str,
    table: list[dict[str, Any]],
    even: dict[str, Any],
    pairs: list[dict[str, Any]],
) -> list[str]:
    case, outcomes = summary["cases"][name], OUTCOMES[name]
    design, unit = case["design"], case["design"]["unit"]
    lines = [f"## {TITLES[name]}", "", _size(summary, name), "",
             f"| part | variant | T_c ({unit}) | {outcomes[0][1]} | "
             + " | ".join(f"Δ {h}" for _, h, _ in outcomes)
             + " | twin IQM | P(twin better) | twin error | twin evals / physical steps | verdict ("
             + "; ".join(k for k, _, _ in outcomes) + ") |",
             "|" + "---|" * (9 + len(outcomes))]  # fmt: skip
    for r in table:
        diffs = " | ".join(_est(r["difference"][k]) for k, _, _ in outcomes)
        lines.append(
            f"| {r['part']} | {_variant(r)} | {_est(r['t_c_episodes'], False)} | "
            f"{_est(r['reach'], False)} | {diffs} | {aggregate_cells(r, outcomes[0][0])} | "
            f"{_est(r['twin_error_reward'], False)} | "
            f"{r['twin_evaluations']:.0f} / {r['physical_steps']:.0f} | "
            f"{'; '.join(r['verdict'].values())} |"
        )
    lines += ["", f"Twin IQM and P(twin better): of the {outcomes[0][1]}; "
              + AGGREGATE_NOTE.replace("the reference", "the physical-only learner"),
              "", *(f"* **{k}**: {v.format(**design)}." for k, v in PARTS.items()), "",
              _even_text(even, unit, design["physical"]), "",
              "Ways of building the twin against each other (paired, first minus second):", "",
              "| first | second | " + " | ".join(f"Δ {h}" for _, h, _ in outcomes)
              + " | verdict |", "|" + "---|" * (3 + len(outcomes))]  # fmt: skip
    for c in pairs:
        diffs = " | ".join(_est(c["difference"][k]) for k, _, _ in outcomes)
        lines.append(f"| {c['first']} | {c['second']} | {diffs} | "
                     f"{'; '.join(c['verdict'].values())} |")  # fmt: skip
    return [*lines, ""]


def _even_text(even: dict[str, Any], unit: str = "episodes", physical: str = "QL") -> str:
    if even["verdict"] != "decided":
        return f"Break-even construction time: {even['verdict']}."
    up, at = even["pays_off_up_to"], f"{even['fraction']:.0%} of {physical}'s time"
    where = f"~{_num(even['t_c_episodes'])} {unit}"
    if up is None:
        return (
            "Break-even construction time: none to find; the twin's paired speed-up is "
            "significant at no tested T_c, not even T_c = 0 (a perfect twin from the start)."
        )
    gaps = even.get("not_significant_below") or []
    note = (f" (though not significant at the smaller T_c = "
            f"{', '.join(f'{g:.0%}' for g in gaps)})" if gaps else "")  # fmt: skip
    return (f"Break-even construction time: the twin's paired speed-up is significant up to "
            f"T_c = {up:.0%} of {physical}'s time{note} and no longer from T_c = {at} "
            f"({where}) on.")  # fmt: skip


def _num(x: float, signed: bool = False, digits: int = 3) -> str:
    """A number for a table: from 100 on a whole number (``2,440``), else ``digits``
    significant digits."""
    sign = "+" if signed and x > 0 else ""
    return sign + (f"{x:,.0f}" if abs(x) >= 100 else f"{x:.{digits}g}")


def _est(d: dict[str, Any], signed: bool = True) -> str:
    """``mean ± ci95`` of an estimate (``n/a`` without data)."""
    if d["n"] == 0 or d["mean"] is None or math.isnan(d["mean"]):
        return "n/a"
    return f"{_num(d['mean'], signed)} ± {_num(d['ci95'], digits=2)}"


def _plot(summary: dict[str, Any], name: str, table: list[dict[str, Any]], path: Path) -> bool:
    """Time to converge vs T_c (construction, calibration; online recalibration at T_c = 0) with
    the physical-only learner's line."""
    plt = pyplot()
    if plt is None:
        return False
    case = summary["cases"][name]
    design, unit = case["design"], case["design"]["unit"]
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for part, marker in (("construction", "o"), ("calibration", "s"), ("recalibration", "*")):
        mine = sorted((r for r in table if r["part"] == part), key=lambda r: r["level"])
        x = np.array([r["t_c_episodes"]["mean"] for r in mine], dtype=np.float64)
        y = np.array([r["reach"]["mean"] for r in mine], dtype=np.float64)
        half = np.nan_to_num(np.array([r["reach"]["ci95"] for r in mine], dtype=np.float64))
        (line,) = ax.plot(x, y, marker=marker, ms=9 if marker == "*" else 6,
                          label=f"{design['assisted']}, {part}")  # fmt: skip
        ax.fill_between(x, y - half, y + half, alpha=0.2, color=line.get_color())
    budget = _budget(summary, name)
    physical = metrics.mean_ci([_outcome(name, r, r, budget)[OUTCOMES[name][0][0]]
                                for r in case["runs"] if r["label"] == design["physical"]])  # fmt: skip
    ax.axhline(physical.mean, color="k", lw=1.0, label=f"{design['physical']} (physical only)")
    ax.axhspan(physical.mean - physical.half_width, physical.mean + physical.half_width,
               color="k", alpha=0.1)  # fmt: skip
    ax.set(xlabel=f"T_c: physical {unit} before the twin is usable (calibration: its data)",
           ylabel=f"physical {unit} to converge\n(construction included)")  # fmt: skip
    ax.set_ylim(bottom=0.0)  # a t-interval over few seeds may reach below 0
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{TITLES[name]}\nconstruction delay vs benefit", fontsize=10)
    save(plt, fig, path)
    return True


__all__ = ["CONTRASTS", "break_even", "contrasts", "rows", "write_construction"]
