"""URLLC access-point selection dynamics (paper 000, Section IV-A): the transmission rule, kernels.

The vehicle drives a straight road of length L at constant speed v, starting at position 0 at time
0. Decision epoch ``t = 0 .. N-1`` happens at time ``t dt`` (``dt = L / (v N)``), when the vehicle
is at ``x = v t dt``, the start of road cell ``t``; one URLLC task arrives at every epoch. AP ``m``
at position ``p_m`` covers ``[p_m - r_m, p_m + r_m]``, i.e. the time window
``[(p_m - r_m) / v, (p_m + r_m) / v]``. The transmission rule (paper 000, Section IV-A):

* start  = ``max(now, coverage entry time, AP free time)``: now if inside coverage, on entering
  coverage if the AP is ahead, and after the AP's queue (one task at a time, FIFO);
* finish = ``start + size / rate``;
* the task fails if the AP is behind the vehicle and out of coverage (``now > exit``), if the
  vehicle leaves coverage before the last bit (``finish > exit``) or if the deadline passes before
  the last bit (``finish > now + deadline``).

A successful task keeps the AP busy until ``finish``; a failed one keeps it busy until the
transmission is abandoned (``min(finish, exit, now + deadline)``) if it ever started, so a bad
choice also delays later tasks on that AP.

The parameters, state and outcome codes are defined in :mod:`twinrl.envs.ap_params` and
re-exported here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from twinrl.envs.ap_params import (
    DEADLINE_MISS,
    LEFT_COVERAGE,
    MAX_APS,
    MAX_CLASSES,
    MAX_INDEX_STATES,
    NO_TASK,
    OUTCOME_NAMES,
    SUCCESS,
    UNREACHABLE,
    APSelectionParams,
    APSelectionState,
)
from twinrl.envs.counter_rng import counter_normals, rekey


def initial_state(
    params: APSelectionParams, task_classes: NDArray[np.int64], fade_key: int = 0
) -> APSelectionState:
    """Start of a pass: vehicle at position 0, every AP idle."""
    return APSelectionState(
        t=np.array(0, dtype=np.int64),
        task_classes=np.array(task_classes, dtype=np.int64),
        ap_free_at=np.zeros(params.n_aps),
        last_ap=np.array(-1, dtype=np.int64),
        last_outcome=np.array(NO_TASK, dtype=np.int64),
        last_latency=np.array(np.nan),
        fade_key=np.array(fade_key, dtype=np.uint64),
    )


def reseed(state: APSelectionState, keys: Any) -> APSelectionState:
    """``state`` with a new fading key (or one per batch element): a digital domain that does not
    know the physical link's future."""
    return rekey(state, "fade_key", keys)


def sample_task_classes(params: APSelectionParams, rng: np.random.Generator) -> NDArray[np.int64]:
    """Draw the classes of the N tasks of one pass, i.i.d. with ``task_probs``."""
    probs = np.asarray(params.task_probs, dtype=np.float64)
    return rng.choice(params.n_classes, size=params.n_steps, p=probs / probs.sum()).astype(np.int64)


class Transmission(NamedTuple):
    """The fate of the current task sent to each chosen AP; every field has the batch shape."""

    now: NDArray[np.float64]
    """Arrival time of the task (s)."""
    start: NDArray[np.float64]
    """When the first bit would be sent (s)."""
    finish: NDArray[np.float64]
    """When the last bit would be sent (s)."""
    outcome: NDArray[np.int64]
    """:data:`SUCCESS`, :data:`UNREACHABLE`, :data:`LEFT_COVERAGE` or :data:`DEADLINE_MISS`."""
    busy_until: NDArray[np.float64]
    """The chosen AP's new free time."""
    size: NDArray[np.float64]
    """Task size in bits."""

    @property
    def failed(self) -> NDArray[np.bool_]:
        return np.asarray(self.outcome != SUCCESS)


def transmit(
    params: APSelectionParams, state: APSelectionState, actions: NDArray[np.int64]
) -> Transmission:
    """Apply the transmission rule to the current task of each (batched) state and chosen AP.

    This is what a safety assist asks to learn whether an action would fail: tile one state over
    the candidate actions and read ``outcome`` (or ``failed``). It does not change ``state``.
    """
    rows = np.arange(actions.shape[0])
    v = params.speed
    now = np.asarray(state.t * params.dt, dtype=np.float64)
    cls = state.task_classes[rows, np.minimum(state.t, params.n_steps - 1)]
    size = np.asarray(params.task_sizes)[cls]
    due = now + np.asarray(params.task_deadlines)[cls]
    pos = np.asarray(params.ap_positions)[actions]
    radius = np.asarray(params.ap_radii)[actions]
    enter, leave = (pos - radius) / v, (pos + radius) / v
    free = state.ap_free_at[rows, actions]
    start = np.maximum(np.maximum(now, enter), free)
    rate = np.asarray(params.ap_rates)[actions]
    if params.fading_db > 0:  # one draw per (pass key, task epoch), shared by every AP choice
        fade = counter_normals(state.fade_key, state.t, 1)[..., 0, 0]
        rate = rate * 10.0 ** (params.fading_db * fade / 10.0)
    finish = start + size / rate
    outcome = np.where(
        now > leave,
        UNREACHABLE,
        np.where(
            finish > np.minimum(leave, due),
            np.where(leave <= due, LEFT_COVERAGE, DEADLINE_MISS),
            SUCCESS,
        ),
    ).astype(np.int64)
    # A failed transmission is abandoned when the vehicle leaves or the deadline passes; the AP
    # was busy with it until then if it ever started.
    abandon = np.minimum(finish, np.minimum(leave, due))
    busy_until = np.where(
        outcome == SUCCESS, finish, np.where(start < abandon, np.maximum(free, abandon), free)
    )
    return Transmission(now, start, finish, outcome, busy_until, size)


def step_batch(
    params: APSelectionParams, state: APSelectionState, actions: NDArray[np.int64]
) -> tuple[APSelectionState, NDArray[np.float64], NDArray[np.bool_]]:
    """Pure batched transition: ``(next_state, reward, terminated)`` for each batch element.

    ``state`` is batched with leading axis B and ``actions`` has shape ``(B,)`` with values in
    ``[0, M-1]`` (not checked here). Per-element failures are in ``next_state.last_failed`` (and
    the reason in ``next_state.last_outcome``).
    """
    actions = np.asarray(actions, dtype=np.int64)
    rows = np.arange(actions.shape[0])
    tx = transmit(params, state, actions)
    success = tx.outcome == SUCCESS
    latency = np.where(success, tx.finish - tx.now, np.nan)
    price = np.asarray(params.ap_prices)[actions]
    reward = np.where(
        success,
        params.success_reward
        - params.w_latency * np.where(success, latency, 0.0)
        - params.w_price * price * tx.size / 1e6,
        -params.failure_penalty,
    )
    free_at = state.ap_free_at.copy()
    free_at[rows, actions] = tx.busy_until
    t = state.t + 1
    next_state = APSelectionState(
        t=t,
        task_classes=state.task_classes,
        ap_free_at=free_at,
        last_ap=actions.copy(),
        last_outcome=tx.outcome,
        last_latency=latency,
        fade_key=state.fade_key,
    )
    return next_state, reward, t >= params.n_steps


def busy_flags(params: APSelectionParams, state: APSelectionState) -> NDArray[np.bool_]:
    """Per AP, whether its queue lasts more than ``busy_threshold`` past the current epoch."""
    now = np.asarray(state.t * params.dt)[..., None]
    return np.asarray(state.ap_free_at - now > params.busy_threshold)


def observe(params: APSelectionParams, state: APSelectionState) -> NDArray[Any]:
    """Observation of a (possibly batched) state, per ``params.observation``.

    ``index``: ``(t * classes + task_class) * 2**M + sum_m busy_m 2**m`` (task class 0 at the
    terminal epoch t = N). ``features``: ``x / L``, task size and deadline over their maxima,
    then per AP ``min(1, queue / max deadline)`` and ``(p_m - x) / L``; all within ``[-1, 1]``.
    """
    t = np.asarray(state.t)
    terminal = t >= params.n_steps
    cls = np.take_along_axis(
        np.asarray(state.task_classes), np.minimum(t, params.n_steps - 1)[..., None], axis=-1
    )[..., 0]
    cls = np.where(terminal, 0, cls)
    busy = busy_flags(params, state)
    if params.observation == "index":
        bits = (busy.astype(np.int64) << np.arange(params.n_aps)).sum(axis=-1)
        index = (t * params.n_classes + cls) * 2**params.n_aps + bits
        return np.asarray(index, dtype=np.int64) if index.ndim else np.int64(index)
    now = t * params.dt
    x = params.speed * now
    size = np.asarray(params.task_sizes)[cls] / max(params.task_sizes)
    due = np.asarray(params.task_deadlines)[cls] / max(params.task_deadlines)
    queue = np.clip((state.ap_free_at - now[..., None]) / max(params.task_deadlines), 0.0, 1.0)
    rel = (np.asarray(params.ap_positions) - x[..., None]) / params.road_length
    head = np.stack([x / params.road_length, size, due], axis=-1)
    return np.concatenate([head, queue, rel], axis=-1).astype(np.float32)


def decode_observation(params: APSelectionParams, index: int) -> dict[str, Any]:
    """Inverse of the ``index`` observation: ``{"cell", "task_class", "busy"}`` (busy per AP)."""
    index = int(index)
    if not 0 <= index < params.n_observations:
        raise ValueError(f"observation {index} is outside [0, {params.n_observations - 1}]")
    rest, bits = divmod(index, 2**params.n_aps)
    cell, cls = divmod(rest, params.n_classes)
    busy = tuple(bool(bits >> m & 1) for m in range(params.n_aps))
    return {"cell": cell, "task_class": cls, "busy": busy}


def encode_observation(params: APSelectionParams, cell: int, task_class: int, busy: Any) -> int:
    """The ``index`` observation of road cell, task class and per-AP busy flags."""
    bits = sum(int(bool(b)) << m for m, b in enumerate(busy))
    return (int(cell) * params.n_classes + int(task_class)) * 2**params.n_aps + bits


def validate_action(params: APSelectionParams, action: Any) -> int:
    """Return ``action`` as an int, or raise ``ValueError`` naming the valid range."""
    if isinstance(action, np.ndarray) and action.shape == ():
        action = action.item()
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
        raise ValueError(f"action must be an integer AP index in [0, {params.n_aps - 1}], "
                         f"got {action!r}")  # fmt: skip
    if not 0 <= int(action) < params.n_aps:
        raise ValueError(
            f"action {int(action)} is outside the action space [0, {params.n_aps - 1}]"
        )
    return int(action)


__all__ = [
    "DEADLINE_MISS",
    "LEFT_COVERAGE",
    "MAX_APS",
    "MAX_CLASSES",
    "MAX_INDEX_STATES",
    "NO_TASK",
    "OUTCOME_NAMES",
    "SUCCESS",
    "UNREACHABLE",
    "APSelectionParams",
    "APSelectionState",
    "Transmission",
    "busy_flags",
    "decode_observation",
    "encode_observation",
    "initial_state",
    "observe",
    "sample_task_classes",
    "step_batch",
    "transmit",
    "validate_action",
]
