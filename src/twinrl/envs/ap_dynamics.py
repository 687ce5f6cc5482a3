"""URLLC access-point selection dynamics (paper 000, Section IV-A): params, state, kernels.

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from twinrl.errors import ConfigError, short_repr
from twinrl.validation import (
    check_choice,
    check_float,
    check_float_tuple,
    check_int,
    set_field,
)

MAX_APS = 8
MAX_CLASSES = 64
"""Most task classes accepted."""
MAX_INDEX_STATES = 2**20
"""Largest ``Discrete`` observation space accepted for ``observation="index"``."""

# Outcome codes of a task (``APSelectionState.last_outcome``).
NO_TASK = -1
SUCCESS = 0
UNREACHABLE = 1
"""The AP is behind the vehicle and out of coverage: it can never be reached."""
LEFT_COVERAGE = 2
"""The vehicle leaves the AP's coverage before the last bit is sent."""
DEADLINE_MISS = 3
"""The deadline passes before the last bit is sent (and before the vehicle leaves coverage)."""
OUTCOME_NAMES = {
    NO_TASK: "none",
    SUCCESS: "success",
    UNREACHABLE: "unreachable",
    LEFT_COVERAGE: "left_coverage",
    DEADLINE_MISS: "deadline_miss",
}


@dataclass(frozen=True)
class APSelectionParams:
    """Parameters of the access-point selection road (paper 000, Section IV-A).

    The defaults are the paper's qualitative setting (the paper gives no numbers): one wide, slow,
    expensive macro cell covering the whole road and four cheaper, faster small cells with gaps
    between them; 20 m/s over 1000 m, one task every 2.5 s (50 m):

    ====  ========  ======  ===========  ===============  ==============
    AP    position  radius  coverage     rate (Mbit/s)    price (/Mbit)
    ====  ========  ======  ===========  ===============  ==============
    0     500 m     520 m   whole road   1.5              2.0
    1     150 m     100 m   50-250 m     4                0.5
    2     400 m     80 m    320-480 m    3                0.5
    3     650 m     100 m   550-750 m    5                1.0
    4     880 m     90 m    790-970 m    4                0.5
    ====  ========  ======  ===========  ===============  ==============

    Task classes (size, deadline, probability): (0.5 Mbit, 0.5 s, 0.4), (2 Mbit, 2 s, 0.4),
    (5 Mbit, 4 s, 0.2). Reward: 10 per success minus 1 per second of latency minus price times
    Mbit; -10 per failure. Neither "nearest AP" nor "fastest AP in coverage" is optimal: the
    nearest AP may be a small cell the vehicle is about to leave, or one still busy with an
    earlier task, and the fastest covering cell loses large tasks near its edge; the macro cell
    always reaches but is slow (its queue makes short-deadline tasks miss) and costly. Over 20
    passes (seed 0) nearest scores about 77 per pass with 20% failed tasks, fastest 106 with 12%,
    the greedy twin oracle 139 with 1.5% (:mod:`twinrl.baselines.ap_selection`).
    """

    road_length: float = 1000.0
    """L, the length of the road in metres, in [0.001, 1e7]; the episode is one pass of it."""
    speed: float = 20.0
    """v, the vehicle's constant speed in m/s, in [0.001, 1e4]."""
    n_steps: int = 20
    """N, decision epochs (= tasks = road cells) per pass, an integer in [1, 10000]; epoch t is at
    time ``t L / (v N)``."""
    ap_positions: tuple[float, ...] = (500.0, 150.0, 400.0, 650.0, 880.0)
    """Position of each AP along the road, in metres within ``[0, L]``; M = its length, 1 to 8."""
    ap_radii: tuple[float, ...] = (520.0, 100.0, 80.0, 100.0, 90.0)
    """Coverage radius of each AP in metres, each in (0, 1e7]."""
    ap_rates: tuple[float, ...] = (1.5e6, 4e6, 3e6, 5e6, 4e6)
    """Uplink rate of each AP in bit/s, each in [1, 1e15]."""
    ap_prices: tuple[float, ...] = (2.0, 0.5, 0.5, 1.0, 0.5)
    """Price of each AP in cost units per Mbit sent, each in [0, 1e6]."""
    task_sizes: tuple[float, ...] = (0.5e6, 2e6, 5e6)
    """Data size of each task class in bits, each in [1, 1e12] (1 to 64 classes)."""
    task_deadlines: tuple[float, ...] = (0.5, 2.0, 4.0)
    """Deadline of each task class in seconds after its arrival, each in (0, 1e7]."""
    task_probs: tuple[float, ...] = (0.4, 0.4, 0.2)
    """Probability of each task class, each in [0, 1], summing to 1; classes are drawn i.i.d., one
    task per epoch."""
    success_reward: float = 10.0
    """Reward of a task delivered within its deadline, before latency and price costs; in
    [0, 1e9]."""
    w_latency: float = 1.0
    """Cost per second of latency (arrival to last bit) of a successful task; in [0, 1e9]."""
    w_price: float = 1.0
    """Weight of the monetary cost ``price * size / 1e6`` (price per Mbit times Mbit sent); in
    [0, 1e9]."""
    failure_penalty: float = 10.0
    """A failed task's reward is ``-failure_penalty``; in [0, 1e9]."""
    busy_threshold: float = 1.0
    """An AP counts as busy in the ``index`` observation if its queue lasts more than this many
    seconds past the current epoch; in [0, 1e9]."""
    observation: Literal["index", "features"] = "index"
    """``index``: a ``Discrete`` index of (road cell, task class, AP busy flags), see
    :func:`decode_observation`. ``features``: a ``Box`` of floats, see :func:`observe`."""

    def __post_init__(self) -> None:
        set_field(self, "n_steps", check_int("n_steps", self.n_steps, 1, 10_000))
        set_field(self, "road_length", check_float("road_length", self.road_length, 1e-3, 1e7))
        set_field(self, "speed", check_float("speed", self.speed, 1e-3, 1e4))
        aps = {
            "ap_positions": check_float_tuple(
                "ap_positions", self.ap_positions, 0.0, self.road_length, max_len=MAX_APS
            ),
            "ap_radii": check_float_tuple(
                "ap_radii", self.ap_radii, 0.0, 1e7, max_len=MAX_APS, low_open=True
            ),
            "ap_rates": check_float_tuple("ap_rates", self.ap_rates, 1.0, 1e15, max_len=MAX_APS),
            "ap_prices": check_float_tuple("ap_prices", self.ap_prices, 0.0, 1e6, max_len=MAX_APS),
        }
        n_aps = len(aps["ap_positions"])
        for name, values in aps.items():
            if len(values) != n_aps:
                raise ConfigError(
                    f"{name} has {len(values)} entries but ap_positions has {n_aps}; give one per AP"
                )
            set_field(self, name, values)
        seen = set()
        for i, key in enumerate(zip(*aps.values(), strict=True)):
            if key in seen:
                raise ConfigError(f"ap_positions[{i}]: AP {i} duplicates an earlier AP exactly")
            seen.add(key)
        tasks = {
            "task_sizes": check_float_tuple(
                "task_sizes", self.task_sizes, 1.0, 1e12, max_len=MAX_CLASSES
            ),
            "task_deadlines": check_float_tuple(
                "task_deadlines", self.task_deadlines, 0.0, 1e7, max_len=MAX_CLASSES, low_open=True
            ),
            "task_probs": check_float_tuple(
                "task_probs", self.task_probs, 0.0, 1.0, max_len=MAX_CLASSES
            ),
        }
        n_classes = len(tasks["task_sizes"])
        for name, values in tasks.items():
            if len(values) != n_classes:
                raise ConfigError(
                    f"{name} has {len(values)} entries but task_sizes has {n_classes}; "
                    "give one per task class"
                )
            set_field(self, name, values)
        if not math.isclose(sum(self.task_probs), 1.0, rel_tol=0.0, abs_tol=1e-9):
            raise ConfigError(
                f"task_probs={short_repr(self.task_probs)} must sum to 1, got sum "
                f"{sum(self.task_probs)!r}"
            )
        for name in ("success_reward", "w_latency", "w_price", "failure_penalty", "busy_threshold"):
            set_field(self, name, check_float(name, getattr(self, name), 0.0, 1e9))
        check_choice("observation", self.observation, ("index", "features"))
        if self.observation == "index" and self.n_observations > MAX_INDEX_STATES:
            raise ConfigError(
                f"observation='index' would have {self.n_observations} states "
                f"((n_steps + 1) * classes * 2**M > {MAX_INDEX_STATES}); use fewer n_steps, APs "
                "or task classes, or observation='features'"
            )

    @property
    def n_aps(self) -> int:
        """M, the number of APs (= actions)."""
        return len(self.ap_positions)

    @property
    def n_classes(self) -> int:
        """Number of task classes."""
        return len(self.task_sizes)

    @property
    def dt(self) -> float:
        """Seconds between decision epochs: ``L / (v N)``."""
        return self.road_length / (self.speed * self.n_steps)

    @property
    def n_observations(self) -> int:
        """Size of the ``index`` observation space: ``(N + 1) * classes * 2**M`` (the extra road
        cell is the terminal observation)."""
        return (self.n_steps + 1) * self.n_classes * 2**self.n_aps


@dataclass(frozen=True)
class APSelectionState:
    """Snapshot of an AP selection env; arrays may carry a leading batch axis.

    ``t`` is the epoch of the next task (= tasks handled so far). ``task_classes[..., j]`` is the
    class of the task arriving at epoch j: the pass's tasks are drawn from the env RNG at reset and
    carried here, so every domain synced to this state sees the same next task (a different domain
    may replace them to explore other futures). ``ap_free_at[..., m]`` is the absolute time (s)
    at which AP m finishes its queue. ``last_*`` describe the task handled by the last step:
    ``last_ap`` (-1 before the first), ``last_outcome`` (an outcome code such as
    :data:`SUCCESS` or :data:`LEFT_COVERAGE`; :data:`NO_TASK` before the first) and
    ``last_latency`` (s from arrival to last bit, NaN unless it succeeded).
    """

    t: NDArray[np.int64]
    task_classes: NDArray[np.int64]
    ap_free_at: NDArray[np.float64]
    last_ap: NDArray[np.int64]
    last_outcome: NDArray[np.int64]
    last_latency: NDArray[np.float64]
    rng_state: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def last_failed(self) -> NDArray[np.bool_]:
        """Whether the task handled by the last step failed (per batch element)."""
        return np.asarray(self.last_outcome > SUCCESS)

    def tile(self, batch: int) -> APSelectionState:
        """This (unbatched) state repeated ``batch`` times along a new leading axis."""
        return APSelectionState(
            t=np.full(batch, self.t, dtype=np.int64),
            task_classes=np.broadcast_to(self.task_classes, (batch, *self.task_classes.shape)),
            ap_free_at=np.tile(self.ap_free_at, (batch, 1)),
            last_ap=np.full(batch, self.last_ap, dtype=np.int64),
            last_outcome=np.full(batch, self.last_outcome, dtype=np.int64),
            last_latency=np.full(batch, self.last_latency, dtype=np.float64),
        )

    def item(self, i: int) -> APSelectionState:
        """Element ``i`` of a batched state, as an unbatched state."""
        return APSelectionState(
            t=np.array(self.t[i]),
            task_classes=np.array(self.task_classes[i]),
            ap_free_at=np.array(self.ap_free_at[i]),
            last_ap=np.array(self.last_ap[i]),
            last_outcome=np.array(self.last_outcome[i]),
            last_latency=np.array(self.last_latency[i]),
        )


def initial_state(params: APSelectionParams, task_classes: NDArray[np.int64]) -> APSelectionState:
    """Start of a pass: vehicle at position 0, every AP idle."""
    return APSelectionState(
        t=np.array(0, dtype=np.int64),
        task_classes=np.array(task_classes, dtype=np.int64),
        ap_free_at=np.zeros(params.n_aps),
        last_ap=np.array(-1, dtype=np.int64),
        last_outcome=np.array(NO_TASK, dtype=np.int64),
        last_latency=np.array(np.nan),
    )


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
    finish = start + size / np.asarray(params.ap_rates)[actions]
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
