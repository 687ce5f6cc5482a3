"""Is an imperfect twin worth building? The ``fidelity`` experiment (issue 11, item 5).

The twin-assisted learner against the physical-only learner, per seed on the same env and agent
seeds, while one kind of twin error grows (model bias, measurement noise, stale sync), with and
without the mitigations of :mod:`twinrl.twin` (domain averaging, a fidelity-triggered start).
Every outcome is judged on the physical system only: the training episodes, physical greedy
evaluation episodes (access points, UAVs) and the greedy evaluation of ``train``, which uses the
physical dynamics (edge scheduling). :mod:`twinrl.experiments.fidelity_report` computes the paired
differences and writes the report.

Case studies: access-point selection (QL vs DT-QL n = 5, the ``fig4`` settings), edge scheduling
(order formulation, QL vs DTEQL through :func:`twinrl.train`; the fused path knows only a perfect
twin) and, in a preset that sizes it and with the torch extra, multi-UAV (DQL vs DT-DQL k = 5,
m = 4).
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np

from twinrl.algorithms import build_algorithm
from twinrl.baselines import edge_scheduling as baselines
from twinrl.envs.edge_scheduling import EdgeParams, sample_tasks
from twinrl.experiments import ap_figures, episodic, metrics, uav_runs
from twinrl.experiments.episodic import Variant
from twinrl.experiments.parallel import run_jobs
from twinrl.training import train

MITIGATIONS = ("none", "average", "start_below", "recalibrate")
"""``none``: the imperfect twin as is; ``average``: domain averaging over :data:`AVERAGE` views
(for measurement noise only: it cannot undo a bias or a stale view); ``start_below``: the
assists wait until the twin's mean one-step reward error over 20 physical steps is at most the
case study's threshold (:attr:`Case.start_below`); ``recalibrate`` (for model bias only): the
twin re-estimates its parameters from the physical transitions it mirrors every
:attr:`Case.recalibrate_every` steps (:class:`~twinrl.twin.Recalibration`), the biased values
being its prior until every parameter has data."""
BY_OPTION = {
    "bias": ("none", "start_below", "recalibrate"),
    "noise": ("none", "average", "start_below"),
    "sync_every": ("none", "start_below"),
}
"""The mitigations tried on each kind of error (those that can act on it)."""
AVERAGE = 4
"""Views of the identical domain under the ``average`` mitigation."""


@dataclass(frozen=True)
class Axis:
    """One kind of twin error and the levels tried (the first is the perfect twin)."""

    name: str
    """How the tables name it (e.g. ``"ap_rates bias"``)."""
    option: str
    """The :class:`~twinrl.twin.Fidelity` option: ``bias``, ``noise`` or ``sync_every``."""
    field: str
    """The parameter or measured field it acts on (``""`` for ``sync_every``)."""
    levels: tuple[float, ...]
    unit: str = ""
    allowed: tuple[str, ...] = MITIGATIONS
    """The mitigations a preset runs (:meth:`mitigations` keeps those that act on this error)."""

    def fidelity(self, level: float) -> tuple[tuple[str, Any], ...]:
        """``Variant.fidelity`` at ``level``: empty (the perfect twin) at the axis's first level."""
        if level == self.levels[0]:
            return ()
        if self.option == "sync_every":
            return (("sync_every", int(level)),)
        return ((self.option, {self.field: float(level)}),)

    def mitigations(self) -> tuple[str, ...]:
        return tuple(m for m in BY_OPTION[self.option] if m in self.allowed)


@dataclass(frozen=True)
class Case:
    """One case study's error axes and the threshold of its fidelity-triggered start."""

    name: str
    axes: tuple[Axis, ...]
    start_below: float
    """``train``'s ``start_below`` (the env's reward unit per step)."""
    recalibrate_every: int
    """``Recalibration.every`` of the ``recalibrate`` mitigation (physical steps)."""


AP_CASE = Case(
    "ap",
    (
        Axis("ap_rates bias", "bias", "ap_rates", (0.0, -0.25, -0.5, -0.75)),
        Axis("ap_free_at noise", "noise", "ap_free_at", (0.0, 0.5, 1.0, 2.0), "s"),
        Axis("staleness", "sync_every", "", (1, 2, 5, 10), "steps"),
    ),
    start_below=0.5,
    recalibrate_every=200,
)
"""Access-point selection. Rates 25-75% too low make the twin expect late deliveries (failures)
where the physical link succeeds; noise on when each AP frees up (s) blurs queueing; a stale twin
predicts between syncs. ``start_below`` = 0.5 reward per step, about a tenth of a step's mean
reward (~5.5 with epsilon = 0.1). The twin recalibrates every 200 steps (10 episodes)."""
EDGE_CASE = Case(
    "edge",
    (
        Axis("rate bias", "bias", "rate", (0.0, -0.25, -0.5, -0.75)),
        Axis("f_ser bias", "bias", "f_ser", (0.0, -0.25, -0.5, -0.75)),
        Axis("tasks noise", "noise", "tasks", (0.0, 0.1, 0.2, 0.4), "relative"),
    ),
    start_below=0.05,
    recalibrate_every=50,
)
"""Edge scheduling. Staleness is not an axis: every episode is one step, and an episode start is
always a sync moment, so a stale twin equals a perfect one. ``start_below`` = 0.05 s of the
order's cost (about 2% of an N = 6 optimum). The twin recalibrates every 50 iterations (each a
whole episode)."""
UAV_CASE = Case(
    "uav",
    (
        Axis("user_speed_std bias", "bias", "user_speed_std", (0.0, 0.5, 1.0, 2.0)),
        Axis("user_pos noise", "noise", "user_pos", (0.0, 5.0, 10.0, 20.0), "m"),
        Axis("staleness", "sync_every", "", (1, 2, 5, 10), "steps"),
    ),
    start_below=0.5,
    recalibrate_every=500,
)
"""Multi-UAV (torch extra): a user-speed model error of 50-200% of the true spread, noisy user
positions (m), a stale twin. ``start_below`` = 0.5 of the centred reward per step; the twin
recalibrates every 500 steps (10 episodes)."""


@dataclass(frozen=True)
class Preset:
    ap_episodes: int
    ap_seeds: int
    ap_eval_episodes: int
    edge_n: int
    edge_phi: int
    edge_budget: int
    edge_seeds: int
    uav_episodes: int = 0
    """0: the multi-UAV case study is not run."""
    uav_seeds: int = 0
    uav_mitigations: tuple[str, ...] = MITIGATIONS
    """The mitigations of the multi-UAV grid (its runs are the slowest)."""
    levels: tuple[int, ...] = (0, 1, 2, 3)
    """Which of each axis's levels run (indices; 0, the perfect twin, always first)."""
    window: int = 50
    """Moving-average window of the access-point curves (episodes)."""
    eval_every: int = 5
    """Greedy evaluation period of the edge runs (iterations): convergence is this exact."""


PRESETS = {
    "quick": Preset(ap_episodes=400, ap_seeds=3, ap_eval_episodes=20, edge_n=6, edge_phi=100,
                    edge_budget=2000, edge_seeds=6, uav_episodes=40, uav_seeds=2,
                    uav_mitigations=("none",), levels=(0, 2)),
    "paper": Preset(ap_episodes=600, ap_seeds=6, ap_eval_episodes=40, edge_n=7, edge_phi=500,
                    edge_budget=5000, edge_seeds=8, uav_episodes=100, uav_seeds=3,
                    uav_mitigations=("none", "recalibrate")),
}  # fmt: skip
"""``quick`` runs two levels per axis (the perfect twin and the third) and, on multi-UAV, no
mitigation: a smoke run of the whole pipeline whose verdicts say when seeds are too few. ``paper``
runs four levels per axis; on multi-UAV only the ``recalibrate`` mitigation (with
``construction``, within an hour on 2 cores)."""


def variant_label(case: Case, axis: Axis | None, level: float, mitigation: str) -> str:
    """One label per distinct run: level 0 (the perfect twin) is shared by every axis."""
    if axis is None:
        return "physical"
    at = "perfect" if level == axis.levels[0] else f"{axis.name}={level:g}"
    return at if mitigation == "none" else f"{at} + {mitigation}"


def grid(case: Case) -> list[tuple[Axis, float, str]]:
    """Every (axis, level, mitigation) of a case study; averaging is not tried on the perfect
    twin (its views would be copies of one exact state: 4x the work for the same run, on envs
    without ``reseed_domain``)."""
    return [(a, lv, m) for a in case.axes for lv in a.levels for m in a.mitigations()
            if not (m == "average" and lv == a.levels[0])]  # fmt: skip


def twin_variant(case: Case, axis: Axis, level: float, mitigation: str, base: Variant) -> Variant:
    """``base`` (the twin-assisted algorithm) with this error and mitigation."""
    return replace(
        base,
        label=variant_label(case, axis, level, mitigation),
        fidelity=axis.fidelity(level),
        average=AVERAGE if mitigation == "average" else 1,
        start_below=case.start_below if mitigation == "start_below" else None,
        recalibrate=(("every", case.recalibrate_every),) if mitigation == "recalibrate" else (),
    )


def case_variants(case: Case, physical: Variant, assisted: Variant) -> list[Variant]:
    """The physical-only learner, then each distinct twin-assisted run of the grid."""
    out = {physical.label: physical}
    for axis, level, mitigation in grid(case):
        v = twin_variant(case, axis, level, mitigation, assisted)
        out.setdefault(v.label, v)
    return list(out.values())


# --- access points and UAVs: episodic runs -----------------------------------------------------


def run_ap(p: Preset, *, seed: int, workers: int, progress: bool) -> dict[str, Any]:
    variants = case_variants(case_for("ap", p), Variant("physical", "ql"),
                             Variant("", "dteql", n_trials=5))  # fmt: skip
    runs = episodic.run_variants(
        ap_figures.ENV_ID, {}, variants, seeds=p.ap_seeds, episodes=p.ap_episodes, seed=seed,
        workers=workers, progress=progress, agent_config=ap_figures.AGENT,
        eval_episodes=p.ap_eval_episodes,
    )  # fmt: skip
    return {"case": "ap", "runs": [_episodic_outcomes(r, p.window) for r in runs]}


def run_uav(p: Preset, *, seed: int, workers: int, progress: bool) -> dict[str, Any]:
    steps = int(gym.make(uav_runs.ENV_ID, **uav_runs.ENV).unwrapped.episode_steps)  # type: ignore[attr-defined]
    agent = uav_runs.agent_config(uav_runs.Preset(p.uav_episodes, p.uav_seeds), steps)
    variants = case_variants(case_for("uav", p), Variant("physical", "dqn"),
                             Variant("", "dt-dqn", k=5, m=uav_runs.TRAJECTORIES))  # fmt: skip
    runs = episodic.run_variants(
        uav_runs.ENV_ID, uav_runs.ENV, variants, seeds=p.uav_seeds, episodes=p.uav_episodes,
        seed=seed, workers=workers, progress=progress, agent_config=agent,
        eval_episodes=uav_runs.EVAL_EPISODES,
    )  # fmt: skip
    return {"case": "uav", "runs": [_episodic_outcomes(r, uav_runs.Preset(1, 1).window)
                                    for r in runs]}  # fmt: skip


def _episodic_outcomes(run: dict[str, Any], window: int) -> dict[str, Any]:
    """What the report needs of one episodic run (the curve, not the per-episode lists)."""
    curve = episodic.moving_average(run["episode_return"], window)
    return {
        "label": run["label"],
        "seed": run["seed"],
        "curve": curve.tolist(),
        "final_level": float(curve[-1]),
        "greedy_reward": float(np.mean(run["greedy_return"])),
        "failures": float(np.sum(run["episode_failures"])),
        "physical_steps": int(run["iterations"]),
        "twin_evaluations": int(run["twin_evaluations"]),
        "twin_error": run.get("twin_error", {}),
        "twin_started": run.get("twin_started"),
    }


# --- edge scheduling: one-step episodes through twinrl.train -----------------------------------


@dataclass(frozen=True)
class EdgeJob:
    variant: Variant
    instance: int
    n: int
    phi: int
    budget: int
    eval_every: int
    seed: int


def edge_instance(job: EdgeJob) -> tuple[Any, float, float, int]:
    """Instance ``job.instance``'s tasks, the exact optimum and the worst cost of its PHYSICAL
    parameters, and the run seed."""
    params = EdgeParams(n_tasks=job.n)
    rng = np.random.default_rng(np.random.SeedSequence([job.seed, job.n, job.instance]))
    tasks = sample_tasks(params, rng)
    best = baselines.exact_optimum(params, tasks).cost
    worst = baselines.worst_order(params, tasks).cost
    run_seed = int(np.random.SeedSequence([job.seed, job.n, job.instance, 0]).generate_state(1)[0])
    return tasks, best, worst, run_seed


def run_edge_job(job: EdgeJob) -> dict[str, Any]:
    """One edge run on instance ``job.instance``; its convergence and final normalized reward
    against the exact optimum of the PHYSICAL parameters (and, with ``recalibrate``, the twin's
    recalibrations)."""
    tasks, best, worst, run_seed = edge_instance(job)
    v = job.variant
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=job.n)
    agent, assists = build_algorithm(v.algorithm, env, run_seed, n_trials=job.phi)
    settings = episodic.twin_settings(v, env, uses_twin=bool(assists))
    run = train(env, agent, assists=assists, budget=job.budget, seed=run_seed,
                reset_options={"tasks": tasks}, eval_every=job.eval_every, **settings)  # fmt: skip
    greedy = run.history["greedy_return"]
    out = {
        "label": v.label,
        "seed": job.instance,
        "convergence": metrics.convergence_time(greedy, -best),
        "normalized_reward": metrics.normalized_reward(-float(greedy[-1]), best, worst),
        "physical_steps": run.iterations,
        "twin_evaluations": run.twin_evaluations,
        "twin_error": dict(run.twin_error),
        "twin_started": run.twin_started,
    }
    if v.recalibrate:
        out["recalibrations"] = settings["twin"].recalibrations
    return out


def run_edge(p: Preset, *, seed: int, workers: int, progress: bool) -> dict[str, Any]:
    variants = case_variants(case_for("edge", p), Variant("physical", "ql"), Variant("", "dteql"))
    jobs = [EdgeJob(v, i, p.edge_n, p.edge_phi, p.edge_budget, p.eval_every, seed)
            for v in variants for i in range(p.edge_seeds)]  # fmt: skip
    runs = list(run_jobs(run_edge_job, jobs, workers=workers, progress=progress))
    order = {v.label: i for i, v in enumerate(variants)}
    runs.sort(key=lambda r: (order[r["label"]], r["seed"]))
    return {"case": "edge", "runs": runs}


def run_preset(
    preset: str,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    seeds: int | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Every case study of the preset (``seeds`` overrides the seeds of each). The multi-UAV one
    runs only in a preset that sizes it and with torch installed; else ``skipped`` says why."""
    p = PRESETS[preset] if isinstance(preset, str) else preset
    if seeds is not None:
        p = replace(p, ap_seeds=seeds, edge_seeds=seeds, uav_seeds=seeds if p.uav_seeds else 0)
    cases = {name: case_for(name, p) for name in CASES}
    out: dict[str, Any] = {"preset": {**asdict(p), "name": preset if isinstance(preset, str)
                                      else "custom"}, "seed": seed, "cases": {}, "skipped": {}}  # fmt: skip
    kw = {"seed": seed, "workers": workers, "progress": progress}
    out["cases"]["ap"] = run_ap(p, **kw)  # type: ignore[arg-type]
    out["cases"]["edge"] = run_edge(p, **kw)  # type: ignore[arg-type]
    if not p.uav_episodes:
        out["skipped"]["uav"] = "not sized in this preset (uav_episodes = 0)"
    elif importlib.util.find_spec("torch") is None:  # pragma: no cover - the torch extra
        out["skipped"]["uav"] = 'needs torch: pip install -e ".[torch]"'
    else:
        out["cases"]["uav"] = run_uav(p, **kw)  # type: ignore[arg-type]
    out["design"] = {
        name: {
            "start_below": c.start_below,
            "recalibrate_every": c.recalibrate_every,
            "average": AVERAGE,
            "axes": [asdict(a) for a in c.axes],
        }
        for name, c in cases.items()
    }
    return out


CASES = {c.name: c for c in (AP_CASE, EDGE_CASE, UAV_CASE)}


def case_for(name: str, preset: Preset | dict[str, Any]) -> Case:
    """Case study ``name`` as ``preset`` runs it (a :class:`Preset` or its summary dict): the
    preset's levels of each axis and, on multi-UAV, its mitigations."""
    p = asdict(preset) if isinstance(preset, Preset) else preset
    levels = tuple(p.get("levels", (0, 1, 2, 3)))
    allowed = tuple(p.get("uav_mitigations", MITIGATIONS)) if name == "uav" else MITIGATIONS
    case = CASES[name]
    axes = tuple(replace(a, levels=tuple(a.levels[i] for i in levels), allowed=allowed)
                 for a in case.axes)  # fmt: skip
    return replace(case, axes=axes)


__all__ = [
    "AP_CASE",
    "CASES",
    "EDGE_CASE",
    "PRESETS",
    "UAV_CASE",
    "Axis",
    "Case",
    "Preset",
    "case_for",
    "run_preset",
]
