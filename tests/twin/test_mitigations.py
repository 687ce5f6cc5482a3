"""Mitigations of an imperfect twin: domain averaging, risk over domains, when to start, and
pre-training in the twin."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import twinrl
from twinrl.agents import QLearning
from twinrl.assists import ActionTrials, SafeExploration
from twinrl.assists.base import StepContext
from twinrl.testing import check_twin_matches, check_twinnable
from twinrl.training import START_WINDOW, pretrain_in_twin
from twinrl.twin import DigitalTwin, Fidelity

EDGE = {"n_tasks": 5, "formulation": "sequential"}


def _trial_error(average: int, seed: int) -> float:
    env = gym.make("twinrl/EdgeScheduling-v0", **EDGE)
    env.reset(seed=seed)
    exact = DigitalTwin(env).trial(env.unwrapped.get_state(), np.arange(5)).reward
    twin = DigitalTwin(env, fidelity=Fidelity(noise={"tasks": 0.3}, seed=seed), average=average)
    twin.mirror(env, 1, episode_start=True, action=None)
    return float(np.abs(twin.trial_identical(np.arange(5)).reward - exact).mean())


def test_domain_averaging_shrinks_the_error_of_unbiased_noise() -> None:
    single = np.mean([_trial_error(1, s) for s in range(30)])
    averaged = np.mean([_trial_error(16, s) for s in range(30)])
    assert averaged < 0.5 * single  # ~1/sqrt(16) of the error for small unbiased noise


def test_averaging_counts_its_work_and_is_exact_for_a_perfect_twin() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", **EDGE)
    env.reset(seed=0)
    twin = DigitalTwin(env, average=4)
    twin.mirror(env, 1, episode_start=True, action=None)
    out = twin.trial_identical(np.arange(3))
    exact = DigitalTwin(env).trial(env.unwrapped.get_state(), np.arange(3))
    assert out.reward.tobytes() == exact.reward.tobytes() and twin.evaluations == 12


def test_safe_exploration_vetoes_by_the_failure_probability_over_domains() -> None:
    env = gym.make("twinrl/APSelection-v0")
    env.reset(seed=2)
    for a in (1, 0, 3):
        env.step(a)
    twin = DigitalTwin(env, fidelity=Fidelity(noise={"ap_free_at": 2.0}, seed=1), average=8)
    twin.mirror(env, 1, episode_start=True, action=None)
    risk = twin.trial_identical(np.arange(5)).info["failed"]
    assert ((risk >= 0) & (risk <= 1)).all()
    agent = QLearning.for_env(env, rng=0)
    for action in range(5):
        safe = SafeExploration(5, audit_only=True)
        safe.vet(StepContext(1, 0, None, action, twin), agent)
        assert safe.vetoed + safe.unavoidable == int(risk[action] > 0)
    # the threshold: an estimated failure probability of 0.4 everywhere is vetoed at tau < 0.4
    for tau, vetoed in ((0.3, 1), (0.4, 0), (0.5, 0)):
        safe = SafeExploration(5, risk=tau, audit_only=True,
                               unsafe=lambda out: np.full(out.reward.shape, 0.4))  # fmt: skip
        safe.vet(StepContext(1, 0, None, 0, twin), agent)
        assert safe.vetoed + safe.unavoidable == vetoed


def test_assists_wait_until_the_twin_is_accurate_enough() -> None:
    def run(fidelity: Fidelity, threshold: float) -> twinrl.Run:
        env = gym.make("twinrl/APSelection-v0")
        agent = QLearning.for_env(env, rng=0)
        twin = DigitalTwin(env, fidelity=fidelity)
        return twinrl.train(env, agent, assists=[ActionTrials(2, 5, rng=1)], twin=twin,
                            budget=100, seed=0, evaluate=False, start_below=threshold)  # fmt: skip

    exact = run(Fidelity(), 0.0)
    assert exact.twin_started == START_WINDOW + 1
    assert exact.twin_evaluations == (100 - START_WINDOW) * 2
    never = run(Fidelity(bias={"ap_rates": -0.8}), 1e-9)
    assert never.twin_started is None and never.twin_evaluations == 0
    assert never.twin_error["reward"] > 0


def test_pretraining_runs_in_the_twins_model_and_never_touches_the_physical_env() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", n_tasks=4)
    env.reset(seed=0)
    before = env.unwrapped.get_state()
    twin = DigitalTwin(env, fidelity=Fidelity(bias={"rate": 0.25}))
    model = twin.model_env()
    assert model.unwrapped is not env.unwrapped
    assert model.params.rate == env.unwrapped.params.rate * 1.25
    agent = QLearning.for_env(env, rng=0)
    run = pretrain_in_twin(twin, agent, budget=200, seed=0, evaluate=False)
    assert run.iterations == 200 and np.abs(agent.q).sum() > 0
    after = env.unwrapped.get_state()
    assert before.tasks.tobytes() == after.tasks.tobytes() and before.rng_state == after.rng_state


@pytest.mark.parametrize("bad", [-0.1, float("nan"), "low"])
def test_bad_start_threshold_and_risk_are_refused(bad: object) -> None:
    env = gym.make("twinrl/APSelection-v0")
    agent = QLearning.for_env(env, rng=0)
    with pytest.raises((ValueError, TypeError), match="start_below"):
        twinrl.train(env, agent, assists=[ActionTrials(1, 5)], budget=3, start_below=bad)
    with pytest.raises((ValueError, TypeError), match="risk"):
        SafeExploration(5, risk=bad)
    with pytest.raises((ValueError, TypeError), match="average"):
        DigitalTwin(env, average=0)


def test_fading_is_a_keyed_random_future_the_twin_can_replay_or_redraw() -> None:
    env = gym.make("twinrl/APSelection-v0", fading_db=6.0)
    check_twinnable(env)
    check_twin_matches(env, steps=60)  # the exact twin replays the physical fading
    env.reset(seed=0)
    base = env.unwrapped
    state = base.get_state()
    twin = DigitalTwin(env)
    same = twin.trial(state, np.arange(5)).reward
    other = twin.trial(base.reseed_domain(state, 12345), np.arange(5)).reward
    assert not np.array_equal(same, other)  # another key: another fading draw
    plain = gym.make("twinrl/APSelection-v0")
    plain.reset(seed=0)
    assert int(plain.unwrapped.get_state().fade_key) == 0  # no fading: the RNG stream is untouched


def test_safe_exploration_audits_false_vetoes_and_missed_failures() -> None:
    def run(fidelity: Fidelity, average: int) -> SafeExploration:
        env = gym.make("twinrl/APSelection-v0", fading_db=8.0)
        agent = QLearning.for_env(env, rng=0)
        safe = SafeExploration(5, risk=0.5)
        twin = DigitalTwin(env, fidelity=fidelity, average=average)
        twinrl.train(env, agent, assists=[safe], twin=twin, budget=400, seed=0, evaluate=False)
        return safe

    exact = run(Fidelity(), 1)  # knows the physical fading: nothing to audit
    assert exact.false_vetoes == 0 and exact.missed_failures == 0 and exact.vetoed > 0
    # eight views with their own fading draws: a risk estimate, with false alarms and misses
    risk = run(Fidelity(), 8)
    assert risk.false_vetoes > 0 and risk.missed_failures > 0
    assert risk.false_vetoes <= risk.vetoed


def test_ensemble_members_run_their_own_models_and_mark_disagreement() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", **EDGE)
    env.reset(seed=0)
    env.step(1)
    members = [{"rate": r} for r in (2.9e6, 5.8e6, 11.6e6)]
    twin = DigitalTwin(env, ensemble=members, trust=0.1)
    twin.mirror(env, 1, episode_start=True, action=None)
    actions = np.array([0, 2, 3, 4])
    out = twin.trial_identical(actions)
    state = env.unwrapped.get_state()
    per_member = []
    for params in members:
        model = DigitalTwin(gym.make("twinrl/EdgeScheduling-v0", **EDGE, **params))
        per_member.append(model.trial(state, actions).reward)
    np.testing.assert_allclose(out.reward, np.mean(per_member, axis=0), rtol=1e-12)
    np.testing.assert_allclose(out.info["disagreement"], np.std(per_member, axis=0), rtol=1e-12)
    np.testing.assert_array_equal(out.info["trusted"], out.info["disagreement"] <= 0.1)
    assert 0 < out.info["trusted"].sum() < 4  # the threshold separates these actions
    assert twin.evaluations == 12


def test_untrusted_outcomes_never_reach_the_agent() -> None:
    from twinrl.storage import Storage

    env = gym.make("twinrl/EdgeScheduling-v0", **EDGE)
    agent = QLearning.for_env(env, rng=0)
    members = [{"rate": r} for r in (2.9e6, 5.8e6, 11.6e6)]
    twin = DigitalTwin(env, ensemble=members, trust=0.1)
    storage = Storage(10_000, n_twin_domains=5)
    run = twinrl.train(env, agent, assists=[ActionTrials(5, 5, rng=1)], twin=twin, budget=200,
                       seed=0, evaluate=False, storage=storage)  # fmt: skip
    twin_rows = int(storage.sizes[1:].sum())
    assert 0 < twin_rows < run.twin_evaluations // 3  # some outcomes were dropped, none doubled


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ensemble": {"rate": 1e6}}, "ensemble"),
        ({"ensemble": [1.0]}, "ensemble"),
        ({"trust": 0.5}, "trust needs an ensemble"),
        ({"ensemble": [{"rate": 1e6}], "trust": -1.0}, "trust"),
    ],
)
def test_bad_ensembles_are_refused(kwargs: dict, message: str) -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", **EDGE)
    with pytest.raises((ValueError, TypeError), match=message):
        DigitalTwin(env, **kwargs)


def test_the_fidelity_metric_measures_the_ensemble_the_assists_use() -> None:
    env = gym.make("twinrl/APSelection-v0")
    agent = QLearning.for_env(env, rng=0)
    rates = np.asarray(env.unwrapped.params.ap_rates)
    members = [{"ap_rates": tuple(rates * f)} for f in (0.2, 0.3)]
    twin = DigitalTwin(env, ensemble=members)
    run = twinrl.train(env, agent, assists=[ActionTrials(2, 5, rng=1)], twin=twin, budget=100,
                       seed=0, evaluate=False, measure_fidelity=True)  # fmt: skip
    assert run.twin_error["reward"] > 1.0  # both members are far off: so is the metric


def test_an_ensemble_of_one_member_runs_that_member() -> None:
    env = gym.make("twinrl/EdgeScheduling-v0", **EDGE)
    env.reset(seed=0)
    slow = DigitalTwin(env, ensemble=[{"rate": 0.58e6}])
    slow.mirror(env, 1, episode_start=True, action=None)
    exact = DigitalTwin(env).trial(env.unwrapped.get_state(), np.arange(5))
    out = slow.trial_identical(np.arange(5))
    assert (out.reward < exact.reward).all() and "disagreement" in out.info


def test_fidelity_options_that_cannot_work_are_refused() -> None:
    env = gym.make("twinrl/APSelection-v0")
    agent = QLearning.for_env(env, rng=0)
    with pytest.raises(ValueError, match="start_below needs the fidelity metric"):
        twinrl.train(env, agent, assists=[ActionTrials(1, 5)], budget=3, start_below=0.1,
                     measure_fidelity=False)  # fmt: skip
    with pytest.raises(ValueError, match="measure_fidelity needs assists"):
        twinrl.train(env, agent, budget=3, measure_fidelity=True)


def test_a_twin_without_error_evaluates_exactly_like_the_perfect_one() -> None:
    def greedy(fidelity: Fidelity | None) -> bytes:
        env = gym.make("twinrl/APSelection-v0")
        agent = QLearning.for_env(env, rng=0)
        twin = None if fidelity is None else DigitalTwin(env, fidelity=fidelity)
        run = twinrl.train(env, agent, assists=[ActionTrials(2, 5, rng=1)], twin=twin,
                           budget=600, seed=0, measure_fidelity=False)  # fmt: skip
        return run.history["greedy_return"].tobytes()

    # the deterministic road: a stale twin predicts exactly, so nothing may differ
    assert greedy(None) == greedy(Fidelity(sync_every=2))
