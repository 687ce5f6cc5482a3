"""EdgeScheduling-v0's feature observation and potential-shaped reward, against hand computation
and the per-task reward."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import twinrl  # noqa: F401  (registers the envs)
from twinrl.envs.edge_scheduling import FEATURES_PER_TASK, EdgeParams, task_time_scale
from twinrl.errors import ConfigError

TASKS = np.array([[1e6, 500.0, 2.0], [2e6, 100.0, 1.0], [5e5, 1000.0, 4.0]])  # (d, c, eps)


def _env(**kw: object) -> gym.Env:
    return gym.make("twinrl/EdgeScheduling-v0", n_tasks=3, formulation="sequential",
                    observation="features", rate=2e6, zeta=2.0, **kw)  # fmt: skip


def test_features_by_hand() -> None:
    env = _env()
    unit = 2e6 / 2e6 + 2e6 * 1000 / 10e9  # longest task: 1 s + 0.2 s
    assert task_time_scale(env.unwrapped.params) == pytest.approx(unit)
    obs, _ = env.reset(options={"tasks": TASKS})
    obs, *_ = env.step(1)  # task 1: tx = 1 s, ex = 0.02 s, done at 1.02 s
    assert obs.shape == (FEATURES_PER_TASK * 3 + 2,)
    per_task = obs[:-2].reshape(3, FEATURES_PER_TASK)
    # task 0 next: ready at 1 + 0.5, server free at 1.02, ex = 0.05 -> done 1.55, slack 0.45
    expected0 = [0.5, 0.5, 0.4, 0.0, 0.5 / unit, 0.05 / unit, 0.45 / unit]
    np.testing.assert_allclose(per_task[0], expected0, rtol=1e-6)
    np.testing.assert_array_equal(per_task[1], [0, 0, 0, 1, 0, 0, 0])  # sent: only the flag
    np.testing.assert_allclose(obs[-2:], [1.0 / unit, 1.02 / unit], rtol=1e-6)
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("n", [1, 5, 9])
def test_potential_reward_returns_minus_the_cost(n: int) -> None:
    rng = np.random.default_rng(n)
    for rate in (2e6, 5.8e6, 1e8):  # deadlines binding, the paper's, a server-bound uplink
        kw = {"n_tasks": n, "formulation": "sequential", "rate": rate, "zeta": 2.0}
        shaped = gym.make("twinrl/EdgeScheduling-v0", reward="potential", **kw)
        plain = gym.make("twinrl/EdgeScheduling-v0", **kw)
        shaped.reset(seed=n)
        plain.reset(options={"tasks": shaped.unwrapped.tasks})
        totals, differ = [0.0, 0.0], False
        for a in rng.permutation(n):
            r_shaped, r_plain = shaped.step(int(a))[1], plain.step(int(a))
            totals[0] += r_shaped
            totals[1] += r_plain[1]
            differ |= not np.isclose(r_shaped, r_plain[1])
        info = r_plain[4]
        assert totals[0] == pytest.approx(-info["cost"], rel=1e-12)
        assert totals[1] == pytest.approx(-info["cost"], rel=1e-12)
        assert differ or n == 1  # shaping moves reward between steps


def test_potential_step_by_hand() -> None:
    env = _env(reward="potential")
    env.reset(options={"tasks": TASKS})
    # first step, task 1: 3 tasks waiting, server clock 0 -> 1.02 s, past its 1 s deadline: a miss
    _, r, *_ = env.step(1)
    assert r == pytest.approx(-(3 * 1.02 + 2.0))


@pytest.mark.parametrize(
    ("kw", "name"),
    [({"reward": "shaped"}, "reward"), ({"reward": "potential", "formulation": "order"}, "reward")],
)
def test_bad_reward_settings_are_refused_by_name(kw: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        EdgeParams(n_tasks=3, **kw)  # type: ignore[arg-type]
