"""Edge scheduling beyond the paper's sizes: a deep sequential agent at N = 10 to 20 (torch extra).

The paper's tabular learners stop at N = 8 (N! orders). Here one DQN per N learns the
``sequential`` formulation (pick the next task; N steps per frame, masked) on the
``observation="features"`` state with a per-task set network (``DQNConfig.item_features``) and the
potential-shaped reward (``reward="potential"``: same return, minus the objective). It trains
once per N across random task sets of the ``deadlines`` setting, where no priority rule is
optimal, and is then judged on held-out task sets on the physical env, two ways:

* ``DQN greedy``: the network's greedy order (N physical steps, no twin).
* ``DT rollout``: the paper's DTEQL idea at scale. Before each physical step, the twin tries every
  unsent task as the next one and completes each schedule with the network's greedy policy
  (:func:`twinrl.twin.rollout`), and the physical env takes the best candidate. Twin work is the
  number of twin domain steps, reported beside the physical steps.

Both are compared with the exact optimum (:func:`twinrl.baselines.edge_exact.exact_optimum`),
EDF, SPT, Johnson's rule and local search. :mod:`twinrl.experiments.scale_report` writes the
table, the figure and the report section.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np

from twinrl.agents.dqn_config import DQNConfig
from twinrl.baselines import edge_heuristics as heuristics
from twinrl.baselines.edge_exact import exact_optimum
from twinrl.envs.edge_scheduling import FEATURES_PER_TASK, EdgeParams, sample_tasks
from twinrl.experiments.edge_tables import SETTINGS
from twinrl.experiments.parallel import run_jobs

ENV_ID = "twinrl/EdgeScheduling-v0"
SETTING = "deadlines"
"""The setting of :data:`twinrl.experiments.edge_tables.SETTINGS` used here (R = 2 Mbit/s,
zeta = 2 s per miss): no priority rule is optimal there (the report counts how often each is)."""
HEURISTICS = ("EDF", "SPT", "Johnson", "local search")
LEARNED = ("DQN greedy", "DT rollout")
METHODS = (*HEURISTICS, *LEARNED)


@dataclass(frozen=True)
class ScalePreset:
    """Size of the study."""

    ns: tuple[int, ...]
    """Task counts N."""
    instances: int
    """Held-out task sets per N (the unit of the confidence intervals)."""
    episodes: int
    """Training episodes (random task sets) per N; N physical steps each."""
    restarts: int = 1
    """Networks trained per N from independent seeds. ``DQN greedy`` is the one with the lowest
    mean greedy cost on :attr:`validation` other task sets (not the held-out ones); ``DT rollout``
    completes each candidate with every one of them."""
    validation: int = 16
    """Task sets drawn to choose among the restarts."""


PRESETS = {
    "quick": ScalePreset(ns=(10, 12, 16, 20), instances=10, episodes=600, restarts=2),
    "paper": ScalePreset(ns=(10, 12, 16, 20), instances=32, episodes=2000, restarts=3),
}


def agent_config(n: int, episodes: int) -> DQNConfig:
    """The DQN of the study: a per-task set network, gamma = 1 (the objective is an undiscounted
    sum over the N steps), exploration decayed over the first half of training."""
    steps = n * episodes
    return DQNConfig(
        hidden=(64, 64),
        item_features=FEATURES_PER_TASK,
        lr=1e-3,
        gamma=1.0,
        batch_size=64,
        buffer_capacity=min(50_000, steps),
        learning_starts=min(1_000, steps),
        train_every=2,
        target_update=250,
        eps_decay_steps=max(1, steps // 2),
        eps_end=0.02,
        n_step=3,
    )


def params_for(n: int, *, resample: bool = False) -> dict[str, Any]:
    """The env keyword arguments of the study at ``N = n``."""
    return {"n_tasks": n, "formulation": "sequential", "observation": "features",
            "reward": "potential", "resample_tasks": resample, **SETTINGS[SETTING]}  # fmt: skip


def held_out(n: int, count: int, seed: int, stream: int = 0) -> list[np.ndarray]:
    """Task sets of N drawn from ``SeedSequence([seed, n, i, stream])``: the held-out sets
    (``stream`` 0) or the validation sets that choose among restarts (1)."""
    params = EdgeParams(**params_for(n))
    return [
        sample_tasks(params, np.random.default_rng(np.random.SeedSequence([seed, n, i, stream])))
        for i in range(count)
    ]


def train_agent(n: int, episodes: int, seed: int) -> Any:
    """A DQN trained by :func:`twinrl.train` on ``episodes`` random task sets of N (physical
    steps only, no twin: ``N * episodes`` of them)."""
    from twinrl.agents.dqn import DQN
    from twinrl.training import train

    env = gym.make(ENV_ID, **params_for(n, resample=True))
    agent = DQN.for_env(env, agent_config(n, episodes), rng=np.random.SeedSequence([seed, n, 1]))
    train(env, agent, budget=n * episodes, seed=seed, evaluate=False)
    env.close()
    return agent


def greedy_schedule(agent: Any, n: int, tasks: np.ndarray) -> tuple[float, int]:
    """Cost of the agent's greedy order on the physical env, and the physical steps taken."""
    env = gym.make(ENV_ID, **params_for(n))
    obs, info = env.reset(options={"tasks": tasks})
    terminated, steps = False, 0
    while not terminated:
        action = agent.act(obs, explore=False, mask=info["action_mask"])
        obs, _, terminated, _, info = env.step(action)
        steps += 1
    env.close()
    return float(info["cost"]), steps


def rollout_schedule(agents: Sequence[Any], n: int, tasks: np.ndarray) -> tuple[float, int, int]:
    """Cost of the DT-rollout order on the physical env, its physical steps and twin evaluations.

    At each physical step the twin mirrors the physical state, tries every unsent task as the next
    one and completes each schedule with each agent's greedy policy; the physical env takes the
    task whose best completion cost least (the first on ties). With one agent this is the rollout
    algorithm (Bertsekas), never worse than that agent's greedy order; with several, never worse
    than the best of them.
    """
    from twinrl.twin import DigitalTwin
    from twinrl.twin.rollout import greedy_policy, rollout

    env = gym.make(ENV_ID, **params_for(n))
    twin = DigitalTwin(env)
    policies = [greedy_policy(agent) for agent in agents]
    _, info = env.reset(options={"tasks": tasks})
    terminated, steps = False, 0
    while not terminated:
        candidates = np.flatnonzero(info["action_mask"]).astype(np.int64)
        state = twin.capture(env)
        twin.sync(state)
        starts, remaining = [state] * len(candidates), n - steps
        returns = np.max(
            [rollout(twin, starts, candidates, p, remaining, gamma=1.0).returns for p in policies],
            axis=0,
        )
        action = int(candidates[int(np.argmax(returns))])
        _, _, terminated, _, info = env.step(action)
        steps += 1
    env.close()
    return float(info["cost"]), steps, int(twin.evaluations)


def _mean_greedy_cost(agent: Any, n: int, tasks: list[np.ndarray]) -> float:
    return float(np.mean([greedy_schedule(agent, n, t)[0] for t in tasks]))


def run_n(args: tuple[int, ScalePreset, int]) -> dict[str, Any]:
    """Train (with restarts) at one N and evaluate every method on its held-out task sets."""
    n, preset, seed = args
    clock = time.process_time()
    validation = held_out(n, preset.validation, seed, stream=1)
    agents, restart_costs = [], []
    for r in range(preset.restarts):
        run_seed = int(np.random.SeedSequence([seed, n, r]).generate_state(1)[0])
        agents.append(train_agent(n, preset.episodes, run_seed))
        restart_costs.append(_mean_greedy_cost(agents[-1], n, validation))
    best = agents[int(np.argmin(restart_costs))]
    train_cpu = time.process_time() - clock
    params = EdgeParams(**params_for(n))
    rows = []
    for i, tasks in enumerate(held_out(n, preset.instances, seed)):
        start = time.process_time()
        optimum = exact_optimum(params, tasks).cost
        dp_cpu = time.process_time() - start
        costs = {
            "EDF": heuristics.edf(params, tasks).cost,
            "SPT": heuristics.spt(params, tasks).cost,
            "Johnson": heuristics.johnson(params, tasks).cost,
            "local search": heuristics.local_search(params, tasks).cost,
        }
        start = time.process_time()
        costs["DQN greedy"], greedy_steps = greedy_schedule(best, n, tasks)
        costs["DT rollout"], rollout_steps, twin_evals = rollout_schedule(agents, n, tasks)
        eval_cpu = time.process_time() - start
        rows.append({
            "instance": i, "optimum": optimum, "dp_cpu_seconds": dp_cpu, "costs": costs,
            "greedy_physical_steps": greedy_steps, "rollout_physical_steps": rollout_steps,
            "rollout_twin_evaluations": twin_evals, "eval_cpu_seconds": eval_cpu,
        })  # fmt: skip
    return {
        "n": n,
        "train_physical_steps": preset.restarts * n * preset.episodes,
        "train_cpu_seconds": train_cpu,
        "restart_validation_costs": restart_costs,
        "cpu_seconds": time.process_time() - clock,
        "instances": rows,
    }


def run_grid(
    preset: ScalePreset, *, seed: int = 0, workers: int = 1, progress: bool = False
) -> dict[str, Any]:
    """Run every N of a preset (one job each, largest first); returns a JSON-able summary."""
    jobs = [(n, preset, seed) for n in sorted(preset.ns, reverse=True)]
    runs = list(run_jobs(run_n, jobs, workers=workers, progress=progress, desc="N"))
    runs.sort(key=lambda r: r["n"])
    return {
        "preset": asdict(preset),
        "seed": seed,
        "setting": {SETTING: SETTINGS[SETTING]},
        "agent": {str(n): asdict(agent_config(n, preset.episodes)) for n in preset.ns},
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
    """Run the named preset (``instances`` overrides its held-out task sets per N)."""
    grid = PRESETS[preset] if instances is None else replace(PRESETS[preset], instances=instances)
    return run_grid(grid, seed=seed, workers=workers, progress=progress)
