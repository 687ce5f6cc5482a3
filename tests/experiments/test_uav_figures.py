"""fig5 / observation: a short real run through the writers (the presets are too long for CI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from twinrl.experiments import episodic, runner, uav_figures
from twinrl.experiments.uav_figures import Preset

TINY = Preset(episodes=3, seeds=2, window=2)


@pytest.fixture(scope="module")
def summary() -> dict:
    return uav_figures.run_preset(TINY, seed=5)


def test_runs_cover_every_variant_and_report_uncentred_rates(summary: dict) -> None:
    labels = [v.label for v in uav_figures.fig5_variants() + uav_figures.observation_variants()]
    assert [r["label"] for r in summary["runs"]] == [lb for lb in labels for _ in range(2)]
    offset = summary["params"]["reward_centre"]
    assert offset == uav_figures.ENV["reward_centre"] == 20.0
    hover, kmeans = summary["baselines"]["hover"], summary["baselines"]["kmeans"]
    assert hover < summary["baselines"]["random"] < kmeans  # the references are ordered
    for r in summary["runs"]:
        assert len(r["episode_return"]) == 3 and r["iterations"] == 150
        assert "policy" not in r  # the weights are not part of the summary
        # rates, not centred returns: a UAV policy's mean rate lies near the references'
        assert all(15.0 < x < 30.0 for x in r["episode_return"] + [r["greedy_rate"]])
        v = r["variant"]
        # a k-step rollout from slot t of a 50-slot episode stops at the truncation: min(k, 50 - t)
        per_episode = sum(min(v["k"], 50 - t) for t in range(50)) * v["m"]
        twin_steps = 3 * per_episode if v["algorithm"] == "dt-dqn" else 0
        assert r["twin_evaluations"] == twin_steps
    by = {(r["label"], r["seed"]): r["episode_return"] for r in summary["runs"]}
    seed = summary["runs"][0]["seed"]
    # the twin's k-step rows change what DT-DQL learns (learning starts at step 37)
    assert by[("DQL", seed)][1:] != by[("DT-DQL k=5", seed)][1:]
    # the same env and agent seeds: before any gradient step, DQL and DT-DQL act alike
    fig5 = uav_figures.fig5_variants()
    agent = {**summary["agent_config"], "learning_starts": 50}
    first = episodic.run_variants(uav_figures.ENV_ID, uav_figures.ENV, [fig5[0], fig5[3]],
                                  seeds=1, episodes=1, seed=5, agent_config=agent)  # fmt: skip
    assert first[0]["episode_return"] == first[1]["episode_return"]
    assert set(summary["trajectories"]) == {"k-means (static)", "DQL", "DT-DQL k=5"}
    traj = summary["trajectories"]["DQL"]
    assert np.asarray(traj["uavs"]).shape == (51, 4, 2)


def test_references_play_the_agents_evaluation_episodes(summary: dict) -> None:
    import gymnasium as gym

    class Hover:
        def act(self, obs: object, *, explore: bool, mask: object = None) -> np.ndarray:
            return np.zeros(4, dtype=np.int64)

    seeds = sorted({r["seed"] for r in summary["runs"]})
    assert sorted(summary["baselines_by_seed"]) == seeds
    for run_seed in seeds:
        env = gym.make(uav_figures.ENV_ID, **uav_figures.ENV)
        seed = episodic.evaluation_seed(run_seed)
        hover = np.mean(episodic.greedy_returns(env, Hover(), uav_figures.EVAL_EPISODES, seed=seed))
        assert hover + 20.0 == pytest.approx(summary["baselines_by_seed"][run_seed]["hover"])
    per_seed = [b["kmeans"] for b in summary["baselines_by_seed"].values()]
    assert summary["baselines"]["kmeans"] == pytest.approx(np.mean(per_seed))


def test_observation_variants_see_partial_and_global_views() -> None:
    flags = []
    for variant in uav_figures.observation_variants():
        env = episodic.build_env(uav_figures.ENV_ID, uav_figures.ENV, variant)
        obs, _ = env.reset(seed=0)  # UAVs at the hangar corner: most users are out of 25 m
        # per_uav layout: UAV 0's block = own (2), 3 other UAVs (6), 10 users x (dx, dy, mine, seen)
        flags.append(obs.reshape(4, -1)[0, 8:].reshape(10, 4)[:, 3])
    assert flags[0].sum() < 10 and flags[1].sum() == 10


def test_greedy_evaluation_changes_no_agent_state() -> None:
    import gymnasium as gym

    from twinrl.agents import DQN, DQNConfig

    env = gym.make(uav_figures.ENV_ID)
    agent = DQN.for_env(env, DQNConfig(hidden=(8,)), rng=0)
    before = agent.state_dict()
    episodic.greedy_returns(env, agent, 2, seed=1)
    after = agent.state_dict()
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_runs_are_deterministic(summary: dict) -> None:
    variant = uav_figures.fig5_variants()[3]  # DT-DQL k=5
    again = episodic.run_variants(
        uav_figures.ENV_ID, uav_figures.ENV, [variant], seeds=2, episodes=3, seed=5,
        agent_config=summary["agent_config"],
    )  # fmt: skip
    first = [r for r in summary["runs"] if r["label"] == variant.label]
    for a, b in zip(again, first, strict=True):
        rates = np.asarray(a["episode_return"]) / 50 + 20.0
        np.testing.assert_array_equal(rates, b["episode_return"])


def test_writers_produce_tables_figures_and_claims(summary: dict, tmp_path: Path) -> None:
    fig5 = uav_figures.write_fig5(summary, tmp_path / "fig5")
    obs = uav_figures.write_observation(summary, tmp_path / "observation")
    text = (tmp_path / "fig5" / "table.md").read_text()
    assert "n-step DQN n=5" in text and "static k-means" in text and "Fig. 5" in text
    for path in ("fig5/fig5.png", "fig5/trajectories.png", "observation/observation.png"):
        assert (tmp_path / path).stat().st_size > 10_000
    assert len(fig5["checks"]) == 5 and len(obs["checks"]) == 2
    assert fig5["checks"][0].startswith("DQL beats the static k-means placement")
    assert "DT-DQL k=5 vs DQL" in fig5["checks"][1] and "n-step DQN n=5" in fig5["checks"][4]
    assert "GlobalObservation beats partial" in obs["checks"][0]
    rows = {r["method"]: r for r in fig5["rows"]}
    dql = [r for r in summary["runs"] if r["label"] == "DQL"]
    assert np.isclose(rows["DQL"]["final_rate"]["mean"],
                      np.mean([r["episode_return"][-1] for r in dql]))  # fmt: skip
    assert np.isclose(rows["DQL"]["greedy_rate"]["mean"], np.mean([r["greedy_rate"] for r in dql]))
    kmeans = {r["seed"]: summary["baselines_by_seed"][r["seed"]]["kmeans"] for r in dql}
    normalized = np.mean([r["greedy_rate"] / kmeans[r["seed"]] for r in dql])
    assert np.isclose(rows["DQL"]["normalized"]["mean"], normalized)
    # aggregate statistics: 2 seeds, so the IQM trims nothing and every verdict carries a warning
    assert "greedy rate IQM [95% bootstrap CI]" in text and "P(greedy rate > DQL's)" in text
    assert "**Warning: fewer than 5 seeds back this verdict** (2 per method)" in text
    assert all("fewer than 5 seeds back this verdict (2 seeds)" in c for c in fig5["checks"])
    assert all("fewer than 5 seeds back this verdict (2 seeds)" in c for c in obs["checks"])
    top = [r["greedy_rate"] for r in summary["runs"] if r["label"] == "DT-DQL k=5"]
    dql_rates = [r["greedy_rate"] for r in dql]
    iqm = rows["DT-DQL k=5"]["greedy_rate_iqm"]
    assert iqm["point"] == pytest.approx(np.mean(top)) and iqm["n"] == 2
    assert min(top) <= iqm["ci_low"] <= iqm["point"] <= iqm["ci_high"] <= max(top)
    above = rows["DT-DQL k=5"]["p_greedy_above_dql"]
    wins = sum((a > b) + 0.5 * (a == b) for a in top for b in dql_rates)
    assert above["point"] == pytest.approx(wins / 4) and above["level"] == 0.95
    assert rows["DQL"]["p_greedy_above_dql"] is None
    assert rows["DQL"]["few_seeds_warning"] == "fewer than 5 seeds back this verdict (2 seeds)"
    assert f"P(greedy rate DT-DQL k=5 > DQL) = {above['point']:.4g} [" in fig5["checks"][1]
    dql_kmeans = [r["greedy_rate"] - kmeans[r["seed"]] for r in dql]
    assert rows["DQL"]["greedy_minus_kmeans"]["mean"] == pytest.approx(np.mean(dql_kmeans))
    text = json.dumps(fig5["rows"], default=lambda x: x.tolist())
    labels = [v.label for v in uav_figures.fig5_variants()]
    again = uav_figures._rows(uav_figures._stats(summary, labels), labels)  # a seeded bootstrap
    assert json.dumps(again, default=lambda x: x.tolist()) == text


def _synthetic(greedy: dict[str, list[float]]) -> dict:
    """A summary with the fields the tables read: one run per (label, seed), two episodes."""
    runs = [{"label": lb, "seed": sd, "greedy_rate": g, "episode_return": [g - 1.0, g],
             "episode_failures": [0, 0], "twin_evaluations": 0}
            for lb, rates in greedy.items() for sd, g in enumerate(rates)]  # fmt: skip
    seeds = {sd: {"kmeans": 25.0} for sd in range(max(map(len, greedy.values())))}
    return {"runs": runs, "preset": {"window": 1, "episodes": 2}, "baselines_by_seed": seeds}


def test_iqm_and_probability_of_improvement_columns_by_hand() -> None:
    greedy = {"DQL": [20.0, 21.0, 22.0, 23.0, 24.0], "B": [19.0, 21.5, 22.0, 30.0, 23.5]}
    summary = _synthetic(greedy)
    by_label = uav_figures._stats(summary, list(greedy))
    rows = {r["method"]: r for r in uav_figures._rows(by_label, list(greedy))}
    # 5 seeds: floor(5 / 4) = 1 dropped at each end
    assert rows["DQL"]["greedy_rate_iqm"]["point"] == pytest.approx(22.0)  # 21, 22, 23
    assert rows["B"]["greedy_rate_iqm"]["point"] == pytest.approx(67.0 / 3)  # 21.5, 22, 23.5
    # B's 19 beats none; 21.5 beats 20, 21; 22 beats 2, ties 1; 30 beats 5; 23.5 beats 4
    assert rows["B"]["p_greedy_above_dql"]["point"] == pytest.approx(13.5 / 25)
    assert rows["B"]["few_seeds_warning"] == ""
    table = "\n".join(uav_figures._table(by_label, list(greedy), summary))
    assert "fewer than 5 seeds" not in table and "| 0.54 [" in table
    assert "warning" not in uav_figures._claim(summary["runs"], "B", "DQL")
    four = _synthetic({lb: rates[:4] for lb, rates in greedy.items()})
    by_label = uav_figures._stats(four, list(greedy))
    table = "\n".join(uav_figures._table(by_label, list(greedy), four))
    assert "fewer than 5 seeds back this verdict** (4 per method)" in table
    assert "trims no run" not in table  # 4 seeds: the IQM drops one at each end
    assert uav_figures._claim(four["runs"], "B", "DQL").endswith(
        "; warning: fewer than 5 seeds back this verdict (4 seeds)"
    )


def test_paired_difference_by_hand_and_verdicts() -> None:
    from twinrl.experiments.metrics import Estimate

    runs = [
        {"label": "A", "seed": 1, "greedy_rate": 3.0, "episode_return": [1.0, 3.0]},
        {"label": "A", "seed": 2, "greedy_rate": 5.0, "episode_return": [2.0, 2.0]},
        {"label": "B", "seed": 1, "greedy_rate": 1.0, "episode_return": [1.0, 1.0]},
        {"label": "B", "seed": 2, "greedy_rate": 2.0, "episode_return": [1.0, 2.0]},
    ]
    greedy = uav_figures.paired(runs, "A", "B", "greedy")  # per seed: 3 - 1 = 2, 5 - 2 = 3
    assert greedy.n == 2 and greedy.mean == pytest.approx(2.5)
    t_975_1 = 12.706  # Student t, 1 degree of freedom
    assert greedy.half_width == pytest.approx(t_975_1 * np.std([2, 3], ddof=1) / np.sqrt(2))
    mean = uav_figures.paired(runs, "A", "B", "mean")  # per seed: 2 - 1 = 1, 2 - 1.5 = 0.5
    assert mean.mean == pytest.approx(0.75)
    assert uav_figures._sign(Estimate(0.5, 0.4, 5)) is True
    assert uav_figures._sign(Estimate(-0.5, 0.4, 5)) is False
    assert uav_figures._sign(Estimate(0.5, 0.6, 5)) is None
    assert uav_figures._sign(Estimate(0.5, 0.0, 1)) is None  # one seed: no interval, no verdict
    # fewer than 5 seeds decide nothing, however narrow the interval
    assert uav_figures._sign(Estimate(0.5, 0.01, 4)) is None
    assert uav_figures._verdict(Estimate(0.5, 0.01, 4)) == "too few seeds to decide"
    assert uav_figures._verdict(Estimate(-0.5, 0.01, 5)) == "NOT met"
    assert "(higher: too few seeds to decide)" in uav_figures._claim(runs, "A", "B")


def test_beats_kmeans_by_hand() -> None:
    # k-means rates 25 on every seed (see _synthetic); paired differences -5 .. -1
    below = uav_figures.beats_kmeans(_synthetic({"DQL": [20.0, 21.0, 22.0, 23.0, 24.0]}))
    half = 2.776 * np.std([-5, -4, -3, -2, -1], ddof=1) / np.sqrt(5)  # Student t, 4 df
    assert below.startswith(f"DQL beats the static k-means placement (greedy rate, paired per "
                            f"seed): -3.000 ± {half:.2g} Mbit/s, bootstrap 95% CI [-4.")  # fmt: skip
    assert below.endswith(": NOT met")
    above = uav_figures.beats_kmeans(_synthetic({"DQL": [25.5, 26.0, 25.5, 26.5, 26.0]}))
    assert "+0.900 ± " in above and above.endswith(": met")
    four = uav_figures.beats_kmeans(_synthetic({"DQL": [25.5, 26.0, 25.5, 26.5]}))
    assert four.endswith(
        ": too few seeds to decide; warning: fewer than 5 seeds back this verdict (4 seeds)"
    )


def test_episodes_to_95_percent_of_final_by_hand() -> None:
    # window 1: the curve is the data; final = mean of the last 10% = the last value, 10
    rates = [1.0, 9.6, 9.0, 9.5, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    assert uav_figures.reach_fraction(rates, 1) == 4  # 9.0 at episode 3 is below 9.5
    assert uav_figures.reach_fraction(rates, 1, frac=0.9) == 2
    # final = mean(20, 1) = 10.5, and the last episode (1) is below 0.95 * 10.5: never stays there
    assert uav_figures.reach_fraction([10.0] * 18 + [20.0, 1.0], 1) is None


def test_registered_in_reproduce() -> None:
    assert runner.EXPERIMENTS["fig5"].group == runner.EXPERIMENTS["observation"].group == "uav"
    assert runner.GROUPS["uav"].run is uav_figures.run_preset
