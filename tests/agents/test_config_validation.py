"""QLearningConfig and DQNConfig refuse bad hyper-parameters naming the field, accept numpy
scalars and lists, and the agents refuse tables and buffers the machine cannot hold."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from twinrl.agents.dqn import DQNConfig
from twinrl.agents.qlearning import QLearning, QLearningConfig
from twinrl.errors import ConfigError, ConfigTypeError, ResourceError


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (QLearningConfig, {"lr": 0.0}, "lr"),
        (QLearningConfig, {"lr": 1.5}, "lr"),
        (QLearningConfig, {"lr": math.nan}, "lr"),
        (QLearningConfig, {"gamma": 1.01}, "gamma"),
        (QLearningConfig, {"eps_min": 0.5}, "eps_min"),  # 0.5 + 0.9: starts at 1.4
        (QLearningConfig, {"eps0": 1.0}, "eps0"),
        (QLearningConfig, {"eps0": -0.1}, "eps0"),
        (QLearningConfig, {"beta": 0.0}, "beta"),
        (QLearningConfig, {"beta": math.inf}, "beta"),
        (QLearningConfig, {"q_init": math.inf}, "q_init"),
        (QLearningConfig, {"reward_offset": 1e300}, "reward_offset"),
        (QLearningConfig, {"tie_break": "last"}, "tie_break"),
        (DQNConfig, {"lr": 5.0}, "lr"),
        (DQNConfig, {"lr": 0.0}, "lr"),
        (DQNConfig, {"gamma": -0.1}, "gamma"),
        (DQNConfig, {"eps_start": 1.4}, "eps_start"),
        (DQNConfig, {"eps_end": math.inf}, "eps_end"),
        (DQNConfig, {"twin_share": 2.0}, "twin_share"),
        (DQNConfig, {"buffer_capacity": 10**12}, "buffer_capacity"),
        (DQNConfig, {"learning_starts": 60_000}, "learning_starts"),
        (DQNConfig, {"batch_size": 0}, "batch_size"),
        (DQNConfig, {"n_step": 10**5}, "n_step"),
        (DQNConfig, {"huber_delta": math.inf}, "huber_delta"),
        (DQNConfig, {"grad_clip": math.nan}, "grad_clip"),
        (DQNConfig, {"grad_clip": 0.0}, "grad_clip"),
        (DQNConfig, {"hidden": ()}, "hidden"),
        (DQNConfig, {"hidden": (64, 0)}, r"hidden\[1\]"),
        (DQNConfig, {"hidden": (1 << 20,)}, r"hidden\[0\]"),
        (DQNConfig, {"hidden": (8,) * 17}, "hidden"),
    ],
)
def test_bad_values_raise_config_errors_naming_the_field(
    cls: type[Any], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        cls(**kwargs)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(QLearningConfig, {"lr": "0.5"}), (QLearningConfig, {"gamma": True}),
     (DQNConfig, {"double": 1}), (DQNConfig, {"double": "yes"}), (DQNConfig, {"batch_size": 64.0}),
     (DQNConfig, {"hidden": 64}), (DQNConfig, {"hidden": [64.5]}), (DQNConfig, {"hidden": "64"})],
)  # fmt: skip
def test_wrong_types_raise_config_type_errors(cls: type[Any], kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigTypeError, match=next(iter(kwargs))):
        cls(**kwargs)


def test_numpy_scalars_and_lists_give_plain_values() -> None:
    q = QLearningConfig(lr=np.float64(0.5), gamma=np.float32(0.5), eps_min=np.int64(0))
    assert q == QLearningConfig(lr=0.5, gamma=0.5, eps_min=0.0)
    d = DQNConfig(hidden=[np.int64(64), 32], batch_size=np.int32(16), double=np.bool_(False),
                  lr=np.float64(1e-3))  # fmt: skip
    assert d == DQNConfig(hidden=(64, 32), batch_size=16, double=False, lr=1e-3)
    for config in (q, d):
        for value in dataclasses.asdict(config).values():
            assert type(value) in (int, float, bool, str, tuple), value
    assert DQNConfig(grad_clip=math.inf).grad_clip == math.inf


def test_exploration_may_start_at_exactly_one() -> None:
    assert QLearningConfig(eps_min=0.1, eps0=0.9).eps0 == 0.9
    assert QLearningConfig(eps_min=0.3, eps0=0.7).eps_min == 0.3


def test_q_table_too_large_is_refused_before_allocating() -> None:
    start = time.perf_counter()
    with pytest.raises(ResourceError, match=r"Q table .* needs|needs .* Q table") as info:
        QLearning(10**9, 10**6)
    assert "reduce" in str(info.value) and "PiB" in str(info.value)
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=14, formulation="sequential")
    with pytest.raises(ResourceError, match="n_tasks"):
        QLearning.for_env(env)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(("n_states", "n_actions"), [(0, 3), (3, 0), (2**63, 1), (2.5, 3)])
def test_bad_table_sizes(n_states: Any, n_actions: Any) -> None:
    with pytest.raises(ConfigError):
        QLearning(n_states, n_actions)


def test_dqn_replay_too_large_is_refused_before_allocating() -> None:
    pytest.importorskip("torch")
    from twinrl.agents.dqn import DQN

    config = DQNConfig(buffer_capacity=10**9, hidden=(8,))
    start = time.perf_counter()
    with pytest.raises(ResourceError, match="buffer_capacity") as info:
        DQN(100_000, gym.spaces.Discrete(3), config, rng=0)
    assert "replay" in str(info.value)
    with pytest.raises(ResourceError, match="hidden"):
        DQN(
            100,
            gym.spaces.Discrete(3),
            DQNConfig(hidden=(65536,) * 16, buffer_capacity=10, learning_starts=1),
            rng=0,
        )
    assert time.perf_counter() - start < 2.0
