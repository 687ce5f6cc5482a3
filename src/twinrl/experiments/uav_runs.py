"""Runs of the multi-UAV experiments ``fig5`` and ``observation`` (paper 000, Section IV-B).

The presets, the env settings, the variants of both experiments, and :func:`run_preset`, which
trains every variant over the seeds, evaluates the reference policies on the same episodes and
rolls out the trained policies' trajectories. :mod:`twinrl.experiments.uav_figures` writes the
reports and figures from its summary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from twinrl.envs.multi_uav import MultiUAVParams
from twinrl.experiments import episodic
from twinrl.experiments.episodic import Variant

ENV_ID = "twinrl/MultiUAV-v0"
ENV: dict[str, Any] = {"reward_centre": 20.0, "observation": "per_uav"}
"""Every run's env settings beyond the defaults: the reward is centred on 20 Mbit/s (see
:attr:`MultiUAVParams.reward_centre`; it does not change which policy is better; reports show the
uncentred mean user rate), and each UAV's view of the network is one observation block
(``observation="per_uav"``), which the base learner's shared network reads."""
BASE_AGENT: dict[str, Any] = {"head": "sum", "shared_branches": True}
"""The base learner of every arm: per-UAV utilities from one network shared by the UAVs (each
reads its own block and its one-hot), summed into the joint value (VDN) and trained on the shared
reward. The earlier base (one torso, each branch regressed on the joint target) ended at 0.97 of
the static k-means placement (docs/multi-uav.md)."""
SENSING_RADIUS = 25.0
"""Ground radius (m) within which a UAV senses users in the ``observation`` experiment."""
KS = (1, 3, 5)
TRAJECTORIES = 4
"""m, the twin trajectories averaged by every DT-DQL variant."""


@dataclass(frozen=True)
class Preset:
    episodes: int
    seeds: int
    window: int = 10
    """Moving-average window of the curves (episodes); the paper's is 10."""


PRESETS = {
    # quick: a smoke run inside the README main job's budget; 40 episodes since the shared
    # per-UAV network (about 1.3x the CPU per gradient step of the old torso) became the base
    "quick": Preset(episodes=40, seeds=2),
    "paper": Preset(episodes=600, seeds=5),
}


def agent_config(preset: Preset, steps: int) -> dict[str, Any]:
    """DQN settings of every variant: :data:`BASE_AGENT`; exploration decays linearly over the
    first 40% of the physical steps, to 0.05; learning starts after 500 steps (a quarter of a
    shorter run) and the target network is copied every 250 gradient steps (the paper states none
    of its DQN settings)."""
    total = preset.episodes * steps
    return {
        **BASE_AGENT,
        "eps_decay_steps": max(1, int(0.4 * total)),
        "learning_starts": max(1, min(500, total // 4)),
        "target_update": 250,
    }


def fig5_variants() -> list[Variant]:
    out = [Variant("DQL", "dqn")]
    out += [Variant(f"DT-DQL k={k}", "dt-dqn", k=k, m=TRAJECTORIES) for k in KS]
    out += [Variant(f"n-step DQN n={k}", "nstep-dqn", k=k) for k in KS if k > 1]
    return out


def observation_variants() -> list[Variant]:
    partial = (("sensing_radius", SENSING_RADIUS),)
    return [
        Variant(f"DQL, partial (r = {SENSING_RADIUS:g} m)", "dqn", env_kwargs=partial),
        Variant(
            "DQL, partial + GlobalObservation", "dqn", env_kwargs=partial, global_observation=True
        ),
    ]


def run_preset(
    preset: str | Preset,
    *,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
    seeds: int | None = None,
    **_: Any,
) -> dict[str, Any]:
    """Every variant over the preset's seeds (a name of :data:`PRESETS` or a :class:`Preset`),
    the reference policies, and trained policies' trajectories."""
    p = preset if isinstance(preset, Preset) else PRESETS[preset]
    n_seeds = seeds or p.seeds
    params = MultiUAVParams(**ENV)
    agent = agent_config(p, params.episode_steps)
    runs = episodic.run_variants(
        ENV_ID, ENV, fig5_variants() + observation_variants(), seeds=n_seeds,
        episodes=p.episodes, seed=seed, workers=workers, progress=progress, agent_config=agent,
        eval_episodes=EVAL_EPISODES, keep_policy=True,
    )  # fmt: skip
    for run in runs:  # the reward is centred: report the mean user rate per step (Mbit/s)
        offset = {**ENV, **dict(run["variant"]["env_kwargs"])}.get("reward_centre", 0.0)
        lengths = np.asarray(run.pop("episode_length"), dtype=np.float64)
        run["episode_return"] = (np.asarray(run["episode_return"]) / lengths + offset).tolist()
        run["greedy_rate"] = float(np.mean(run.pop("greedy_return")) + offset)
    by_seed = _baselines(params, sorted({r["seed"] for r in runs}))
    return {
        "preset": {**asdict(p), "seeds": n_seeds,
                   "name": preset if isinstance(preset, str) else "custom"},
        "seed": seed,
        "env": ENV,
        "sensing_radius": SENSING_RADIUS,
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(params).items()},
        "agent_config": agent,
        "trajectories": _trajectories(params, runs, agent, seed=seed),
        "runs": runs,
        "baselines": {name: float(np.mean([b[name] for b in by_seed.values()]))
                      for name in next(iter(by_seed.values()))},
        "baselines_by_seed": by_seed,
    }  # fmt: skip


EVAL_EPISODES = 10
"""Greedy evaluation episodes of every trained policy (the same episodes for every variant)."""


def _baselines(params: MultiUAVParams, run_seeds: list[int]) -> dict[int, dict[str, float]]:
    """Per run seed, the reference policies' mean rate on that seed's evaluation episodes (the
    episodes the trained policies are evaluated on; k-means normalizes their greedy rates)."""
    from twinrl.baselines.multi_uav import evaluate_uav_policy, uav_policies

    return {
        run_seed: {
            name: evaluate_uav_policy(params, policy, episodes=EVAL_EPISODES,
                                      seed=episodic.evaluation_seed(run_seed))["mean_rate"]
            for name, policy in uav_policies().items()
        }
        for run_seed in run_seeds
    }  # fmt: skip


def _trajectories(
    params: MultiUAVParams, runs: list[dict[str, Any]], agent: dict[str, Any], *, seed: int
) -> dict[str, Any]:
    """One evaluation episode of the static k-means placement and of the first seed's trained
    DQL and DT-DQL (largest k) policies: positions for the trajectory figure. Drops every run's
    ``policy`` arrays (they are not part of the summary)."""
    import gymnasium as gym

    from twinrl.agents.dqn import DQN, DQNConfig
    from twinrl.baselines.multi_uav import StaticKMeans
    from twinrl.experiments.uav_plots import rollout_positions

    policies: dict[str, Any] = {}
    for run in runs:  # keep the first seed's policy of each variant, drop the others
        policies.setdefault(run["label"], run.pop("policy"))
    env = gym.make(ENV_ID, **ENV)
    out: dict[str, Any] = {}
    for label in ("k-means (static)", "DQL", f"DT-DQL k={max(KS)}"):
        if label.startswith("k-means"):
            trajectory = rollout_positions(params, StaticKMeans(), seed=seed, reads_state=True)
        else:
            dqn = DQN.for_env(env, DQNConfig(**agent))
            dqn.load_state_dict(policies[label])
            trajectory = rollout_positions(
                params, lambda obs, dqn=dqn: dqn.act(obs, explore=False), seed=seed
            )
        uavs, users, rate = trajectory
        out[label] = {"uavs": uavs, "users": users, "rate": rate}
    return out
