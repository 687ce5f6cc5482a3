from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import twinrl  # noqa: F401  (registers the envs)
from twinrl.envs import edge_kernels as k
from twinrl.envs.edge_scheduling import EdgeParams, EdgeState

# Three tasks, R = 1 bit/s, f_ser = 1 cycle/s so that times are easy to check by hand.
# task: (d, c, eps) -> tx = d, ex = d * c
TASKS = np.array([[2.0, 1.0, 3.0], [1.0, 3.0, 10.0], [3.0, 0.5, 5.0]])
# Order (0, 1, 2): ready 2, 3, 6; comp: 2+2=4, max(3,4)+3=7, max(6,7)+1.5=8.5; sum 19.5;
# deadlines 3, 10, 5 -> task 0 (4 > 3) and task 2 (8.5 > 5) miss.
# Order (1, 0, 2): ready 1, 3, 6; comp: 1+3=4, max(3,4)+2=6, max(6,6)+1.5=7.5; sum 17.5; misses 0 (6>3), 2 (7.5>5).


def test_cost_kernel_matches_hand_computed_instance() -> None:
    tx, ex = k.task_times(TASKS, rate=1.0, f_ser=1.0)
    orders = np.array([[0, 1, 2], [1, 0, 2]])
    np.testing.assert_array_equal(k.completion_times(tx, ex, orders), [[4, 7, 8.5], [4, 6, 7.5]])
    np.testing.assert_array_equal(k.order_costs(tx, ex, TASKS[:, 2], orders, 0.0), [19.5, 17.5])
    np.testing.assert_array_equal(k.order_costs(tx, ex, TASKS[:, 2], orders, 10.0), [39.5, 37.5])
    assert k.order_cost_scalar(tx, ex, TASKS[:, 2], orders[1], 10.0) == 37.5


def test_env_step_reward_is_minus_the_hand_computed_cost() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3, rate=1.0, f_ser=1.0, zeta=10.0)
    env.reset(options={"tasks": TASKS})
    action = int(k.rank_permutations(np.array([[1, 0, 2]]))[0])
    _, reward, terminated, truncated, info = env.step(action)
    assert reward == -37.5 and terminated and not truncated
    assert info["miss_ratio"] == pytest.approx(2 / 3) and info["mean_delay"] == pytest.approx(
        17.5 / 3
    )


def test_sequential_return_equals_order_cost() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3, rate=1.0, f_ser=1.0, zeta=10.0,
                   formulation="sequential")  # fmt: skip
    _, info = env.reset(options={"tasks": TASKS})
    total = 0.0
    for task in (1, 0, 2):
        assert info["action_mask"][task] == 1
        _, reward, terminated, _, info = env.step(task)
        total += reward
    assert terminated and total == pytest.approx(-37.5)


@pytest.mark.parametrize("env_id", ["twinrl/EdgeScheduling-v0"])  # edge-only kwargs
@pytest.mark.parametrize("formulation", ["order", "sequential"])
@pytest.mark.parametrize("observation", ["index", "features"])
def test_registered_envs_pass_gymnasium_check_env(
    env_id: str, formulation: str, observation: str
) -> None:
    env = gym.make(env_id, n_tasks=4, formulation=formulation, observation=observation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)


def test_permutation_rank_round_trip() -> None:
    orders = k.unrank_permutations(np.arange(math.factorial(5)), 5)
    assert len({tuple(o) for o in orders}) == 120
    assert sorted(map(tuple, orders)) == [tuple(o) for o in orders]  # lexicographic
    np.testing.assert_array_equal(k.rank_permutations(orders), np.arange(120))


def test_prefix_index_is_a_bijection() -> None:
    import itertools

    n = 4
    seen = set()
    for length in range(n + 1):
        for prefix in itertools.permutations(range(n), length):
            padded = np.array([*prefix, *([-1] * (n - length))])
            seen.add(int(k.rank_prefixes(padded[None], np.array([length]), n)[0]))
    assert seen == set(range(k.num_prefixes(n)))


def test_get_set_state_round_trip_and_snapshot_immutable() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=5, formulation="sequential")
    env.reset(seed=3)
    env.step(2)
    snap = env.unwrapped.get_state()
    with pytest.raises(ValueError):
        snap.order[0] = 4  # read-only snapshot
    a = env.step(0)
    env.unwrapped.set_state(snap)
    b = env.step(0)
    assert a[1] == b[1] and np.array_equal(a[0], b[0])


def test_reset_keeps_instance_without_seed_and_redraws_with_seed() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4)
    env.reset(seed=1)
    first = env.unwrapped.tasks.copy()
    env.reset()
    np.testing.assert_array_equal(env.unwrapped.tasks, first)
    env.reset(seed=2)
    assert not np.array_equal(env.unwrapped.tasks, first)
    env.reset(seed=1)
    np.testing.assert_array_equal(env.unwrapped.tasks, first)


@pytest.mark.parametrize("action", [-1, 24, 1.5, "3", None, True])
def test_bad_order_actions_raise(action: object) -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


def test_already_sent_task_raises_not_remapped() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4, formulation="sequential")
    env.reset(seed=0)
    env.step(1)
    with pytest.raises(ValueError, match="already transmitted"):
        env.step(1)


def test_step_after_termination_and_before_reset_raise() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=3).unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(RuntimeError, match="terminated"):
        env.step(0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_tasks": 0}, "n_tasks"),
        ({"n_tasks": 11}, "sequential"),
        ({"n_tasks": 2.5}, "n_tasks"),
        ({"rate": 0.0}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"zeta": -1.0}, "zeta"),
        ({"d_range": (2.0, 1.0)}, "d_range"),
        ({"formulation": "greedy"}, "formulation"),
        ({"observation": "pixels"}, "observation"),
    ],
)
def test_bad_params_raise_naming_the_value(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        EdgeParams(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "tasks", [np.ones((3, 3)), np.full((4, 3), np.nan), -np.ones((4, 3)), np.ones((4, 2))]
)
def test_bad_reset_tasks_raise(tasks: np.ndarray) -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4)
    with pytest.raises(ValueError, match="tasks"):
        env.reset(options={"tasks": tasks})


def test_set_state_rejects_foreign_state() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4).unwrapped
    env.reset(seed=0)
    with pytest.raises(TypeError):
        env.set_state({"tasks": 1})
    other = gym.make("twinrl/EdgeScheduling-v0", n_tasks=5).unwrapped
    other.reset(seed=0)
    with pytest.raises(ValueError, match="n_tasks"):
        env.set_state(other.get_state())


def test_unknown_reset_option_raises() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4)
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"task": 1})


def test_state_dataclass_batches() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4).unwrapped
    env.reset(seed=0)
    state: EdgeState = env.get_state()
    batch = state.tile(3)
    assert batch.order.shape == (3, 4) and batch.item(2).tasks.shape == (4, 3)
