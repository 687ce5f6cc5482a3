"""Batched physical models of the multi-UAV env: Friis channel, user mobility, counter-based noise.

Every function works over arbitrary leading (batch) axes, so one call evaluates many states.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

SPEED_OF_LIGHT = 299_792_458.0
"""m/s, to turn the carrier frequency into the wavelength of Friis' equation."""

MOVES = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
"""Unit displacement of each per-UAV action: 0 stay, 1 +x, 2 -x, 3 +y, 4 -y."""

_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64 increment (golden ratio)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def dbm_per_hz_to_watt_per_hz(dbm_per_hz: float) -> float:
    """-174 dBm/Hz -> 10^((-174 - 30) / 10) W/Hz = 3.98e-21 W/Hz."""
    return float(10.0 ** ((dbm_per_hz - 30.0) / 10.0))


def friis_rate(
    distance: NDArray[np.float64],
    *,
    tx_power: float,
    wavelength: float,
    bandwidth: float,
    noise_psd: float,
) -> NDArray[np.float64]:
    """Shannon rate in bit/s over a free-space (Friis) link of 3-D length ``distance`` metres.

    ``P_r = p (lambda / (4 pi d))^2`` and ``rate = B log2(1 + P_r / (N0 B))``; ``noise_psd`` is N0 in
    W/Hz. The distance is never below the UAV height, so the far-field formula stays finite.
    """
    received = tx_power * (wavelength / (4.0 * np.pi * distance)) ** 2
    return bandwidth * np.log2(1.0 + received / (noise_psd * bandwidth))


def squared_ground_distances(
    uav_pos: NDArray[np.float64], user_pos: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Squared ground-plane distances ``(..., M, N)`` between M UAVs and N users."""
    # Per-coordinate arithmetic: a reduction over a length-2 axis is several times slower.
    dx = uav_pos[..., :, None, 0] - user_pos[..., None, :, 0]
    dy = uav_pos[..., :, None, 1] - user_pos[..., None, :, 1]
    return dx * dx + dy * dy


def _splitmix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    # uint64 array arithmetic wraps modulo 2**64, which is what SplitMix64 relies on.
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def counter_normals(
    key: NDArray[np.uint64], step: NDArray[np.int64], n_users: int
) -> NDArray[np.float64]:
    """Standard normals ``(..., n_users, 2)`` that depend only on ``(key, step, user, axis)``.

    A counter-based generator (SplitMix64 of the counter, Box-Muller) lets a batch of states, each
    with its own key and step, draw its noise in one vectorized call: a state carries its RNG as
    plain arrays, so a twin that copies the state replays exactly the physical randomness, and a
    domain given another key (:func:`twinrl.envs.uav_dynamics.reseed`) draws an independent future.
    """
    keys = np.asarray(key, dtype=np.uint64)[..., None, None]
    steps = np.asarray(step, dtype=np.uint64)[..., None, None]
    lane = np.arange(2 * n_users, dtype=np.uint64).reshape(n_users, 2)
    counter = (steps << np.uint64(32)) | lane
    bits = _splitmix64(keys + (counter + np.uint64(1)) * _GAMMA)
    uniform = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53  # [0, 1)
    u1 = 1.0 - uniform[..., 0]  # (0, 1], so the log is finite
    u2 = uniform[..., 1]
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = 2.0 * np.pi * u2
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)


def gauss_markov_step(
    pos: NDArray[np.float64],
    vel: NDArray[np.float64],
    noise: NDArray[np.float64],
    *,
    memory: float,
    speed_std: float,
    dt: float,
    side: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One Gauss-Markov mobility step with zero mean velocity, reflected at the area's edges.

    ``v' = a v + sqrt(1 - a^2) sigma w`` (w standard normal per axis), so the stationary velocity
    per axis is N(0, sigma^2); then ``x' = x + v' dt``. A user crossing an edge is mirrored back
    inside and that velocity component reversed; a final clip keeps ``x'`` in ``[0, side]``.
    """
    vel = memory * vel + np.sqrt(1.0 - memory * memory) * speed_std * noise
    pos = pos + vel * dt
    low, high = pos < 0.0, pos > side
    pos = np.where(low, -pos, np.where(high, 2.0 * side - pos, pos))
    vel = np.where(low | high, -vel, vel)
    return np.clip(pos, 0.0, side), vel
