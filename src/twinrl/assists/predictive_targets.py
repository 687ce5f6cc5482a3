"""Training with prediction: k-step targets averaged over m twin trajectories (paper 000, II-B)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import Agent, Transitions, as_generator
from twinrl.assists.base import StepContext, check_count, teach
from twinrl.checkpoint import check_like
from twinrl.checkpoint.rng import rng_words, set_rng_words
from twinrl.errors import ConfigError
from twinrl.twin.rollout import greedy_policy, rollout
from twinrl.validation import check_choice, check_range


class PredictiveTargets:
    """After each physical step from ``s_t`` with action ``a_t``, the twin rolls ``m`` trajectories
    ``k`` steps ahead from the synced state: first ``a_t``, then the agent's greedy policy (twin
    agents mirror the physical parameters). The agent learns from the ``m`` transitions
    ``(s_t, a_t, G_j, s_{t+k,j}, gamma^k)`` with ``G_j`` the discounted k-step return of trajectory
    j, so the TD target it fits is, in expectation over the batch, the average k-step return plus
    the bootstrapped value: the paper's correction of n-step learning's single-trajectory estimate.

    Each trajectory runs in its own domain with its own random future when the env offers
    ``reseed_domain(state, key)`` (keys from this assist's RNG; the twin does not know the physical
    future); otherwise all m domains are synced copies. The m x k twin steps run batched, one
    ``step_domains`` call per look-ahead step. A trajectory that terminates stops accumulating
    and is marked terminal; one that is truncated stops and bootstraps from where it stopped
    (:func:`twinrl.twin.rollout`).

    Two options isolate parts of the mechanism (the ``prediction`` experiment's arms):
    ``future="physical"`` syncs every domain to the physical state *with* its random future
    (no re-keying): with m = 1 it is an oracle that continues greedily along the future the
    physical network will actually take, separating the averaging over futures from the greedy
    continuation. ``first_actions="varied"``: trajectory 0 starts with ``a_t``, the others with
    actions drawn uniformly from ``action_space`` (this assist's RNG), so the m rows teach the
    values of several actions at ``s_t`` (each row carries its own first action).

    Args:
        k: look-ahead steps (k = 1: the twin's one-step outcome).
        m: trajectories averaged.
        gamma: discount of the returns; should equal the agent's.
        rng: this assist's random stream (domain keys, varied first actions).
        future: ``"twin"`` (default): each domain its own guess of the future where the env can
            re-key one; ``"physical"``: every domain replays the physical future.
        first_actions: ``"taken"`` (default): every trajectory starts with ``a_t``;
            ``"varied"``: only the first does, the others start with uniform random actions.
        action_space: the physical env's action space (``Discrete`` or ``MultiDiscrete``);
            needed by ``first_actions="varied"``.
    """

    name = "predictive_targets"

    def __init__(
        self,
        k: int,
        m: int = 1,
        *,
        gamma: float,
        rng: np.random.Generator | np.random.SeedSequence | int | None = None,
        future: Literal["twin", "physical"] = "twin",
        first_actions: Literal["taken", "varied"] = "taken",
        action_space: gym.Space[Any] | None = None,
    ) -> None:
        self.k, self.m = check_count("k", k), check_count("m", m)
        check_range("gamma", gamma, 0.0, 1.0)
        self.gamma = float(gamma)
        self.rng = as_generator(rng)
        self.future = check_choice("future", future, ("twin", "physical"))
        self.first_actions = check_choice("first_actions", first_actions, ("taken", "varied"))
        if self.first_actions == "varied" and not isinstance(
            action_space, (gym.spaces.Discrete, gym.spaces.MultiDiscrete)
        ):
            raise ConfigError(
                f"first_actions='varied' draws actions from action_space, which must be a "
                f"Discrete or MultiDiscrete space; got {action_space!r}"
            )
        self.action_space = action_space

    def rollout(self, ctx: StepContext, agent: Agent) -> Transitions:
        """The m k-step transitions from the synced state (without learning from them).

        A trajectory whose episode ends before k steps stops there: terminated, its row bootstraps
        nothing; truncated, it bootstraps from where it stopped with ``gamma^steps``.
        """
        twin, base = ctx.twin, ctx.twin.identical_state
        reseed = getattr(twin.model, "reseed_domain", None)
        if callable(reseed) and self.future == "twin":
            keys = self.rng.integers(0, 2**63, size=self.m)
            states = [reseed(base, int(key)) for key in keys]
        else:
            states = [base] * self.m
        action = np.asarray(ctx.action, dtype=np.int64)
        actions = np.stack([action] * self.m)
        if self.first_actions == "varied" and self.m > 1:
            actions[1:] = self._random_actions(self.m - 1).reshape(actions[1:].shape)
        out = rollout(twin, states, actions, greedy_policy(agent), self.k, self.gamma)
        return Transitions(
            obs=np.repeat(np.asarray(ctx.obs)[None], self.m, axis=0),
            action=actions,
            reward=out.returns,
            next_obs=out.last_obs,
            terminated=out.terminated,
            next_mask=None,
            source=np.arange(1, self.m + 1, dtype=np.int64),
            discount=np.array([self.gamma ** int(n) for n in out.steps]),
        )

    def _random_actions(self, count: int) -> NDArray[np.int64]:
        """``count`` uniform actions of :attr:`action_space` (one move per branch)."""
        space = self.action_space
        if isinstance(space, gym.spaces.MultiDiscrete):
            high = np.asarray(space.nvec, dtype=np.int64)
            return self.rng.integers(0, high, size=(count, high.size)).astype(np.int64)
        n = int(space.n)  # type: ignore[union-attr]
        return self.rng.integers(0, n, size=count).astype(np.int64)

    def after_step(self, ctx: StepContext, agent: Agent) -> None:
        teach(ctx, agent, self.rollout(ctx, agent))

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """Arrays only: the random stream ``rng`` (the domain keys)."""
        return {"rng": rng_words(self.rng, "PredictiveTargets")}

    def load_state_dict(self, state: Mapping[str, NDArray[Any]]) -> None:
        """Restore :meth:`state_dict` output (checked; ``CheckpointError`` naming the key)."""
        state = check_like(state, self.state_dict(), owner="PredictiveTargets")
        set_rng_words(self.rng, state["rng"], "PredictiveTargets")
