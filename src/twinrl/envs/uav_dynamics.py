"""Multi-UAV network dynamics (paper 000, Section IV-B): params, state and pure batched kernels.

:class:`MultiUAVParams` and :class:`MultiUAVState` describe the network; the functions here are its
pure transition (:func:`step_batch`), observation (:func:`observe`), rate model
(:func:`user_rates`) and action coding. :class:`twinrl.envs.multi_uav.MultiUAVEnv` wraps them in
the gymnasium API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from twinrl.envs import uav_kernels as k
from twinrl.envs.counter_rng import rekey
from twinrl.errors import ConfigError
from twinrl.validation import check_choice, check_float, check_float_tuple, check_int, set_field

N_MOVES = len(k.MOVES)
"""Per-UAV actions: 0 stay, 1 +x, 2 -x, 3 +y, 4 -y."""
MAX_FLAT_UAVS = 8  # 5**8 = 390,625 flat actions; beyond that use action_space="multi"
HIDDEN = -1.0
"""Coordinate written in the observation for a user no UAV can sense."""


@dataclass(frozen=True)
class MultiUAVParams:
    """Parameters of the multi-UAV network (paper 000, Section IV-B).

    The paper gives ``N = 100``, ``M = 4``, ``p = 100 mW``, ``sigma^2 = -174 dBm/Hz``, a height of
    5 m and a speed of 8 m/s, and says there are 10 users. ``M = 4`` is the number of UAVs; ``N`` is
    not defined, and since the users are 10 we read ``N = 100`` as the side of the square area in
    metres (:attr:`area_side`). The carrier frequency, the bandwidth per user, the time slot, the
    hangar position, the episode length and the user mobility are not given; the defaults below
    are our choices.
    """

    twin_params: ClassVar[tuple[str, ...]] = ("user_speed_std", "user_memory", "uav_speed")
    """Parameters a digital twin may get wrong (``twinrl.twin.Fidelity.bias``): the users'
    mobility (Gauss-Markov spread and memory) and the UAV speed."""

    scenario_fields: ClassVar[tuple[str, ...]] = (
        "n_users", "user_speed_std", "user_memory", "uav_speed", "user_spread", "user_offset",
    )  # fmt: skip
    """The scenario (``env.unwrapped.scenario``): the user count, mobility and clustering (where
    the users start) and the UAV speed. The user count sizes the observation, so a running env
    keeps it (a new count is a new env: ``gym.make(id, **scenario.as_dict())``)."""

    n_users: int = 10
    """Number of ground users (10 in the paper), an integer in [1, 10000]."""
    n_uavs: int = 4
    """M, the number of UAVs acting as mobile access points (4 in the paper), an integer in
    [1, 64] (at most 8 with ``action_space="flat"``)."""
    area_side: float = 100.0
    """Side of the square service area ``[0, area_side]^2`` in metres, in [0.001, 1e6]; our reading
    of ``N = 100``."""
    episode_steps: int = 50
    """Time slots per episode, an integer in [1, 2**31 - 1]; the episode is truncated (not
    terminated) after this many steps."""
    tx_power: float = 0.1
    """Transmit power p of a UAV in watts (100 mW), in [1e-15, 1e4]."""
    noise_psd_dbm: float = -174.0
    """Noise power spectral density N0 (sigma^2 in the paper) in dBm/Hz, in [-300, 100]."""
    bandwidth: float = 1e6
    """OFDM bandwidth B allotted to each user, in Hz (no interference between users), in
    [1, 1e12]."""
    carrier_frequency: float = 2.4e9
    """Carrier frequency f in Hz, in [1e3, 1e12]; Friis' wavelength is ``c / f`` (0.125 m at
    2.4 GHz)."""
    uav_height: float = 5.0
    """Flight height of every UAV in metres, in [0.001, 1e4] (above 0, so no distance is 0)."""
    uav_speed: float = 8.0
    """UAV speed in m/s, in (0, 1e4]; a move covers ``uav_speed * slot`` metres."""
    slot: float = 1.0
    """Duration dt of a time slot (one step) in seconds, in (0, 1e6]."""
    hangar: tuple[float, float] = (0.0, 0.0)
    """Ground position ``(x, y)`` in metres where every UAV starts (default: the corner (0, 0));
    each coordinate in [0, area_side]."""
    user_speed_std: float = 1.0
    """Gauss-Markov velocity spread sigma in m/s per axis, in [0, 1e4] (mean user speed
    ``sigma sqrt(pi/2)``, about 1.25 m/s)."""
    user_memory: float = 0.8
    """Gauss-Markov memory ``a`` in [0, 1]: 0 redraws the velocity every slot, 1 keeps it."""
    user_spread: float = 1.0
    """Clustering of the users at the start of an episode: they start uniformly in a square of
    side ``user_spread * area_side`` (clipped to the area) centred at the area's centre plus
    ``user_offset``; in (0, 1]. 1 with offset (0, 0): uniform over the area (the default)."""
    user_offset: tuple[float, float] = (0.0, 0.0)
    """Where the users' cluster is, relative to the area's centre, in metres (users that
    migrate); each coordinate in [-area_side / 2, area_side / 2]."""
    reward_centre: float = 0.0
    """Mbit/s subtracted from the mean user rate in the reward, in [-1e12, 1e12] (0: the paper's
    reward, the mean rate). The env never terminates, so a constant offset changes every policy's
    value by the same amount and leaves their ranking unchanged; centring the reward near the rates reached (about
    20 Mbit/s at the defaults) lets a value network spend its precision on the differences between
    actions instead of on a common level of about ``20 / (1 - gamma)``. ``info["mean_rate"]``
    is always the uncentred rate. (Subtracted, unlike ``QLearningConfig.reward_offset``, which an
    agent adds to the rewards it learns from.) With ``reward="coverage"`` it is a share of users
    (subtracted from the covered share); with ``"periodic"`` it is subtracted from the rate before
    the payment is scaled."""
    reward: Literal["mean_rate", "coverage", "periodic"] = "mean_rate"
    """What the reward measures after each move, before ``reward_centre`` is subtracted:
    ``mean_rate`` (default, the paper's): the mean user rate in Mbit/s, a dense signal that changes
    with every move. ``coverage``: the share of users whose rate is at least
    ``coverage_threshold`` (0 to 1), a sparse signal: most moves change it by nothing.
    ``periodic``: the mean rate, measured only at every ``reward_period``-th slot and paid as
    ``reward_period`` times its value then (0 at the other slots), so an episode's return keeps
    its scale while the signal arrives late. ``info["mean_rate"]`` is always the rate."""
    coverage_threshold: float = 23.0
    """Rate in Mbit/s a user needs to count as covered (``reward="coverage"``), in [0, 1e6]; 23
    Mbit/s is a ground distance of about 15 m from a UAV at the defaults."""
    reward_period: int = 10
    """Slots between two paid rewards (``reward="periodic"``): the reward of the move into slot
    ``t`` is paid when ``t`` is a multiple of it; an integer in [1, 10000]."""
    user_layout: Literal["uniform", "clusters"] = "uniform"
    """Users at reset. ``uniform`` (default): uniform in the area with stationary Gauss-Markov
    velocities, each user on its own. ``clusters``: migrating clusters: ``n_clusters`` centres
    uniform in the area, user ``i`` in cluster ``i mod n_clusters`` drawn around its centre with
    spread ``cluster_spread``, moving with its cluster's velocity (``cluster_speed`` m/s in a
    random heading per cluster) plus its own Gauss-Markov velocity of spread
    ``user_speed_std``. The mobility model then decays the shared velocity with ``user_memory``
    (``a^t``), so with a memory near 1 clusters cross the area together."""
    n_clusters: int = 3
    """Clusters of ``user_layout="clusters"``, an integer in [1, 10000]."""
    cluster_spread: float = 5.0
    """Standard deviation in metres of a user's start around its cluster's centre
    (``user_layout="clusters"``), in [0, 1e6]."""
    cluster_speed: float = 4.0
    """Speed in m/s shared by a cluster's users at reset (``user_layout="clusters"``), in
    [0, 1e4]."""
    sensing_radius: float | None = None
    """``None``: every user's position is observed. Else a user is observed only when it is within
    this ground distance (metres, in (0, 1e7]) of some UAV; the others are hidden (see the env
    docstring)."""
    action_space: Literal["multi", "flat"] = "multi"
    """``multi``: ``MultiDiscrete([5] * M)``, one move per UAV. ``flat``: ``Discrete(5 ** M)``,
    the moves encoded by :func:`encode_action`."""
    observation: Literal["absolute", "per_uav"] = "absolute"
    """``absolute``: every coordinate divided by ``area_side`` (:func:`observe`). ``per_uav``: one
    block of the same size per UAV, as that UAV sees the network (:func:`observe_per_uav`): the
    same information, laid out so one network shared by the UAVs can read it (``DQNConfig.
    shared_branches``)."""

    def __post_init__(self) -> None:
        set_field(self, "n_users", check_int("n_users", self.n_users, 1, 10_000))
        set_field(self, "n_uavs", check_int("n_uavs", self.n_uavs, 1, 64))
        set_field(
            self, "episode_steps", check_int("episode_steps", self.episode_steps, 1, 2**31 - 1)
        )
        for name, low, high in (("area_side", 1e-3, 1e6), ("tx_power", 1e-15, 1e4),
                                ("bandwidth", 1.0, 1e12), ("carrier_frequency", 1e3, 1e12),
                                ("uav_height", 1e-3, 1e4), ("noise_psd_dbm", -300.0, 100.0),
                                ("user_speed_std", 0.0, 1e4), ("user_memory", 0.0, 1.0),
                                ("reward_centre", -1e12, 1e12)):  # fmt: skip
            set_field(self, name, check_float(name, getattr(self, name), low, high))
        set_field(
            self, "uav_speed", check_float("uav_speed", self.uav_speed, 0.0, 1e4, low_open=True)
        )
        set_field(self, "slot", check_float("slot", self.slot, 0.0, 1e6, low_open=True))
        set_field(
            self,
            "user_spread",
            check_float("user_spread", self.user_spread, 0.0, 1.0, low_open=True),
        )
        half = self.area_side / 2
        offset = check_float_tuple(
            "user_offset", self.user_offset, -half, half, min_len=2, max_len=2
        )
        set_field(self, "user_offset", offset)
        hangar = check_float_tuple("hangar", self.hangar, 0.0, self.area_side, min_len=2, max_len=2)
        set_field(self, "hangar", hangar)
        if self.sensing_radius is not None:
            radius = check_float("sensing_radius", self.sensing_radius, 0.0, 1e7, low_open=True)
            set_field(self, "sensing_radius", radius)
        check_choice("action_space", self.action_space, ("multi", "flat"))
        check_choice("observation", self.observation, ("absolute", "per_uav"))
        check_choice("reward", self.reward, ("mean_rate", "coverage", "periodic"))
        check_choice("user_layout", self.user_layout, ("uniform", "clusters"))
        for name, high in (("reward_period", 10_000), ("n_clusters", 10_000)):
            set_field(self, name, check_int(name, getattr(self, name), 1, high))
        for name, low, high in (("coverage_threshold", 0.0, 1e6), ("cluster_spread", 0.0, 1e6),
                                ("cluster_speed", 0.0, 1e4)):  # fmt: skip
            set_field(self, name, check_float(name, getattr(self, name), low, high))
        if self.action_space == "flat" and self.n_uavs > MAX_FLAT_UAVS:
            raise ConfigError(
                f"n_uavs={self.n_uavs} gives 5**{self.n_uavs} flat actions; use n_uavs <= "
                f"{MAX_FLAT_UAVS} or action_space='multi'"
            )

    @property
    def n_flat_actions(self) -> int:
        return int(N_MOVES**self.n_uavs)

    @property
    def wavelength(self) -> float:
        return k.SPEED_OF_LIGHT / self.carrier_frequency

    @property
    def noise_psd(self) -> float:
        """N0 in W/Hz."""
        return k.dbm_per_hz_to_watt_per_hz(self.noise_psd_dbm)

    @property
    def obs_size(self) -> int:
        if self.observation == "per_uav":
            return self.n_uavs * self.per_uav_size
        size = 2 * (self.n_uavs + self.n_users)
        return size if self.sensing_radius is None else size + self.n_users

    @property
    def per_uav_size(self) -> int:
        """Floats in one UAV's block of the ``per_uav`` observation (:func:`observe_per_uav`)."""
        per_user = 3 if self.sensing_radius is None else 4
        return 2 * self.n_uavs + per_user * self.n_users


@dataclass(frozen=True)
class MultiUAVState:
    """Snapshot of a multi-UAV env; arrays may carry a leading batch axis.

    ``uav_pos`` ``(M, 2)`` and ``user_pos``/``user_vel`` ``(N, 2)`` are in metres and m/s;
    ``step`` counts the slots played; ``noise_key`` keys the counter-based mobility noise (the
    randomness of every future step, see :func:`twinrl.envs.uav_kernels.counter_normals`).
    ``rng_state`` is the env's ``np_random`` state, which draws the next episode's users at reset.
    """

    uav_pos: NDArray[np.float64]
    user_pos: NDArray[np.float64]
    user_vel: NDArray[np.float64]
    step: NDArray[np.int64]
    noise_key: NDArray[np.uint64]
    rng_state: dict[str, Any] | None = field(default=None, compare=False)

    def tile(self, batch: int) -> MultiUAVState:
        """This (unbatched) state repeated ``batch`` times along a new leading axis (read-only
        views; the dynamics never write into a state)."""
        return MultiUAVState(
            uav_pos=np.broadcast_to(self.uav_pos, (batch, *self.uav_pos.shape)),
            user_pos=np.broadcast_to(self.user_pos, (batch, *self.user_pos.shape)),
            user_vel=np.broadcast_to(self.user_vel, (batch, *self.user_vel.shape)),
            step=np.full(batch, self.step, dtype=np.int64),
            noise_key=np.full(batch, self.noise_key, dtype=np.uint64),
        )

    def item(self, i: int) -> MultiUAVState:
        """Element ``i`` of a batched state, as an unbatched state."""
        return MultiUAVState(
            uav_pos=np.array(self.uav_pos[i]),
            user_pos=np.array(self.user_pos[i]),
            user_vel=np.array(self.user_vel[i]),
            step=np.array(self.step[i], dtype=np.int64),
            noise_key=np.array(self.noise_key[i], dtype=np.uint64),
        )


def initial_state(
    params: MultiUAVParams,
    rng: np.random.Generator,
    user_pos: NDArray[np.float64] | None = None,
) -> MultiUAVState:
    """UAVs at the hangar; users uniform in the area (or at ``user_pos``) with stationary
    Gauss-Markov velocities; a fresh mobility noise key. Everything is drawn from ``rng``."""
    side, n = params.area_side, params.n_users
    if params.user_layout == "clusters":
        drawn, vel = _clustered_users(params, rng)
    else:
        drawn = rng.uniform(0.0, side, size=(n, 2))
        if params.user_spread != 1.0 or params.user_offset != (0.0, 0.0):  # a cluster of users
            centre = side / 2 + np.asarray(params.user_offset)
            drawn = np.clip(centre + (drawn - side / 2) * params.user_spread, 0.0, side)
        vel = rng.normal(0.0, params.user_speed_std, size=(n, 2))
    key = rng.integers(0, 2**64, dtype=np.uint64)
    return MultiUAVState(
        uav_pos=np.tile(np.asarray(params.hangar, dtype=np.float64), (params.n_uavs, 1)),
        user_pos=drawn if user_pos is None else np.array(user_pos, dtype=np.float64),
        user_vel=vel,
        step=np.array(0, dtype=np.int64),
        noise_key=np.array(key, dtype=np.uint64),
    )


def _clustered_users(
    params: MultiUAVParams, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Positions and velocities ``(N, 2)`` of ``user_layout="clusters"``: user ``i`` joins
    cluster ``i mod n_clusters``, starts around its centre and moves with its velocity."""
    side, n, c = params.area_side, params.n_users, params.n_clusters
    centres = rng.uniform(0.0, side, size=(c, 2))
    heading = rng.uniform(0.0, 2.0 * np.pi, size=c)
    drift = params.cluster_speed * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
    member = np.arange(n) % c
    pos = np.clip(centres[member] + rng.normal(0.0, params.cluster_spread, size=(n, 2)), 0.0, side)
    vel = drift[member] + rng.normal(0.0, params.user_speed_std, size=(n, 2))
    return pos, vel


def reward_signal(
    params: MultiUAVParams, rates: NDArray[np.float64], step: NDArray[np.int64]
) -> NDArray[np.float64]:
    """The reward of moves that reached slot ``step`` with user rates ``rates`` (bit/s,
    ``(..., N)``): see :attr:`MultiUAVParams.reward`; ``reward_centre`` already subtracted."""
    if params.reward == "coverage":
        covered = rates >= params.coverage_threshold * 1e6
        return covered.mean(axis=-1) - params.reward_centre
    centred = rates.mean(axis=-1) / 1e6 - params.reward_centre
    if params.reward == "mean_rate":
        return centred
    paid = np.asarray(step) % params.reward_period == 0
    return np.where(paid, params.reward_period * centred, 0.0)


def user_rates(
    params: MultiUAVParams, uav_pos: NDArray[np.float64], user_pos: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Each user's rate in bit/s ``(..., N)`` from the UAV offering the highest rate, and that
    UAV's index (paper 000, IV-B: OFDM, no interference, max-rate association)."""
    # The rate falls with distance, so the best UAV is the nearest one: evaluate Friis once per
    # user instead of once per (UAV, user) pair.
    ground2 = k.squared_ground_distances(uav_pos, user_pos)
    serving = np.argmin(ground2, axis=-2)
    nearest2 = np.take_along_axis(ground2, serving[..., None, :], axis=-2)[..., 0, :]
    rates = k.friis_rate(
        np.sqrt(nearest2 + params.uav_height**2),
        tx_power=params.tx_power,
        wavelength=params.wavelength,
        bandwidth=params.bandwidth,
        noise_psd=params.noise_psd,
    )
    return rates, serving


def step_batch(
    params: MultiUAVParams, state: MultiUAVState, moves: NDArray[np.int64]
) -> tuple[MultiUAVState, NDArray[np.float64], NDArray[np.float64]]:
    """Pure batched transition: ``(next_state, reward, rate_per_user)``.

    ``state`` is batched with leading axis B and ``moves`` has shape ``(B, M)`` with entries in
    ``[0, 5)`` (not checked here). UAVs move ``uav_speed * slot`` metres and are clipped to the
    area; users take a Gauss-Markov step; the reward is :func:`reward_signal` of the rates at the
    new positions (by default the mean user rate in Mbit/s minus ``reward_centre``), and
    ``rate_per_user`` is in bit/s.
    """
    side = params.area_side
    uav_pos = np.clip(state.uav_pos + k.MOVES[moves] * (params.uav_speed * params.slot), 0.0, side)
    noise = k.counter_normals(state.noise_key, state.step, params.n_users)
    user_pos, user_vel = k.gauss_markov_step(
        state.user_pos, state.user_vel, noise, memory=params.user_memory,
        speed_std=params.user_speed_std, dt=params.slot, side=side,
    )  # fmt: skip
    rates, _ = user_rates(params, uav_pos, user_pos)
    nxt = MultiUAVState(uav_pos, user_pos, user_vel, state.step + 1, state.noise_key)
    return nxt, reward_signal(params, rates, nxt.step), rates


def observe(params: MultiUAVParams, state: MultiUAVState, global_view: bool = False) -> NDArray:
    """Observation of a (possibly batched) state: float32 ``(..., obs_size)``.

    Layout: UAV ``(x, y) / area_side`` for each UAV, then user ``(x, y) / area_side`` for each
    user, then (only with a ``sensing_radius``) one visibility flag per user. A user farther than
    the radius from every UAV has both coordinates set to :data:`HIDDEN` and flag 0.
    ``global_view=True`` gives the same layout with every user visible, as a twin that knows all
    positions would (paper 000, II-B, observation capability enhancement).
    """
    if params.observation == "per_uav":
        return observe_per_uav(params, state, global_view)
    side = params.area_side
    uavs = (state.uav_pos / side).reshape(*state.uav_pos.shape[:-2], -1)
    users = state.user_pos / side
    if params.sensing_radius is None:
        flat_users = users.reshape(*users.shape[:-2], -1)
        return np.concatenate([uavs, flat_users], axis=-1).astype(np.float32)
    if global_view:
        visible = np.ones(users.shape[:-1], dtype=bool)
    else:
        ground2 = k.squared_ground_distances(state.uav_pos, state.user_pos)
        visible = np.any(ground2 <= params.sensing_radius**2, axis=-2)
    users = np.where(visible[..., None], users, HIDDEN).reshape(*users.shape[:-2], -1)
    return np.concatenate([uavs, users, visible], axis=-1).astype(np.float32)


def _visible(params: MultiUAVParams, ground2: NDArray[np.float64], global_view: bool) -> NDArray:
    """Per user ``(..., N)``: observed (within the sensing radius of some UAV, or no radius)."""
    if params.sensing_radius is None or global_view:
        return np.ones(ground2.shape[:-2] + ground2.shape[-1:], dtype=bool)
    return np.any(ground2 <= params.sensing_radius**2, axis=-2)


def observe_per_uav(
    params: MultiUAVParams, state: MultiUAVState, global_view: bool = False
) -> NDArray[np.float32]:
    """The ``per_uav`` observation: float32 ``(..., M * per_uav_size)``, one block per UAV ``i``.

    Block ``i``: UAV ``i``'s own ``(x, y) / area_side``; the other UAVs' offsets
    ``(x_j - x_i, y_j - y_i) / area_side``, nearest first; then per user, nearest first, its offset
    from UAV ``i`` over ``area_side`` and a flag 1 if UAV ``i`` serves it (is its nearest UAV), and
    with a ``sensing_radius`` a visibility flag. A user no UAV senses (see :func:`observe`) reads
    all zeros and is sorted last. Ordering by distance makes the block independent of how users
    and UAVs are numbered, so UAVs can share one network; the same positions as :func:`observe`.
    """
    side = params.area_side
    uav, user = state.uav_pos, state.user_pos
    ground2 = k.squared_ground_distances(uav, user)  # (..., M, N)
    visible = _visible(params, ground2, global_view)
    mine = (np.argmin(ground2, axis=-2)[..., None, :] == np.arange(params.n_uavs)[:, None]) & (
        visible[..., None, :]
    )
    user_off = (user[..., None, :, :] - uav[..., :, None, :]) / side  # (..., M, N, 2)
    feats = [user_off, mine[..., None]]
    if params.sensing_radius is not None:
        feats.append(np.broadcast_to(visible[..., None, :, None], (*mine.shape, 1)))
    users = np.concatenate(feats, axis=-1) * visible[..., None, :, None]
    order = np.argsort(np.where(visible[..., None, :], ground2, np.inf), axis=-1, kind="stable")
    users = np.take_along_axis(users, order[..., None], axis=-2)
    uav_off = (uav[..., None, :, :] - uav[..., :, None, :]) / side  # (..., M, M, 2)
    uav2 = (uav_off**2).sum(axis=-1)
    # UAV i itself sorts first (distance 0, ties kept in index order, i first among equals)
    uav2 = np.where(np.eye(params.n_uavs, dtype=bool), -1.0, uav2)
    others = np.take_along_axis(uav_off, np.argsort(uav2, axis=-1, kind="stable")[..., None], -2)
    own = uav[..., :, None, :] / side
    block = [own, others[..., 1:, :]]
    parts = [b.reshape(*b.shape[:-2], -1) for b in (*block, users)]
    out = np.concatenate(parts, axis=-1)  # (..., M, per_uav_size)
    return out.reshape(*out.shape[:-2], -1).astype(np.float32)


def encode_action(params: MultiUAVParams, moves: Any) -> NDArray[np.int64]:
    """Per-UAV moves ``(..., M)`` -> flat action ``sum_m moves[m] * 5**m`` (UAV 0 is the least
    significant base-5 digit)."""
    moves = np.asarray(moves, dtype=np.int64)
    return moves @ (N_MOVES ** np.arange(params.n_uavs, dtype=np.int64))


def decode_action(params: MultiUAVParams, flat: Any) -> NDArray[np.int64]:
    """Flat action(s) ``(...)`` -> per-UAV moves ``(..., M)``; inverse of :func:`encode_action`."""
    flat = np.asarray(flat, dtype=np.int64)
    return (flat[..., None] // (N_MOVES ** np.arange(params.n_uavs, dtype=np.int64))) % N_MOVES


def reseed(state: MultiUAVState, keys: Any) -> MultiUAVState:
    """``state`` with a new mobility noise key (or one key per batch element), so a digital
    domain synced to the physical state predicts the users' future from its own random stream."""
    return rekey(state, "noise_key", keys)


def validate_moves(params: MultiUAVParams, actions: Any, batched: bool) -> NDArray[np.int64]:
    """Actions as per-UAV moves ``(M,)`` (or ``(B, M)`` when ``batched``), or ``ValueError``."""
    arr = np.asarray(actions)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"actions must be integers, got {actions!r}")
    flat = params.action_space == "flat"
    if batched:
        ok = arr.ndim == 1 if flat else (arr.ndim == 2 and arr.shape[1] == params.n_uavs)
        expect = "(B,)" if flat else f"(B, {params.n_uavs})"
    else:
        ok = arr.shape == (() if flat else (params.n_uavs,))
        expect = "a scalar" if flat else f"({params.n_uavs},)"
    if not ok:
        raise ValueError(
            f"action shape {arr.shape} does not match action_space={params.action_space!r}; "
            f"expected {expect}"
        )
    high = params.n_flat_actions if flat else N_MOVES
    if arr.size and (arr.min() < 0 or arr.max() >= high):
        raise ValueError(
            f"action {actions!r} is outside the action space: each entry must be in [0, {high - 1}]"
        )
    arr = arr.astype(np.int64)
    return decode_action(params, arr) if flat else arr
