"""Property-based fuzzing of every config field: a bad value for any field of TrainConfig, of the
agent configs (via ``agent``) or of the env params (via ``env_kwargs``) raises ConfigError or
ConfigTypeError whose message names the key, quickly. The fields come from the dataclasses, so a
new field is fuzzed automatically."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinrl.agents.dqn import DQNConfig
from twinrl.agents.qlearning import QLearningConfig
from twinrl.config import ENV_PARAMS, TrainConfig
from twinrl.errors import ConfigError

NESTED = st.lists(st.lists(st.integers(), max_size=3), min_size=1, max_size=3)
"""Lists of lists: no field takes one."""
BAD = st.one_of(
    st.just(math.nan),
    st.just(math.inf),
    st.just(-math.inf),
    st.just(-(10**30)),
    st.just(10**30),
    st.just(1e300),
    st.text(max_size=20),
    st.lists(st.just(math.nan), min_size=1, max_size=5),
    st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=3),
    NESTED,
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    st.just(None),
    st.just(object()),
)
"""Values that no numeric, boolean, choice or tuple field accepts (``None`` is allowed only for
the optional fields ``eval_every`` and ``sensing_radius``, which are skipped for it below)."""

OPTIONAL = {"eval_every", "sensing_radius"}
STRING_FIELDS = {"env", "algo", "backend", "tie_break", "formulation", "observation",
                 "action_space"}  # fmt: skip


def _cases() -> list[tuple[str, str, str]]:
    """(where, owner, field): where is "top", "agent" or "env_kwargs"; owner the algo or env."""
    cases = [("top", "", f.name) for f in dataclasses.fields(TrainConfig)]
    for algo, cls in (("ql", QLearningConfig), ("dqn", DQNConfig)):
        cases += [("agent", algo, f.name) for f in dataclasses.fields(cls)]
    for env, cls in ENV_PARAMS.items():
        cases += [("env_kwargs", env, f.name) for f in dataclasses.fields(cls)]
    return cases


CASES = _cases()


def _build(where: str, owner: str, name: str, value: Any) -> None:
    if where == "top":
        TrainConfig(**{name: value})
    elif where == "agent":
        TrainConfig(algo=owner, agent={name: value})
    else:
        TrainConfig(env=owner, algo="dqn", env_kwargs={name: value})


def _is_accepted(name: str, value: Any) -> bool:
    """A drawn value some field legitimately accepts (skip it rather than assert)."""
    if value is None and name in OPTIONAL:
        return True
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "grad_clip" and numeric and value > 0:  # documented: (0, inf], inf = no clipping
        return True
    if name in ("env_kwargs", "agent") and isinstance(value, dict) and not value:
        return True
    # A mapping of unknown keys is refused, but naming the unknown key, not the field.
    return name in STRING_FIELDS and isinstance(value, str) and value in _valid_strings()


def _valid_strings() -> set[str]:
    from twinrl.algorithms import ALGORITHMS

    return {*ENV_PARAMS, *ALGORITHMS, "auto", "vectorized", "serial", "random", "first", "order",
            "sequential", "index", "features", "multi", "flat"}  # fmt: skip


def _check(case: tuple[str, str, str], value: Any) -> None:
    where, owner, name = case
    if _is_accepted(name, value):
        return
    start = time.perf_counter()
    with pytest.raises((ConfigError, ValueError, TypeError)) as info:
        _build(where, owner, name, value)
    assert time.perf_counter() - start < 1.0
    assert isinstance(info.value, ConfigError), repr(info.value)
    message = str(info.value)
    if where == "top" and name in ("env_kwargs", "agent") and isinstance(value, dict):
        return  # unknown keys: the message names those keys
    assert name in message, (case, message)
    assert len(message) < 2000


@settings(max_examples=50, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(CASES), value=BAD)
def test_bad_values_raise_config_errors_naming_the_key(
    case: tuple[str, str, str], value: Any
) -> None:
    _check(case, value)


@pytest.mark.slow
@settings(max_examples=3000, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(CASES), value=BAD)
def test_bad_values_raise_config_errors_naming_the_key_many(
    case: tuple[str, str, str], value: Any
) -> None:
    _check(case, value)


@pytest.mark.parametrize("case", CASES, ids=[f"{w}:{o}:{n}" for w, o, n in CASES])
def test_nan_is_refused_for_every_field(case: tuple[str, str, str]) -> None:
    _check(case, math.nan)
