"""Backends that step many digital domains: one batched numpy call, or a get/set_state loop."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, overload

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray


class DomainSteps(NamedTuple):
    """Outcome of stepping K domains once; every field has leading axis K."""

    states: Sequence[Any]
    next_obs: NDArray[Any]
    reward: NDArray[np.float64]
    terminated: NDArray[np.bool_]
    truncated: NDArray[np.bool_]
    next_mask: NDArray[np.int8] | None
    info: dict[str, NDArray[Any]] = {}  # noqa: RUF012 - never mutated; replaced per step
    """The ``info`` entries an env declares in ``twin_info_keys`` (e.g. ``failed``), each an array
    with leading axis K. A vectorized env returns them as a sixth element of ``step_batch``."""


class Backend(Protocol):
    """Steps a list of domain states, one action each, without touching the physical env."""

    name: str

    def step(self, states: Sequence[Any], actions: NDArray[np.int64]) -> DomainSteps: ...


def is_twinnable(env: gym.Env[Any, Any]) -> bool:
    """Whether ``env`` offers ``get_state``/``set_state`` (what the serial backend needs)."""
    base = env.unwrapped
    return callable(getattr(base, "get_state", None)) and callable(getattr(base, "set_state", None))


def has_batched_dynamics(env: gym.Env[Any, Any]) -> bool:
    """Whether ``env`` exposes a pure ``step_batch`` (what the vectorized backend needs)."""
    return is_twinnable(env) and callable(getattr(env.unwrapped, "step_batch", None))


class SerialBackend:
    """Any twinnable env: restore each domain's state into a private copy, step, snapshot.

    The copy is made once, so stepping the twin never changes the physical env.
    """

    name = "serial"

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        if not is_twinnable(env):
            raise TypeError(
                f"{type(env.unwrapped).__name__} has no get_state()/set_state(); a digital twin "
                "needs them to mirror the physical state (see twinrl.testing.check_twinnable)"
            )
        self._sim: Any = copy.deepcopy(env.unwrapped)
        self._info_keys: tuple[str, ...] = tuple(getattr(self._sim, "twin_info_keys", ()))

    def step(self, states: Sequence[Any], actions: NDArray[np.int64]) -> DomainSteps:
        obs, rewards, term, trunc, masks, nexts = [], [], [], [], [], []
        infos: list[dict[str, Any]] = []
        for state, action in zip(states, actions, strict=True):
            self._sim.set_state(state)
            o, r, te, tr, info = self._sim.step(action if np.ndim(action) else int(action))
            nexts.append(self._sim.get_state())
            obs.append(o)
            rewards.append(r)
            term.append(te)
            trunc.append(tr)
            masks.append(info.get("action_mask"))
            infos.append(info)
        present = [m for m in masks if m is not None]
        mask = np.stack(present).astype(np.int8) if len(present) == len(masks) else None
        return DomainSteps(
            nexts,
            np.stack([np.asarray(o) for o in obs]),
            np.asarray(rewards, dtype=np.float64),
            np.asarray(term, dtype=bool),
            np.asarray(trunc, dtype=bool),
            mask,
            _info_arrays(self._info_keys, infos),
        )


class VectorizedBackend:
    """An env with pure batched dynamics: all K domains in one call of ``step_batch``."""

    name = "vectorized"

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        if not has_batched_dynamics(env):
            raise TypeError(
                f"{type(env.unwrapped).__name__} has no step_batch(); use backend='serial'"
            )
        self._env: Any = env.unwrapped

    def step(self, states: Sequence[Any], actions: NDArray[np.int64]) -> DomainSteps:
        batch = stack_states(states)
        out = self._env.step_batch(batch, actions)
        nxt, obs, reward, terminated, mask = out[:5]
        info = dict(out[5]) if len(out) > 5 else {}  # optional per-domain info arrays
        truncated = np.zeros(len(states), dtype=bool)
        return DomainSteps(
            StateBatch(nxt, len(states)), obs, reward, terminated, truncated, mask, info
        )


class StateBatch(Sequence[Any]):
    """The next states of a batched step, one per domain, unbatched only when read.

    Most assists read rewards and observations only; building hundreds of state objects per step
    would cost more than the batched step itself.
    """

    def __init__(self, batch: Any, size: int) -> None:
        self.batch = batch
        self._size = size

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, i: int) -> Any: ...

    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._size))]
        if not -self._size <= i < self._size:
            raise IndexError(f"domain {i} out of range for {self._size} domains")
        return self.batch.item(i % self._size)


def _info_arrays(keys: Sequence[str], infos: list[dict[str, Any]]) -> dict[str, NDArray[Any]]:
    """The env's declared per-domain ``info`` entries (``twin_info_keys``), stacked."""
    return {key: np.stack([np.asarray(info[key]) for info in infos]) for key in keys}


def stack_states(states: Sequence[Any]) -> Any:
    """Stack unbatched dataclass states along a new leading axis (shared arrays broadcast)."""
    if isinstance(states, StateBatch):
        return states.batch
    first = states[0]
    if all(s is first for s in states):
        return first.tile(len(states))
    fields = {
        name: np.stack([np.asarray(getattr(s, name)) for s in states])
        for name in first.__dataclass_fields__
        if name != "rng_state"
    }
    return type(first)(**fields)


BACKENDS = ("auto", "vectorized", "serial")


def make_backend(env: gym.Env[Any, Any], name: str = "auto") -> Backend:
    """``vectorized`` if the env has batched dynamics (``auto``), else ``serial``."""
    if name == "auto":
        name = "vectorized" if has_batched_dynamics(env) else "serial"
    if name == "vectorized":
        return VectorizedBackend(env)
    if name == "serial":
        return SerialBackend(env)
    raise ValueError(f"backend={name!r} is not allowed; choose one of {', '.join(BACKENDS)}")
