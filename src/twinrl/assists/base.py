"""What an assist sees of one physical iteration, and the assist protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import Agent, Transitions
from twinrl.contract import DomainSteps
from twinrl.twin.digital_twin import DigitalTwin


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


class Assist(Protocol):
    """A way of using the digital space to speed up learning (paper 000, Section II-B)."""

    name: str

    def after_step(self, ctx: StepContext, agent: Agent) -> None:
        """Use the twin after the physical step; the agent has already learned from it."""
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
    """Transitions of actions tried from the synced state, tagged with domains 1..K."""
    n = actions.shape[0]
    return Transitions(
        obs=np.repeat(np.asarray(ctx.obs)[None], n, axis=0),
        action=actions,
        reward=out.reward,
        next_obs=out.next_obs,
        terminated=out.terminated,
        next_mask=out.next_mask,
        source=np.arange(1, n + 1, dtype=np.int64),
    )


def valid_actions(mask: NDArray[np.int8] | None, n_actions: int) -> NDArray[np.int64]:
    """Indices of the valid actions, ascending."""
    if mask is None:
        return np.arange(n_actions, dtype=np.int64)
    return np.flatnonzero(np.asarray(mask)).astype(np.int64)
