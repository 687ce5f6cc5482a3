"""The agent protocol and the transition batch that agents learn from."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from twinrl.contract import PHYSICAL, Transitions, as_generator

__all__ = ["PHYSICAL", "Agent", "Transitions", "as_generator"]


@runtime_checkable
class Agent(Protocol):
    """What the training loop and the assists need from an agent.

    ``state_dict`` returns arrays only (no pickled objects), so checkpoints are plain ``.npz`` files.
    """

    def act(self, obs: Any, *, explore: bool, mask: NDArray[np.int8] | None = None) -> int: ...

    def learn(self, transitions: Transitions) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, NDArray[Any]]: ...

    def load_state_dict(self, state: dict[str, NDArray[Any]]) -> None: ...
