"""Batched physical models of the multi-UAV env: Friis channel and user mobility (the noise comes
from :mod:`twinrl.envs.counter_rng`).

Every function works over arbitrary leading (batch) axes, so one call evaluates many states.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from twinrl.envs.counter_rng import counter_normals

__all__ = ["counter_normals"]

SPEED_OF_LIGHT = 299_792_458.0
"""m/s, to turn the carrier frequency into the wavelength of Friis' equation."""

MOVES = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
"""Unit displacement of each per-UAV action: 0 stay, 1 +x, 2 -x, 3 +y, 4 -y."""


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
