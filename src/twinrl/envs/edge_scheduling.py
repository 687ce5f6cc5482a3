"""Edge task scheduling: one user offloads N tasks to a single-core edge server (paper 002)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from twinrl.contract import DomainSteps, Measured
from twinrl.envs import edge_kernels as k
from twinrl.envs._scenario import Scenarios
from twinrl.envs._state import Snapshots
from twinrl.errors import ConfigError
from twinrl.validation import (
    check_bool,
    check_choice,
    check_float,
    check_float_tuple,
    check_int,
    set_field,
)

MAX_ORDER_TASKS = 10  # 10! = 3,628,800 actions; beyond that use the sequential formulation
MAX_TASKS = 64
MAX_SEQUENTIAL_INDEX_TASKS = 20
"""Largest N whose partial orders (``num_prefixes(20)``, about 6.6e18) fit a 64-bit index."""


@dataclass(frozen=True)
class EdgeParams:
    """Parameters of the edge scheduling system (paper 002, Section II and IV).

    The paper gives neither the uplink rate R nor the importance factor zeta; with R = 5.8 Mbit/s
    and zeta = 0 the optimal order's mean delay per task is about 0.64 s at N = 8, matching the
    paper's reported 0.6435 s.
    """

    twin_params: ClassVar[tuple[str, ...]] = ("rate", "f_ser")
    """Parameters a digital twin may get wrong (``twinrl.twin.Fidelity.bias``): the uplink rate R
    and the server speed f_ser."""

    scenario_fields: ClassVar[tuple[str, ...]] = (
        "rate",
        "f_ser",
        "d_range",
        "c_range",
        "eps_range",
    )
    """The scenario (``env.unwrapped.scenario``): the link and server speeds and the task size,
    complexity and deadline distributions. New task distributions apply at the next task draw."""

    n_tasks: int = 8
    """N, the number of tasks generated per frame: an integer in [1, 64]; at most 10 in the
    ``order`` formulation (N! actions) and at most 20 with ``formulation="sequential"`` and
    ``observation="index"`` (the number of partial orders must fit a 64-bit index)."""
    rate: float = 5.8e6
    """Uplink rate R in bit/s, shared by all tasks: in [1, 1e15]."""
    f_ser: float = 10e9
    """Server CPU frequency f_ser in cycles/s (10 GHz): in [1, 1e15]."""
    zeta: float = 0.0
    """Importance factor of a deadline miss in Eq. (3), in seconds of cost per missed task:
    in [0, 1e12]."""
    d_range: tuple[float, float] = (0.0, 2e6)
    """Task data size d ~ U[low, high] in bits: 0 <= low <= high <= 1e15."""
    c_range: tuple[float, float] = (0.0, 1000.0)
    """Task complexity c ~ U[low, high] in CPU cycles per bit: 0 <= low <= high <= 1e9."""
    eps_range: tuple[float, float] = (1.0, 5.0)
    """Task deadline eps ~ U[low, high] in seconds: 0 <= low <= high <= 1e9."""
    formulation: Literal["order", "sequential"] = "order"
    """``order``: one decision picks a whole transmission order (N! actions, one-step episodes).
    ``sequential``: one decision picks the next task to transmit (N actions, N steps, masked)."""
    observation: Literal["index", "features"] = "index"
    """``index``: a Discrete state index for tabular agents (0 in the order formulation, the index
    of the partial order in the sequential one). ``features``: a Box of per-task features."""
    reward: Literal["per_task", "potential"] = "per_task"
    """``per_task``: each step's reward is minus the Eq. (3) cost of the task it schedules.
    ``potential`` (sequential formulation only): minus ``(N - k) * (t_server' - t_server)`` plus
    the miss penalty, where k tasks were sent before the step: the per-task reward shaped by the
    potential ``-(N - k) * t_server`` (Ng et al., 1999, with gamma = 1), so every episode's return
    is still minus its cost and the optimal orders are the same, but a state's value no longer
    carries the cost already sunk into the tasks still waiting."""
    resample_tasks: bool = False
    """Draw a new task set at every reset (else only on reset with a seed, or the first reset);
    ``true`` or ``false``."""

    def __post_init__(self) -> None:
        set_field(self, "n_tasks", check_int("n_tasks", self.n_tasks, 1, MAX_TASKS))
        set_field(self, "rate", check_float("rate", self.rate, 1.0, 1e15))
        set_field(self, "f_ser", check_float("f_ser", self.f_ser, 1.0, 1e15))
        set_field(self, "zeta", check_float("zeta", self.zeta, 0.0, 1e12))
        for name, high in (("d_range", 1e15), ("c_range", 1e9), ("eps_range", 1e9)):
            pair = check_float_tuple(name, getattr(self, name), 0.0, high, min_len=2, max_len=2)
            if pair[0] > pair[1]:
                raise ConfigError(f"{name}={pair!r} must satisfy low <= high; swap the two values")
            set_field(self, name, pair)
        check_choice("formulation", self.formulation, ("order", "sequential"))
        check_choice("observation", self.observation, ("index", "features"))
        check_choice("reward", self.reward, ("per_task", "potential"))
        if self.reward == "potential" and self.formulation != "sequential":
            raise ConfigError(
                "reward='potential' shapes the per-step rewards of the 'sequential' formulation; "
                "use formulation='sequential' or reward='per_task'"
            )
        set_field(self, "resample_tasks", check_bool("resample_tasks", self.resample_tasks))
        if self.formulation == "order" and self.n_tasks > MAX_ORDER_TASKS:
            raise ConfigError(
                f"n_tasks={self.n_tasks} gives {self.n_tasks}! actions in the 'order' formulation; "
                f"use n_tasks <= {MAX_ORDER_TASKS} or formulation='sequential'"
            )
        indexed = self.formulation == "sequential" and self.observation == "index"
        if indexed and self.n_tasks > MAX_SEQUENTIAL_INDEX_TASKS:
            raise ConfigError(
                f"n_tasks={self.n_tasks} gives {k.num_prefixes(self.n_tasks):.3g} partial orders, "
                "too many to index in the 'sequential' formulation with observation='index'; use "
                f"n_tasks <= {MAX_SEQUENTIAL_INDEX_TASKS} or observation='features'"
            )

    @property
    def n_actions(self) -> int:
        return math.factorial(self.n_tasks) if self.formulation == "order" else self.n_tasks


@dataclass(frozen=True)
class EdgeState:
    """Snapshot of an edge scheduling env; arrays may carry a leading batch axis.

    ``order[..., j]`` is the task sent ``j``-th (-1 where not yet sent); ``t_ready`` is when the last
    sent task's data arrived (Eq. 1); ``t_server`` when the server finishes it (Eq. 2).
    """

    tasks: NDArray[np.float64]
    order: NDArray[np.int64]
    n_sent: NDArray[np.int64]
    t_ready: NDArray[np.float64]
    t_server: NDArray[np.float64]
    rng_state: dict[str, Any] | None = field(default=None, compare=False)

    def tile(self, batch: int) -> EdgeState:
        """This (unbatched) state repeated ``batch`` times along a new leading axis."""
        return EdgeState(
            tasks=np.broadcast_to(self.tasks, (batch, *self.tasks.shape)),
            order=np.tile(self.order, (batch, 1)),
            n_sent=np.full(batch, self.n_sent),
            t_ready=np.full(batch, self.t_ready),
            t_server=np.full(batch, self.t_server),
        )

    def item(self, i: int) -> EdgeState:
        """Element ``i`` of a batched state, as an unbatched state."""
        return EdgeState(
            tasks=np.array(self.tasks[i]),
            order=self.order[i].copy(),
            n_sent=np.array(self.n_sent[i]),
            t_ready=np.array(self.t_ready[i]),
            t_server=np.array(self.t_server[i]),
        )


def sample_tasks(params: EdgeParams, rng: np.random.Generator) -> NDArray[np.float64]:
    """Draw a task set ``(N, 3)`` with columns ``(d, c, eps)`` from the uniform distributions."""
    n = params.n_tasks
    d = rng.uniform(*params.d_range, size=n)
    c = rng.uniform(*params.c_range, size=n)
    eps = rng.uniform(*params.eps_range, size=n)
    return np.stack([d, c, eps], axis=1)


def initial_state(tasks: NDArray[np.float64]) -> EdgeState:
    n = tasks.shape[0]
    return EdgeState(
        tasks=np.array(tasks, dtype=np.float64),
        order=np.full(n, -1, dtype=np.int64),
        n_sent=np.array(0),
        t_ready=np.array(0.0),
        t_server=np.array(0.0),
    )


def step_batch(
    params: EdgeParams, state: EdgeState, actions: NDArray[np.int64]
) -> tuple[EdgeState, NDArray[np.float64], NDArray[np.bool_]]:
    """Pure batched transition: ``(next_state, reward, terminated)`` for each batch element.

    ``state`` is batched with leading axis B and ``actions`` has shape ``(B,)``. Actions must be
    valid (see :func:`validate_action`); this kernel does not check them.
    """
    tasks = state.tasks
    tx = tasks[..., k.D] / params.rate
    ex = tasks[..., k.D] * tasks[..., k.C] / params.f_ser
    rows = np.arange(actions.shape[0])
    if params.formulation == "order":
        orders = k.unrank_permutations(actions, params.n_tasks)
        send = orders
    else:
        send = actions[:, None]
    t_ready, t_server = state.t_ready.copy(), state.t_server.copy()
    order, n_sent = state.order.copy(), state.n_sent.copy()
    reward = np.zeros(actions.shape[0])
    for j in range(send.shape[1]):
        task = send[:, j]
        t_ready = t_ready + tx[rows, task]  # Eq. (1)
        before = t_server
        t_server = k.server_done(t_ready, t_server, ex[rows, task])  # Eq. (2)
        if params.reward == "potential":  # Eq. (3) shaped by the potential -(N - k) t_server
            waiting = params.n_tasks - n_sent
            late = params.zeta * (t_server > tasks[rows, task, k.EPS])
            reward = reward - (waiting * (t_server - before) + late)
        else:
            reward = reward - k.step_cost(
                t_server, tasks[rows, task, k.EPS], params.zeta
            )  # Eq. (3)
        order[rows, n_sent] = task
        n_sent = n_sent + 1
    next_state = EdgeState(tasks, order, n_sent, t_ready, t_server)
    return next_state, reward, n_sent >= params.n_tasks


def action_mask(params: EdgeParams, state: EdgeState) -> NDArray[np.int8]:
    """Valid actions (1) of a state: unsent tasks in the sequential formulation."""
    if params.formulation == "order":
        return np.ones((*state.n_sent.shape, params.n_actions), dtype=np.int8)
    sent = np.zeros((*state.order.shape[:-1], params.n_tasks + 1), dtype=bool)
    np.put_along_axis(sent, np.where(state.order < 0, params.n_tasks, state.order), True, axis=-1)
    return (~sent[..., : params.n_tasks]).astype(np.int8)


def observe(params: EdgeParams, state: EdgeState) -> NDArray:
    """Observation of a (possibly batched) state, per ``params.observation``."""
    if params.observation == "index":
        batched = state.order.ndim == 2
        if params.formulation == "order":
            index = np.zeros(np.atleast_1d(state.n_sent).shape, dtype=np.int64)
        else:
            index = k.rank_prefixes(
                np.atleast_2d(state.order), np.atleast_1d(state.n_sent), params.n_tasks
            )
        return index if batched else np.int64(index[0])
    return _features(params, state)


FEATURES_PER_TASK = 7
"""Entries per task of ``observation="features"`` (see :func:`_features`)."""


def task_time_scale(params: EdgeParams) -> float:
    """The longest one task can take, ``d_max / R + d_max c_max / f_ser`` (1 if that is 0): the
    unit of the times in ``observation="features"``."""
    d_max, c_max = params.d_range[1], params.c_range[1]
    return d_max / params.rate + d_max * c_max / params.f_ser or 1.0


def _features(params: EdgeParams, state: EdgeState) -> NDArray[np.float32]:
    """Per task ``d / d_max, c / c_max, eps / eps_max, sent``, then its ``tx``, ``ex`` and slack if
    sent next, ``eps - max(t_ready + tx, t_server) - ex``, in units of :func:`task_time_scale`
    (all 0 but ``sent`` once the task is sent); then ``t_ready`` and ``t_server`` in that unit."""
    scale = np.array([params.d_range[1] or 1.0, params.c_range[1] or 1.0, params.eps_range[1]])
    horizon = task_time_scale(params)
    features = state.tasks / scale
    sent = action_mask(params, state) == 0
    if params.formulation == "order":
        sent = np.zeros(features.shape[:-1], dtype=bool)
    tx, ex = k.task_times(state.tasks, params.rate, params.f_ser)
    t_ready, t_server = state.t_ready[..., None], state.t_server[..., None]
    slack = state.tasks[..., k.EPS] - k.server_done(t_ready + tx, t_server, ex)
    timing = np.stack([tx, ex, slack], axis=-1) / horizon
    # A sent task no longer affects the future: its entries are 0 but for ``sent``, so a mean over
    # the tasks (a set network's pooling) sums the unsent tasks only.
    per_task = np.concatenate([features, sent[..., None], timing], axis=-1)
    per_task = np.where(sent[..., None], np.eye(FEATURES_PER_TASK)[3], per_task)
    times = np.stack([state.t_ready, state.t_server], axis=-1) / horizon
    flat = per_task.reshape(*per_task.shape[:-2], -1)
    return np.concatenate([flat, times], axis=-1).astype(np.float32)


def validate_action(params: EdgeParams, state: EdgeState, action: Any) -> int:
    """Return ``action`` as an int, or raise ``ValueError`` naming the problem and the valid range."""
    if isinstance(action, np.ndarray) and action.shape == ():
        action = action.item()
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
        raise ValueError(f"action must be an integer, got {action!r}")
    action = int(action)
    if not 0 <= action < params.n_actions:
        raise ValueError(f"action {action} is outside the action space [0, {params.n_actions - 1}]")
    if params.formulation == "sequential" and action in set(state.order.tolist()):
        raise ValueError(
            f"task {action} was already transmitted; valid actions are those with "
            "info['action_mask'] == 1"
        )
    return action


class EdgeSchedulingEnv(Snapshots, Scenarios, gym.Env[Any, int]):
    """Edge task scheduling, ``twinrl/EdgeScheduling-v0``.

    ## Description
    One user has N tasks ``t_i = (d_i, eps_i, c_i)`` to offload to an edge server (paper 002,
    Section II). Only one task is transmitted at a time, at rate R; the single-core server at
    ``f_ser`` executes tasks in arrival order. The completion time of the j-th task of order sigma
    follows Eq. (1)-(2); the objective is Eq. (3): the sum of completion times plus ``zeta`` per
    deadline miss.

    ## Action Space
    ``order`` formulation: ``Discrete(N!)``, the lexicographic rank of a whole transmission order
    (see :func:`twinrl.envs.edge_kernels.unrank_permutations`). ``sequential`` formulation:
    ``Discrete(N)``, the next task to transmit; ``info["action_mask"]`` marks the unsent tasks and an
    already-sent task raises ``ValueError``.

    ## Observation Space
    ``observation="index"``: ``Discrete(1)`` (order) or ``Discrete(num_prefixes(N))`` (sequential,
    the index of the partial order sent so far). ``observation="features"``: a ``Box`` of
    ``7 N + 2`` floats: per task ``d / d_max, c / c_max, eps / eps_max, sent``, its transmission
    and execution times and its slack if sent next, then ``t_ready`` and ``t_server``, all times in
    units of the longest a task can take (:func:`task_time_scale`).

    ## Rewards
    Minus the cost of Eq. (3): ``-(T_comp + zeta * 1[T_comp > eps])`` of each task scheduled by the
    step, in seconds. An episode's return is minus the objective of its order.

    ## Starting State
    Nothing sent. The task set is drawn from the parameters' uniform distributions on a reset with
    a seed (or the first reset, or every reset with ``resample_tasks=True``), and kept otherwise: a
    tabular agent learns one instance, as in the paper. ``reset(options={"tasks": array})`` sets an
    explicit ``(N, 3)`` task set with columns ``(d, c, eps)``.

    ## Episode End
    Terminated when all N tasks are sent: after 1 step (order) or N steps (sequential). Never
    truncated.

    ## Arguments
    The fields of :class:`EdgeParams`, as keyword arguments.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 - gymnasium convention

    def __init__(self, **kwargs: Any) -> None:
        self.params = EdgeParams(**kwargs)
        self.action_space, self.observation_space = self.spaces_for(self.params)
        self._state: EdgeState | None = None
        self._tasks: NDArray[np.float64] | None = None

    def spaces_for(self, params: EdgeParams) -> tuple[spaces.Space[Any], spaces.Space[Any]]:
        """The action and observation spaces under ``params`` (the ``features`` bounds depend on
        the task distributions, so there a scenario change of them is refused)."""
        p = params
        if p.observation == "index":
            n_obs = 1 if p.formulation == "order" else k.num_prefixes(p.n_tasks)
            observation: spaces.Space[Any] = spaces.Discrete(n_obs)
        else:
            # Both times are at most N * (d_max / R + d_max c_max / f_ser), scaled by eps_max.
            t_max = p.n_tasks * (p.d_range[1] / p.rate + p.d_range[1] * p.c_range[1] / p.f_ser)
            high = max(1.0, (t_max + p.eps_range[1]) / task_time_scale(p))
            size = FEATURES_PER_TASK * p.n_tasks + 2
            observation = spaces.Box(-high, high, (size,), np.float32)
        return spaces.Discrete(p.n_actions), observation

    # --- twinnable interface --------------------------------------------------------------------
    state_type = EdgeState
    measured_state: ClassVar[dict[str, Measured]] = {"tasks": Measured("relative", 0.0)}
    """State fields a twin measures (``twinrl.twin.Fidelity.noise``): the task set (d, c, eps),
    with noise as a fraction of each value."""

    def _check_state(self, state: EdgeState) -> None:
        if state.tasks.shape != (self.params.n_tasks, 3):
            raise ValueError(
                f"state has tasks of shape {state.tasks.shape}, this env has "
                f"n_tasks={self.params.n_tasks}"
            )

    def _restored(self, state: EdgeState) -> None:
        self._tasks = state.tasks

    def step_batch(self, state: EdgeState, actions: NDArray[np.int64]) -> DomainSteps:
        """Batched dynamics for the digital twin (``states`` holds the stacked next states).

        ``next_mask`` is None in the ``order`` formulation, where every action is always valid;
        episodes end by termination only (``truncated`` is all False).
        """
        nxt, reward, terminated = step_batch(self.params, state, actions)
        mask = None if self.params.formulation == "order" else action_mask(self.params, nxt)
        truncated = np.zeros(reward.shape, dtype=bool)
        return DomainSteps(nxt, observe(self.params, nxt), reward, terminated, truncated, mask)

    # --- gymnasium API --------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"tasks"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; the only option is 'tasks'")
        if "tasks" in options:
            tasks = np.asarray(options["tasks"], dtype=np.float64)
            if tasks.shape != (self.params.n_tasks, 3) or not np.all(np.isfinite(tasks)):
                raise ValueError(
                    f"options['tasks'] must be a finite array of shape ({self.params.n_tasks}, 3) "
                    f"with columns (d, c, eps), got shape {tasks.shape}"
                )
            if np.any(tasks < 0):
                raise ValueError("options['tasks'] must be non-negative (d, c, eps)")
            self._tasks = tasks
        elif self._tasks is None or seed is not None or self.params.resample_tasks:
            self._tasks = sample_tasks(self.params, self.np_random)
        self._state = initial_state(self._tasks)
        return observe(self.params, self._state), self._info(self._state)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if int(self._state.n_sent) >= self.params.n_tasks:
            raise RuntimeError("the episode has terminated; call reset()")
        a = validate_action(self.params, self._state, action)
        nxt, reward, terminated = step_batch(
            self.params, self._state.tile(1), np.array([a], dtype=np.int64)
        )
        self._state = nxt.item(0)
        obs = observe(self.params, self._state)
        return obs, float(reward[0]), bool(terminated[0]), False, self._info(self._state)

    def _info(self, state: EdgeState) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if self.params.formulation == "sequential":
            info["action_mask"] = action_mask(self.params, state)
        if int(state.n_sent) == self.params.n_tasks:
            info.update(schedule_metrics(self.params, state.tasks, state.order))
        return info

    @property
    def tasks(self) -> NDArray[np.float64]:
        """The current task set ``(N, 3)``, columns ``(d, c, eps)``."""
        if self._tasks is None:
            raise RuntimeError("call reset() first")
        return self._tasks


def schedule_metrics(
    params: EdgeParams, tasks: NDArray[np.float64], order: NDArray[np.int64]
) -> dict[str, float]:
    """Cost (Eq. 3), mean delay per task and deadline miss ratio of one complete order."""
    tx, ex = k.task_times(tasks, params.rate, params.f_ser)
    t_comp = k.completion_times(tx, ex, np.asarray(order)[None, :])[0]
    missed = t_comp > tasks[np.asarray(order), k.EPS]
    cost = k.order_costs(tx, ex, tasks[:, k.EPS], np.asarray(order)[None, :], params.zeta)[0]
    return {
        "cost": float(cost),
        "mean_delay": float(t_comp.mean()),
        "miss_ratio": float(missed.mean()),
    }
