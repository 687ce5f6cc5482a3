"""Calibrators: the twin's parameters estimated from physical transitions, against the true values
of envs made with non-default parameters, with bootstrap intervals that cover them and shrink."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import twinrl  # noqa: F401
from twinrl.errors import ConfigError, ConfigTypeError
from twinrl.twin import Calibrator, DigitalTwin, Fidelity, calibrator_for

EDGE = "twinrl/EdgeScheduling-v0"
AP = "twinrl/APSelection-v0"
UAV = "twinrl/MultiUAV-v0"
EDGE_TRUE = {"rate": 3.1e6, "f_ser": 7e9}
AP_TRUE = {"ap_rates": (1.1e6, 3.3e6, 2.2e6, 4.4e6, 6.0e6), "speed": 16.0}
UAV_TRUE = {"user_memory": 0.6, "user_speed_std": 1.7, "uav_speed": 6.0}
EDGE_SETUP = {"n_tasks": 5, "resample_tasks": True}


def _action(env: gym.Env[Any, Any], rng: np.random.Generator, info: dict[str, Any]) -> Any:
    if "action_mask" in info:  # sequential edge scheduling: an unsent task
        return int(rng.choice(np.flatnonzero(info["action_mask"])))
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        return int(rng.integers(space.n))
    return rng.integers(0, space.nvec)


def _observe(
    env: gym.Env[Any, Any], calibrator: Calibrator, steps: int, seed: int = 0
) -> Calibrator:
    """Feed ``calibrator`` ``steps`` random-action physical transitions of ``env``."""
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    for _ in range(steps):
        state, action = env.unwrapped.get_state(), _action(env, rng, info)
        _, _, terminated, truncated, info = env.step(action)
        calibrator.observe(state, action, env.unwrapped.get_state(), info)
        if terminated or truncated:
            _, info = env.reset()
    return calibrator


def _calibrated(env_id: str, truth: dict[str, Any], steps: int, seed: int = 0, **setup: Any):
    """A calibrator built from a *default* env (so it cannot read the truth) fed by the env with
    the true parameters."""
    physical = gym.make(env_id, **setup, **truth)
    calibrator = calibrator_for(gym.make(env_id, **setup))
    assert calibrator.params == type(physical.unwrapped.params).twin_params
    return _observe(physical, calibrator, steps, seed)


def _assert_exact(calibrator: Calibrator, truth: dict[str, Any]) -> None:
    estimate, interval = calibrator.estimate(), calibrator.interval()
    for name, value in truth.items():
        true, low, high = (np.asarray(v) for v in (value, *interval[name]))
        np.testing.assert_allclose(estimate[name], true, rtol=1e-9, atol=0)
        assert np.all(low <= true * (1 + 1e-9)) and np.all(true <= high * (1 + 1e-9))
        assert np.all(high - low <= 1e-9 * true)  # deterministic dynamics: no uncertainty


@pytest.mark.parametrize("formulation", ["sequential", "order"])
def test_edge_rate_and_server_speed_are_exact(formulation: str) -> None:
    calibrator = _calibrated(EDGE, EDGE_TRUE, 300, formulation=formulation, **EDGE_SETUP)
    assert calibrator.n_observations == 300
    _assert_exact(calibrator, EDGE_TRUE)


def test_edge_server_speed_from_the_last_busy_period_of_a_hand_built_order() -> None:
    # R = 1, f_ser = 1: task 0 (d=2, c=1) arrives at 2, runs to 4; task 1 (d=1, c=5) arrives at 3,
    # waits, runs 5 to 9. The server never idles after t=2: 7 cycles over 7 s.
    env = gym.make(EDGE, n_tasks=2, rate=1.0, f_ser=1.0)
    env.reset(options={"tasks": [[2.0, 1.0, 9.0], [1.0, 5.0, 9.0]]})
    state = env.unwrapped.get_state()
    env.step(0)
    after = env.unwrapped.get_state()
    assert (float(after.t_ready), float(after.t_server)) == (3.0, 9.0)
    calibrator = calibrator_for(gym.make(EDGE, n_tasks=2))
    calibrator.observe(state, 0, after, {})
    assert calibrator.estimate() == {"rate": 1.0, "f_ser": 1.0}


def test_ap_rates_and_speed_are_exact() -> None:
    calibrator = _calibrated(AP, AP_TRUE, 300)
    _assert_exact(calibrator, AP_TRUE)
    assert isinstance(calibrator.estimate()["ap_rates"], tuple)


def test_uav_estimates_cover_the_truth_and_tighten_with_data() -> None:
    small = _calibrated(UAV, UAV_TRUE, 300, seed=1)
    large = _calibrated(UAV, UAV_TRUE, 1200, seed=1)
    for calibrator in (small, large):
        estimate, interval = calibrator.estimate(), calibrator.interval()
        assert estimate["uav_speed"] == pytest.approx(6.0, rel=1e-9, abs=0)
        for name in ("user_memory", "user_speed_std"):
            low, high = interval[name]
            assert low <= UAV_TRUE[name] <= high, (name, low, high)
            assert abs(estimate[name] - UAV_TRUE[name]) <= high - low
    for name in ("user_memory", "user_speed_std"):
        width = {c: c.interval()[name][1] - c.interval()[name][0] for c in (small, large)}
        assert width[large] < 0.75 * width[small]  # about half: 1/sqrt(4)


def test_uav_memory_estimate_is_not_biased_by_edge_reflections() -> None:
    # A small area reflects users often; skipping reflected users would bias memory low.
    calibrator = _calibrated(UAV, UAV_TRUE, 1200, seed=1, area_side=20.0)
    low, high = calibrator.interval()["user_memory"]
    assert low <= 0.6 <= high


def test_samples_are_reproducible_bootstrap_estimates() -> None:
    calibrator = _calibrated(UAV, UAV_TRUE, 100)
    draws = calibrator.samples(5, np.random.default_rng(3))
    assert draws == calibrator.samples(5, np.random.default_rng(3))
    assert len(draws) == 5 and all(set(d) == set(calibrator.params) for d in draws)
    assert len({d["user_memory"] for d in draws}) > 1


@pytest.mark.parametrize(
    ("env_id", "truth", "setup"),
    [
        (EDGE, EDGE_TRUE, {**EDGE_SETUP, "formulation": "sequential"}),
        (AP, AP_TRUE, {}),
        (UAV, UAV_TRUE, {}),
    ],
)
def test_a_calibrated_twin_predicts_better_than_a_biased_one(
    env_id: str, truth: dict[str, Any], setup: dict[str, Any]
) -> None:
    fidelity = _calibrated(env_id, truth, 300, **setup).fidelity(seed=1)
    assert fidelity.model.keys() == set(truth)
    biased = Fidelity(bias={name: 0.5 for name in truth})
    errors = []
    for twin_fidelity in (fidelity, biased):
        env = gym.make(env_id, **setup, **truth)
        twin = DigitalTwin(env, fidelity=twin_fidelity)
        rng = np.random.default_rng(0)
        _, info = env.reset(seed=0)
        total, fresh, last = 0.0, True, None
        for t in range(1, 101):
            twin.mirror(env, t, episode_start=fresh, action=last)
            last = _action(env, rng, info)
            obs, reward, terminated, truncated, info = env.step(last)
            error = twin.one_step_error(last, obs, reward, terminated, info)
            total += error["reward"] + error["obs"]
            fresh = terminated or truncated
            if fresh:
                _, info = env.reset()
        errors.append(total)
    assert errors[0] < errors[1], errors


def test_estimate_without_data_names_the_parameter() -> None:
    with pytest.raises(ConfigError, match="cannot estimate rate yet"):
        calibrator_for(gym.make(EDGE)).estimate()
    with pytest.raises(ConfigError, match="user_speed_std"):
        calibrator_for(gym.make(UAV)).interval()


def test_an_ap_without_a_delivered_task_is_named() -> None:
    env = gym.make(AP)
    calibrator = calibrator_for(env)
    _, info = env.reset(seed=0)
    for _ in range(40):  # the macro cell only: AP 1 never transmits
        state = env.unwrapped.get_state()
        _, _, terminated, _, info = env.step(0)
        calibrator.observe(state, 0, env.unwrapped.get_state(), info)
        if terminated:
            env.reset()
    with pytest.raises(ConfigError, match=r"ap_rates\[1\].*AP 1"):
        calibrator.estimate()
    with pytest.raises(ConfigError, match=r"ap_rates\[1\]"):
        calibrator.fidelity()


def test_bad_input_is_refused() -> None:
    with pytest.raises(ConfigError, match="FrozenLake"):
        calibrator_for(gym.make("FrozenLake-v1"))
    calibrator = _calibrated(EDGE, EDGE_TRUE, 20, **EDGE_SETUP)
    with pytest.raises(ConfigError, match="n=0"):
        calibrator.samples(0, np.random.default_rng(0))
    with pytest.raises(ConfigTypeError, match="Generator"):
        calibrator.samples(3, 0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"level=1\.5"):
        calibrator.interval(level=1.5)
    with pytest.raises(ConfigError, match="model"):
        calibrator.fidelity(model={"rate": 1.0})
    env = gym.make(EDGE, **EDGE_SETUP)
    env.reset(seed=0)
    state = env.unwrapped.get_state()
    with pytest.raises(ConfigError, match="not one physical step"):
        calibrator.observe(state, 0, state, {})
    with pytest.raises(ConfigTypeError, match="EdgeState"):
        calibrator.observe(state, 0, None, {})
