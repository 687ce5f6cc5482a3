"""Named algorithms (``ql``, ``dteql``, ``dtaql``, ...): an agent plus assists, seeded from one seed.

The random streams are derived as ``SeedSequence(seed).spawn(3) -> (env, agent, assists)``; the
fused backend (:mod:`twinrl.experiments.fused`) derives the same streams, which is what makes the
two bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np

from twinrl.agents.dqn import DQN, DQNConfig
from twinrl.agents.qlearning import QLearning, QLearningConfig
from twinrl.assists.action_trials import ActionTrials
from twinrl.assists.base import Assist
from twinrl.assists.predictive_targets import PredictiveTargets
from twinrl.assists.safe_exploration import SafeExploration
from twinrl.assists.twin_agents import TwinAgents

ALGORITHMS = {
    "ql": "physical tabular Q-learning (no twin)",
    "dteql": "DT-assisted exploring Q-learning: ActionTrials(n_trials) on Q-learning (Alg. 2)",
    "dtaql": "DT-assisted asynchronous Q-learning: TwinAgents(n_agents, sync_every) (Alg. 1)",
    "dtaql-visit": "dtaql with line 12 read per entry: each Q entry averaged over the agents that "
    "updated it since the last sharing (TwinAgents(average='visit'))",
    "dqn": "deep Q-learning (torch extra), factorized per-branch Q-head, no twin",
    "dt-dqn": "DQN with PredictiveTargets(k, m): k-step targets over m twin trajectories",
    "nstep-dqn": "n-step DQN with n = k on the physical trajectory (the baseline for dt-dqn)",
}
TWIN_AGENT_AVERAGES = {"dtaql": "mean", "dtaql-visit": "visit"}
"""The algorithms that run :class:`TwinAgents`, and the reading of Algorithm 1, line 12 each uses."""
DEEP = ("dqn", "dt-dqn", "nstep-dqn")
"""Algorithms whose agent is :class:`~twinrl.agents.DQN` (the others use QLearning)."""


def config_class(name: str) -> type[QLearningConfig] | type[DQNConfig]:
    """The agent configuration class of a named algorithm."""
    return DQNConfig if name in DEEP else QLearningConfig


@dataclass(frozen=True)
class Streams:
    """The random streams of one run, derived from one seed."""

    env_seed: int
    agent: np.random.SeedSequence
    assists: np.random.SeedSequence

    @classmethod
    def from_seed(cls, seed: int) -> Streams:
        env_ss, agent_ss, assist_ss = np.random.SeedSequence(seed).spawn(3)
        return cls(int(env_ss.generate_state(1)[0]), agent_ss, assist_ss)


def build_algorithm(
    name: str,
    env: gym.Env[Any, Any],
    seed: int,
    *,
    agent_config: QLearningConfig | DQNConfig | dict[str, Any] | None = None,
    n_trials: int = 500,
    n_agents: int = 500,
    sync_every: int = 512,
    safe_exploration: bool | str = False,
    k: int = 3,
    m: int = 4,
    prediction: dict[str, Any] | None = None,
) -> tuple[Any, list[Assist]]:
    """The agent and assists of a named algorithm for ``env``. ``k`` and ``m`` are dt-dqn's
    look-ahead and trajectories (``k`` is nstep-dqn's n); ``prediction`` holds dt-dqn's other
    :class:`PredictiveTargets` options (``future``, ``first_actions``; the env's action space is
    passed for them). ``safe_exploration=True`` adds a
    :class:`SafeExploration` veto (the env must report ``failed`` to the twin); ``"audit"`` adds
    one that only counts the failures a veto would have avoided."""
    if name not in ALGORITHMS:
        raise ValueError(f"algorithm {name!r} is unknown; choose one of {', '.join(ALGORITHMS)}")
    streams = Streams.from_seed(seed)
    cls = config_class(name)
    if isinstance(agent_config, dict):
        agent_config = cls(**agent_config)
    if agent_config is not None and not isinstance(agent_config, cls):
        raise TypeError(f"algorithm {name!r} takes a {cls.__name__}, got {agent_config!r}")
    assists: list[Assist] = []
    if name in DEEP:
        cfg = agent_config if isinstance(agent_config, DQNConfig) else DQNConfig()
        if name == "nstep-dqn":
            cfg = replace(cfg, n_step=k)
        agent: Any = DQN.for_env(env, cfg, rng=streams.agent)
        if name == "dt-dqn":
            options = {"action_space": env.action_space, **(prediction or {})}
            assists.append(PredictiveTargets(k, m, gamma=cfg.gamma, rng=streams.assists, **options))
    else:
        agent = QLearning.for_env(env, agent_config, rng=streams.agent)  # type: ignore[arg-type]
    if name == "dteql":
        n_actions = int(env.action_space.n)  # type: ignore[attr-defined]
        assists.append(ActionTrials(n_trials, n_actions, rng=streams.assists))
    elif name in TWIN_AGENT_AVERAGES:
        average = TWIN_AGENT_AVERAGES[name]
        twin_agents = TwinAgents(n_agents, sync_every, rng=streams.assists, average=average)
        twin_agents.attach(agent)
        assists.append(twin_agents)
    if safe_exploration not in (False, True, "audit"):
        raise ValueError(f"safe_exploration={safe_exploration!r}; allowed: False, True, 'audit'")
    if safe_exploration:
        n = int(env.action_space.n)  # type: ignore[attr-defined]
        assists.append(SafeExploration(n, audit_only=safe_exploration == "audit"))
    return agent, assists
