"""Every params dataclass refuses non-finite, out-of-range and wrongly typed values with an error
naming the field, and accepts numpy scalars and lists, converted to plain Python values."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from twinrl.envs import APSelectionParams, EdgeParams, MultiUAVParams
from twinrl.errors import ConfigError, ConfigTypeError

INF, NAN = math.inf, math.nan


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (EdgeParams, {"resample_tasks": "maybe"}, "resample_tasks"),
        (EdgeParams, {"resample_tasks": 1}, "resample_tasks"),
        (EdgeParams, {"zeta": INF}, "zeta"),
        (EdgeParams, {"zeta": NAN}, "zeta"),
        (EdgeParams, {"zeta": -1.0}, "zeta"),
        (EdgeParams, {"rate": INF}, "rate"),
        (EdgeParams, {"rate": 0.0}, "rate"),
        (EdgeParams, {"f_ser": 1e300}, "f_ser"),
        (EdgeParams, {"n_tasks": 0}, "n_tasks"),
        (EdgeParams, {"n_tasks": 65}, "n_tasks"),
        (EdgeParams, {"n_tasks": 11}, "n_tasks"),
        (EdgeParams, {"n_tasks": 30, "formulation": "sequential"}, "n_tasks"),
        (EdgeParams, {"n_tasks": 64, "formulation": "sequential"}, "n_tasks"),
        (EdgeParams, {"d_range": (0.0, INF)}, "d_range"),
        (EdgeParams, {"d_range": (2.0, 1.0)}, "d_range"),
        (EdgeParams, {"c_range": (0.0,)}, "c_range"),
        (EdgeParams, {"eps_range": "1,5"}, "eps_range"),
        (EdgeParams, {"formulation": "maybe"}, "formulation"),
        (APSelectionParams, {"ap_prices": (INF, 0.5, 0.5, 1.0, 0.5)}, r"ap_prices\[0\]"),
        (APSelectionParams, {"success_reward": INF}, "success_reward"),
        (APSelectionParams, {"failure_penalty": INF}, "failure_penalty"),
        (APSelectionParams, {"w_latency": INF}, "w_latency"),
        (APSelectionParams, {"w_price": NAN}, "w_price"),
        (APSelectionParams, {"busy_threshold": -1.0}, "busy_threshold"),
        (APSelectionParams, {"speed": INF}, "speed"),
        (APSelectionParams, {"road_length": 0.0}, "road_length"),
        (APSelectionParams, {"n_steps": 2.0}, "n_steps"),
        (APSelectionParams, {"ap_radii": (1.0, 1.0, 1.0, 1.0)}, "ap_radii"),
        (APSelectionParams, {"ap_rates": (0.0, 1.0, 1.0, 1.0, 1.0)}, r"ap_rates\[0\]"),
        (APSelectionParams, {"task_probs": (0.5, 0.5, 0.5)}, "task_probs"),
        (APSelectionParams, {"task_probs": (1.5, -0.25, -0.25)}, r"task_probs\[0\]"),
        (APSelectionParams, {"task_deadlines": (0.0, 1.0, 1.0)}, r"task_deadlines\[0\]"),
        (APSelectionParams, {"ap_positions": ()}, "ap_positions"),
        (MultiUAVParams, {"user_speed_std": INF}, "user_speed_std"),
        (MultiUAVParams, {"user_memory": 1.5}, "user_memory"),
        (MultiUAVParams, {"n_users": 10_001}, "n_users"),
        (MultiUAVParams, {"n_uavs": 65}, "n_uavs"),
        (MultiUAVParams, {"n_uavs": True}, "n_uavs"),
        (MultiUAVParams, {"tx_power": INF}, "tx_power"),
        (MultiUAVParams, {"bandwidth": 1e-300}, "bandwidth"),
        (MultiUAVParams, {"uav_height": 0.0}, "uav_height"),
        (MultiUAVParams, {"reward_centre": NAN}, "reward_centre"),
        (MultiUAVParams, {"sensing_radius": INF}, "sensing_radius"),
        (MultiUAVParams, {"hangar": (0.0, 0.0, 0.0)}, "hangar"),
        (MultiUAVParams, {"hangar": (0.0, NAN)}, r"hangar\[1\]"),
    ],
)
def test_bad_values_raise_config_errors_naming_the_field(
    cls: type[Any], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError, match=field) as info:
        cls(**kwargs)
    assert isinstance(info.value, ValueError)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(EdgeParams, {"zeta": "1"}), (EdgeParams, {"n_tasks": 8.0}), (EdgeParams, {"rate": None}),
     (APSelectionParams, {"speed": [20.0]}), (MultiUAVParams, {"slot": True})],
)  # fmt: skip
def test_wrong_types_raise_config_type_errors(cls: type[Any], kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigTypeError, match=next(iter(kwargs))) as info:
        cls(**kwargs)
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    ("cls", "numpy_kwargs", "plain_kwargs"),
    [
        (EdgeParams, {"n_tasks": np.int64(5), "zeta": np.float64(0.5),
                      "resample_tasks": np.bool_(True), "d_range": [np.float32(0.0), 10]},
         {"n_tasks": 5, "zeta": 0.5, "resample_tasks": True, "d_range": (0.0, 10.0)}),
        (APSelectionParams, {"n_steps": np.int32(10), "ap_prices": np.array([2, 0.5, 0.5, 1, 0.5]),
                             "task_probs": [0.4, 0.4, np.float64(0.2)]},
         {"n_steps": 10, "ap_prices": (2.0, 0.5, 0.5, 1.0, 0.5), "task_probs": (0.4, 0.4, 0.2)}),
        (MultiUAVParams, {"n_users": np.int64(3), "hangar": [np.int64(1), 2.0],
                          "sensing_radius": np.float64(5)},
         {"n_users": 3, "hangar": (1.0, 2.0), "sensing_radius": 5.0}),
    ],
)  # fmt: skip
def test_numpy_scalars_and_lists_give_plain_values(
    cls: type[Any], numpy_kwargs: dict[str, Any], plain_kwargs: dict[str, Any]
) -> None:
    converted = cls(**numpy_kwargs)
    assert converted == cls(**plain_kwargs)
    for f in dataclasses.fields(cls):
        value = getattr(converted, f.name)
        assert not isinstance(value, (np.generic, np.ndarray, list)), f.name
        if isinstance(value, tuple):
            assert all(type(v) in (int, float) for v in value), f.name


def test_largest_sequential_index_is_accepted_and_features_go_further() -> None:
    EdgeParams(n_tasks=20, formulation="sequential")
    EdgeParams(n_tasks=64, formulation="sequential", observation="features")
