"""Building a twin from physical data (issue 11, item 2; paper 000, Section V-B "Extra Training
Delay of DT Construction"): a :class:`Calibrator` estimates the parameters an env lists in
``twin_params`` from observed physical transitions (the ``get_state()`` snapshots a twin measures
and the step's ``info``), with bootstrap uncertainty, and hands the twin a
:class:`~twinrl.twin.fidelity.Fidelity` with those values: the more data, the closer the twin.

Each estimator is a ratio or a regression on sums of per-observation statistics derived from the
env's own kernel; the rows of statistics are kept per estimator (a group), so a bootstrap resamples
each group's rows and recomputes the estimates. A calibrator never reads the env's true
``twin_params``, only structure a twin knows (task sizes, road geometry, area side, slot length).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.envs.ap_params import OUTCOME_NAMES, SUCCESS, APSelectionParams, APSelectionState
from twinrl.envs.ap_selection import APSelectionEnv
from twinrl.envs.edge_kernels import C, D
from twinrl.envs.edge_scheduling import EdgeSchedulingEnv, EdgeState
from twinrl.envs.multi_uav import MultiUAVEnv
from twinrl.envs.uav_dynamics import N_MOVES, MultiUAVParams, MultiUAVState
from twinrl.errors import ConfigError, ConfigTypeError, short_repr
from twinrl.twin.fidelity import Fidelity
from twinrl.validation import check_float, check_int

Array = NDArray[np.float64]
Info = dict[str, Any]


def _ratio(num: Array, den: Array) -> Array:
    """``num / den`` elementwise, NaN where ``den`` is not positive (no data)."""
    out = np.full(np.shape(num), np.nan)
    return np.divide(num, den, out=out, where=np.asarray(den) > 0)


class Calibrator:
    """Estimates a twin's model parameters from observed physical transitions (base class).

    A subclass names the parameters it estimates (:attr:`params`, the env's ``twin_params``),
    turns one transition into rows of statistics per group (:meth:`_rows`), solves the estimates
    from the groups' column sums (:meth:`_solve`, vectorized over bootstrap resamples) and says
    what data a parameter needs (:attr:`needs`).
    """

    params: ClassVar[tuple[str, ...]] = ()
    """The ``twin_params`` this calibrator estimates."""
    needs: ClassVar[dict[str, str]] = {}
    """Per parameter, the data that shows it (for the error when there is none yet)."""

    def __init__(self, groups: dict[str, int]) -> None:
        self._width = dict(groups)  # columns of each group's rows
        self._data: dict[str, list[Array]] = {name: [] for name in groups}
        self._tables: dict[str, Array] = {}
        self._n = 0

    def _rows(self, state: Any, action: Any, next_state: Any, info: Info) -> dict[str, Array]:
        raise NotImplementedError

    def _solve(self, sums: dict[str, Array]) -> dict[str, Array]:
        raise NotImplementedError

    def observe(self, state: Any, action: Any, next_state: Any, info: dict[str, Any]) -> None:
        """Record one physical transition: ``state`` and ``next_state`` are
        ``env.unwrapped.get_state()`` snapshots before and after ``env.step(action)``, ``info``
        that step's info dict."""
        if not isinstance(info, dict):
            raise ConfigTypeError(f"info must be the step's info dict, got {short_repr(info)}")
        for group, row in self._rows(state, action, next_state, info).items():
            self._data[group].append(np.asarray(row, dtype=np.float64).reshape(1, -1))
            self._tables.pop(group, None)
        self._n += 1

    @property
    def n_observations(self) -> int:
        """Physical transitions observed so far."""
        return self._n

    def _table(self, group: str) -> Array:
        if group not in self._tables:
            rows = self._data[group] or [np.zeros((0, self._width[group]))]
            self._tables[group] = np.concatenate(rows)
        return self._tables[group]

    def _estimate_arrays(self) -> dict[str, Array]:
        sums = {group: self._table(group).sum(axis=0)[None, :] for group in self._data}
        values = {name: value[0] for name, value in self._solve(sums).items()}
        for name, value in values.items():
            missing = np.flatnonzero(np.isnan(np.atleast_1d(value)))
            if missing.size:
                where = f"{name}[{missing[0]}]" if np.ndim(value) else name
                raise ConfigError(
                    f"cannot estimate {where} yet after {self._n} observed transitions: "
                    f"{self.needs[name].format(index=missing[0])}"
                )
        return values

    def estimate(self) -> dict[str, Any]:
        """Point estimates of :attr:`params` (a tuple for tuple-valued parameters); raises
        :class:`~twinrl.errors.ConfigError` naming a parameter there is no data for yet."""
        return {name: _plain(value) for name, value in self._estimate_arrays().items()}

    def _bootstrap(self, n: int, rng: np.random.Generator) -> dict[str, Array]:
        """Estimates of ``n`` resamples: each group's rows drawn with replacement, as many as
        it holds (a group's rows carry data, so no resample is empty)."""
        self._estimate_arrays()  # no data for some parameter: the same clear error
        sums = {}
        for group in self._data:
            table = self._table(group)
            rows = table.shape[0]
            sums[group] = np.zeros((n, table.shape[1]))
            for b in range(n if rows else 0):
                counts = np.bincount(rng.integers(0, rows, size=rows), minlength=rows)
                sums[group][b] = counts @ table
        return self._solve(sums)

    def samples(self, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        """``n`` bootstrap estimates (the uncertainty of :meth:`estimate`)."""
        n = check_int("n", n, 1, 1_000_000)
        if not isinstance(rng, np.random.Generator):
            raise ConfigTypeError(f"rng must be a numpy.random.Generator, got {short_repr(rng)}")
        draws = self._bootstrap(n, rng)
        return [{name: _plain(value[b]) for name, value in draws.items()} for b in range(n)]

    def interval(
        self, level: float = 0.95, n: int = 200, seed: int = 0
    ) -> dict[str, tuple[Any, Any]]:
        """Percentile bootstrap interval ``(low, high)`` per parameter at confidence ``level``
        from ``n`` resamples drawn with ``seed``."""
        level = check_float("level", level, 0.0, 1.0, low_open=True, high_open=True)
        n = check_int("n", n, 1, 1_000_000)
        seed = check_int("seed", seed, 0, 2**63 - 1)
        draws = self._bootstrap(n, np.random.default_rng(seed))
        tail = 50.0 * (1.0 - level)
        out = {}
        for name, value in draws.items():
            low, high = np.percentile(value, [tail, 100.0 - tail], axis=0)
            out[name] = (_plain(low), _plain(high))
        return out

    def fidelity(self, **options: Any) -> Fidelity:
        """``Fidelity(model=self.estimate(), **options)``: a twin built from the data."""
        if "model" in options:
            raise ConfigError("fidelity() sets model from the estimates; do not pass model=")
        return Fidelity(model=self.estimate(), **options)


@dataclass(frozen=True)
class Recalibration:
    """Online calibration, a mitigation of model bias: ``DigitalTwin(env, recalibrate=...)`` feeds
    every physical transition it mirrors to the env's :class:`Calibrator` and, every
    :attr:`every` transitions, rebuilds its model from the estimates, which replace its prior
    parameters (a biased ``Fidelity`` included). Until every parameter has data the prior model
    stays. The calibrator reads the physical transitions as logged (exact states and the step's
    info); measurement noise, staleness and the construction delay still apply to the twin's view
    of the state."""

    every: int = 500
    """Physical transitions between two re-estimates, in [1, 1e9]."""
    members: int = 1
    """1: the twin runs the point estimate; m > 1: also an ensemble of m bootstrap estimates
    (``DigitalTwin``'s ``ensemble``; the identical domain then keeps m views). In [1, 1000]."""
    trust: float | None = None
    """With ``members`` > 1, ``DigitalTwin``'s ``trust``: the largest spread of an action's reward
    over the members that the assists still learn from. None: every outcome is trusted."""
    seed: int = 0
    """Seed of the bootstrap draws, in [0, 2**63 - 1]."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "every", check_int("Recalibration.every", self.every, 1, 10**9))
        object.__setattr__(
            self, "members", check_int("Recalibration.members", self.members, 1, 1000)
        )
        object.__setattr__(self, "seed", check_int("Recalibration.seed", self.seed, 0, 2**63 - 1))
        if self.trust is not None:
            trust = check_float("Recalibration.trust", self.trust, 0.0, np.inf)
            if self.members == 1:
                raise ConfigError("Recalibration.trust needs an ensemble: set members > 1")
            object.__setattr__(self, "trust", trust)


def _plain(value: Any) -> Any:
    """A float, or a tuple of floats for a tuple-valued parameter."""
    array = np.asarray(value, dtype=np.float64)
    return tuple(array.tolist()) if array.ndim else float(array)


def _snapshots(kind: type, state: Any, next_state: Any) -> None:
    for name, value in (("state", state), ("next_state", next_state)):
        if not isinstance(value, kind):
            raise ConfigTypeError(
                f"{name} must be a {kind.__name__} from env.unwrapped.get_state(), got "
                f"{short_repr(value)}"
            )


def _not_a_step(what: str) -> ConfigError:
    return ConfigError(
        f"state -> next_state is not one physical step ({what}); pass the snapshots taken right "
        "before and after env.step(action), never across a reset"
    )


class EdgeCalibrator(Calibrator):
    """Uplink rate R and server speed f_ser of ``EdgeScheduling-v0`` (paper 002, Eq. 1-2).

    A step sends tasks ``order[n_sent:n_sent']`` (one when ``sequential``, all N for ``order``).
    R = sent bits / ``t_ready`` increase (Eq. 1). For f_ser, ``t_server' = max_j (s_j + W_j /
    f_ser)`` over the moments s_j the server may last have become busy (``t_server``, or sent task
    j's arrival) with W_j the cycles left from there (Eq. 2): the binding j minimizes
    ``(t_server' - s_j) / W_j``, and W_j over that busy time is f_ser (sequential: ``d c`` over
    ``t_server' - max(t_ready', t_server)``). Both pool sums over observations (ratio estimators)
    and are exact for exact snapshots. Not identifiable (``order``): the execution before the
    server's last idle gap, hidden by the final state, so fewer cycles inform f_ser.
    """

    params = ("rate", "f_ser")
    needs: ClassVar[dict[str, str]] = {
        "rate": "no observed step has sent data yet (Eq. 1 needs a task with d > 0)",
        "f_ser": "no observed step has executed cycles yet (Eq. 2 needs a task with d c > 0)",
    }

    def __init__(self) -> None:
        super().__init__({"transmission": 2, "execution": 2})

    def _rows(self, state: Any, action: Any, next_state: Any, info: Info) -> dict[str, Array]:
        _snapshots(EdgeState, state, next_state)
        before, after = int(state.n_sent), int(next_state.n_sent)
        if after <= before or not np.array_equal(state.order[:before], next_state.order[:before]):
            raise _not_a_step(f"n_sent goes from {before} to {after}")
        sent = next_state.order[before:after]
        bits = next_state.tasks[sent, D]
        cycles = bits * next_state.tasks[sent, C]  # c is in cycles per bit: d c cycles per task
        rows: dict[str, Array] = {}
        t_ready, ready_next = float(state.t_ready), float(next_state.t_ready)
        if bits.sum() > 0 and ready_next > t_ready:  # Eq. (1): t_ready grows by d / R per task
            rows["transmission"] = np.array([bits.sum(), ready_next - t_ready])
        share = np.cumsum(bits) / bits.sum() if bits.sum() > 0 else np.ones(bits.shape)
        arrivals = t_ready + (ready_next - t_ready) * share  # Eq. (1) for each sent task
        arrivals[-1] = ready_next
        starts = np.concatenate([[float(state.t_server)], arrivals])
        work = np.concatenate([[cycles.sum()], np.cumsum(cycles[::-1])[::-1]])
        keep = work > 0
        if keep.any():  # Eq. (2): the binding start of the server's last busy period
            busy = float(next_state.t_server) - starts[keep]
            j = int(np.argmin(busy / work[keep]))
            if busy[j] > 0:
                rows["execution"] = np.array([work[keep][j], busy[j]])
        return rows

    def _solve(self, sums: dict[str, Array]) -> dict[str, Array]:
        tx, ex = sums["transmission"], sums["execution"]
        return {"rate": _ratio(tx[:, 0], tx[:, 1]), "f_ser": _ratio(ex[:, 0], ex[:, 1])}


class APSelectionCalibrator(Calibrator):
    """Per-AP link rates and the vehicle speed of ``APSelection-v0`` (paper 000, Section IV-A).

    ``transmit()`` sets ``finish = start + size / rate``, ``start`` already past the waits for
    coverage and for the AP's queue, so a delivered task's known class size over ``finish -
    start`` is its AP's rate exactly (failed tasks are skipped: a twin never sees their last bit).
    A delivered task's arrival ``now = finish - latency`` is ``t L / (v N)``, when the vehicle is
    at ``x = t L / N``: v = sum x / sum now over tasks with t >= 1. Both are exact for exact data.
    Not identifiable: the rate of an AP without a delivered task (one pass may never use some AP
    successfully; estimate() names it) and the speed from epoch 0 alone.
    """

    params = ("ap_rates", "speed")
    needs: ClassVar[dict[str, str]] = {
        "ap_rates": "no task delivered through AP {index} yet (only a delivered task's "
        "transmission time finish - start shows its rate)",
        "speed": "no task delivered after the first epoch yet (its arrival time t L / (v N), "
        "t >= 1, shows the speed)",
    }

    def __init__(self, params: APSelectionParams) -> None:
        self._sizes = np.asarray(params.task_sizes, dtype=np.float64)
        self._cell = params.road_length / params.n_steps  # metres per epoch
        self._n_aps = params.n_aps
        super().__init__({**{f"ap{m}": 2 for m in range(self._n_aps)}, "speed": 2})

    def _rows(self, state: Any, action: Any, next_state: Any, info: Info) -> dict[str, Array]:
        _snapshots(APSelectionState, state, next_state)
        t = int(state.t)
        if int(next_state.t) != t + 1:
            raise _not_a_step(f"epoch t goes from {t} to {int(next_state.t)}")
        missing = [k for k in ("ap", "outcome", "start", "finish", "latency") if k not in info]
        if missing:
            raise ConfigError(f"info lacks {missing}; pass the info of APSelection-v0's step")
        if info["outcome"] != OUTCOME_NAMES[SUCCESS]:
            return {}
        ap, start, finish = int(info["ap"]), float(info["start"]), float(info["finish"])
        if not 0 <= ap < self._n_aps:
            raise ConfigError(f"info['ap']={ap} is not an AP in [0, {self._n_aps - 1}]")
        size = self._sizes[int(state.task_classes[t])]
        rows = {}
        if finish > start:  # transmit(): finish = start + size / rate
            rows[f"ap{ap}"] = np.array([size, finish - start])
        now = finish - float(info["latency"])  # latency = finish - now, now = t L / (v N)
        if t >= 1 and now > 0:
            rows["speed"] = np.array([t * self._cell, now])
        return rows

    def _solve(self, sums: dict[str, Array]) -> dict[str, Array]:
        rates = [_ratio(sums[f"ap{m}"][:, 0], sums[f"ap{m}"][:, 1]) for m in range(self._n_aps)]
        speed = sums["speed"]
        return {"ap_rates": np.stack(rates, axis=-1), "speed": _ratio(speed[:, 0], speed[:, 1])}


class MultiUAVCalibrator(Calibrator):
    """User mobility and UAV speed of ``MultiUAV-v0`` (paper 000, Section IV-B).

    ``uav_speed``: a move covers ``uav_speed * slot`` metres along its axis before the clip to
    the area (``uav_dynamics.step_batch``); moves ending on the edge may be clipped and are
    skipped, so distance over moves x slot (pooled) is exact. ``gauss_markov_step`` draws
    ``v' = a v + sqrt(1 - a^2) sigma w`` per user and axis, then ``x' = x + v' dt``, but reverses
    v' where x' crosses an edge and mirrors x'. Skipping reflected users would select on v' and
    bias a and sigma low, so a reflected component's v' is recovered (minus the stored one, when
    x' = -(x + v' dt) or 2 side - (x + v' dt)); only a reflection the final clip cut is lost.
    ``user_memory`` a is the least-squares slope of v' on v through the origin, clipped to [0, 1];
    ``user_speed_std`` sigma = sqrt(RSS / (n - 1) / (1 - a^2)) (at a = 1 the noise term
    vanishes and the stationary law v ~ N(0, sigma^2) gives sigma). Not identifiable: the UAV
    speed from stay actions and clipped moves. The mobility estimates carry sampling error.
    """

    params = ("user_speed_std", "user_memory", "uav_speed")
    needs: ClassVar[dict[str, str]] = {
        "user_speed_std": "fewer than 2 user velocity pairs (v, v') observed",
        "user_memory": "no user velocity pair (v, v') observed",
        "uav_speed": "no UAV move that stayed inside the area observed (stay actions and moves "
        "clipped at the edge do not show the speed)",
    }

    def __init__(self, params: MultiUAVParams) -> None:
        self._side, self._slot = params.area_side, params.slot
        self._n_uavs, self._flat = params.n_uavs, params.action_space == "flat"
        super().__init__({"uav_moves": 2, "user_velocities": 4})

    def _moves(self, action: Any) -> NDArray[np.int64]:
        moves = np.asarray(action, dtype=np.int64)
        if self._flat:  # uav_dynamics.decode_action: UAV m is base-5 digit m
            moves = (moves[..., None] // N_MOVES ** np.arange(self._n_uavs)) % N_MOVES
        if moves.shape != (self._n_uavs,) or moves.min() < 0 or moves.max() >= N_MOVES:
            raise ConfigError(f"action {short_repr(action)} is not a move for each UAV")
        return moves

    def _rows(self, state: Any, action: Any, next_state: Any, info: Info) -> dict[str, Array]:
        _snapshots(MultiUAVState, state, next_state)
        if int(next_state.step) != int(state.step) + 1:
            raise _not_a_step(f"step goes from {int(state.step)} to {int(next_state.step)}")
        moves = self._moves(action)
        uavs = np.flatnonzero(moves != 0)
        axis = np.where(moves[uavs] <= 2, 0, 1)  # 1, 2 move along x; 3, 4 along y
        end = next_state.uav_pos[uavs, axis]
        inside = (end > 0.0) & (end < self._side)  # a clipped move ends on the edge
        rows: dict[str, Array] = {}
        if inside.any():
            metres = np.abs(end - state.uav_pos[uavs, axis])[inside]
            rows["uav_moves"] = np.array([metres.sum(), inside.sum() * self._slot])
        pos, pos_next, vel_next = state.user_pos, next_state.user_pos, next_state.user_vel
        tol = 1e-9 * max(self._side, 1.0)
        straight = np.abs(pos_next - (pos + vel_next * self._slot)) <= tol
        raw = pos - vel_next * self._slot  # x + v' dt if the kernel reversed v' at an edge
        edge = np.minimum(np.abs(pos_next + raw), np.abs(2 * self._side - raw - pos_next))
        mirrored = edge <= tol  # x' = -(x + v' dt) or 2 side - (x + v' dt)
        known = straight | mirrored  # else reflected and clipped: v' is lost, skip it
        v, v_next = state.user_vel[known], np.where(straight, vel_next, -vel_next)[known]
        if v.size and v @ v > 0:
            rows["user_velocities"] = np.array([v @ v_next, v @ v, v_next @ v_next, v.size])
        return rows

    def _solve(self, sums: dict[str, Array]) -> dict[str, Array]:
        moved = sums["uav_moves"]
        sxy, sxx, syy, n = sums["user_velocities"].T
        memory = np.clip(_ratio(sxy, sxx), 0.0, 1.0)  # least squares slope of v' on v
        rss = np.maximum(syy - 2.0 * memory * sxy + memory**2 * sxx, 0.0)
        noise = _ratio(rss, np.where(n >= 2, n - 1.0, 0.0))  # (1 - a^2) sigma^2
        spread = 1.0 - memory**2
        with np.errstate(invalid="ignore"):
            std = np.where(spread > 1e-9, np.sqrt(_ratio(noise, spread)), np.sqrt(_ratio(sxx, n)))
        return {
            "user_speed_std": np.where(n >= 2, std, np.nan),
            "user_memory": memory,
            "uav_speed": _ratio(moved[:, 0], moved[:, 1]),
        }


CALIBRATORS: dict[type, Callable[[Any], Calibrator]] = {
    EdgeSchedulingEnv: lambda params: EdgeCalibrator(),
    APSelectionEnv: APSelectionCalibrator,
    MultiUAVEnv: MultiUAVCalibrator,
}
"""The calibrator of each env type, built from the env's params (structure only)."""


def calibrator_for(env: gym.Env[Any, Any]) -> Calibrator:
    """A fresh :class:`Calibrator` for ``env`` (by the type of ``env.unwrapped``)."""
    base = getattr(env, "unwrapped", env)
    params: Any = getattr(base, "params", None)
    for env_type, make in CALIBRATORS.items():
        if isinstance(base, env_type):
            return make(params)
    known = ", ".join(t.__name__ for t in CALIBRATORS)
    raise ConfigError(
        f"no Calibrator for {type(base).__name__}: calibrators exist for {known}; "
        "subclass twinrl.twin.Calibrator for another env"
    )


__all__ = [
    "CALIBRATORS",
    "APSelectionCalibrator",
    "Calibrator",
    "EdgeCalibrator",
    "MultiUAVCalibrator",
    "Recalibration",
    "calibrator_for",
]
