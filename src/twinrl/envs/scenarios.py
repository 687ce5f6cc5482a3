"""Seeded scenario sampling (paper 000, Section III-C: the network changes its environment, task
distribution and location; twins of sampled scenarios let an agent pre-train before it does).

:class:`ScenarioSampler` draws scenarios around an env's own parameters (its ``base`` scenario).
The ranges, at ``spread=1`` (``spread`` s in [0, 1] scales every range; 0 gives the base
scenario back; a factor "x [1/r, r]" is log-uniform, ``r ** U(-s, s)``):

* **access-point selection**: vehicle speed x [0.8, 1.25]; each AP's rate x [1/2, 2], position
  +- 50 m (clipped to the road), radius x [0.8, 1.25]; task-class probabilities from a Dirichlet
  with mean the base probabilities and concentration 20 / s; each AP fails with probability
  ``fail_prob`` (its rate drops to 1 bit/s: every task sent to it misses its deadline).
* **multi-UAV**: users' speed spread x [1/2, 2]; their memory uniform in base +- 0.15 s (within
  [0, 0.99]); UAV speed x [0.8, 1.25]; users start clustered (``user_spread`` uniform in
  [1 - 0.7 s, 1]) around a cluster centre offset uniformly within the area (users that migrate).
  The user count is kept (it sizes the observation).
* **edge scheduling**: uplink rate and server speed x [1/2, 2]; the upper ends of the task size
  and complexity ranges x [1/2, 2]; the deadline range x [1/2, 2] (both ends).

Same seed, same scenarios, in the same order; the sampler never touches an env's RNG.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from twinrl.contract import Scenario
from twinrl.envs.ap_params import APSelectionParams
from twinrl.envs.edge_scheduling import EdgeParams
from twinrl.envs.uav_dynamics import MultiUAVParams
from twinrl.errors import ConfigError, ConfigTypeError, short_repr
from twinrl.validation import check_float, check_int

FAILED_RATE = 1.0
"""Rate (bit/s) of a failed AP: the smallest the params accept."""


def _factor(rng: np.random.Generator, ratio: float, spread: float, size: int | None = None) -> Any:
    """``ratio ** U(-spread, spread)``: a log-uniform factor in [1/ratio, ratio] at spread 1."""
    return ratio ** rng.uniform(-spread, spread, size=size)


def _ap(p: APSelectionParams, rng: np.random.Generator, s: float, fail: float) -> dict[str, Any]:
    m = p.n_aps
    rates = np.asarray(p.ap_rates) * _factor(rng, 2.0, s, m)
    rates = np.where(rng.random(m) < fail, FAILED_RATE, rates)
    positions = np.clip(np.asarray(p.ap_positions) + rng.uniform(-50 * s, 50 * s, m), 0.0,
                        p.road_length)  # fmt: skip
    probs = np.asarray(p.task_probs)
    if s > 0:
        probs = rng.dirichlet(np.maximum(probs, 1e-3) * 20.0 / s)
        probs = probs / probs.sum()
    return {
        "speed": p.speed * _factor(rng, 1.25, s),
        "ap_rates": tuple(np.clip(rates, FAILED_RATE, 1e15)),
        "ap_positions": tuple(positions),
        "ap_radii": tuple(np.asarray(p.ap_radii) * _factor(rng, 1.25, s, m)),
        "task_probs": tuple(probs),
    }


def _uav(p: MultiUAVParams, rng: np.random.Generator, s: float, fail: float) -> dict[str, Any]:
    spread = 1.0 - 0.7 * s * rng.random()
    room = (1.0 - spread) * p.area_side / 2  # the cluster stays inside the area
    return {
        "user_speed_std": p.user_speed_std * _factor(rng, 2.0, s),
        "user_memory": float(np.clip(p.user_memory + rng.uniform(-0.15 * s, 0.15 * s), 0, 0.99)),
        "uav_speed": p.uav_speed * _factor(rng, 1.25, s),
        "user_spread": spread,
        "user_offset": tuple(rng.uniform(-room, room, 2)),
    }


def _edge(p: EdgeParams, rng: np.random.Generator, s: float, fail: float) -> dict[str, Any]:
    eps = _factor(rng, 2.0, s)
    return {
        "rate": p.rate * _factor(rng, 2.0, s),
        "f_ser": p.f_ser * _factor(rng, 2.0, s),
        "d_range": (p.d_range[0], max(p.d_range[0], p.d_range[1] * _factor(rng, 2.0, s))),
        "c_range": (p.c_range[0], max(p.c_range[0], p.c_range[1] * _factor(rng, 2.0, s))),
        "eps_range": (p.eps_range[0] * eps, p.eps_range[1] * eps),
    }


_SAMPLERS: dict[type, Callable[..., dict[str, Any]]] = {
    APSelectionParams: _ap,
    MultiUAVParams: _uav,
    EdgeParams: _edge,
}


class ScenarioSampler:
    """Draws scenarios of an env around its own parameters (the ranges are in the module doc).

    Args:
        env: an env of this package (an id, an env or its params dataclass).
        seed: seed of the sampler's own RNG (same seed, same scenarios).
        spread: in [0, 1], scales every range (0: always the base scenario).
        fail_prob: access-point selection only: probability that each AP has failed, in [0, 1].
    """

    def __init__(
        self, env: str | gym.Env[Any, Any] | Any, *, seed: int = 0, spread: float = 1.0,
        fail_prob: float = 0.0,
    ) -> None:  # fmt: skip
        if isinstance(env, str):
            env = gym.make(env)
        params = getattr(getattr(env, "unwrapped", env), "params", env)
        if type(params) not in _SAMPLERS:
            raise ConfigTypeError(
                f"ScenarioSampler needs an env of twinrl.envs (or its params), got "
                f"{short_repr(env)}; known: {[t.__name__ for t in _SAMPLERS]}"
            )
        self.params: Any = params
        self.spread = check_float("spread", spread, 0.0, 1.0)
        self.fail_prob = check_float("fail_prob", fail_prob, 0.0, 1.0)
        if self.fail_prob and not isinstance(params, APSelectionParams):
            raise ConfigError("fail_prob applies to access-point selection only; drop it")
        self.seed = check_int("seed", seed, 0, 2**63 - 1)
        self.rng = np.random.default_rng(self.seed)

    @property
    def base(self) -> Scenario:
        """The env's own scenario (the centre of the ranges)."""
        return Scenario.of({n: getattr(self.params, n) for n in self.params.scenario_fields})

    def sample(self, n: int | None = None) -> Any:
        """One scenario (``n`` None) or a list of ``n``, each giving every scenario parameter of
        the env (the ones the ranges leave alone at their base values); names ``"sampled-<i>"``
        count the draws."""
        if n is None:
            return self._one()
        return [self._one() for _ in range(check_int("n", n, 0, 10**6))]

    def _one(self) -> Scenario:
        values = _SAMPLERS[type(self.params)](self.params, self.rng, self.spread, self.fail_prob)
        clean = {k: tuple(float(x) for x in v) if isinstance(v, tuple) else float(v)
                 for k, v in values.items()}  # fmt: skip
        self._count = getattr(self, "_count", 0) + 1
        if not all(math.isfinite(x) for v in clean.values() for x in np.ravel(v)):
            raise ConfigError(f"sampled a non-finite scenario {clean}; lower spread")
        return Scenario.of({**self.base.as_dict(), **clean}, name=f"sampled-{self._count}")
