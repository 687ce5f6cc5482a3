"""Paper 002, Table I and Table II: QL, DTEQL and DTAQL on edge task scheduling.

One grid of runs serves both tables: for each N, a set of task instances; for each instance, every
algorithm for ``budget`` physical iterations with the fused backend (bit-identical to
``twinrl.train``), evaluated against the exact optimum and the heuristics of
:mod:`twinrl.baselines.edge_scheduling`. A second setting (``deadlines``: a slower uplink and a
deadline penalty) shows where learning adds value over the heuristics; at the default setting
shortest-transmission-first is provably optimal (R c_max < f_ser keeps the server idle).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from twinrl.baselines import edge_scheduling as baselines
from twinrl.envs import edge_kernels as k
from twinrl.envs.edge_scheduling import EdgeParams, sample_tasks, schedule_metrics
from twinrl.experiments import metrics
from twinrl.experiments.fused import run_fused
from twinrl.experiments.parallel import run_jobs

ALGORITHMS: tuple[tuple[str, str, int], ...] = (
    ("DTEQL φ=500", "dteql", 500),
    ("DTEQL φ=200", "dteql", 200),
    ("DTEQL φ=100", "dteql", 100),
    ("DTEQL φ=50", "dteql", 50),
    ("DTAQL φ=500", "dtaql", 500),
    ("QL", "ql", 0),
)
"""(label, algorithm, phi) in the paper's column order."""

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
    """Instances of the ``deadlines`` setting (largest N; DTEQL φ=500 and QL only)."""


PRESETS = {
    "quick": Preset(ns=(6, 8), instances=2, deadline_instances=2),
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

    @property
    def cost_hint(self) -> float:
        """Rough relative run time, to start the longest jobs first."""
        per_step = 4 * self.phi if self.algorithm == "dtaql" else self.phi + 1
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


def _run_job(args: tuple[Job, np.ndarray, float, float, int, int]) -> dict[str, Any]:
    job, tasks, optimum, worst, budget, points = args
    params = params_for(job.setting, job.n)
    res = run_fused(
        job.algorithm, params, tasks, budget=budget, seed=job.seed,
        n_trials=job.phi or 500, n_agents=job.phi or 500,
    )  # fmt: skip
    greedy = int(np.argmax(res.q[0]))  # ties to the lowest index, as the evaluation does
    order = k.unrank_permutations(np.array([greedy]), job.n)[0]
    final = schedule_metrics(params, tasks, order)
    cost_curve = -res.greedy_return
    grid = np.unique(np.linspace(0, budget - 1, points).astype(np.int64))
    return {
        **asdict(job),
        "convergence": metrics.convergence_time(res.greedy_return, -optimum),
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
    plan = [("default", n, preset.instances, ALGORITHMS) for n in preset.ns]
    if preset.deadline_instances:
        chosen = tuple(a for a in ALGORITHMS if a[0] in ("DTEQL φ=500", "QL"))
        plan.append(("deadlines", max(preset.ns), preset.deadline_instances, chosen))
    for setting, n, count, algos in plan:
        insts = make_instances(setting, n, count, seed)
        instances[(setting, n)] = insts
        for i, inst in enumerate(insts):
            for a, (label, algo, phi) in enumerate(algos):
                run_seed = int(np.random.SeedSequence([seed, n, i, a]).generate_state(1)[0])
                job = Job(setting, n, i, label, algo, phi, run_seed)
                jobs.append((job, inst.tasks, inst.optimum, inst.worst, preset.budget, points))
    jobs.sort(key=lambda j: -j[0].cost_hint)
    runs = list(run_jobs(_run_job, jobs, workers=workers, progress=progress))
    runs.sort(key=lambda r: (r["setting"], r["n"], r["instance"], r["label"]))
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
