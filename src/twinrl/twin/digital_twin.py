"""The digital space of a physical env: one identical domain and many different domains."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.contract import DomainSteps
from twinrl.twin.backends import Backend, capture, make_backend, snapshot_mode


class DigitalTwin:
    """Digital space of a physical env (paper 000, Section II-A; DESIGN.md section 3).

    The *identical* domain mirrors the physical state at every :meth:`sync`. *Different* domains
    start from a synced state and try other actions (:meth:`trial`) or run ahead
    (:meth:`step_domains`); they never touch the physical env. This twin has perfect fidelity: its
    dynamics and parameters are the physical env's own.

    Any Gymnasium env works. An env whose ``unwrapped`` offers ``get_state``/``set_state`` and
    carries no wrapper that changes what the agent sees is snapshotted natively (fast; with a
    ``step_batch`` it runs all domains in one numpy call); any other env, including a wrapped one,
    is snapshotted by deep copy of the whole wrapped env, so every domain applies the same wrappers
    (see :mod:`twinrl.twin.backends`).

    Args:
        env: the physical env (the one the agent acts in, wrappers included).
        backend: ``"vectorized"`` (the env's batched dynamics), ``"serial"`` (one env step per
            domain) or ``"auto"``. All give identical results.
    """

    def __init__(self, env: gym.Env[Any, Any], *, backend: str = "auto") -> None:
        self.mode = snapshot_mode(env)
        """``"native"`` (the env's own get/set_state) or ``"copy"`` (deep copies)."""
        self.backend: Backend = make_backend(env, backend)
        self.model: Any = env.unwrapped if self.mode == "native" else None
        """The twin's model of the network (here the physical env's own dynamics and parameters),
        read for env-specific twin services such as ``reseed_domain``; None in ``copy`` mode,
        where states are whole env copies."""
        self._identical: Any | None = None
        self.evaluations = 0
        """Number of domain steps simulated so far (the twin's work, reported beside the
        physical iterations)."""
        self.calls = 0
        """Number of :meth:`step_domains` calls so far (each steps K domains at once; what a
        batched twin's time is roughly proportional to)."""

    def capture(self, env: gym.Env[Any, Any]) -> Any:
        """A snapshot of the physical env's current state, in this twin's snapshot mode."""
        return capture(env, self.mode)

    def sync(self, state: Any) -> None:
        """The identical domain mirrors the physical state (Fig. 1 of paper 000)."""
        self._identical = state

    @property
    def identical_state(self) -> Any:
        """The physical state as mirrored at the last :meth:`sync`."""
        if self._identical is None:
            raise RuntimeError("the twin has not been synced with the physical env yet")
        return self._identical

    def trial(self, state: Any, actions: NDArray[np.int64]) -> DomainSteps:
        """Try each action in its own different domain, all synced to ``state``."""
        actions = np.asarray(actions, dtype=np.int64)
        return self.step_domains([state] * actions.shape[0], actions)

    def step_domains(self, states: Sequence[Any], actions: NDArray[np.int64]) -> DomainSteps:
        """Step K domains, each from its own state with its own action."""
        if len(states) != len(actions):
            raise ValueError(f"got {len(states)} domain states but {len(actions)} actions")
        if len(states) == 0:
            raise ValueError("step_domains needs at least one domain")
        self.evaluations += len(states)
        self.calls += 1
        return self.backend.step(states, np.asarray(actions, dtype=np.int64))
