"""Every tabular path refuses a size whose tables would not fit, with one clear error naming the
size and the knob, before it allocates (checked with a small ``available_memory``, never by
allocating)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import twinrl  # noqa: F401  (registers the envs)
from twinrl import algorithms, resources
from twinrl.agents.qlearning import QLearning
from twinrl.assists.twin_agents import TwinAgents
from twinrl.cli import main
from twinrl.envs.edge_scheduling import EdgeParams, sample_tasks
from twinrl.errors import ResourceError
from twinrl.experiments import fused

MIB = 2**20


def _available(monkeypatch: pytest.MonkeyPatch, nbytes: int) -> None:
    monkeypatch.setattr(resources, "available_memory", lambda: nbytes)


def _no_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("a Q table was allocated before the memory check")

    monkeypatch.setattr(QLearning, "__init__", refuse)


def _seq_env(n: int) -> gym.Env[Any, Any]:
    return gym.make("twinrl/EdgeScheduling-v0", n_tasks=n, formulation="sequential")


def test_tabular_bytes_counts_the_table_and_the_twin_copies() -> None:
    table = 1957 * 6 * 8  # N = 6 sequential: num_prefixes(6) = 1957 states x 6 actions
    assert resources.tabular_bytes(1957, 6) == table
    assert resources.tabular_bytes(1957, 6, 500) == table + (2 * 500 + 6) * table


def test_dtaql_is_refused_before_its_table_is_allocated(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _seq_env(6)  # a 94 KiB table: fits alone, not with 500 twin copies in 10 MiB
    _available(monkeypatch, 10 * MIB)
    algorithms.build_algorithm("ql", env, 0)  # the table alone fits
    _no_tables(monkeypatch)
    with pytest.raises(ResourceError) as info:
        algorithms.build_algorithm("dtaql", env, 0, n_agents=500)
    text = str(info.value)
    assert "1957 states x 6 actions" in text and "500 twin agents" in text
    assert "n_tasks" in text and "n_agents" in text and "10.0 MiB" in text


def test_a_table_too_large_alone_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    _available(monkeypatch, 50 * 1024)
    _no_tables(monkeypatch)
    for name in ("ql", "dteql", "dtaql", "dtaql-visit"):
        with pytest.raises(ResourceError, match=r"1957 states x 6 actions.*n_tasks"):
            algorithms.build_algorithm(name, _seq_env(6), 0)


def test_twin_agents_count_without_copying_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = QLearning(1000, 10, rng=0)  # 80 KB
    monkeypatch.setattr(QLearning, "state_dict", lambda self: pytest.fail("copied the table"))
    _available(monkeypatch, 1 * MIB)
    with pytest.raises(ResourceError, match=r"500 twin agents.*reduce n_agents"):
        TwinAgents(500, 10, rng=0).attach(agent)
    assert agent.nbytes == 80_008


def test_fused_backend_refuses_before_enumerating_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    params = EdgeParams(n_tasks=10)
    big = np.random.default_rng(0).uniform(0.5, 1.0, size=(12, 3))  # 12 tasks given to N = 10
    start = time.perf_counter()
    with pytest.raises(ResourceError, match=r"N=12 tasks \(479,001,600 orders\).*n_tasks"):
        fused.run_fused("ql", params, big, budget=10, seed=0)
    assert time.perf_counter() - start < 2.0
    small = sample_tasks(EdgeParams(n_tasks=8), np.random.default_rng(0))
    need = fused.fused_bytes(8, with_twin_agents=True)
    assert need > fused.fused_bytes(8, with_twin_agents=False) > 40320 * 8 * 8
    _available(monkeypatch, need)  # 90% of it is not enough
    with pytest.raises(ResourceError, match="N=8"):
        fused.run_fused("dtaql", EdgeParams(n_tasks=8), small, budget=10, seed=0, n_agents=4)
    fused.run_fused("ql", EdgeParams(n_tasks=8), small, budget=10, seed=0)  # without twins: fits


def test_cli_sequential_n12_exits_with_the_size_and_the_knob(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _available(monkeypatch, 20 * 2**30)
    args = ["train", "--algo", "ql", "--budget", "10", "--set", "env_kwargs.n_tasks=12",
            "--set", "env_kwargs.formulation=sequential", "--out", str(tmp_path / "o"),
            "--no-progress"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "116.4 GiB" in err and "1302061345 states x 12 actions" in err and "n_tasks" in err
    assert "Traceback" not in err
