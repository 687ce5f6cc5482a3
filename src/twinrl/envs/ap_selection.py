"""URLLC access-point selection, ``twinrl/APSelection-v0`` (paper 000, Section IV-A, Fig. 4).

The parameters and state live in :mod:`twinrl.envs.ap_params`, the pure batched dynamics in
:mod:`twinrl.envs.ap_dynamics`; this module wraps them as a twinnable gymnasium env.
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
from twinrl.envs.ap_dynamics import (
    OUTCOME_NAMES,
    SUCCESS,
    APSelectionParams,
    APSelectionState,
    initial_state,
    observe,
    reseed,
    sample_task_classes,
    step_batch,
    transmit,
    validate_action,
)


class APSelectionEnv(Snapshots, Scenarios, gym.Env[Any, int]):
    """URLLC access-point selection on a road, ``twinrl/APSelection-v0``.

    ## Description
    A vehicle drives a straight road at constant speed past M access points that differ in
    position, coverage radius, uplink rate and price (paper 000, Section IV-A). One URLLC task
    (size, deadline) arrives at each of N decision epochs, one per road cell, and the agent picks
    the AP that transmits it. Transmission starts now if the vehicle is in the AP's coverage, on
    entering it if the AP is ahead, and after the AP's earlier tasks (one at a time, FIFO). The
    task fails if the AP is behind and out of reach, if the vehicle leaves coverage before the
    last bit, or if the deadline passes first. See :mod:`twinrl.envs.ap_dynamics` for the exact
    rule.

    ## Action Space
    ``Discrete(M)``: the AP for the current task. Every AP is a valid action (an unreachable one
    just fails), so there is no action mask; anything else raises ``ValueError``.

    ## Observation Space
    ``observation="index"``: ``Discrete((N + 1) * classes * 2**M)``, the index of (road cell, task
    class, per-AP busy flag); :func:`twinrl.envs.ap_dynamics.decode_observation` decodes it. An AP
    is busy if its queue lasts more than ``busy_threshold`` seconds past now. At the defaults this
    is 21 * 3 * 32 = 2016 states. ``observation="features"``: a ``Box(-1, 1, (3 + 2 M,))``, see
    :func:`twinrl.envs.ap_dynamics.observe`.

    ## Rewards
    Per task: on success ``success_reward - w_latency * latency - w_price * price * size_Mbit``
    (latency in s from arrival to last bit, price per Mbit); on failure ``-failure_penalty``.

    ## Starting State
    Vehicle at position 0 at time 0, all APs idle. The N task classes of the pass are drawn
    i.i.d. with ``task_probs`` from the env RNG at every reset and carried in the state, so a twin
    synced to the state predicts the next task exactly. ``reset(options={"task_classes": seq})``
    sets them explicitly.

    ## Episode End
    Terminated after N tasks (one pass of the road). Never truncated.

    ## Info
    ``failed`` (bool), ``outcome`` (``"success"``, ``"unreachable"``, ``"left_coverage"`` or
    ``"deadline_miss"``), ``ap``, ``latency`` (s, NaN on failure), ``start`` and ``finish`` (s,
    absolute) of the task handled by the step. ``reset`` returns an empty info.

    ## Arguments
    The fields of :class:`~twinrl.envs.ap_dynamics.APSelectionParams`, as keyword arguments.

    ## Scenario
    ``scenario`` / ``set_scenario``: the speed, AP layout, rates and prices and the task classes
    (``APSelectionParams.scenario_fields``); a change applies from the next step (task classes
    from the next reset, which draws them).

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium convention

    def __init__(self, **kwargs: Any) -> None:
        self.params = APSelectionParams(**kwargs)
        self.action_space, self.observation_space = self.spaces_for(self.params)
        self._state: APSelectionState | None = None

    def spaces_for(self, params: APSelectionParams) -> tuple[spaces.Space[Any], spaces.Space[Any]]:
        """The action and observation spaces under ``params``."""
        if params.observation == "index":
            observation: spaces.Space[Any] = spaces.Discrete(params.n_observations)
        else:
            observation = spaces.Box(-1.0, 1.0, (3 + 2 * params.n_aps,), np.float32)
        return spaces.Discrete(params.n_aps), observation

    # --- twinnable interface --------------------------------------------------------------------
    state_type = APSelectionState
    measured_state: ClassVar[dict[str, Measured]] = {"ap_free_at": Measured("s", 0.0)}
    """State fields a twin measures (``twinrl.twin.Fidelity.noise``): when each access point
    becomes free, in seconds."""

    def _check_state(self, state: APSelectionState) -> None:
        p = self.params
        if state.task_classes.shape != (p.n_steps,) or state.ap_free_at.shape != (p.n_aps,):
            raise ValueError(
                f"state has task_classes of shape {state.task_classes.shape} and ap_free_at of "
                f"shape {state.ap_free_at.shape}; this env has n_steps={p.n_steps} and "
                f"M={p.n_aps} APs"
            )

    state_dtypes: ClassVar[dict[str, Any]] = {"fade_key": np.uint64}

    def reseed_domain(self, state: APSelectionState, key: int) -> APSelectionState:
        """``state`` with its own fading key ``key``: a digital domain that does not know the
        physical link's future (used by domain averaging and ``PredictiveTargets``)."""
        return reseed(state, np.uint64(key))

    twin_info_keys = ("failed",)
    """``info`` entries the twin reports per domain (SafeExploration reads ``failed``)."""

    @property
    def episode_steps(self) -> int:
        """Physical steps (tasks) per pass of the road."""
        return self.params.n_steps

    def step_batch(self, state: APSelectionState, actions: NDArray[np.int64]) -> DomainSteps:
        """Batched dynamics for the digital twin, with ``info["failed"]`` per domain.

        ``next_mask`` is always None (every AP is a valid action); never truncated.
        """
        nxt, reward, terminated = step_batch(self.params, state, np.asarray(actions, np.int64))
        info = {"failed": np.asarray(nxt.last_failed, dtype=bool)}
        truncated = np.zeros(reward.shape, dtype=bool)
        return DomainSteps(
            nxt, observe(self.params, nxt), reward, terminated, truncated, None, info
        )

    # --- gymnasium API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"task_classes"}
        if unknown:
            raise ValueError(
                f"unknown reset options {sorted(unknown)}; the only option is 'task_classes'"
            )
        p = self.params
        if "task_classes" in options:
            classes = np.asarray(options["task_classes"])
            if (
                classes.shape != (p.n_steps,)
                or not np.issubdtype(classes.dtype, np.integer)
                or np.any((classes < 0) | (classes >= p.n_classes))
            ):
                raise ValueError(
                    f"options['task_classes'] must be {p.n_steps} integers in "
                    f"[0, {p.n_classes - 1}], got {options['task_classes']!r}"
                )
        else:
            classes = sample_task_classes(p, self.np_random)
        # drawn only with fading, so the paper's deterministic setting keeps its random stream
        key = int(self.np_random.integers(0, 2**63)) if p.fading_db > 0 else 0
        self._state = initial_state(p, classes, key)
        return observe(p, self._state), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if int(self._state.t) >= self.params.n_steps:
            raise RuntimeError("the episode has terminated; call reset()")
        a = validate_action(self.params, action)
        batch, actions = self._state.tile(1), np.array([a], dtype=np.int64)
        tx = transmit(self.params, batch, actions)
        nxt, reward, terminated = step_batch(self.params, batch, actions)
        self._state = self._copy(nxt.item(0))
        outcome = int(tx.outcome[0])
        info = {
            "failed": outcome != SUCCESS,
            "outcome": OUTCOME_NAMES[outcome],
            "ap": a,
            "latency": float(nxt.last_latency[0]),
            "start": float(tx.start[0]),
            "finish": float(tx.finish[0]),
        }
        obs = observe(self.params, self._state)
        return obs, float(reward[0]), bool(terminated[0]), False, info


__all__ = ["APSelectionEnv", "APSelectionParams", "APSelectionState"]
