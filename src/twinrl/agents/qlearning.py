"""Tabular Q-learning (paper 002, Eq. 4-5) with the exploration schedule of Algorithms 1-2."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import Transitions, as_generator
from twinrl.agents.selection import UNIFORMS_PER_ACTION, epsilon_at, epsilon_greedy, q_update
from twinrl.checkpoint import check_state_dict
from twinrl.checkpoint.rng import checked_rng_state, rng_words
from twinrl.contract import pcg64_from_array
from twinrl.errors import ConfigError, ConfigTypeError
from twinrl.resources import check_memory, qtable_bytes
from twinrl.validation import check_choice, check_float, check_int, set_field


@dataclass(frozen=True)
class QLearningConfig:
    """Hyper-parameters of tabular Q-learning. Defaults follow paper 002, Section IV."""

    lr: float = 0.1
    """Learning rate alpha of Eq. (5), in (0, 1]."""
    gamma: float = 0.9
    """Discount factor, in [0, 1] (irrelevant in one-step episodes such as the ``order``
    formulation)."""
    eps_min: float = 0.1
    """Floor of the exploration rate, in [0, 1]."""
    eps0: float = 0.9
    """Initial excess exploration, in [0, 1] with ``eps_min + eps0 <= 1`` (an exploration rate is a
    probability): eps_i = eps_min + eps0 exp(-i / beta); 0.9 starts at 1.0."""
    beta: float = 5000.0
    """Decay constant of the exploration rate, in physical iterations, in (0, 1e15]."""
    q_init: float = 0.0
    """Initial value of every Q entry, in [-1e12, 1e12]. With rewards below it (costs), untried
    actions look best and greedy steps sweep the action space; above it, greedy steps repeat the
    best tried action."""
    tie_break: Literal["random", "first"] = "random"
    """How greedy choices break ties among equal Q values: ``random`` or ``first``."""
    reward_offset: float = 0.0
    """Constant added to every reward before the update, in [-1e12, 1e12]; shifts rewards relative
    to ``q_init``."""

    def __post_init__(self) -> None:
        set_field(self, "lr", check_float("lr", self.lr, 0.0, 1.0, low_open=True))
        for name in ("gamma", "eps_min", "eps0"):
            set_field(self, name, check_float(name, getattr(self, name), 0.0, 1.0))
        if self.eps_min + self.eps0 > 1.0 + 1e-12:
            raise ConfigError(
                f"eps_min + eps0 = {self.eps_min!r} + {self.eps0!r} = "
                f"{self.eps_min + self.eps0:.6g} is the exploration rate at the start and must be "
                "<= 1; lower eps0 or eps_min"
            )
        set_field(self, "beta", check_float("beta", self.beta, 0.0, 1e15, low_open=True))
        for name in ("q_init", "reward_offset"):
            set_field(self, name, check_float(name, getattr(self, name), -1e12, 1e12))
        check_choice("tie_break", self.tie_break, ("random", "first"))


class QLearning:
    """Tabular Q-learning over a ``Discrete`` observation and action space.

    Each epsilon-greedy decision draws exactly two uniforms from the agent's own RNG (see
    :mod:`twinrl.agents.selection`). The exploration rate follows the 1-based physical iteration set
    by :meth:`begin_iteration`, which the training loop calls once per physical step.
    """

    def __init__(
        self,
        n_states: int,
        n_actions: int,
        config: QLearningConfig | None = None,
        *,
        rng: np.random.Generator | np.random.SeedSequence | int | None = None,
    ) -> None:
        n_states = check_int("n_states", n_states, 1, 2**62)
        n_actions = check_int("n_actions", n_actions, 1, 2**62)
        if config is not None and not isinstance(config, QLearningConfig):
            raise ConfigTypeError(f"config must be a QLearningConfig, got {type(config).__name__}")
        check_memory(
            qtable_bytes(n_states, n_actions),
            f"the Q table ({n_states} states x {n_actions} actions, 8 bytes each)",
            "the environment's state or action space (e.g. env_kwargs.n_tasks)",
        )
        self.config = config or QLearningConfig()
        self.q = np.full((n_states, n_actions), self.config.q_init, dtype=np.float64)
        self.iteration = 1
        self.rng = as_generator(rng)
        self._all_actions = np.arange(n_actions, dtype=np.int64)

    @classmethod
    def for_env(
        cls,
        env: gym.Env[Any, Any],
        config: QLearningConfig | None = None,
        *,
        rng: np.random.Generator | np.random.SeedSequence | int | None = None,
    ) -> QLearning:
        """A Q-table sized for ``env``; both spaces must be ``Discrete``."""
        obs_space, act_space = env.observation_space, env.action_space
        if not isinstance(obs_space, gym.spaces.Discrete) or not isinstance(
            act_space, gym.spaces.Discrete
        ):
            raise TypeError(
                "tabular Q-learning needs Discrete observation and action spaces, got "
                f"{obs_space} and {act_space}; for EdgeScheduling-v0 use observation='index'"
            )
        return cls(int(obs_space.n), int(act_space.n), config, rng=rng)

    @property
    def epsilon(self) -> float:
        c = self.config
        return float(epsilon_at(self.iteration, c.eps_min, c.eps0, c.beta))

    def begin_iteration(self, iteration: int) -> None:
        """Set the 1-based physical iteration that drives the exploration schedule."""
        self.iteration = iteration

    def _valid(self, mask: NDArray[np.int8] | None) -> NDArray[np.int64]:
        if mask is None:
            return self._all_actions
        valid = np.flatnonzero(np.asarray(mask)).astype(np.int64)
        if valid.size == 0:
            raise ValueError("the action mask allows no action")
        return valid

    def act(self, obs: Any, *, explore: bool, mask: NDArray[np.int8] | None = None) -> int:
        """Epsilon-greedy if ``explore``; else greedy with ties to the lowest index (no RNG use)."""
        s = self._state_index(obs)
        valid = self._valid(mask)
        if explore:
            u = self.rng.random(UNIFORMS_PER_ACTION)
            random_ties = self.config.tie_break == "random"
            return int(epsilon_greedy(self.q[s], valid, self.epsilon, u[0], u[1], random_ties))
        return int(epsilon_greedy(self.q[s], valid, -1.0, 1.0, 0.0, False))

    def learn(self, transitions: Transitions) -> dict[str, float]:
        """Apply Eq. (5) to each transition in order: Q += lr (r + offset + gamma max Q' - Q).

        A row with a ``discount`` (a k-step return from the twin) bootstraps with it instead of
        gamma; NaN means gamma."""
        c = self.config
        if transitions.terminated.all() and len(transitions) > 1:
            fast = self._learn_terminal_batch(transitions)
            if fast is not None:
                return fast
        td_sum = 0.0
        for i in range(len(transitions)):
            s = self._state_index(transitions.obs[i])
            a = int(transitions.action[i])
            target = float(transitions.reward[i]) + c.reward_offset
            if not transitions.terminated[i]:
                s_next = self._state_index(transitions.next_obs[i])
                row = self.q[s_next]
                if transitions.next_mask is not None:
                    row = row[np.asarray(transitions.next_mask[i], dtype=bool)]
                if row.size:
                    gamma = c.gamma
                    if transitions.discount is not None and not np.isnan(transitions.discount[i]):
                        gamma = float(transitions.discount[i])
                    target = target + gamma * self.next_value(row)
            q = self.q[s, a]
            td = target - q
            self.q[s, a] = q_update(q, c.lr, target)
            td_sum += abs(td)
        return {"td_abs_mean": td_sum / max(len(transitions), 1)}

    def next_value(self, row: NDArray[np.float64]) -> float:
        """The value of the next state from its valid actions' Q values ``row`` (non-empty):
        ``max row`` for Q-learning (Eq. 5). :class:`~twinrl.agents.sarsa.Sarsa` and
        :class:`~twinrl.agents.sarsa.ExpectedSarsa` override only this."""
        return float(row.max())

    def _learn_terminal_batch(self, transitions: Transitions) -> dict[str, float] | None:
        """Eq. (5) for a batch of terminal transitions with distinct (state, action) pairs, in one
        numpy call: each entry sees the same operations as in the loop, so the result is identical.
        Returns None (use the loop) when a pair repeats or an observation is not a state index."""
        obs = np.asarray(transitions.obs)
        if obs.ndim != 1 or not np.issubdtype(obs.dtype, np.integer):
            return None
        s = obs.astype(np.int64)
        a = transitions.action
        if s.min() < 0 or s.max() >= self.q.shape[0]:
            self._state_index(obs[np.argmax((s < 0) | (s >= self.q.shape[0]))])  # raises
        flat = s * self.q.shape[1] + a
        if np.unique(flat).size != flat.size:
            return None
        q = self.q[s, a]
        td = (transitions.reward + self.config.reward_offset) - q
        self.q[s, a] = q_update(q, self.config.lr, transitions.reward + self.config.reward_offset)
        return {"td_abs_mean": float(np.abs(td).mean())}

    def _state_index(self, obs: Any) -> int:
        s = int(np.asarray(obs).item()) if np.ndim(obs) == 0 else -1
        if not 0 <= s < self.q.shape[0]:
            raise ValueError(f"observation {obs!r} is not a state index in [0, {self.q.shape[0]})")
        return s

    @property
    def nbytes(self) -> int:
        """Bytes of this agent's parameters (the Q table and the iteration counter)."""
        return int(self.q.nbytes) + 8

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """``q`` (the table), ``iteration`` and ``rng`` (the exploration stream's PCG64 state as
        :func:`~twinrl.contract.pcg64_to_array` words), so a loaded agent explores on exactly."""
        return {
            "q": self.q.copy(),
            "iteration": np.array(self.iteration, dtype=np.int64),
            "rng": rng_words(self.rng, "QLearning"),
        }

    def load_state_dict(self, state: Mapping[str, NDArray[Any]], *, validate: bool = True) -> None:
        """Restore :meth:`state_dict` output: ``q`` (a finite float table of this agent's shape),
        ``iteration`` (an integer >= 0) and ``rng`` (a PCG64 state).

        Args:
            state: the arrays to load; they are copied.
            validate: check the state first (the default). ``False`` skips the checks for a state
                the caller built from this agent's own ``state_dict()`` in memory.

        Raises:
            CheckpointError: a key is missing or extra, ``q`` has another shape, is not float or
                holds NaN/inf, ``iteration`` is not an integer >= 0, or ``rng`` is not a PCG64
                state; nothing is changed then.
        """
        if validate:
            expected = {"q": (self.q.shape, "f"), "iteration": ((), "i"), "rng": ((6,), "i")}
            state = check_state_dict(state, expected, owner="QLearning", counters=("iteration",))
            rng_state = checked_rng_state(state["rng"], "QLearning")
        else:
            rng_state = pcg64_from_array(np.asarray(state["rng"]))
        self.q = np.array(state["q"], dtype=np.float64)
        self.iteration = int(state["iteration"])
        self.rng.bit_generator.state = rng_state

    def spawn(self, rng: np.random.Generator) -> QLearning:
        """A twin agent: same class, configuration and parameters, its own random stream."""
        twin = type(self)(self.q.shape[0], self.q.shape[1], self.config, rng=rng)
        twin.load_state_dict({**self.state_dict(), "rng": rng_words(twin.rng, "QLearning")})
        return twin
