"""Online recalibration (``DigitalTwin(recalibrate=Recalibration(...))``): the twin's model is
rebuilt from the physical transitions it mirrors, which undoes a model bias; the prior stays while
there is no data; an ensemble of bootstrap estimates; bad options are refused."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import twinrl
from twinrl.algorithms import build_algorithm
from twinrl.errors import ConfigError, ConfigTypeError
from twinrl.twin import DigitalTwin, Fidelity, Recalibration

AP = "twinrl/APSelection-v0"


def _train(env: gym.Env, twin: DigitalTwin, budget: int, seed: int = 0) -> twinrl.Run:
    agent, assists = build_algorithm("dteql", env, seed, n_trials=5)
    return twinrl.train(env, agent, assists=assists, twin=twin, budget=budget, seed=seed,
                        evaluate=False, measure_fidelity=True)  # fmt: skip


def test_recalibration_undoes_a_model_bias() -> None:
    env = gym.make(AP)
    truth = env.unwrapped.params
    twin = DigitalTwin(env, fidelity=Fidelity(bias={"ap_rates": -0.5}),
                       recalibrate=Recalibration(every=100))  # fmt: skip
    assert twin.model.params.ap_rates == pytest.approx([r * 0.5 for r in truth.ap_rates])
    run = _train(env, twin, 600)
    assert twin.recalibrations == 6 and twin.calibrator.n_observations == 600
    estimate = twin.estimate
    assert estimate["ap_rates"] == pytest.approx(truth.ap_rates, rel=1e-9)
    assert estimate["speed"] == pytest.approx(truth.speed, rel=1e-9)
    assert twin.model.params.ap_rates == pytest.approx(truth.ap_rates, rel=1e-9)
    error = run.history["twin_reward_error"]
    assert error[:100].mean() > 0.1  # the biased prior mispredicts ...
    assert np.abs(error[100:]).max() < 1e-6  # ... the recalibrated model does not


def test_without_recalibration_the_bias_stays() -> None:
    env = gym.make(AP)
    twin = DigitalTwin(env, fidelity=Fidelity(bias={"ap_rates": -0.5}))
    run = _train(env, twin, 600)
    assert twin.recalibrations == 0 and twin.estimate is None and twin.calibrator is None
    assert run.history["twin_reward_error"][100:].mean() > 0.1


def test_the_prior_stays_until_every_parameter_has_data() -> None:
    env = gym.make(AP)
    twin = DigitalTwin(env, fidelity=Fidelity(bias={"ap_rates": -0.5}),
                       recalibrate=Recalibration(every=1))  # fmt: skip
    prior = twin.model.params
    _train(env, twin, 3)  # three steps cannot show every AP's rate
    assert twin.calibrator.n_observations == 3
    assert twin.recalibrations == 0 and twin.estimate is None
    assert twin.model.params == prior


def test_recalibration_is_deterministic() -> None:
    def once() -> list[float]:
        env = gym.make(AP)
        twin = DigitalTwin(env, fidelity=Fidelity(bias={"ap_rates": -0.3}),
                           recalibrate=Recalibration(every=50, members=3, seed=7))  # fmt: skip
        return list(_train(env, twin, 300, seed=4).episode_returns)

    assert once() == once()


def test_an_ensemble_of_bootstrap_estimates() -> None:
    pytest.importorskip("torch")
    env = gym.make("twinrl/MultiUAV-v0")
    twin = DigitalTwin(env, fidelity=Fidelity(bias={"user_speed_std": 1.0}),
                       recalibrate=Recalibration(every=40, members=4, trust=1e9))  # fmt: skip
    assert twin.average == 4 and twin.trust == 1e9
    assert len(twin.members) == 4 and {m["user_speed_std"] for m in twin.members} == {
        2.0 * env.unwrapped.params.user_speed_std  # four copies of the biased prior
    }
    agent, assists = build_algorithm("dt-dqn", env, 0, k=2, m=2)
    twinrl.train(env, agent, assists=assists, twin=twin, budget=80, seed=0, evaluate=False)
    assert twin.recalibrations == 2
    speeds = [m["user_speed_std"] for m in twin.members]
    assert len(set(speeds)) == 4  # four bootstrap estimates ...
    assert np.mean(speeds) == pytest.approx(env.unwrapped.params.user_speed_std, rel=0.5)
    out = twin.trial_identical(np.repeat(np.arange(3)[:, None], 4, axis=1))
    assert out.info["disagreement"].shape == (3,) and np.all(out.info["trusted"] == 1.0)


def test_edge_recalibration_recovers_rate_and_server_speed() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=5)
    truth = env.unwrapped.params
    twin = DigitalTwin(env, fidelity=Fidelity(bias={"rate": -0.5, "f_ser": 0.5}),
                       recalibrate=Recalibration(every=10))  # fmt: skip
    agent, assists = build_algorithm("dteql", env, 0, n_trials=4)
    twinrl.train(env, agent, assists=assists, twin=twin, budget=30, seed=0, evaluate=False)
    assert twin.recalibrations == 3
    assert twin.estimate["rate"] == pytest.approx(truth.rate, rel=1e-9)
    # f_ser is not identifiable from every order (docs of EdgeCalibrator): close, not exact
    assert twin.estimate["f_ser"] == pytest.approx(truth.f_ser, rel=0.05)


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"every": 0}, ConfigError, "Recalibration.every"),
        ({"every": 1.5}, ConfigError, "Recalibration.every"),
        ({"members": 0}, ConfigError, "Recalibration.members"),
        ({"members": 2, "trust": -1.0}, ConfigError, "Recalibration.trust"),
        ({"members": 2, "trust": float("nan")}, ConfigError, "Recalibration.trust"),
        ({"trust": 1.0}, ConfigError, "members > 1"),
        ({"seed": -1}, ConfigError, "Recalibration.seed"),
    ],
)
def test_bad_options_are_refused(kwargs: dict, error: type, names: str) -> None:
    with pytest.raises(error, match=names):
        Recalibration(**kwargs)


def test_bad_twin_combinations_are_refused() -> None:
    env = gym.make(AP)
    with pytest.raises(ConfigTypeError, match="recalibrate must be a Recalibration"):
        DigitalTwin(env, recalibrate={"every": 10})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="drop ensemble"):
        DigitalTwin(env, ensemble=[{"speed": 20.0}], recalibrate=Recalibration())
    with pytest.raises(ConfigError, match="drop average"):
        DigitalTwin(env, average=3, recalibrate=Recalibration(members=2))
    with pytest.raises(ConfigError, match="get_state"):
        DigitalTwin(gym.make("CartPole-v1"), recalibrate=Recalibration())
