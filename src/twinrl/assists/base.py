"""What an assist sees of one physical iteration, and the assist protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import Agent, Transitions
from twinrl.contract import DomainSteps
from twinrl.errors import ConfigError
from twinrl.twin.digital_twin import DigitalTwin
from twinrl.validation import check_int


@dataclass(frozen=True)
class StepContext:
    """One physical iteration as the assists see it: the synced state ``s_t`` and what was done."""

    iteration: int
    """1-based physical iteration."""
    obs: Any
    """Physical observation of ``s_t``."""
    mask: NDArray[np.int8] | None
    """Valid actions in ``s_t`` (None: all valid)."""
    action: int
    """The action the physical agent executed (in ``vet``: the action it proposes)."""
    twin: DigitalTwin
    """The digital space; its identical domain holds ``s_t``."""
    learn: Callable[[Transitions], Any] | None = None
    """The training loop's route for transitions the physical agent learns from: it puts them in
    the run's storage space and has the agent learn from them. None (outside ``train``): the
    agent learns directly. Assists hand their transitions to :func:`teach`, never to
    ``agent.learn``, so the loop owns the data flow."""
    info: dict[str, Any] | None = None
    """The physical step's ``info`` (set for ``after_step``; None in ``vet``): what the physical
    env reported, e.g. whether the task ``failed`` (for audits of the twin's predictions)."""


def teach(ctx: StepContext, agent: Agent, transitions: Transitions) -> None:
    """Hand twin transitions to the physical agent through the loop's route (``ctx.learn``)."""
    (ctx.learn or agent.learn)(transitions)


class Assist(Protocol):
    """A way of using the digital space to speed up learning (paper 000, Section II-B)."""

    name: str

    def after_step(self, ctx: StepContext, agent: Agent) -> None:
        """Use the twin after the physical step; the agent has already learned from it. Twin
        transitions for the physical agent go through :func:`teach`."""
        ...


@runtime_checkable
class Vetting(Protocol):
    """An assist that may replace the physical action before it is executed.

    Only :class:`~twinrl.assists.SafeExploration` does this: every other assist leaves the physical
    behaviour to the agent (DESIGN.md section 1).
    """

    def vet(self, ctx: StepContext, agent: Agent) -> int:
        """The action to execute instead of ``ctx.action`` (which may be kept); the identical domain
        holds ``s_t``."""
        ...


def twin_transitions(ctx: StepContext, actions: NDArray[np.int64], out: DomainSteps) -> Transitions:
    """Transitions of actions tried from the synced state, tagged with domains 1..K; outcomes an
    ensemble twin does not trust (``out.info["trusted"] == 0``) are left out."""
    n = actions.shape[0]
    batch = Transitions(
        obs=np.repeat(np.asarray(ctx.obs)[None], n, axis=0),
        action=actions,
        reward=out.reward,
        next_obs=out.next_obs,
        terminated=out.terminated,
        next_mask=out.next_mask,
        source=np.arange(1, n + 1, dtype=np.int64),
    )
    trusted = trusted_rows(out)
    return batch if trusted is None else batch.rows(np.flatnonzero(trusted))


def trusted_rows(out: DomainSteps) -> NDArray[np.bool_] | None:
    """Which outcomes an ensemble twin trusts (None: no ensemble, all of them)."""
    trusted = out.info.get("trusted")
    return None if trusted is None else np.asarray(trusted) > 0.5


def valid_actions(mask: NDArray[np.int8] | None, n_actions: int) -> NDArray[np.int64]:
    """Indices of the valid actions, ascending."""
    if mask is None:
        return np.arange(n_actions, dtype=np.int64)
    return np.flatnonzero(np.asarray(mask)).astype(np.int64)


def check_discrete_actions(assist: str, env: gym.Env[Any, Any], n_actions: int) -> None:
    """Raise a clear error unless ``env`` acts in ``Discrete(n_actions)``."""
    space = env.action_space
    if not isinstance(space, gym.spaces.Discrete):
        raise ConfigError(
            f"{assist} tries individual actions of a Discrete action space; this env's is {space}. "
            "Flatten it to Discrete (e.g. MultiUAV-v0 with action_space='flat', or a wrapper that "
            "maps an index to a joint action), or use an assist that takes the agent's own "
            "actions (PredictiveTargets)"
        )
    if int(space.n) != n_actions:
        raise ConfigError(
            f"{assist} was built for n_actions={n_actions}, but this env's action space is "
            f"{space}; pass n_actions={int(space.n)}"
        )


MAX_COUNT = 2**31 - 1
"""Largest count (trials, twin agents, look-ahead steps) an assist accepts."""


def check_count(name: str, value: Any) -> int:
    """``value`` as an int in ``[1, MAX_COUNT]`` (numpy integers accepted), else a clear error."""
    return check_int(name, value, 1, MAX_COUNT)
