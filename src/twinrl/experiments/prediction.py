"""Experiment ``prediction``: can the grid decide "training with prediction beats n-step learning
and plain DQL in dynamic networks" (paper 000, Section II-B, Fig. 5)?

The design (cells, arms, presets) is in :mod:`twinrl.experiments.prediction_design`; the reports
and figures in :mod:`twinrl.experiments.prediction_report`. This module runs every arm of every
cell over the seeds (:func:`run_preset`), scores each run on the physical network, and computes
the paired statistics and the verdicts on the pre-registered predictions (:func:`analyse`).

Outcomes, per run (every arm of a seed sees the same users in the same training and evaluation
episodes):

* ``auc``: the area under the learning curve (:func:`twinrl.experiments.metrics.area_under_curve`
  of the per-step reward of each training episode, exploration included);
* ``greedy``: the greedy policy's reward per step on the physical network's evaluation episodes
  after each budget of :data:`~twinrl.experiments.prediction_design.BUDGET_FRACTIONS`;
* ``twin_per_step``: twin steps per physical step.

Rewards differ between cells (Mbit/s, a share of users), so every outcome is *normalized* by the
reference policies on the evaluation episodes of the run seeds, in the cell's own reward: 0 =
random moves, 1 = the static k-means placement (``(x - random) / (kmeans - random)``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from twinrl.envs.multi_uav import MultiUAVParams
from twinrl.experiments import episodic, metrics, stats
from twinrl.experiments import prediction_design as design
from twinrl.experiments.parallel import run_jobs

ENV_ID = "twinrl/MultiUAV-v0"
BOOTSTRAP_SEED = 0
"""Seed of the bootstrap resamples, so a report is a function of its summary alone."""
REFERENCES = ("hover", "random", "kmeans")
"""The reference policies of :mod:`twinrl.baselines.multi_uav` (no learning)."""


def jobs(preset: design.Preset, *, seed: int, seeds: int) -> list[episodic.EpisodicJob]:
    """One job per (cell, arm, seed)."""
    agent = tuple(sorted(design.agent_config(preset).items()))
    out = []
    for cell in design.CELLS:
        n = design.episodes(preset, cell)
        budgets = tuple(max(1, round(f * n)) for f in design.BUDGET_FRACTIONS[:-1])
        for v in design.variants(cell):
            for run_seed in episodic.run_seeds(seed, seeds):
                out.append(episodic.EpisodicJob(
                    ENV_ID, (), v, run_seed, n, agent, preset.eval_episodes, eval_at=budgets))  # fmt: skip
    return out


def run_preset(
    preset: str | design.Preset,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    seeds: int | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Every arm of every cell over the preset's seeds, scored on the physical network, with the
    reference policies on the same evaluation episodes."""
    p = preset if isinstance(preset, design.Preset) else design.PRESETS[preset]
    n_seeds = seeds or p.seeds
    runs = [_score(r) for r in run_jobs(episodic.run_episodic, jobs(p, seed=seed, seeds=n_seeds),
                                        workers=workers, progress=progress)]  # fmt: skip
    order = {
        lb: i for i, lb in enumerate(v.label for c in design.CELLS for v in design.variants(c))
    }
    runs.sort(key=lambda r: (order[r["label"]], r["seed"]))
    return {
        "preset": {**asdict(p), "seeds": n_seeds,
                   "name": preset if isinstance(preset, str) else "custom"},
        "seed": seed,
        "base": design.BASE,
        "k": design.K,
        "agent_config": design.agent_config(p),
        "cells": {c.name: {"env": c.env_kwargs(), "agent": c.agent(),
                           "episodes": design.episodes(p, c)} for c in design.CELLS},
        "arms": design.arm_names(),
        "runs": runs,
        "references": references(p, sorted({r["seed"] for r in runs})),
    }  # fmt: skip


def _score(run: dict[str, Any]) -> dict[str, Any]:
    """The outcomes of one run (see the module docstring); drops the per-episode lists."""
    lengths = np.asarray(run.pop("episode_length"), dtype=np.float64)
    per_step = np.asarray(run.pop("episode_return"), dtype=np.float64) / lengths
    greedy = [float(np.mean(g)) for g in run.pop("greedy_at")]
    greedy.append(float(np.mean(run.pop("greedy_return"))))
    cell, arm = run["label"].split(": ", 1)
    return {
        "label": run["label"], "cell": cell, "arm": arm, "seed": run["seed"],
        "curve": per_step.tolist(), "auc": metrics.area_under_curve(per_step), "greedy": greedy,
        "twin_per_step": run["twin_evaluations"] / max(1, run["iterations"]),
        "iterations": run["iterations"], "wall_time": run["wall_time"],
    }  # fmt: skip


def references(preset: design.Preset, run_seeds: list[int]) -> dict[str, dict[str, Any]]:
    """Per cell and run seed: hover, random moves and static k-means, reward per step on that
    seed's evaluation episodes."""
    from twinrl.baselines.multi_uav import evaluate_uav_policy, uav_policies

    out: dict[str, dict[str, Any]] = {}
    for cell in design.CELLS:
        params = MultiUAVParams(**cell.env_kwargs())
        out[cell.name] = {
            str(s): {name: evaluate_uav_policy(params, policy, episodes=preset.eval_episodes,
                                               seed=episodic.evaluation_seed(s))["mean_reward"]
                     for name, policy in uav_policies().items()}
            for s in run_seeds
        }  # fmt: skip
    return out


# --- statistics -----------------------------------------------------------------------------


def reference(summary: dict[str, Any], cell: str, name: str) -> float:
    """Reward per step of reference policy ``name`` in ``cell``, mean over the run seeds'
    evaluation episodes."""
    return float(np.mean([r[name] for r in summary["references"][cell].values()]))


def scale(summary: dict[str, Any], cell: str) -> tuple[float, float]:
    """``(random, kmeans - random)`` of ``cell``: the normalization's zero and unit (the
    references' means over seeds: one seed's 10 episodes can put the two close together where
    users migrate, and a scale common to the seeds keeps paired differences exact)."""
    low, high = (reference(summary, cell, name) for name in ("random", "kmeans"))
    if high == low:
        raise ValueError(
            f"cell {cell}: random moves and static k-means score the same ({low}); "
            "no scale to normalize on"
        )
    return low, high - low


def normalized(summary: dict[str, Any], run: dict[str, Any], value: float) -> float:
    """``value`` of ``run`` on its cell's scale: random moves = 0, static k-means = 1."""
    low, span = scale(summary, run["cell"])
    return float((value - low) / span)


def outcome(summary: dict[str, Any], run: dict[str, Any], key: str) -> float:
    """Normalized outcome ``key`` of a run: ``auc``, ``greedy`` (final budget) or ``greedy@i``."""
    if key == "auc":
        return normalized(summary, run, run["auc"])
    index = -1 if key == "greedy" else int(key.split("@")[1])
    return normalized(summary, run, run["greedy"][index])


def per_seed(summary: dict[str, Any], cell: str, arm: str, key: str) -> dict[int, float]:
    """Seed -> normalized outcome of one arm in one cell."""
    return {r["seed"]: outcome(summary, r, key) for r in summary["runs"]
            if r["cell"] == cell and r["arm"] == arm}  # fmt: skip


def paired(summary: dict[str, Any], cell: str, a: str, b: str, key: str) -> list[float]:
    """Per seed, ``a - b`` in one cell (normalized)."""
    x, y = per_seed(summary, cell, a, key), per_seed(summary, cell, b, key)
    return [x[s] - y[s] for s in sorted(x) if s in y]


def interaction(
    summary: dict[str, Any], cell: str, base: str, a: str, b: str, key: str
) -> list[float]:
    """Per seed, ``(a - b)`` in ``cell`` minus ``(a - b)`` in ``base``: does the gain grow?"""
    return [g - h for g, h in zip(paired(summary, cell, a, b, key),
                                  paired(summary, base, a, b, key), strict=True)]  # fmt: skip


def gap(summary: dict[str, Any], cell: str) -> float:
    """The DQL-to-best-reference gap of a cell, normalized: |best reference - DQL's greedy score
    after the full budget| (the best reference is the best of hover, random and k-means)."""
    low, span = scale(summary, cell)
    best = max((reference(summary, cell, n) - low) / span for n in REFERENCES)
    dql = np.mean(list(per_seed(summary, cell, "DQL", "greedy").values()))
    return float(abs(best - dql))


def seeds_needed(differences: list[float], target: float) -> int | None:
    """Fewest seeds n whose 95% Student-t half-width ``t_{n-1} sd / sqrt(n)`` is below ``target``,
    with ``sd`` the sample standard deviation of ``differences`` (a pilot); None without one."""
    if len(differences) < 2 or not np.isfinite(target) or target <= 0:
        return None
    sd = float(np.std(differences, ddof=1))
    for n in range(2, 10_001):
        if metrics.mean_ci(_unit_spread(n) * sd).half_width < target:
            return n
    return None


def _unit_spread(n: int) -> np.ndarray:
    """n values with sample standard deviation exactly 1 (so mean_ci gives ``t_{n-1} / sqrt(n)``)."""
    x = np.arange(n, dtype=np.float64)
    return (x - x.mean()) / x.std(ddof=1)


PREDICTIONS = (
    ("P1", "no effect in the dense/slow/short cell", "equivalence",
     (design.BASE_CELL.name, None, f"DT-DQL m={design.M_MAIN}", "DQL")),
    ("P2a", "the gain over DQL grows with sparsity (sparse vs dense)", "greater",
     ("sparse/slow/short", design.BASE_CELL.name, f"DT-DQL m={design.M_MAIN}", "DQL")),
    ("P2b", "the gain over DQL grows with a periodic reward (periodic vs dense)", "greater",
     ("periodic/slow/short", design.BASE_CELL.name, f"DT-DQL m={design.M_MAIN}", "DQL")),
    ("P2c", "the gain over DQL grows with the horizon (long vs short)", "greater",
     ("dense/slow/long", design.BASE_CELL.name, f"DT-DQL m={design.M_MAIN}", "DQL")),
    ("P3a", "the gain over n-step grows with user speed (fast vs slow)", "greater",
     ("dense/fast/short", design.BASE_CELL.name, f"DT-DQL m={design.M_MAIN}",
      f"n-step n={design.K}")),
    ("P3b", "the gain over n-step grows with migrating clusters (clusters vs slow)", "greater",
     ("dense/clusters/short", design.BASE_CELL.name, f"DT-DQL m={design.M_MAIN}",
      f"n-step n={design.K}")),
)  # fmt: skip
"""The pre-registered predictions (id, statement, rule, (cell, base cell, arm a, arm b)), judged
on the primary outcome, the normalized area under the learning curve (docs/prediction.md)."""
PRIMARY = "auc"

_M1, _MM = "DT-DQL m=1", f"DT-DQL m={design.M_MAIN}"
_SPARSE, _FAST = "sparse/slow/short", "dense/fast/short"
EXPLORATORY = (
    ("E1", "averaging more futures helps most in the fast cell", _FAST,
     f"DT-DQL m={design.MS[-1]}", _M1),
    ("E1", "... and less in the sparse cell", _SPARSE, f"DT-DQL m={design.MS[-1]}", _M1),
    ("E2", "the physical-future oracle is no better than a guessed future in the sparse cell",
     _SPARSE, "DT-DQL m=1 physical future", _M1),
    ("E2", "... but better in the fast cell", _FAST, "DT-DQL m=1 physical future", _M1),
    ("E3", "varied first actions help in the sparse cell", _SPARSE,
     f"{_MM} varied first actions", _MM),
    ("E4", "the data arm beats its two-step DQL control in the sparse cell", _SPARSE,
     f"{_MM} data", "DQL 2 steps"),
    ("E4", "... but not in the fast cell", _FAST, f"{_MM} data", "DQL 2 steps"),
)  # fmt: skip
"""The exploratory expectations of docs/prediction.md (id, statement, cell, arm a, arm b),
written before the decisive run and reported beside the paired estimate of ``a - b``, not judged
by a rule."""


def judge(kind: str, est: metrics.Estimate, margin: float) -> str:
    """The verdict on one prediction. ``greater``: :func:`metrics.verdict` against 0.
    ``equivalence`` (no effect): met when the whole 95% CI lies inside ``(-margin, margin)``,
    NOT met when it lies wholly beyond one of the margins (an effect of at least the margin),
    else undecided (:data:`metrics.UNDECIDED`, also with fewer than 5 seeds)."""
    if kind == "greater":
        return metrics.verdict(est, 0.0)
    above = metrics.verdict(est, -margin)  # met: the CI lies above -margin
    below = metrics.verdict(est, margin, higher_is_better=False)  # met: below +margin
    if above == metrics.MET and below == metrics.MET:
        return metrics.MET
    if metrics.NOT_MET in (above, below):
        return metrics.NOT_MET
    return metrics.UNDECIDED


def analyse(summary: dict[str, Any]) -> dict[str, Any]:
    """Per cell and arm: IQM with stratified bootstrap CI of each normalized outcome; paired
    differences against DQL and n-step; P(improvement); the verdicts on :data:`PREDICTIONS`; the
    seeds a decisive run needs per cell."""
    cells: dict[str, Any] = {}
    keys = ["auc", *[f"greedy@{i}" for i in range(len(design.BUDGET_FRACTIONS))]]
    for cell in dict.fromkeys(r["cell"] for r in summary["runs"]):
        arms = list(dict.fromkeys(r["arm"] for r in summary["runs"] if r["cell"] == cell))
        margin = gap(summary, cell) / 4
        rows = {}
        for arm in arms:
            row: dict[str, Any] = {"twin_per_step": float(np.mean(
                [r["twin_per_step"] for r in summary["runs"] if r["label"] == f"{cell}: {arm}"]))}  # fmt: skip
            for key in keys:
                values = list(per_seed(summary, cell, arm, key).values())
                row[key] = stats.stratified_bootstrap_ci(values, seed=BOOTSTRAP_SEED).to_dict()
                for ref in ("DQL", f"n-step n={design.K}", "DQL 2 steps"):
                    if ref != arm and ref in arms and (ref != "DQL 2 steps" or "data" in arm):
                        d = metrics.mean_ci(paired(summary, cell, arm, ref, key))
                        row[f"{key} - {ref}"] = {**d.to_dict(), "verdict": metrics.verdict(d, 0.0)}
            if arm != "DQL":
                x, y = (list(per_seed(summary, cell, a, PRIMARY).values()) for a in (arm, "DQL"))
                row["p_auc_above_dql"] = stats.probability_of_improvement_ci(
                    x, y, seed=BOOTSTRAP_SEED).to_dict()  # fmt: skip
            rows[arm] = row
        main = paired(summary, cell, f"DT-DQL m={design.M_MAIN}", "DQL", PRIMARY)
        cells[cell] = {"arms": rows, "gap": gap(summary, cell), "margin": margin,
                       "seeds_needed": seeds_needed(main, margin)}  # fmt: skip
    verdicts = []
    for pid, text, kind, (cell, base, a, b) in PREDICTIONS:
        if cell not in cells or (base is not None and base not in cells):
            continue
        diffs = (paired(summary, cell, a, b, PRIMARY) if base is None
                 else interaction(summary, cell, base, a, b, PRIMARY))  # fmt: skip
        est = metrics.mean_ci(diffs)
        margin = cells[cell]["margin"]
        verdicts.append({"id": pid, "prediction": text, "rule": kind, "estimate": est.to_dict(),
                         "margin": margin, "verdict": judge(kind, est, margin),
                         "seeds_needed": seeds_needed(diffs, margin)})  # fmt: skip
    return {"cells": cells, "predictions": verdicts, "exploratory": explore(summary)}


def explore(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The paired estimates (AUC and the final greedy score) of :data:`EXPLORATORY` whose arms
    ran, each with the sign of its interval."""
    out = []
    for eid, text, cell, a, b in EXPLORATORY:
        present = {r["arm"] for r in summary["runs"] if r["cell"] == cell}
        if a not in present or b not in present:
            continue
        row: dict[str, Any] = {"id": eid, "expectation": text, "cell": cell, "a": a, "b": b}
        for key in (PRIMARY, "greedy"):
            d = metrics.mean_ci(paired(summary, cell, a, b, key))
            row[key] = {**d.to_dict(), "verdict": metrics.verdict(d, 0.0)}
        out.append(row)
    return out


__all__ = [
    "BOOTSTRAP_SEED",
    "ENV_ID",
    "EXPLORATORY",
    "PREDICTIONS",
    "PRIMARY",
    "analyse",
    "explore",
    "gap",
    "interaction",
    "jobs",
    "judge",
    "normalized",
    "outcome",
    "paired",
    "per_seed",
    "reference",
    "references",
    "run_preset",
    "scale",
    "seeds_needed",
]
