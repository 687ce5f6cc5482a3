"""The one twin rollout: m trajectories of up to k steps that stop where their episode ends.

Every multi-step use of the digital space (greedy evaluation, ``PredictiveTargets``, any assist
that looks ahead) runs through :func:`rollout`, so none of them can step past a terminated or
truncated episode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from twinrl.twin.digital_twin import DigitalTwin

Policy = Callable[[Sequence[Any], Sequence[Any]], NDArray[np.int64]]
"""``policy(observations, masks) -> actions``: one action per domain (masks entries may be None)."""


class Rollout(NamedTuple):
    """What m twin trajectories produced; every field has leading axis m."""

    returns: NDArray[np.float64]
    """Discounted return ``sum_t gamma^t r_t`` of each trajectory."""
    steps: NDArray[np.int64]
    """Twin steps each trajectory took (``<= horizon``; fewer where its episode ended)."""
    terminated: NDArray[np.bool_]
    """Ended by termination (the value after it is 0)."""
    truncated: NDArray[np.bool_]
    """Ended by truncation (not terminated): the value after it is not 0, only unobserved."""
    last_obs: NDArray[Any]
    """Observation after each trajectory's last step."""
    last_mask: list[Any]
    """Valid actions after each trajectory's last step (None: all valid)."""
    states: list[Any]
    """Twin state after each trajectory's last step."""


def rollout(
    twin: DigitalTwin,
    states: Sequence[Any],
    first_actions: NDArray[np.int64],
    policy: Policy,
    horizon: int,
    gamma: float = 1.0,
) -> Rollout:
    """Run ``len(states)`` trajectories in the twin: each takes its first action, then ``policy``,
    for up to ``horizon`` steps or until its episode terminates or is truncated.

    The running trajectories step together in one :meth:`DigitalTwin.step_domains` call per step,
    and ``policy`` is asked once per step for all of them.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon={horizon!r} is out of range; allowed: an int >= 1")
    m = len(states)
    current = list(states)
    returns, steps = np.zeros(m), np.zeros(m, dtype=np.int64)
    terminated, truncated = np.zeros(m, dtype=bool), np.zeros(m, dtype=bool)
    last_obs: list[Any] = [None] * m
    masks: list[Any] = [None] * m
    running = np.arange(m)
    actions = np.asarray(first_actions, dtype=np.int64)
    scale = 1.0
    for step in range(int(horizon)):
        out = twin.step_domains([current[j] for j in running], actions)
        returns[running] += scale * out.reward
        steps[running] += 1
        scale *= gamma
        for i, j in enumerate(running):
            last_obs[j], current[j] = out.next_obs[i], out.states[i]
            masks[j] = None if out.next_mask is None else out.next_mask[i]
        terminated[running] = out.terminated
        truncated[running] = np.asarray(out.truncated) & ~np.asarray(out.terminated)
        running = running[~out.done]
        if running.size == 0 or step + 1 == horizon:
            break
        actions = policy([last_obs[j] for j in running], [masks[j] for j in running])
    return Rollout(
        returns, steps, terminated, truncated, np.stack([np.asarray(o) for o in last_obs]),
        masks, current,
    )  # fmt: skip


def greedy_policy(agent: Any) -> Policy:
    """The agent's greedy policy over many domains: one batched ``greedy_batch(obs, masks)`` call
    where the agent offers it (DQN), else one ``act(obs, explore=False, mask=...)`` per domain.
    An agent that needs each trajectory's history (a recurrent DQN) gives its own policy through
    ``windowed_policy()``; it follows one batch of trajectories, so build one per rollout."""
    windowed = getattr(agent, "windowed_policy", None)
    own = windowed() if callable(windowed) else None
    if own is not None:
        return own
    batched = getattr(agent, "greedy_batch", None)

    def policy(observations: Sequence[Any], masks: Sequence[Any]) -> NDArray[np.int64]:
        if callable(batched):
            stacked = np.stack([np.asarray(o) for o in observations])
            given = None if all(m is None for m in masks) else list(masks)
            return np.asarray(batched(stacked, given), np.int64)
        return np.stack(
            [
                np.asarray(agent.act(o, explore=False, mask=m))
                for o, m in zip(observations, masks, strict=True)
            ]
        ).astype(np.int64)

    return policy
