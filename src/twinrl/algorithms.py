"""Named algorithms (``ql``, ``dteql``, ``dtaql``, ...): an agent plus assists, seeded from one seed.

The random streams are derived as ``SeedSequence(seed).spawn(3) -> (env, agent, assists)``; the
fused backend (:mod:`twinrl.experiments.fused`) derives the same streams, which is what makes the
two bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, cast

import gymnasium as gym
import numpy as np

from twinrl.agents.dqn import DQN, DQNConfig
from twinrl.agents.dqn_config import MAX_HISTORY
from twinrl.agents.qlearning import QLearning, QLearningConfig
from twinrl.agents.sarsa import ExpectedSarsa, Sarsa
from twinrl.assists.action_trials import ActionTrials
from twinrl.assists.base import Assist
from twinrl.assists.differential import DifferentialTwins
from twinrl.assists.predictive_targets import PredictiveTargets
from twinrl.assists.safe_exploration import SafeExploration
from twinrl.assists.twin_agents import TwinAgents
from twinrl.errors import ConfigError
from twinrl.resources import check_memory, tabular_bytes
from twinrl.validation import check_int

ALGORITHMS = {
    "ql": "physical tabular Q-learning (no twin)",
    "dteql": "DT-assisted exploring Q-learning: ActionTrials(n_trials) on Q-learning (Alg. 2)",
    "dtaql": "DT-assisted asynchronous Q-learning: TwinAgents(n_agents, sync_every) (Alg. 1)",
    "dtaql-visit": "dtaql with line 12 read per entry: each Q entry averaged over the agents that "
    "updated it since the last sharing (TwinAgents(average='visit'))",
    "dqn": "deep Q-learning (torch extra), per-branch Q-head (branch mean, or the VDN sum with "
    "agent.head=sum), no twin",
    "dt-dqn": "DQN with PredictiveTargets(k, m): k-step targets over m twin trajectories",
    "nstep-dqn": "n-step DQN with n = k on the physical trajectory (the baseline for dt-dqn)",
    "sarsa": "physical tabular SARSA (no twin)",
    "expected-sarsa": "physical tabular Expected SARSA (no twin)",
    "dt-diff": "differential twins: Q-learning with other step sizes and exploration, SARSA and "
    "Expected SARSA train in their own free-running domains; the physical Q-learner adopts the "
    "best by twin evaluation every sync_every steps (DifferentialTwins(use='adopt'))",
    "dt-diff-distill": "dt-diff, but the learners' consensus is distilled into the physical Q "
    "table every sync_every steps (DifferentialTwins(use='distill'))",
    "dt-diff-dqn": "differential twins of DQN variants (step size, n-step, dueling, width; torch "
    "extra) in "
    "their own free-running domains; the physical DQN adopts the best fitting one",
}
TWIN_AGENT_AVERAGES = {"dtaql": "mean", "dtaql-visit": "visit"}
"""The algorithms that run :class:`TwinAgents`, and the reading of Algorithm 1, line 12 each uses."""
DEEP = ("dqn", "dt-dqn", "nstep-dqn", "dt-diff-dqn")
"""Algorithms whose agent is :class:`~twinrl.agents.DQN` (the others are tabular)."""
TABULAR_AGENTS: dict[str, type[QLearning]] = {"sarsa": Sarsa, "expected-sarsa": ExpectedSarsa}
"""The physical agent's class where it is not :class:`QLearning`."""
DIFFERENTIAL_USES = {"dt-diff": "adopt", "dt-diff-distill": "distill", "dt-diff-dqn": "adopt"}
"""The algorithms that run :class:`DifferentialTwins`, and what the physical agent does with them."""


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
    domains: int = 1,
    prediction: dict[str, Any] | None = None,
    recurrent: int = 0,
) -> tuple[Any, list[Assist]]:
    """The agent and assists of a named algorithm for ``env``. ``k`` and ``m`` are dt-dqn's
    look-ahead and trajectories (``k`` is nstep-dqn's n); ``prediction`` holds dt-dqn's other
    :class:`PredictiveTargets` options (``future``, ``first_actions``; the env's action space is
    passed for them). The ``dt-diff`` algorithms run their
    learners (:func:`tabular_learners`, :func:`deep_learners`) in ``domains`` free-running
    domains each and sync every ``sync_every`` steps; ``recurrent`` L > 1 adds dt-diff-dqn's
    recurrent learner of history L (:func:`deep_learners`). ``safe_exploration=True`` adds a
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
    recurrent = _check_recurrent(name, recurrent)
    history = agent_config.history if isinstance(agent_config, DQNConfig) else 1
    if name == "dt-diff-dqn" and history > 1:
        raise ConfigError(
            f"dt-diff-dqn's learners include a dueling head, which a recurrent DQN cannot have; "
            f"agent.history={history} is refused there. Keep agent.history=1 and add a recurrent "
            f"learner with recurrent={history}"
        )
    if name == "dt-dqn" and history > 1:
        raise ConfigError(
            f"dt-dqn's PredictiveTargets teach with twin rollouts, which have no observation "
            f"history; agent.history={history} (a recurrent DQN) is refused there. "
            "Use algorithm dqn or nstep-dqn with history, or history=1"
        )
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
        _check_tabular_memory(env, n_agents if name in TWIN_AGENT_AVERAGES else 0)
        cls_ = TABULAR_AGENTS.get(name, QLearning)
        agent = cls_.for_env(env, agent_config, rng=streams.agent)  # type: ignore[arg-type]
    if name == "dteql":
        n_actions = int(env.action_space.n)  # type: ignore[attr-defined]
        assists.append(ActionTrials(n_trials, n_actions, rng=streams.assists))
    elif name in TWIN_AGENT_AVERAGES:
        average = TWIN_AGENT_AVERAGES[name]
        twin_agents = TwinAgents(n_agents, sync_every, rng=streams.assists, average=average)
        twin_agents.attach(agent)
        assists.append(twin_agents)
    elif name in DIFFERENTIAL_USES:
        learner_seq, storage_seq = streams.assists.spawn(2)
        learners: dict[str, Any]
        if name in DEEP:
            learners = deep_learners(env, cast(DQNConfig, agent.config), learner_seq,
                                     recurrent=recurrent)  # fmt: skip
        else:
            learners = tabular_learners(env, agent.config, learner_seq)
        assists.append(DifferentialTwins(learners, domains=domains, sync_every=sync_every,
                                         use=DIFFERENTIAL_USES[name], seed=storage_seq))  # fmt: skip
    if safe_exploration not in (False, True, "audit"):
        raise ValueError(f"safe_exploration={safe_exploration!r}; allowed: False, True, 'audit'")
    if safe_exploration:
        n = int(env.action_space.n)  # type: ignore[attr-defined]
        assists.append(SafeExploration(n, audit_only=safe_exploration == "audit"))
    return agent, assists


def _check_recurrent(name: str, recurrent: Any) -> int:
    """``recurrent`` checked: 0 (no recurrent learner), or a history in [2, MAX_HISTORY] for
    ``dt-diff-dqn`` only."""
    recurrent = check_int("recurrent", recurrent, 0, MAX_HISTORY)
    if recurrent == 1:
        raise ConfigError(
            "recurrent=1 is a history of one observation, the plain DQN the learners already "
            "hold; use recurrent=0 (none) or a history of 2 or more"
        )
    if recurrent and name != "dt-diff-dqn":
        raise ConfigError(
            f"recurrent={recurrent} adds a recurrent learner to dt-diff-dqn's differential twins; "
            f"algorithm {name!r} has none (for a recurrent physical DQN set agent.history)"
        )
    return recurrent


def _check_tabular_memory(env: gym.Env[Any, Any], n_agents: int) -> None:
    """Refuse, before any table is allocated, a tabular learner (with ``n_agents`` twin copies)
    whose tables would not fit in memory; the message names the sizes and the knobs."""
    obs, act = env.observation_space, env.action_space
    if not isinstance(obs, gym.spaces.Discrete) or not isinstance(act, gym.spaces.Discrete):
        return  # QLearning.for_env refuses these spaces with its own message
    n_states, n_actions = int(obs.n), int(act.n)
    copies = f" and {n_agents} twin agents' copies of it" if n_agents else ""
    knob = "the environment's state or action space (e.g. env_kwargs.n_tasks)"
    check_memory(
        tabular_bytes(n_states, n_actions, n_agents),
        f"the Q table ({n_states} states x {n_actions} actions, 8 bytes each){copies}",
        knob + (" or n_agents" if n_agents else ""),
    )


def tabular_learners(
    env: gym.Env[Any, Any], base: QLearningConfig, rng: np.random.SeedSequence
) -> dict[str, QLearning]:
    """The tabular learners of ``dt-diff``: the physical configuration ``base`` as Q-learning,
    Q-learning with three times the step size (capped at 1) and with three times the exploration
    floor (capped at 1), SARSA and Expected SARSA; each with its own stream from ``rng``."""
    eps_min = min(1.0, 3 * base.eps_min)
    specs: list[tuple[str, type[QLearning], QLearningConfig]] = [
        ("q-learning", QLearning, base),
        ("q-learning lr x3", QLearning, replace(base, lr=min(1.0, 3 * base.lr))),
        ("q-learning eps x3", QLearning,
         replace(base, eps_min=eps_min, eps0=min(base.eps0, 1.0 - eps_min))),
        ("sarsa", Sarsa, base),
        ("expected-sarsa", ExpectedSarsa, base),
    ]  # fmt: skip
    seqs = rng.spawn(len(specs))
    return {
        name: cls.for_env(env, cfg, rng=s) for (name, cls, cfg), s in zip(specs, seqs, strict=True)
    }


def deep_learners(
    env: gym.Env[Any, Any], base: DQNConfig, rng: np.random.SeedSequence, *, recurrent: int = 0
) -> dict[str, DQN]:
    """The DQN learners of ``dt-diff-dqn``: the physical configuration ``base``, twice its step
    size (capped at 0.1), 3-step returns, a dueling head and a network of twice the width (the
    last two do not fit a plain physical DQN: they are evaluated and stored, never adopted);
    each with its own stream. ``recurrent`` L > 1 adds a sixth, ``"dqn recurrent"``: ``base``
    with ``history=L``, a GRU over the last L observations (for partial observation, e.g.
    MultiUAV with a ``sensing_radius``); it fits only a physical DQN of the same history, so
    beside a plain one it is evaluated and stored, never adopted. The first five learners and
    their streams are the same with or without it."""
    specs = [
        ("dqn", base),
        ("dqn lr x2", replace(base, lr=min(0.1, 2 * base.lr))),
        ("dqn 3-step", replace(base, n_step=3)),
        ("dqn dueling", replace(base, dueling=True)),
        ("dqn wide", replace(base, hidden=tuple(2 * h for h in base.hidden))),
    ]
    if recurrent:  # spawned sixth, so the first five streams do not change
        specs.append(
            ("dqn recurrent", replace(base, history=_check_recurrent("dt-diff-dqn", recurrent)))
        )
    seqs = rng.spawn(len(specs))
    return {name: DQN.for_env(env, cfg, rng=s) for (name, cfg), s in zip(specs, seqs, strict=True)}
