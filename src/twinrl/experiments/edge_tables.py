"""Paper 002, Table I and Table II: QL, DTEQL and DTAQL on edge task scheduling.

One grid of runs serves both tables: for each N, a set of task instances; for each instance, every
method for ``budget`` physical iterations with the fused backend (bit-identical to
``twinrl.train``), from two starts, evaluated against the exact optimum and the heuristics of
:mod:`twinrl.baselines.edge_scheduling`. A second setting (``deadlines``: a slower uplink and a
deadline penalty) shows where learning adds value over the heuristics; at the default setting
shortest-transmission-first is provably optimal (R c_max < f_ser keeps the server idle).

The two starts (:data:`STARTS`) differ in where the rewards lie relative to the initial Q:

* ``optimistic`` (``QLearningConfig()``: Q0 = 0 and every reward is a negative cost): an untried
  order looks better than every tried one, so greedy steps sweep the untried orders.
* ``pessimistic`` (``reward_offset`` = the instance's worst cost): every reward is >= 0 = Q0 (the
  worst order's exactly 0), so a tried order looks better than every untried one and greedy steps
  repeat the best order tried so far.

Every method of one task set runs from the same seed at both starts (paired runs), and both DTAQL
readings share the seed too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from twinrl.agents.qlearning import QLearningConfig
from twinrl.baselines import edge_scheduling as baselines
from twinrl.envs import edge_kernels as k
from twinrl.envs.edge_scheduling import EdgeParams, sample_tasks, schedule_metrics
from twinrl.experiments import metrics
from twinrl.experiments.fused import run_fused
from twinrl.experiments.parallel import run_jobs

PAPER_COLUMNS = ("DTEQL φ=500", "DTEQL φ=200", "DTEQL φ=100", "DTEQL φ=50", "DTAQL φ=500", "QL")
"""The paper's methods, in its column order."""


@dataclass(frozen=True)
class Method:
    """One row of our tables: a named algorithm (:mod:`twinrl.algorithms`) and its size."""

    label: str
    algorithm: str
    phi: int
    """Trials per step (dteql) or twin agents (dtaql, dtaql-visit); 0 for ql."""
    paper: str
    """The paper's column (:data:`PAPER_COLUMNS`) it is compared with."""


METHODS: tuple[Method, ...] = (
    Method("DTEQL φ=500", "dteql", 500, "DTEQL φ=500"),
    Method("DTEQL φ=200", "dteql", 200, "DTEQL φ=200"),
    Method("DTEQL φ=100", "dteql", 100, "DTEQL φ=100"),
    Method("DTEQL φ=50", "dteql", 50, "DTEQL φ=50"),
    Method("DTAQL φ=500 mean", "dtaql", 500, "DTAQL φ=500"),
    Method("DTAQL φ=500 visit", "dtaql-visit", 500, "DTAQL φ=500"),
    Method("QL", "ql", 0, "QL"),
)
"""Our rows in the paper's column order; both readings of Algorithm 1, line 12 stand for the
paper's DTAQL (``mean``: the plain mean of all tables; ``visit``: each entry averaged over the
agents that updated it)."""

STARTS = ("optimistic", "pessimistic")
"""Where the rewards lie relative to the initial Q (see the module docstring)."""

# Paper 002's published numbers: targets shown beside ours, never used in any computation.
PAPER_TABLE1 = {
    "Normalized Reward": (1.0024, 1.0024, 0.9979, 0.9406, 0.7758, 0.4235),
    "Deadline Miss Ratio": (0.0195, 0.0195, 0.0195, 0.0273, 0.0429, 0.039),
    "Average Delay": (0.6435, 0.6435, 0.6453, 0.6677, 0.7321, 0.8697),
    "Convergence Time": ("5597", "12752", "25549", ">25600", ">25600", ">>25600"),
}
PAPER_TABLE2 = {
    6: ("102", "295", "510", "1047", "1284", ">25600"),
    7: ("755", "2497", "3873", "8795", "10239", ">>25600"),
    8: ("5597", "12752", "25549", ">25600", ">25600", ">>25600"),
}

SETTINGS: dict[str, dict[str, float]] = {
    "default": {},
    "deadlines": {"rate": 2.0e6, "zeta": 2.0},
}
"""Parameter overrides per setting. ``deadlines``: a 2 Mbit/s uplink makes deadlines bind and each
miss costs 2 s, so no simple priority rule is optimal."""


@dataclass(frozen=True)
class Preset:
    """Size of the grid."""

    ns: tuple[int, ...]
    """Task counts N (Table II rows); Table I uses the largest."""
    instances: int
    """Task instances per N."""
    budget: int = 25_600
    """Physical iterations per run (the paper's 25,600)."""
    deadline_instances: int = 0
    """Instances of the ``deadlines`` setting (largest N; DTEQL φ=500 and QL only, optimistic
    start)."""
    methods: tuple[str, ...] = tuple(m.label for m in METHODS)
    """The labels of :data:`METHODS` to run (from the optimistic start)."""
    pessimistic: tuple[str, ...] | None = None
    """The methods also run from the pessimistic start; None: all of them."""


QUICK_PESSIMISTIC = ("DTEQL φ=500", "DTEQL φ=200", "DTEQL φ=100", "DTEQL φ=50", "QL")
"""The quick preset runs DTAQL from the optimistic start only: its two readings from the
pessimistic start would add about 8 CPU-seconds to the preset's 20."""

PRESETS = {
    "quick": Preset(ns=(6, 8), instances=2, deadline_instances=2, pessimistic=QUICK_PESSIMISTIC),
    "paper": Preset(ns=(6, 7, 8), instances=32, deadline_instances=16),
}


@dataclass(frozen=True)
class Job:
    setting: str
    n: int
    instance: int
    label: str
    algorithm: str
    phi: int
    seed: int
    start: str = "optimistic"

    @property
    def cost_hint(self) -> float:
        """Rough relative run time, to start the longest jobs first."""
        per_step = 4 * self.phi if self.algorithm.startswith("dtaql") else self.phi + 1
        return per_step * math.log2(math.factorial(self.n))


@dataclass
class Instance:
    tasks: np.ndarray
    optimum: float
    worst: float
    heuristics: dict[str, dict[str, float]] = field(default_factory=dict)


def params_for(setting: str, n: int) -> EdgeParams:
    return EdgeParams(n_tasks=n, **SETTINGS[setting])  # type: ignore[arg-type]


def make_instances(setting: str, n: int, count: int, seed: int) -> list[Instance]:
    """Task sets drawn from ``SeedSequence([seed, n, i])``, with exact and heuristic references."""
    params = params_for(setting, n)
    out = []
    for i in range(count):
        rng = np.random.default_rng(np.random.SeedSequence([seed, n, i]))
        tasks = sample_tasks(params, rng)
        best = baselines.exact_optimum(params, tasks)
        worst = baselines.worst_order(params, tasks)
        inst = Instance(tasks, best.cost, worst.cost)
        for name in ("optimum", *baselines.HEURISTICS):
            sched = baselines.solve(name, params, tasks)
            m = schedule_metrics(params, tasks, sched.order)
            m["normalized_reward"] = metrics.normalized_reward(m["cost"], best.cost, worst.cost)
            inst.heuristics[name] = m
        out.append(inst)
    return out


def start_config(start: str, worst: float) -> QLearningConfig:
    """The agent configuration of a start: today's defaults (``optimistic``), or every reward
    shifted by the instance's worst cost so that all of them are >= Q0 = 0 (``pessimistic``)."""
    return QLearningConfig() if start == "optimistic" else QLearningConfig(reward_offset=worst)


def _run_job(args: tuple[Job, np.ndarray, float, float, int, int]) -> dict[str, Any]:
    job, tasks, optimum, worst, budget, points = args
    params = params_for(job.setting, job.n)
    res = run_fused(
        job.algorithm, params, tasks, budget=budget, seed=job.seed,
        agent_config=start_config(job.start, worst),
        n_trials=job.phi or 500, n_agents=job.phi or 500,
    )  # fmt: skip
    greedy = int(np.argmax(res.q[0]))  # ties to the lowest index, as the evaluation does
    order = k.unrank_permutations(np.array([greedy]), job.n)[0]
    final = schedule_metrics(params, tasks, order)
    cost_curve = -res.greedy_return
    grid = np.unique(np.linspace(0, budget - 1, points).astype(np.int64))
    convergence = metrics.convergence_time(res.greedy_return, -optimum)
    per_iteration = res.twin_evaluations // budget  # the same number at every iteration
    twin_to_converge = None if convergence is None else convergence * per_iteration
    return {
        **asdict(job),
        "convergence": convergence,
        "twin_evaluations_to_converge": twin_to_converge,
        "convergence_1pct": metrics.convergence_time(res.greedy_return, -optimum, rtol=0.01),
        "normalized_reward": metrics.normalized_reward(final["cost"], optimum, worst),
        "miss_ratio": final["miss_ratio"],
        "mean_delay": final["mean_delay"],
        "cost": final["cost"],
        "twin_evaluations": res.twin_evaluations,
        "curve_iterations": (grid + 1).tolist(),
        "curve_normalized_reward": [
            metrics.normalized_reward(float(c), optimum, worst) for c in cost_curve[grid]
        ],
    }


def run_grid(
    preset: Preset, *, seed: int = 0, workers: int = 1, progress: bool = False, points: int = 200
) -> dict[str, Any]:
    """Run every (setting, N, instance, algorithm) of a preset; returns a JSON-able summary."""
    instances: dict[tuple[str, int], list[Instance]] = {}
    jobs: list[tuple[Job, np.ndarray, float, float, int, int]] = []
    labels = {m.label for m in METHODS}
    unknown = sorted((set(preset.methods) | set(preset.pessimistic or ())) - labels)
    if unknown:
        raise ValueError(f"unknown method(s) {unknown} in the preset; choose from {sorted(labels)}")
    pessimistic = labels if preset.pessimistic is None else set(preset.pessimistic)
    chosen = tuple(m for m in METHODS if m.label in preset.methods)
    plan = [("default", n, preset.instances, chosen, pessimistic) for n in preset.ns]
    if preset.deadline_instances:
        binding = tuple(m for m in METHODS if m.label in ("DTEQL φ=500", "QL"))
        plan.append(("deadlines", max(preset.ns), preset.deadline_instances, binding, set()))
    for setting, n, count, methods, from_below in plan:
        insts = make_instances(setting, n, count, seed)
        instances[(setting, n)] = insts
        for i, inst in enumerate(insts):
            for method in methods:
                # keyed by the paper's column: a method's runs keep their seed when rows are
                # added, and both starts and both DTAQL readings of a task set are paired
                a = PAPER_COLUMNS.index(method.paper)
                run_seed = int(np.random.SeedSequence([seed, n, i, a]).generate_state(1)[0])
                for start in STARTS if method.label in from_below else STARTS[:1]:
                    job = Job(setting, n, i, method.label, method.algorithm, method.phi,
                              run_seed, start)  # fmt: skip
                    jobs.append((job, inst.tasks, inst.optimum, inst.worst, preset.budget, points))
    jobs.sort(key=lambda j: -j[0].cost_hint)
    runs = list(run_jobs(_run_job, jobs, workers=workers, progress=progress))
    runs.sort(key=lambda r: (r["setting"], r["n"], r["instance"], r["label"], r["start"]))
    return {
        "preset": asdict(preset),
        "seed": seed,
        "settings": {s: asdict(params_for(s, 8)) | {"n_tasks": None} for s in SETTINGS},
        "instances": {
            f"{s}/N={n}": [
                {
                    "tasks": inst.tasks.tolist(),
                    "optimum": inst.optimum,
                    "worst": inst.worst,
                    "heuristics": inst.heuristics,
                }
                for inst in insts
            ]
            for (s, n), insts in instances.items()
        },
        "runs": runs,
    }


def run_preset(
    preset: str,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    instances: int | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Run the named preset (``instances`` overrides its task sets per N)."""
    grid = PRESETS[preset] if instances is None else replace(PRESETS[preset], instances=instances)
    return run_grid(grid, seed=seed, workers=workers, progress=progress)
