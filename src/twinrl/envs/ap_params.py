"""Access-point selection (paper 000, Section IV-A): parameters, state and task outcome codes.

:class:`APSelectionParams` is the road, the APs and the task classes; :class:`APSelectionState` is
one pass's progress. The transmission rule and the pure batched transition that act on them are in
:mod:`twinrl.envs.ap_dynamics` (which re-exports everything here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

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

    twin_params: ClassVar[tuple[str, ...]] = ("ap_rates", "speed")
    """Parameters a digital twin may get wrong (``twinrl.twin.Fidelity.bias``): the access points'
    link rates and the vehicle speed."""

    scenario_fields: ClassVar[tuple[str, ...]] = (
        "speed", "ap_positions", "ap_radii", "ap_rates", "ap_prices",
        "task_sizes", "task_deadlines", "task_probs",
    )  # fmt: skip
    """The scenario (``env.unwrapped.scenario``, :class:`twinrl.contract.Scenario`): the vehicle
    speed, the AP layout, rates and prices, and the task classes. The number of APs is fixed by
    the action space (an AP that fails is one whose rate drops)."""

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
    fading_db: float = 0.0
    """Random link fading: the rate of each transmission is the AP's rate x 10^(X / 10) with
    X ~ N(0, fading_db^2) dB (log-normal shadowing of the achievable rate), drawn per task from a
    counter-based stream keyed by the state's ``fade_key`` (so a twin domain given another key
    draws an independent future). In [0, 30]; 0: no fading (the paper's deterministic links)."""
    observation: Literal["index", "features"] = "index"
    """``index``: a ``Discrete`` index of (road cell, task class, AP busy flags), see
    :func:`~twinrl.envs.ap_dynamics.decode_observation`. ``features``: a ``Box`` of floats, see
    :func:`~twinrl.envs.ap_dynamics.observe`."""

    def __post_init__(self) -> None:
        set_field(self, "n_steps", check_int("n_steps", self.n_steps, 1, 10_000))
        set_field(self, "road_length", check_float("road_length", self.road_length, 1e-3, 1e7))
        set_field(self, "speed", check_float("speed", self.speed, 1e-3, 1e4))
        set_field(self, "fading_db", check_float("fading_db", self.fading_db, 0.0, 30.0))
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
    fade_key: NDArray[np.uint64] = field(default_factory=lambda: np.array(0, dtype=np.uint64))
    """Key of the counter-based fading stream (see ``APSelectionParams.fading_db``)."""
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
            fade_key=np.full(batch, self.fade_key, dtype=np.uint64),
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
            fade_key=np.array(self.fade_key[i], dtype=np.uint64),
        )
