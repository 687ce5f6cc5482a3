"""TrainConfig refuses every bad value with a ConfigError naming the key (``agent.lr``,
``env_kwargs.zeta``, ...), fast and without allocating, and holds plain JSON-ready values."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

from twinrl.config import TrainConfig, build_config
from twinrl.errors import ConfigError, ConfigTypeError, TwinrlError


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["env_kwargs.resample_tasks=maybe"], "env_kwargs.resample_tasks"),
        (["env_kwargs.zeta=.inf"], "env_kwargs.zeta"),
        (["env_kwargs.zeta=.nan"], "env_kwargs.zeta"),
        (["env_kwargs.n_tasks=30", "env_kwargs.formulation=sequential"], "env_kwargs.n_tasks"),
        (["env_kwargs.n_tasks=64", "env_kwargs.formulation=sequential"], "env_kwargs.n_tasks"),
        (["env_kwargs.no_such_field=1"], "no_such_field"),
        (["env=twinrl/APSelection-v0", "env_kwargs.ap_prices=[.inf, 1, 1, 1, 1]"],
         r"env_kwargs.ap_prices\[0\]"),
        (["env=twinrl/APSelection-v0", "env_kwargs.success_reward=.inf"],
         "env_kwargs.success_reward"),
        (["env=twinrl/APSelection-v0", "env_kwargs.failure_penalty=1e400"],
         "env_kwargs.failure_penalty"),
        (["env=twinrl/APSelection-v0", "env_kwargs.w_latency=.inf"], "env_kwargs.w_latency"),
        (["env=twinrl/MultiUAV-v0", "env_kwargs.user_speed_std=.inf"],
         "env_kwargs.user_speed_std"),
        (["agent.eps_min=0.5"], "eps_min"),
        (["agent.lr=2"], "agent.lr"),
        (["agent.hidden=[64]"], "hidden"),
        (["algo=dqn", "agent.lr=5"], "agent.lr"),
        (["algo=dqn", "agent.buffer_capacity=1000000000000"], "agent.buffer_capacity"),
        (["algo=dqn", "agent.hidden=[64, -1]"], r"agent.hidden\[1\]"),
        (["algo=dqn", "agent.double=maybe"], "agent.double"),
        (["budget=1000000000000"], "budget"),
        (["budget=1e12"], "budget"),
        (["budget=0"], "budget"),
        (["n_agents=100000000000000000000000"], "n_agents"),
        (["n_agents=1e23"], "n_agents"),
        (["seed=-1"], "seed"),
        (["n_trials=true"], "n_trials"),
        (["k=0"], "k"),
        (["evaluate=maybe"], "evaluate"),
        (["backend=gpu"], "backend"),
        (["algo=ppo"], "algo"),
        (["env=NoSuchEnv-v9"], "env"),
        (["env=[1]"], "env"),
        (["agent=3"], "agent"),
        (["env_kwargs=[1, 2]"], "env_kwargs"),
    ],
)  # fmt: skip
def test_bad_values_raise_config_errors_naming_the_key(overrides: list[str], key: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=key) as info:
        build_config(None, overrides)
    assert isinstance(info.value, (ValueError, TypeError)) and isinstance(info.value, TwinrlError)
    assert len(str(info.value)) < 500
    assert time.perf_counter() - start < 1.0


def test_huge_values_are_shown_bounded() -> None:
    with pytest.raises(ConfigTypeError) as info:
        TrainConfig(env_kwargs={"n_tasks": list(range(10**6))})
    assert "n_tasks" in str(info.value) and len(str(info.value)) < 300


def test_defaults_and_numpy_configs_serialize_to_json() -> None:
    cfg = TrainConfig(
        algo="dqn",
        budget=np.int64(10),  # type: ignore[arg-type]
        evaluate=np.bool_(True),  # type: ignore[arg-type]
        agent={"hidden": [np.int64(8)], "lr": np.float32(0.001)},
        env_kwargs={"n_tasks": np.int64(4), "d_range": [0, np.float64(1e6)]},
    )
    text = json.dumps(cfg.to_dict())
    assert json.loads(text)["agent"]["hidden"] == [8]
    assert cfg.evaluate is True and cfg.env_kwargs["d_range"] == (0.0, 1e6)


@pytest.mark.parametrize(
    ("env", "kwargs"),
    [("twinrl/EdgeScheduling-v0", {"n_tasks": 20, "formulation": "sequential"}),
     ("twinrl/APSelection-v0", {"observation": "features", "n_steps": 5}),
     ("twinrl/MultiUAV-v0", {"hangar": [10, 10], "sensing_radius": 20})],
)  # fmt: skip
def test_valid_env_kwargs_are_accepted(env: str, kwargs: dict[str, Any]) -> None:
    cfg = TrainConfig(env=env, algo="dqn", env_kwargs=kwargs)
    assert set(cfg.env_kwargs) == set(kwargs)


def test_every_twin_backend_is_a_valid_config() -> None:
    from twinrl.twin import BACKENDS

    for name in BACKENDS:
        assert build_config(None, [f"backend={name}"]).backend == name
