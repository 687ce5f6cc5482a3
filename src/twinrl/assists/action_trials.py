"""Simultaneous trials of many actions from one state (DTEQL, paper 002 Algorithm 2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import Agent, as_generator
from twinrl.agents.selection import sample_distinct
from twinrl.assists.base import (
    StepContext,
    check_count,
    check_discrete_actions,
    teach,
    twin_transitions,
    valid_actions,
)
from twinrl.checkpoint import check_like
from twinrl.checkpoint.rng import rng_words, set_rng_words
from twinrl.twin.digital_twin import DigitalTwin


class ActionTrials:
    """After each physical step, try ``n_trials`` distinct random actions from the same state in the
    twin and learn from every outcome (Algorithm 2, lines 7-14).

    The trials are drawn uniformly among the valid actions (they may include the physical action).
    With fewer valid actions than ``n_trials``, every valid action is tried. Each iteration uses
    exactly ``min(n_trials, n_valid)`` uniforms from this assist's own RNG.

    Algorithm 2, line 13 writes the physical reward ``r`` in the twin update; we use each trial's
    own reward ``r_j``, which is what the text describes ("obtain reward r_1 ... r_phi").

    Args:
        n_trials: phi, the number of actions tried in the twin per physical step.
        n_actions: size of the action space.
        rng: this assist's random stream.
    """

    name = "action_trials"

    def __init__(
        self,
        n_trials: int,
        n_actions: int,
        *,
        rng: np.random.Generator | np.random.SeedSequence | int | None = None,
    ) -> None:
        self.n_trials = check_count("n_trials", n_trials)
        self.n_actions = check_count("n_actions", n_actions)
        self.rng = as_generator(rng)
        self._marks = np.zeros(self.n_actions, dtype=np.int64)
        self._calls = 0

    def bind(self, env: gym.Env[Any, Any], twin: DigitalTwin | None) -> None:
        """Check, before training starts, that ``env`` acts in ``Discrete(n_actions)``."""
        check_discrete_actions("ActionTrials", env, self.n_actions)

    def after_step(self, ctx: StepContext, agent: Agent) -> None:
        valid = valid_actions(ctx.mask, self.n_actions)
        k = min(self.n_trials, valid.shape[0])
        self._calls += 1
        picks = sample_distinct(valid.shape[0], self.rng.random(k), self._marks, self._calls)
        actions = valid[picks]  # line 7
        out = ctx.twin.trial_identical(actions)  # line 8
        teach(ctx, agent, twin_transitions(ctx, actions, out))  # lines 12-14

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """Arrays only: the random stream ``rng``, the sampler's marks and its call counter."""
        return {"rng": rng_words(self.rng, "ActionTrials"), "marks": self._marks.copy(),
                "calls": np.array(self._calls, dtype=np.int64)}  # fmt: skip

    def load_state_dict(self, state: Mapping[str, NDArray[Any]]) -> None:
        """Restore :meth:`state_dict` output (checked; ``CheckpointError`` naming the key)."""
        state = check_like(state, self.state_dict(), owner="ActionTrials", counters=("calls",))
        set_rng_words(self.rng, state["rng"], "ActionTrials")
        self._marks = np.array(state["marks"], dtype=np.int64)
        self._calls = int(state["calls"])
