"""Tests of the edge scheduling baselines: exact solvers against enumeration, and heuristics."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twinrl.baselines import (
    HEURISTICS,
    SOLVERS,
    Schedule,
    brute_force,
    edf,
    exact_optimum,
    johnson,
    local_search,
    solve,
    spt,
    spt_transmission,
    worst_order,
)
from twinrl.baselines import edge_exact as bl
from twinrl.envs import edge_kernels as k
from twinrl.envs.edge_scheduling import EdgeParams, EdgeSchedulingEnv, sample_tasks

# rate = 1 Mbit/s and f_ser = 1 GHz give tx = d / 1e6 and ex = d c / 1e9, exact in float64 below.
UNIT = {"rate": 1e6, "f_ser": 1e9}

# tx = [1, 2, 3], ex = [2, 1, 3], eps = [3, 3.5, 8.5].
HAND_TASKS = np.array([[1e6, 2000.0, 3.0], [2e6, 500.0, 3.5], [3e6, 1000.0, 8.5]])
# Per order: ready times (cumulative tx), completions C_j = max(ready_j, C_{j-1}) + ex, their sum:
#   rank 0 (0,1,2): ready 1,3,6  C 1+2=3, max(3,3)+1=4, max(6,4)+3=9   sum 16  miss: 4>3.5, 9>8.5
#   rank 1 (0,2,1): ready 1,4,6  C 3,     max(4,3)+3=7, max(6,7)+1=8   sum 18  miss: 8>3.5
#   rank 2 (1,0,2): ready 2,3,6  C 2+1=3, max(3,3)+2=5, max(6,5)+3=9   sum 17  miss: 5>3, 9>8.5
#   rank 3 (1,2,0): ready 2,5,6  C 3,     max(5,3)+3=8, max(6,8)+2=10  sum 21  miss: 10>3
#   rank 4 (2,0,1): ready 3,4,6  C 3+3=6, max(4,6)+2=8, max(6,8)+1=9   sum 23  miss: 8>3, 9>3.5
#   rank 5 (2,1,0): ready 3,5,6  C 6,     max(5,6)+1=7, max(6,7)+2=9   sum 22  miss: 7>3.5, 9>3
# (task 0 completing at exactly 3.0 = eps in ranks 0 and 1 is *not* a miss: the test is C > eps.)
HAND_SUMS = [16.0, 18.0, 17.0, 21.0, 23.0, 22.0]
HAND_MISSES = [2, 1, 2, 1, 2, 2]

CONFIGS = [
    pytest.param({}, id="default"),
    pytest.param({"zeta": 2.0}, id="zeta2"),
    pytest.param({"rate": 50e6}, id="fast-rate"),
    pytest.param({"rate": 50e6, "zeta": 2.0, "eps_range": (0.1, 1.0)}, id="fast-rate-zeta2"),
    pytest.param({"rate": 20e6, "zeta": 0.5, "c_range": (0.0, 3000.0)}, id="balanced"),
]


def _params(n: int, **kwargs: object) -> EdgeParams:
    return EdgeParams(n_tasks=n, formulation="sequential", **kwargs)  # type: ignore[arg-type]


def _tasks(params: EdgeParams, seed: int) -> np.ndarray:
    return sample_tasks(params, np.random.default_rng(seed))


def _cost(params: EdgeParams, tasks: np.ndarray, order: np.ndarray) -> float:
    tx, ex = k.task_times(tasks, params.rate, params.f_ser)
    return float(k.order_costs(tx, ex, tasks[:, 2], np.asarray(order)[None, :], params.zeta)[0])


def _assert_valid(schedule: Schedule, params: EdgeParams, tasks: np.ndarray) -> None:
    n = tasks.shape[0]
    assert isinstance(schedule, Schedule)
    assert schedule.order.dtype == np.int64
    assert schedule.order.shape == (n,)
    assert sorted(schedule.order.tolist()) == list(range(n))
    assert schedule.cost == _cost(params, tasks, schedule.order)  # bit for bit


def _dp(params: EdgeParams, tasks: np.ndarray, upper_bound: float = math.inf) -> Schedule:
    """The subset DP alone (exact_optimum enumerates for N <= 8)."""
    tx, ex = k.task_times(tasks, params.rate, params.f_ser)
    order = bl._subset_dp(tx, ex, tasks[:, 2].copy(), params.zeta, upper_bound)
    assert order is not None
    return Schedule(order, _cost(params, tasks, order))


# --- hand-computed instance ----------------------------------------------------------------------


@pytest.mark.parametrize(("zeta", "best", "worst"), [(0.0, 0, 4), (10.0, 1, 4)])
def test_hand_computed_three_tasks(zeta: float, best: int, worst: int) -> None:
    params = EdgeParams(n_tasks=3, zeta=zeta, **UNIT)  # type: ignore[arg-type]
    expected = [s + zeta * m for s, m in zip(HAND_SUMS, HAND_MISSES, strict=True)]
    orders = k.unrank_permutations(np.arange(6), 3)
    for order, cost in zip(orders, expected, strict=True):
        assert _cost(params, HAND_TASKS, order) == cost
    opt, bad = brute_force(params, HAND_TASKS), worst_order(params, HAND_TASKS)
    assert opt.rank == best and opt.cost == expected[best]
    assert bad.rank == worst and bad.cost == expected[worst]
    assert opt.order.tolist() == list(orders[best])
    assert exact_optimum(params, HAND_TASKS) == opt
    assert _dp(params, HAND_TASKS).cost == opt.cost
    # 16 = optimum for zeta = 0 (rank 0); 28 = 18 + 10 (rank 1) for zeta = 10; worst 23 / 43.
    assert (opt.cost, bad.cost) == ((16.0, 23.0) if zeta == 0 else (28.0, 43.0))


def test_brute_force_ties_pick_lowest_rank() -> None:
    params = EdgeParams(n_tasks=4)
    tasks = np.tile([1e6, 300.0, 2.0], (4, 1))  # identical tasks: every order costs the same
    assert brute_force(params, tasks).order.tolist() == [0, 1, 2, 3]
    assert worst_order(params, tasks).order.tolist() == [0, 1, 2, 3]


def test_brute_force_chunks_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    params = _params(7, zeta=1.0)
    tasks = _tasks(params, 3)
    whole = brute_force(params, tasks), worst_order(params, tasks)
    monkeypatch.setattr(bl, "BRUTE_FORCE_CHUNK", 997)  # many ragged chunks
    assert (brute_force(params, tasks), worst_order(params, tasks)) == whole


# --- exact optimum -------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("n", range(1, 9))
def test_dp_matches_brute_force(config: dict[str, object], n: int) -> None:
    for seed in range(4):
        params = _params(n, **config)
        tasks = _tasks(params, seed)
        reference = brute_force(params, tasks)
        assert exact_optimum(params, tasks) == reference  # enumeration for N <= 8
        # The DP itself, unbounded and with the tightest possible upper bound (the optimum cost:
        # any invalid lower bound would prune the optimal path).
        for upper in (math.inf, reference.cost):
            found = _dp(params, tasks, upper)
            _assert_valid(found, params, tasks)
            assert found.cost == pytest.approx(reference.cost, rel=1e-12, abs=0)
        assert worst_order(params, tasks).cost >= reference.cost


@pytest.mark.parametrize("config", CONFIGS)
def test_dp_with_duplicate_tasks(config: dict[str, object]) -> None:
    params = _params(8, **config)
    for seed in range(3):
        tasks = _tasks(params, seed)
        tasks[1::2] = tasks[::2]  # four pairs of identical tasks
        reference = brute_force(params, tasks)
        for upper in (math.inf, reference.cost):
            assert _dp(params, tasks, upper).cost == pytest.approx(reference.cost, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 3), st.sampled_from([0.0, 2.0, 3.0, 5.0, 8.0])),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from([0.0, 1.0, 3.0]),
)
def test_dp_exact_on_integer_instances_with_ties(
    rows: list[tuple[int, int, float]], zeta: float
) -> None:
    # rate = f_ser = 1: tx = d, ex = d c are small integers, so costs are exact and ties abound.
    params = EdgeParams(n_tasks=len(rows), rate=1.0, f_ser=1.0, zeta=zeta)
    tasks = np.array(rows, dtype=np.float64)
    reference = brute_force(params, tasks)
    for upper in (math.inf, reference.cost):
        assert _dp(params, tasks, upper).cost == reference.cost


@pytest.mark.parametrize("config", CONFIGS)
def test_lower_bound_is_valid(config: dict[str, object]) -> None:
    # The bound on the cost of the unsent tasks never exceeds the best completion of the prefix.
    n = 6
    bits = np.left_shift(np.int64(1), np.arange(n, dtype=np.int64))
    rng = np.random.default_rng(0)
    for seed in range(6):
        params = _params(n, **config)
        tasks = _tasks(params, seed)
        tx, ex = k.task_times(tasks, params.rate, params.f_ser)
        eps = tasks[:, 2].copy()
        perm = rng.permutation(n)
        for length in range(n + 1):
            prefix = perm[:length]
            rest = [i for i in range(n) if i not in set(prefix.tolist())]
            completions = np.array([[*prefix, *tail] for tail in itertools.permutations(rest)])
            to_go = k.order_costs(tx, ex, eps, completions, params.zeta)
            if length:
                to_go = to_go - k.order_costs(tx, ex, eps, prefix[None, :], params.zeta)[0]
            t_comp = k.completion_times(tx, ex, prefix[None, :])[0] if length else np.zeros(1)
            mask = np.array([int(bits[prefix].sum())], dtype=np.int64)
            bound = bl._remaining_lower_bound(
                mask,
                np.array([tx[prefix].sum()]),
                np.array([t_comp[-1] if length else 0.0]),
                tx,
                ex,
                eps,
                params.zeta,
                bits,
            )[0]
            assert bound <= to_go.min() * (1 + 1e-12) + 1e-12


@pytest.mark.parametrize("config", CONFIGS)
def test_exact_optimum_dp_path_matches_brute_force_n9(config: dict[str, object]) -> None:
    params = _params(9, **config)
    tasks = _tasks(params, 11)
    found = exact_optimum(params, tasks)
    _assert_valid(found, params, tasks)
    assert found.cost == pytest.approx(brute_force(params, tasks).cost, rel=1e-12, abs=0)


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_exact_optimum_matches_brute_force_n10(config: dict[str, object]) -> None:
    params = _params(10, **config)
    tasks = _tasks(params, 5)
    found = exact_optimum(params, tasks)
    assert found.cost == pytest.approx(brute_force(params, tasks).cost, rel=1e-12, abs=0)


@pytest.mark.parametrize("config", CONFIGS)
def test_exact_optimum_n12_beats_local_search(config: dict[str, object]) -> None:
    params = _params(12, **config)
    for seed in range(2):
        tasks = _tasks(params, seed)
        found = exact_optimum(params, tasks)
        _assert_valid(found, params, tasks)
        assert found.cost <= local_search(params, tasks).cost
        for name in HEURISTICS:
            assert found.cost <= solve(name, params, tasks).cost


def test_exact_optimum_n14_is_fast() -> None:
    params = _params(14)
    start = time.perf_counter()
    for seed in range(5):
        tasks = _tasks(params, seed)
        _assert_valid(exact_optimum(params, tasks, time_limit=60.0), params, tasks)
    assert (time.perf_counter() - start) / 5 < 10.0


def test_exact_optimum_n14_with_deadline_penalty() -> None:
    for config in ({"zeta": 2.0, "eps_range": (0.5, 3.0)}, {"rate": 20e6, "zeta": 1.0}):
        params = _params(14, **config)
        for seed in range(5):
            tasks = _tasks(params, seed)
            start = time.perf_counter()
            found = exact_optimum(params, tasks)
            assert time.perf_counter() - start < 10.0
            assert found.cost <= local_search(params, tasks).cost


def test_exact_optimum_time_limit() -> None:
    params = _params(12, zeta=2.0)
    with pytest.raises(TimeoutError, match="time limit"):
        exact_optimum(params, _tasks(params, 0), time_limit=1e-9)
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="time_limit"):
            exact_optimum(params, _tasks(params, 0), time_limit=bad)


def test_exact_optimum_ignores_params_n_tasks() -> None:
    params = EdgeParams(n_tasks=8)
    tasks = _tasks(_params(5), 0)
    assert exact_optimum(params, tasks) == brute_force(_params(5), tasks)


# --- heuristics ----------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("name", list(HEURISTICS))
def test_heuristics_valid_and_not_below_optimum(name: str, config: dict[str, object]) -> None:
    for n in (1, 2, 5, 7):
        params = _params(n, **config)
        for seed in range(3):
            tasks = _tasks(params, seed)
            schedule = HEURISTICS[name](params, tasks)
            _assert_valid(schedule, params, tasks)
            assert schedule.cost >= brute_force(params, tasks).cost
            assert schedule == solve(name, params, tasks)  # deterministic


def test_sorting_rules() -> None:
    params = _params(9, zeta=1.0)
    tasks = _tasks(params, 4)
    tasks[[2, 5, 7], 2] = 2.5  # tied deadlines: kept in index order
    tx, ex = k.task_times(tasks, params.rate, params.f_ser)
    order = edf(params, tasks).order
    assert np.all(np.diff(tasks[order, 2]) >= 0)
    tied = [i for i in order.tolist() if i in (2, 5, 7)]
    assert tied == [2, 5, 7]
    assert np.all(np.diff((tx + ex)[spt(params, tasks).order]) >= 0)
    assert np.all(np.diff(tx[spt_transmission(params, tasks).order]) >= 0)


def test_johnson_known_instance() -> None:
    # tx = [4, 1, 3, 2, 5], ex = [2, 3, 5, 4, 1] (d = 1e6 tx, c = 1000 ex / tx).
    # tx <= ex: tasks 1, 2, 3 by increasing tx -> 1, 3, 2; then tasks 0, 4 by decreasing ex -> 0, 4.
    tx = np.array([4.0, 1.0, 3.0, 2.0, 5.0])
    ex = np.array([2.0, 3.0, 5.0, 4.0, 1.0])
    tasks = np.stack([tx * 1e6, 1000.0 * ex / tx, np.full(5, 100.0)], axis=1)
    params = EdgeParams(n_tasks=5, **UNIT)  # type: ignore[arg-type]
    schedule = johnson(params, tasks)
    assert schedule.order.tolist() == [1, 3, 2, 0, 4]
    # Johnson's rule minimizes the makespan: compare with every order.
    tx_k, ex_k = k.task_times(tasks, params.rate, params.f_ser)
    orders = k.unrank_permutations(np.arange(math.factorial(5)), 5)
    makespans = k.completion_times(tx_k, ex_k, orders)[:, -1]
    own = k.completion_times(tx_k, ex_k, schedule.order[None, :])[0, -1]
    assert own == pytest.approx(makespans.min(), rel=1e-12)
    assert own == pytest.approx(16.0, rel=1e-12)  # 1 + 2 + 3 + 4 + 5 transmissions + last ex 1


def _neighbours(order: np.ndarray) -> np.ndarray:
    n = order.shape[0]
    out = []
    for i, j in itertools.combinations(range(n), 2):
        swapped = order.copy()
        swapped[[i, j]] = swapped[[j, i]]
        out.append(swapped)
    for i in range(n):
        for j in range(n):
            if i != j:
                out.append(np.insert(np.delete(order, i), j, order[i]))
    return np.array(out)


@pytest.mark.parametrize("config", CONFIGS)
def test_local_search_improves_and_stops_at_local_optimum(config: dict[str, object]) -> None:
    rng = np.random.default_rng(1)
    for n in (2, 6, 9):
        params = _params(n, **config)
        tasks = _tasks(params, n)
        for _ in range(3):
            start = rng.permutation(n)
            result = local_search(params, tasks, start=start)
            _assert_valid(result, params, tasks)
            assert result.cost <= _cost(params, tasks, start)
            costs = [_cost(params, tasks, o) for o in _neighbours(result.order)]
            assert min(costs) >= result.cost
        default = local_search(params, tasks)
        best_rule = min(HEURISTICS[name](params, tasks).cost for name in ("edf", "spt", "spt_tx"))
        assert default.cost <= min(best_rule, johnson(params, tasks).cost)


def test_local_search_round_limit_and_single_task() -> None:
    params = _params(8, zeta=1.0)
    tasks = _tasks(params, 0)
    start = np.arange(8)[::-1].copy()
    assert local_search(params, tasks, start=start, max_rounds=0).order.tolist() == start.tolist()
    one = local_search(params, tasks, start=start, max_rounds=1)
    assert one.cost <= _cost(params, tasks, start)
    single = np.array([[1e6, 100.0, 1.0]])
    assert local_search(_params(1), single).order.tolist() == [0]


# --- schedules, dispatch, agreement with the env -------------------------------------------------


def test_solve_dispatches_every_name() -> None:
    params = _params(6, zeta=1.0)
    tasks = _tasks(params, 2)
    assert set(SOLVERS) == {*HEURISTICS, "optimum"}
    assert set(HEURISTICS) == {"edf", "spt", "spt_tx", "johnson", "local_search"}
    assert solve("optimum", params, tasks) == exact_optimum(params, tasks)
    assert solve("spt_tx", params, tasks) == spt_transmission(params, tasks)
    assert solve("local_search", params, tasks) == local_search(params, tasks)


def test_schedule_is_immutable_and_rank_is_env_action() -> None:
    params = EdgeParams(n_tasks=6, zeta=2.0)
    env = EdgeSchedulingEnv(n_tasks=6, zeta=2.0)
    tasks = _tasks(params, 7)
    best = brute_force(params, tasks)
    with pytest.raises(ValueError):
        best.order[0] = 1
    env.reset(options={"tasks": tasks})
    _, reward, terminated, _, info = env.step(best.rank)
    assert terminated and reward == -best.cost and info["cost"] == best.cost


# --- bad inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", [*SOLVERS, "brute_force", "worst_order"])
def test_bad_tasks(solver: str) -> None:
    fn = {"brute_force": brute_force, "worst_order": worst_order, **SOLVERS}[solver]
    params = EdgeParams(n_tasks=3)
    good = _tasks(params, 0)
    for bad in (good[:, :2], good[0], np.zeros((0, 3)), good[None]):
        with pytest.raises(ValueError, match=r"shape \(N, 3\).*got shape"):
            fn(params, bad)
    nan = good.copy()
    nan[1, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        fn(params, nan)
    negative = good.copy()
    negative[2, 1] = -1.0
    with pytest.raises(ValueError, match="non-negative"):
        fn(params, negative)
    with pytest.raises(TypeError, match="numeric array"):
        fn(params, [["a", "b", "c"]])
    with pytest.raises(TypeError, match="EdgeParams"):
        fn({"rate": 1.0}, good)  # type: ignore[arg-type]


def test_enumeration_limit() -> None:
    params = _params(11)
    tasks = _tasks(params, 0)
    with pytest.raises(ValueError, match=r"N <= 10, got N=11"):
        brute_force(params, tasks)
    with pytest.raises(ValueError, match=r"N <= 10, got N=11"):
        worst_order(params, tasks)


def test_unknown_solver_name() -> None:
    params = EdgeParams(n_tasks=3)
    with pytest.raises(ValueError, match=r"unknown solver 'lpt'; valid names: edf, spt, .*optimum"):
        solve("lpt", params, _tasks(params, 0))


def test_bad_local_search_arguments() -> None:
    params = EdgeParams(n_tasks=4)
    tasks = _tasks(params, 0)
    for start in ([0, 1, 2], [0, 1, 1, 2], [0.0, 1.0, 2.0, 3.0], [1, 2, 3, 4]):
        with pytest.raises(ValueError, match=r"start must be a permutation of range\(4\)"):
            local_search(params, tasks, start=np.array(start))
    with pytest.raises(ValueError, match="max_rounds"):
        local_search(params, tasks, max_rounds=-1)
    with pytest.raises(TypeError, match="max_rounds"):
        local_search(params, tasks, max_rounds=1.5)  # type: ignore[arg-type]
