"""Training with prediction: k-step targets averaged over m twin trajectories (paper 000, II-B)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import Agent, Transitions, as_generator
from twinrl.assists.base import StepContext, check_count, teach
from twinrl.checkpoint import check_like
from twinrl.checkpoint.rng import rng_words, set_rng_words
from twinrl.twin.rollout import greedy_policy, rollout
from twinrl.validation import check_range


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

    Args:
        k: look-ahead steps (k = 1: the twin's one-step outcome).
        m: trajectories averaged.
        gamma: discount of the returns; should equal the agent's.
        rng: this assist's random stream (domain keys).
    """

    name = "predictive_targets"

    def __init__(
        self,
        k: int,
        m: int = 1,
        *,
        gamma: float,
        rng: np.random.Generator | np.random.SeedSequence | int | None = None,
    ) -> None:
        self.k, self.m = check_count("k", k), check_count("m", m)
        check_range("gamma", gamma, 0.0, 1.0)
        self.gamma = float(gamma)
        self.rng = as_generator(rng)

    def rollout(self, ctx: StepContext, agent: Agent) -> Transitions:
        """The m k-step transitions from the synced state (without learning from them).

        A trajectory whose episode ends before k steps stops there: terminated, its row bootstraps
        nothing; truncated, it bootstraps from where it stopped with ``gamma^steps``.
        """
        twin, base = ctx.twin, ctx.twin.identical_state
        reseed = getattr(twin.model, "reseed_domain", None)
        if callable(reseed):
            keys = self.rng.integers(0, 2**63, size=self.m)
            states = [reseed(base, int(key)) for key in keys]
        else:
            states = [base] * self.m
        action = np.asarray(ctx.action, dtype=np.int64)
        actions = np.stack([action] * self.m)
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

    def after_step(self, ctx: StepContext, agent: Agent) -> None:
        teach(ctx, agent, self.rollout(ctx, agent))

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """Arrays only: the random stream ``rng`` (the domain keys)."""
        return {"rng": rng_words(self.rng, "PredictiveTargets")}

    def load_state_dict(self, state: Mapping[str, NDArray[Any]]) -> None:
        """Restore :meth:`state_dict` output (checked; ``CheckpointError`` naming the key)."""
        state = check_like(state, self.state_dict(), owner="PredictiveTargets")
        set_rng_words(self.rng, state["rng"], "PredictiveTargets")
