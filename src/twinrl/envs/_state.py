"""Immutable snapshots of env states (the ``get_state``/``set_state`` contract of DESIGN.md)."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, ClassVar, TypeVar

import numpy as np

S = TypeVar("S")


def frozen_copy(state: S, dtypes: dict[str, Any] | None = None) -> S:
    """A copy of a dataclass state whose array fields are private, read-only copies.

    Stepping an env after ``get_state()`` can then never change the snapshot, and a restored
    snapshot never aliases a caller's arrays. ``rng_state`` is kept as is (a plain dict); ``dtypes``
    casts named fields (e.g. a counter stored as a Python int).
    """
    dtypes = dtypes or {}
    changes = {}
    for f in fields(state):  # type: ignore[arg-type]
        if f.name == "rng_state":
            continue
        a = np.array(getattr(state, f.name), dtype=dtypes.get(f.name), copy=True)
        a.flags.writeable = False
        changes[f.name] = a
    return replace(state, **changes)  # type: ignore[type-var]


class Snapshots:
    """``get_state``/``set_state`` for an env whose state is a dataclass in ``self._state`` plus
    the gymnasium ``np_random`` stream (DESIGN.md: snapshots are immutable and carry every RNG).

    A subclass sets ``state_type`` (and ``state_dtypes`` for fields to cast on copy) and may
    override :meth:`_check_state` (reject a snapshot of another configuration) and
    :meth:`_restored` (refresh what it derives from the state).
    """

    state_type: ClassVar[type[Any]]
    state_dtypes: ClassVar[dict[str, Any]] = {}
    _state: Any
    np_random: np.random.Generator

    def get_state(self) -> Any:
        """An immutable snapshot of the env, including its RNG state."""
        if self._state is None:
            raise RuntimeError("call reset() before get_state()")
        rng_state = dict(self.np_random.bit_generator.state)
        return replace(self._copy(self._state), rng_state=rng_state)

    def set_state(self, state: Any) -> None:
        """Restore a snapshot from :meth:`get_state` exactly (RNG included)."""
        if not isinstance(state, self.state_type):
            raise TypeError(
                f"set_state expects a {self.state_type.__name__} snapshot, "
                f"got {type(state).__name__}"
            )
        self._check_state(state)
        self._state = self._copy(state)
        if state.rng_state is not None:
            self.np_random.bit_generator.state = state.rng_state
        self._restored(self._state)

    def _copy(self, state: Any) -> Any:
        return frozen_copy(state, self.state_dtypes)

    def _check_state(self, state: Any) -> None:
        """Raise ``ValueError`` if ``state`` does not fit this env's parameters."""

    def _restored(self, state: Any) -> None:
        """Called with the new ``self._state`` after :meth:`set_state` replaced it."""
