"""A counter-based random stream carried in an env state as plain arrays (SplitMix64, Box-Muller).

Shared by the envs whose twin domains need their own random futures (user mobility in
``MultiUAV-v0``, link fading in ``APSelection-v0``): the noise of step ``t`` depends only on the
state's key and ``t``, so a twin that copies a state replays the physical randomness exactly, and a
domain given another key draws an independent future.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

S = TypeVar("S")

_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64 increment (golden ratio)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    # uint64 array arithmetic wraps modulo 2**64, which is what SplitMix64 relies on.
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def counter_normals(
    key: NDArray[np.uint64], step: NDArray[np.int64], n_lanes: int
) -> NDArray[np.float64]:
    """Standard normals ``(..., n_lanes, 2)`` that depend only on ``(key, step, lane, axis)``.

    A counter-based generator (SplitMix64 of the counter, Box-Muller) lets a batch of states, each
    with its own key and step, draw its noise in one vectorized call: a state carries its RNG as
    plain arrays, so a twin that copies the state replays exactly the physical randomness, and a
    domain given another key (``reseed`` in :mod:`twinrl.envs.uav_dynamics` and
    :mod:`twinrl.envs.ap_dynamics`) draws an independent future.
    """
    keys = np.asarray(key, dtype=np.uint64)[..., None, None]
    steps = np.asarray(step, dtype=np.uint64)[..., None, None]
    lane = np.arange(2 * n_lanes, dtype=np.uint64).reshape(n_lanes, 2)
    counter = (steps << np.uint64(32)) | lane
    bits = _splitmix64(keys + (counter + np.uint64(1)) * _GAMMA)
    uniform = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53  # [0, 1)
    u1 = 1.0 - uniform[..., 0]  # (0, 1], so the log is finite
    u2 = uniform[..., 1]
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)


def rekey(state: S, field: str, keys: Any) -> S:
    """``state`` with a new key (or one key per batch element) in its stream field ``field``: a
    digital domain synced to the physical state that draws its own future."""
    keys = np.asarray(keys, dtype=np.uint64)
    current = np.shape(getattr(state, field))
    if keys.shape != current:
        raise ValueError(f"keys must have the shape of state.{field} {current}, got {keys.shape}")
    return replace(state, **{field: keys})  # type: ignore[type-var]
