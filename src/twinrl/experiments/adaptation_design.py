"""The design of the ``adaptation`` experiment (issue 13, item 6; paper 000, Section III-C): the
case study, the arms, the preset sizes and the predictions written before the decisive run.

Access-point selection with tabular Q-learning (the ``fig4`` agent: a constant exploration rate
of 0.1), on one seed per run: the env, agent, scenario and evaluation seeds are shared by every
arm of that seed, so arms are compared in pairs. Policies are judged on the physical system (a
separate env in the same scenario, greedy, :data:`EVAL_EPISODES` passes every
:attr:`PartSize.eval_every` physical episodes; mean reward per task).

Two parts:

* ``held-out``: deploy on a scenario never trained on (a fresh draw of the sampler). Arms:
  ``scratch`` (a new agent), ``fine-tune`` (conventional transfer without a twin: trained
  physically on the previous deployment, the env's base scenario, then fine-tuned), ``twin:
  sampled`` (pre-trained in twins of :attr:`PartSize.scenarios` sampled scenarios, the
  jump-start of Section III-C) and ``twin: target`` (pre-trained in a twin of the held-out
  scenario itself: what a twin of the new scenario adds beyond generalisation).
* ``change``: the physical network changes scenario mid-run (an AP may fail: the sampler's
  ``fail_prob``). Arms: ``fine-tune`` (keeps learning physically), ``scratch`` (a new agent at
  the change), ``twin`` (:class:`~twinrl.adaptation.ScenarioAdaptation`: the synced twin reads
  the new scenario and re-trains the agent in a twin of it), and the twin with a replay of
  :data:`REPLAY` stored transitions per physical step from the storage space, sampled
  ``uniform`` or scenario-aware (``near`` the current scenario).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENV_ID = "twinrl/APSelection-v0"
AGENT: dict[str, Any] = {"eps0": 0.0, "eps_min": 0.1}
"""Q-learning with a constant exploration rate of 0.1 (the ``fig4`` agent)."""
HELD_OUT_FAIL = 0.0
"""``fail_prob`` of the held-out part's sampler: a scenario of the same family (rates, layout,
speed and task mix vary; no AP fails)."""
CHANGE_FAIL = 0.2
"""``fail_prob`` of the mid-run change: besides the variation, each AP has failed with this
probability (its rate drops to 1 bit/s), an abrupt change."""
EVAL_EPISODES = 10
"""Greedy passes of the road per evaluation point."""
REPLAY = 4
"""Stored transitions replayed per physical step by the replay arms."""
BANDWIDTH = 0.1
"""Similarity bandwidth of the scenario-aware replay (``exp(-distance / 0.1)``)."""
SMOOTH = 3
"""Evaluation points in the trailing mean a time-to-level is read from."""
RTOL = 0.05
"""A curve has reached a level when its smoothed value is within 5% of it (and stays)."""

HELD_OUT_ARMS = ("scratch", "fine-tune", "twin: sampled", "twin: target")
CHANGE_ARMS = ("fine-tune", "scratch", "twin", "twin + uniform replay", "twin + aware replay")


@dataclass(frozen=True)
class PartSize:
    """Sizes of the experiment (both parts)."""

    seeds: int
    episodes: int
    """Physical episodes on the held-out scenario, and after the change."""
    before: int
    """Physical episodes before the change (and of the ``fine-tune`` arm's previous deployment)."""
    twin_steps: int
    """Twin steps of pre-training (held-out) and of the re-training after a change."""
    scenarios: int
    """Sampled scenarios the ``twin: sampled`` arm pre-trains across."""
    eval_every: int
    """Physical episodes between greedy evaluations."""


PRESETS = {
    "quick": PartSize(seeds=4, episodes=200, before=300, twin_steps=20_000, scenarios=6,
                      eval_every=10),
    "paper": PartSize(seeds=12, episodes=400, before=600, twin_steps=40_000, scenarios=12,
                      eval_every=10),
}  # fmt: skip
"""The quick preset previews the direction with too few seeds to decide; the paper preset's
seeds are sized from the quick run (see ``docs/adaptation.md``)."""
