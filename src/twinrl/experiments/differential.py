"""Runs of the ``differential`` experiment: simultaneous training on differential twins (paper 000,
Section II-B) on access-point selection (tabular, the main case) and multi-UAV (deep, torch).

Per case, with paired seeds (every method of a seed shares the env and agent seeds):

* the single physical learner (``QL`` / ``DQL``, the reference every other run is paired with);
* every configuration of the differential learners trained alone physically (the best of them
  by mean final reward, chosen in hindsight, is the "best single configuration");
* ``DifferentialTwins`` with those configurations as K twin learners in their own free-running
  domains: ``adopt`` (the physical agent takes the best by twin evaluation every ``sync_every``
  steps) and, tabular only, ``distill`` (the learners' consensus is distilled into it);
* tabular only, ``DT-QL n=5`` (``ActionTrials``, domains re-synced every step) for context.

Every run records its physical episode rewards, the greedy policy's reward on seeded physical
evaluation episodes, its twin work, and the distinct (state, action) pairs its physical and twin
data cover; the differential runs also record which learner won each twin evaluation.
:mod:`twinrl.experiments.differential_report` writes the tables and figures.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from twinrl.algorithms import Streams, build_algorithm
from twinrl.experiments import episodic
from twinrl.experiments.parallel import run_jobs
from twinrl.storage.replay import Storage
from twinrl.training import train
from twinrl.twin.free_running import VisitCounter


@dataclass(frozen=True)
class Method:
    """One curve: a named algorithm with agent-configuration overrides."""

    label: str
    algorithm: str
    overrides: tuple[tuple[str, Any], ...] = ()
    """Agent configuration entries on top of the case's (one learner's configuration)."""
    n_trials: int = 0
    """Actions tried per physical step (``dteql``)."""


@dataclass(frozen=True)
class Case:
    """One environment of the experiment with its methods and sizes."""

    name: str
    env_id: str
    env_kwargs: tuple[tuple[str, Any], ...]
    reference: str
    """The single physical learner's label."""
    methods: tuple[Method, ...]
    episodes: int
    seeds: int
    window: int
    sync_every: int
    """delta, in physical steps."""
    eval_episodes: int
    agent: tuple[tuple[str, Any], ...] = ()
    needs: tuple[str, ...] = ()


def tabular_methods() -> tuple[Method, ...]:
    """The access-point methods; the single configurations are :func:`tabular_learners`'."""
    from twinrl.experiments.ap_figures import AGENT

    eps = min(1.0, 3 * AGENT["eps_min"])
    return (
        Method("QL", "ql"),
        Method("QL lr x3", "ql", (("lr", 0.3),)),
        Method("QL eps x3", "ql", (("eps_min", eps), ("eps0", min(AGENT["eps0"], 1 - eps)))),
        Method("SARSA", "sarsa"),
        Method("Expected SARSA", "expected-sarsa"),
        Method("DT-diff adopt", "dt-diff"),
        Method("DT-diff distill", "dt-diff-distill"),
        Method("DT-QL n=5", "dteql", n_trials=5),
    )


SINGLES = {"ap": ("QL", "QL lr x3", "QL eps x3", "SARSA", "Expected SARSA"),
           "uav": ("DQL", "DQL lr x2", "DQL 3-step", "DQL dueling", "DQL wide")}  # fmt: skip
"""Per case, the single configurations (the differential learners, each trained alone)."""
DIFFERENTIAL = {"ap": ("DT-diff adopt", "DT-diff distill"), "uav": ("DT-diff DQN adopt",)}
"""Per case, the DifferentialTwins methods."""


def deep_methods(hidden: tuple[int, ...], lr: float) -> tuple[Method, ...]:
    """The multi-UAV methods; the single configurations are :func:`deep_learners`'."""
    return (
        Method("DQL", "dqn"),
        Method("DQL lr x2", "dqn", (("lr", min(0.1, 2 * lr)),)),
        Method("DQL 3-step", "dqn", (("n_step", 3),)),
        Method("DQL dueling", "dqn", (("dueling", True),)),
        Method("DQL wide", "dqn", (("hidden", tuple(2 * h for h in hidden)),)),
        Method("DT-diff DQN adopt", "dt-diff-dqn"),
    )


PRESETS = {"quick": {"ap": (600, 3), "uav": (30, 2)}, "paper": {"ap": (1500, 10), "uav": (80, 3)}}
"""(episodes, seeds) per case and preset. Quick: a preview (too few seeds to decide). Paper: the
access-point seeds sized from the quick pilot (paired greedy-reward differences with a standard
deviation near 0.4 per step: 10 seeds give a 95% CI of about +-0.3); the deep case stays a small
budget (3 seeds: never decided; see docs/differential.md)."""


def cases(preset: str, seeds: int | None = None) -> list[Case]:
    """The experiment's cases at ``preset`` (``seeds`` overrides both cases' seeds)."""
    from twinrl.agents.dqn_config import DQNConfig
    from twinrl.experiments import uav_runs
    from twinrl.experiments.ap_figures import AGENT

    (ap_episodes, ap_seeds), (uav_episodes, uav_seeds) = PRESETS[preset].values()
    steps = 50  # MultiUAV-v0's episode length at the experiment's settings
    deep = uav_runs.agent_config(uav_runs.Preset(uav_episodes, uav_seeds), steps)
    base = DQNConfig()
    return [
        Case("ap", "twinrl/APSelection-v0", (), "QL", tabular_methods(), ap_episodes,
             seeds or ap_seeds, window=50, sync_every=100, eval_episodes=50,
             agent=tuple(AGENT.items())),
        Case("uav", uav_runs.ENV_ID, tuple(uav_runs.ENV.items()), "DQL",
             deep_methods(base.hidden, base.lr), uav_episodes, seeds or uav_seeds, window=10,
             sync_every=steps, eval_episodes=uav_runs.EVAL_EPISODES, agent=tuple(deep.items()),
             needs=("torch",)),
    ]  # fmt: skip


@dataclass(frozen=True)
class Job:
    case: Case
    method: Method
    seed: int


def run_job(job: Job) -> dict[str, Any]:
    """Train one method for the case's episodes; per-episode rewards, the greedy evaluation on
    the physical env, twin work, coverage and the differential learners' record."""
    case, m = job.case, job.method
    env = gym.make(case.env_id, **dict(case.env_kwargs))
    config = {**dict(case.agent), **dict(m.overrides)}
    agent, assists = build_algorithm(m.algorithm, env, job.seed, agent_config=config,
                                     n_trials=max(m.n_trials, 1), sync_every=case.sync_every)  # fmt: skip
    horizon = int(env.unwrapped.episode_steps)  # type: ignore[attr-defined]
    budget = case.episodes * horizon
    storage = Storage(budget, m.n_trials) if case.name == "ap" else None
    run = train(env, agent, assists=assists, budget=budget, max_episodes=case.episodes,
                seed=Streams.from_seed(job.seed).env_seed, evaluate=False,
                storage=storage)  # fmt: skip
    greedy = episodic.greedy_returns(env, agent, case.eval_episodes,
                                     seed=episodic.evaluation_seed(job.seed))  # fmt: skip
    out: dict[str, Any] = {
        "case": case.name,
        "label": m.label,
        "variant": {**asdict(m), "overrides": dict(m.overrides)},
        "seed": job.seed,
        "episode_return": [float(r) / horizon for r in run.episode_returns],
        "greedy_reward": float(np.mean(greedy)),
        "iterations": run.iterations,
        "twin_evaluations": run.twin_evaluations,
        "wall_time": run.wall_time,
    }
    if storage is not None:
        out["physical_pairs"] = _pairs(storage, [0])
        out["twin_pairs_resynced"] = _pairs(storage, range(1, storage.n_domains))
    for assist in assists:
        if assist.name == "differential_twins":
            stats = assist.stats()  # type: ignore[attr-defined]
            stats["distillations"] = _distill_summary(stats["distillations"])
            stats["fits"] = dict(assist.fits)  # type: ignore[attr-defined]
            stats["eval_steps"] = int(stats["eval_steps"])
            out["differential"] = stats
    return out


def _pairs(storage: Storage, domains: Any) -> int:
    """Distinct (observation, action) pairs stored in ``domains``."""
    visits = VisitCounter()
    for d in domains:
        rows = storage.domain(int(d))
        visits.add(rows.obs, rows.action)
    return len(visits)


def _distill_summary(records: list[dict[str, float]]) -> dict[str, Any]:
    """Mean disagreement before and after the distillations, and the last one."""
    if not records:
        return {"count": 0}
    before = [r["before"] for r in records]
    after = [r["after"] for r in records]
    return {"count": len(records), "before_mean": float(np.mean(before)),
            "after_mean": float(np.mean(after)), "last": records[-1]}  # fmt: skip


def run_preset(
    preset: str,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    seeds: int | None = None,
    only: tuple[str, ...] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Every case (or those named in ``only``) whose optional modules are installed (the others
    are named in ``skipped``), every method over the case's seeds ``SeedSequence([seed, s])``."""
    chosen = [c for c in cases(preset, seeds) if only is None or c.name in only]
    ready = [c for c in chosen if all(importlib.util.find_spec(n) for n in c.needs)]
    jobs = [
        Job(case, method, int(np.random.SeedSequence([seed, s]).generate_state(1)[0]))
        for case in ready
        for method in case.methods
        for s in range(case.seeds)
    ]
    runs = list(run_jobs(run_job, jobs, workers=workers, progress=progress, desc="differential"))
    order = {(c.name, m.label): i for c in ready for i, m in enumerate(c.methods)}
    runs.sort(key=lambda r: (r["case"], order[(r["case"], r["label"])], r["seed"]))
    return {
        "preset": {"name": preset, **{c.name: {"episodes": c.episodes, "seeds": c.seeds,
                                               "window": c.window, "sync_every": c.sync_every,
                                               "eval_episodes": c.eval_episodes}
                                      for c in ready}},
        "seed": seed,
        "cases": {c.name: {"env_id": c.env_id, "env_kwargs": dict(c.env_kwargs),
                           "reference": c.reference, "agent_config": dict(c.agent),
                           "methods": [m.label for m in c.methods]} for c in ready},
        "skipped": [c.name for c in chosen if c not in ready],
        "runs": runs,
    }  # fmt: skip
