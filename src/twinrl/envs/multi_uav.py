"""Multi-UAV access points: 4 UAVs fly to serve 10 moving ground users (paper 000, Section IV-B).

The parameters, state and pure batched dynamics live in :mod:`twinrl.envs.uav_dynamics` (and are
re-exported here); this module wraps them in the gymnasium API.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from twinrl.contract import DomainSteps, Measured
from twinrl.envs._scenario import Scenarios
from twinrl.envs._state import Snapshots
from twinrl.envs.uav_dynamics import (
    HIDDEN,
    MAX_FLAT_UAVS,
    N_MOVES,
    MultiUAVParams,
    MultiUAVState,
    decode_action,
    encode_action,
    initial_state,
    observe,
    observe_per_uav,
    reseed,
    step_batch,
    user_rates,
    validate_moves,
)


class MultiUAVEnv(Snapshots, Scenarios, gym.Env[NDArray[np.float32], Any]):
    """Multi-UAV trajectory control, ``twinrl/MultiUAV-v0``.

    ## Description
    M UAVs (4) at a fixed height act as mobile access points for N ground users (10) in a square
    area without a base station (paper 000, Section IV-B). OFDM gives every user its own bandwidth
    B, so there is no interference; each user is served by the UAV offering the highest rate,
    ``B log2(1 + P_r / (N0 B))`` with the Friis free-space received power
    ``P_r = p (lambda / (4 pi d))^2`` at the 3-D distance d. Users move by a Gauss-Markov model
    (reflected at the area's edges) whose noise is keyed by the state, so the future matters and a
    twin domain with another key (:func:`reseed`) predicts it with uncertainty.

    ## Action Space
    ``action_space="multi"`` (default): ``MultiDiscrete([5] * M)``, per UAV 0 stay, 1 +x, 2 -x,
    3 +y, 4 -y; a move covers ``uav_speed * slot`` metres (8 m) and is clipped to the area.
    ``action_space="flat"``: ``Discrete(5 ** M)``, see :func:`encode_action`. Every action is
    always valid; an out-of-range or malformed action raises ``ValueError``.

    ## Observation Space
    ``Box`` of float32 (see :func:`observe`): ``2 M`` UAV coordinates and ``2 N`` user
    coordinates divided by ``area_side`` (in [0, 1]); with a ``sensing_radius``, users out of
    every UAV's range read ``(-1, -1)``, followed by N visibility flags.
    ``observation="per_uav"``: one block per UAV, the network as that UAV sees it (offsets in
    [-1, 1], nearest first, see :func:`observe_per_uav`).

    ## Rewards
    ``reward="mean_rate"`` (default): the mean user rate after the move, in Mbit/s, minus
    ``reward_centre`` (0 by default). ``"coverage"``: the share of users at or above
    ``coverage_threshold`` Mbit/s; ``"periodic"``: the mean rate paid every ``reward_period`` slots
    (see :attr:`MultiUAVParams.reward`). ``info["mean_rate"]`` is always the mean rate itself;
    ``info["rate_per_user"]`` in Mbit/s and ``info["serving_uav"]`` give the detail.

    ## Starting State
    All UAVs at the ``hangar``; users uniform in the area with stationary Gauss-Markov velocities
    (or, with ``user_layout="clusters"``, in migrating clusters), redrawn at every reset from the
    env's ``np_random``. ``reset(options={"user_positions": a})``
    places the users at an explicit ``(N, 2)`` array of metres.

    ## Episode End
    Never terminated; truncated after ``episode_steps`` slots (a time limit: time is not observed).

    ## Arguments
    The fields of :class:`MultiUAVParams`, as keyword arguments.

    ## Version History
    * v0: initial version; the ``observation="per_uav"`` option, ``reward``, ``user_layout`` and
      their settings added later, each defaulting to the initial behaviour (a reference-hash test
      pins it).
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium convention

    def __init__(self, **kwargs: Any) -> None:
        self.params = MultiUAVParams(**kwargs)
        self.action_space, self.observation_space = self.spaces_for(self.params)
        self._state: MultiUAVState | None = None

    def spaces_for(self, params: MultiUAVParams) -> tuple[spaces.Space[Any], spaces.Space[Any]]:
        """The action and observation spaces under ``params`` (the user count sizes the
        observation, so a scenario change keeps it)."""
        action: spaces.Space[Any]
        if params.action_space == "multi":
            action = spaces.MultiDiscrete([N_MOVES] * params.n_uavs)
        else:
            action = spaces.Discrete(params.n_flat_actions)
        low = 0.0 if params.sensing_radius is None and params.observation == "absolute" else HIDDEN
        return action, spaces.Box(low, 1.0, (params.obs_size,), np.float32)

    @property
    def episode_steps(self) -> int:
        """Slots per episode (the truncation time)."""
        return self.params.episode_steps

    @property
    def observation_blocks(self) -> int | None:
        """Equal observation blocks, one per UAV (``observation="per_uav"``), else None: what a
        network shared by the action branches needs (``DQNConfig.shared_branches``)."""
        return self.params.n_uavs if self.params.observation == "per_uav" else None

    def reseed_domain(self, state: MultiUAVState, key: int) -> MultiUAVState:
        """``state`` with its own mobility noise ``key``: a digital domain that does not know the
        physical future (used by ``PredictiveTargets`` for its m trajectories)."""
        return reseed(state, np.uint64(key))

    def global_observation(self, state: MultiUAVState) -> NDArray[np.float32]:
        """The observation of ``state`` with every user visible (what a twin that mirrors the
        whole network can tell a partially observed agent; used by ``GlobalObservation``)."""
        return observe(self.params, state, global_view=True)

    # --- twinnable interface --------------------------------------------------------------------
    state_type = MultiUAVState
    measured_state: ClassVar[dict[str, Measured]] = {
        "user_pos": Measured("m", 0.0),
        "uav_pos": Measured("m", 0.0),
        "user_vel": Measured("m/s"),
    }
    """State fields a twin measures (``twinrl.twin.Fidelity.noise``): positions in metres (at
    least 0; also clipped to the area by the dynamics) and user velocities in m/s."""
    state_dtypes: ClassVar[dict[str, Any]] = {"step": np.int64, "noise_key": np.uint64}

    def _check_state(self, state: MultiUAVState) -> None:
        p = self.params
        if state.uav_pos.shape != (p.n_uavs, 2) or state.user_pos.shape != (p.n_users, 2):
            raise ValueError(
                f"state has {state.uav_pos.shape[:-1]} UAVs and {state.user_pos.shape[:-1]} users; "
                f"this env has n_uavs={p.n_uavs}, n_users={p.n_users}"
            )

    def step_batch(self, state: MultiUAVState, actions: Any) -> DomainSteps:
        """Batched dynamics for the digital twin.

        ``actions`` has shape ``(B, M)`` (``multi``) or ``(B,)`` (``flat``); ``terminated`` is
        always False, ``truncated`` True where a domain reaches ``episode_steps`` (as in
        :meth:`step`), and ``next_mask`` None (every action is valid).
        """
        moves = validate_moves(self.params, actions, batched=True)
        nxt, reward, _ = step_batch(self.params, state, moves)
        terminated = np.zeros(reward.shape, dtype=bool)
        truncated = np.asarray(nxt.step, dtype=np.int64) >= self.params.episode_steps
        truncated = np.broadcast_to(truncated, reward.shape).copy()
        return DomainSteps(nxt, observe(self.params, nxt), reward, terminated, truncated, None)

    # --- gymnasium API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"user_positions"}
        if unknown:
            raise ValueError(
                f"unknown reset options {sorted(unknown)}; the only option is 'user_positions'"
            )
        user_pos = None
        if "user_positions" in options:
            p = self.params
            user_pos = np.asarray(options["user_positions"], dtype=np.float64)
            if user_pos.shape != (p.n_users, 2) or not np.all(
                (user_pos >= 0.0) & (user_pos <= p.area_side)
            ):
                raise ValueError(
                    f"options['user_positions'] must be an array of shape ({p.n_users}, 2) of "
                    f"metres in [0, {p.area_side}], got shape {user_pos.shape}"
                )
        self._state = initial_state(self.params, self.np_random, user_pos)
        rates, serving = user_rates(self.params, self._state.uav_pos, self._state.user_pos)
        return observe(self.params, self._state), self._info(rates, serving)

    def step(self, action: Any) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if int(self._state.step) >= self.params.episode_steps:
            raise RuntimeError("the episode has been truncated; call reset()")
        moves = validate_moves(self.params, action, batched=False)
        nxt, reward, rates = step_batch(self.params, self._state.tile(1), moves[None])
        self._state = nxt.item(0)
        _, serving = user_rates(self.params, self._state.uav_pos, self._state.user_pos)
        truncated = int(self._state.step) >= self.params.episode_steps
        obs = observe(self.params, self._state)
        return obs, float(reward[0]), False, truncated, self._info(rates[0], serving)

    @staticmethod
    def _info(rates: NDArray[np.float64], serving: NDArray[np.int64]) -> dict[str, Any]:
        return {
            "mean_rate": float(rates.mean() / 1e6),
            "rate_per_user": rates / 1e6,
            "serving_uav": serving,
        }


__all__ = [
    "HIDDEN",
    "MAX_FLAT_UAVS",
    "N_MOVES",
    "MultiUAVEnv",
    "MultiUAVParams",
    "MultiUAVState",
    "decode_action",
    "encode_action",
    "initial_state",
    "observe",
    "observe_per_uav",
    "reseed",
    "step_batch",
    "user_rates",
    "validate_moves",
]
