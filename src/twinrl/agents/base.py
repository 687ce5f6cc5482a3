"""The agent protocol and the transition batch that agents learn from."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

PHYSICAL = 0
"""Source tag of transitions from the physical space; digital domains are tagged 1, 2, ..."""


class Transitions(NamedTuple):
    """A batch of transitions, learned in order. Every field has leading axis B."""

    obs: NDArray[Any]
    action: NDArray[np.int64]
    reward: NDArray[np.float64]
    next_obs: NDArray[Any]
    terminated: NDArray[np.bool_]
    next_mask: NDArray[np.int8] | None
    """Valid actions in ``next_obs`` (1 = valid), or None when every action is valid."""
    source: NDArray[np.int64]
    """Where each transition came from: :data:`PHYSICAL` or a digital domain id >= 1."""
    discount: NDArray[np.float64] | None = None
    """Per-transition bootstrap factor ``gamma^k`` of a k-step transition (``reward`` then holds the
    discounted k-step return), or None: every row is one-step and uses the learner's own gamma. A
    NaN entry means the learner's own gamma for that row (how :class:`~twinrl.storage.Storage`
    returns a mix of rows added with and without a discount)."""

    @staticmethod
    def single(
        obs: Any,
        action: int,
        reward: float,
        next_obs: Any,
        terminated: bool,
        next_mask: NDArray[np.int8] | None = None,
        source: int = PHYSICAL,
        discount: float | None = None,
    ) -> Transitions:
        """A batch of one transition."""
        return Transitions(
            obs=np.asarray(obs)[None],
            action=np.array([action], dtype=np.int64),
            reward=np.array([reward], dtype=np.float64),
            next_obs=np.asarray(next_obs)[None],
            terminated=np.array([terminated]),
            next_mask=None if next_mask is None else np.asarray(next_mask, dtype=np.int8)[None],
            source=np.array([source], dtype=np.int64),
            discount=None if discount is None else np.array([discount], dtype=np.float64),
        )

    def __len__(self) -> int:  # number of transitions, not of fields
        return int(self.action.shape[0])


@runtime_checkable
class Agent(Protocol):
    """What the training loop and the assists need from an agent.

    ``state_dict`` returns arrays only (no pickled objects), so checkpoints are plain ``.npz`` files.
    """

    def act(self, obs: Any, *, explore: bool, mask: NDArray[np.int8] | None = None) -> int: ...

    def learn(self, transitions: Transitions) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, NDArray[Any]]: ...

    def load_state_dict(self, state: dict[str, NDArray[Any]]) -> None: ...


def as_generator(
    rng: np.random.Generator | np.random.SeedSequence | int | None,
) -> np.random.Generator:
    """A numpy Generator from a Generator, a SeedSequence, an int seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.Generator(np.random.PCG64(rng))
