"""Immutable snapshots of env states (the ``get_state``/``set_state`` contract of DESIGN.md)."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

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
