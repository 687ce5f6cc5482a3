"""How the digital space snapshots a physical env and steps many domains without touching it.

Two ways to snapshot (chosen once per env by :func:`snapshot_mode`):

* ``native``: the env's ``unwrapped`` offers ``get_state``/``set_state`` (the
  :class:`~twinrl.contract.TwinnableEnv` contract) and every wrapper around it is transparent
  (gymnasium's ``OrderEnforcing`` and ``PassiveEnvChecker``, which change nothing the agent sees).
  A snapshot is the env's own immutable state value.
* ``copy``: anything else, e.g. a third-party Gymnasium env, or an env inside wrappers that change
  observations, actions, rewards or episode ends (``TimeLimit``, ``FlattenObservation``, ...). A
  snapshot is a private deep copy of the *whole wrapped env* (its RNG included), so the twin sees
  exactly what the agent sees. Slower: every domain step copies the env once.

Three backends step the domains: ``vectorized`` (a native env with a pure ``step_batch``: all K
domains in one numpy call), ``serial`` (one env step per domain) and ``ray`` (the serial steps in
blocks, in Ray actors: :mod:`twinrl.twin.ray_backend`, the ``ray`` extra). All return a
:class:`~twinrl.contract.DomainSteps` with every field of a Gymnasium step.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Protocol, overload

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.contract import DomainSteps
from twinrl.errors import ConfigError

TRANSPARENT_WRAPPERS = ("OrderEnforcing", "PassiveEnvChecker")
"""Wrappers that change nothing an agent sees, so a native snapshot of ``unwrapped`` is complete."""


class Backend(Protocol):
    """Steps a list of domain states, one action each, without touching the physical env."""

    name: str

    def step(self, states: Sequence[Any], actions: NDArray[np.int64]) -> DomainSteps: ...


class EnvCopy:
    """A ``copy``-mode snapshot: a private deep copy of a whole (wrapped) env.

    Treat it as immutable: the serial backend copies it again before stepping, so the snapshot
    itself never changes.
    """

    __slots__ = ("env",)

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        self.env = env


def wrapper_names(env: gym.Env[Any, Any]) -> list[str]:
    """Class names of the wrappers around ``env.unwrapped``, outermost first."""
    names = []
    while isinstance(env, gym.Wrapper):
        names.append(type(env).__name__)
        env = env.env
    return names


def is_twinnable(env: gym.Env[Any, Any]) -> bool:
    """Whether ``env.unwrapped`` offers ``get_state``/``set_state``."""
    base = env.unwrapped
    return callable(getattr(base, "get_state", None)) and callable(getattr(base, "set_state", None))


def snapshot_mode(env: gym.Env[Any, Any]) -> str:
    """``"native"`` when ``get_state``/``set_state`` capture everything the agent sees, else
    ``"copy"`` (see the module docstring)."""
    transparent = all(name in TRANSPARENT_WRAPPERS for name in wrapper_names(env))
    return "native" if is_twinnable(env) and transparent else "copy"


def has_batched_dynamics(env: gym.Env[Any, Any]) -> bool:
    """Whether ``env`` can use the vectorized backend: native snapshots and a pure ``step_batch``."""
    return snapshot_mode(env) == "native" and callable(getattr(env.unwrapped, "step_batch", None))


def capture(env: gym.Env[Any, Any], mode: str) -> Any:
    """A snapshot of the env's current state in ``mode`` (``native`` or ``copy``)."""
    if mode == "native":
        return env.unwrapped.get_state()  # type: ignore[attr-defined]
    return EnvCopy(deep_copy(env))


def deep_copy(env: gym.Env[Any, Any]) -> gym.Env[Any, Any]:
    """``copy.deepcopy(env)``, with a message that says what to do when the env cannot be copied."""
    try:
        return copy.deepcopy(env)
    except Exception as exc:
        raise ConfigError(
            f"{type(env.unwrapped).__name__} cannot be deep-copied ({type(exc).__name__}: {exc}); "
            "a digital twin snapshots an env without get_state()/set_state() by deep copy. Close "
            "what cannot be copied (e.g. make it with render_mode=None), or give the env "
            "get_state()/set_state() (see twinrl.testing.check_twinnable)"
        ) from exc


class SerialBackend:
    """Any env: restore each domain's snapshot into a private simulator, step it, snapshot again.

    ``native`` mode steps one private copy of the wrapped env (made once) after ``set_state``;
    ``copy`` mode steps a fresh deep copy of each snapshot. Stepping the twin never changes the
    physical env.
    """

    name = "serial"

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        self.mode = snapshot_mode(env)
        # native: one private simulator; its transparent wrappers add nothing, so step the base
        # copy: a first copy now, so an env that cannot be copied fails before any training
        self._sim: Any = deep_copy(env.unwrapped if self.mode == "native" else env)
        self._info_keys: tuple[str, ...] = tuple(getattr(env.unwrapped, "twin_info_keys", ()))

    def step(self, states: Sequence[Any], actions: NDArray[np.int64]) -> DomainSteps:
        obs, rewards, term, trunc, masks, nexts = [], [], [], [], [], []
        infos: list[dict[str, Any]] = []
        for state, action in zip(states, actions, strict=True):
            sim = self._restore(state)
            o, r, te, tr, info = sim.step(action if np.ndim(action) else int(action))
            nexts.append(sim.get_state() if self.mode == "native" else EnvCopy(sim))
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

    def _restore(self, state: Any) -> Any:
        if self.mode == "copy":
            if not isinstance(state, EnvCopy):
                raise TypeError(
                    f"this twin snapshots its env by deep copy; got a {type(state).__name__} "
                    "state (take snapshots with DigitalTwin.capture(env))"
                )
            return copy.deepcopy(state.env)
        self._sim.set_state(state)
        return self._sim


class VectorizedBackend:
    """A native env with pure batched dynamics: all K domains in one call of ``step_batch``."""

    name = "vectorized"

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        if not has_batched_dynamics(env):
            wrapped = wrapper_names(env)
            why = (
                f"it is wrapped ({', '.join(wrapped)}), so the twin must step the wrappers too"
                if is_twinnable(env)
                else "it has no get_state()/set_state()/step_batch()"
            )
            raise ConfigError(
                f"{type(env.unwrapped).__name__} cannot use the vectorized twin backend: {why}; "
                "use backend='serial' (or 'auto')"
            )
        self._env: Any = env.unwrapped

    def step(self, states: Sequence[Any], actions: NDArray[np.int64]) -> DomainSteps:
        out: DomainSteps = self._env.step_batch(stack_states(states), actions)
        return out._replace(states=StateBatch(out.states, len(states)))


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


BACKENDS = ("auto", "vectorized", "serial", "ray")


def make_backend(env: gym.Env[Any, Any], name: str = "auto") -> Backend:
    """``vectorized`` if the env has batched dynamics (``auto``), else ``serial``; ``ray`` (the
    ``ray`` extra) steps blocks of domains in Ray actors (:mod:`twinrl.twin.ray_backend`)."""
    if name == "auto":
        name = "vectorized" if has_batched_dynamics(env) else "serial"
    if name == "vectorized":
        return VectorizedBackend(env)
    if name == "serial":
        return SerialBackend(env)
    if name == "ray":
        from twinrl.twin.ray_backend import RayBackend

        return RayBackend(env)
    raise ConfigError(f"backend={name!r} is not allowed; choose one of {', '.join(BACKENDS)}")
