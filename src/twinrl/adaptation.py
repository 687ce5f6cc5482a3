"""Scenario adaptation (paper 000, Section III-C): the twin notices that the physical network has
changed scenario and re-trains the agent in a twin of the new one while the physical network runs.

Two ways a twin detects a change, both exposed here:

* **the scenario parameters differ**: at a sync the twin reads the network's configuration (which
  APs exist and how fast they are, where the users are, what tasks arrive), i.e.
  ``env.unwrapped.scenario``, and compares it with the scenario its model runs
  (:func:`scenario_changed`). :class:`ScenarioAdaptation` acts on this.
* **its fidelity metric jumps**: a twin that keeps its old model predicts the physical steps worse
  after the change; :func:`fidelity_jump` finds the step in ``train``'s one-step error history
  (``history["twin_reward_error"]``) where the error's moving mean rises.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike

from twinrl.agents.base import Agent
from twinrl.assists.base import StepContext
from twinrl.contract import Scenario
from twinrl.errors import ConfigError
from twinrl.storage.replay import Storage
from twinrl.training import pretrain_in_twin
from twinrl.twin.digital_twin import DigitalTwin
from twinrl.validation import check_float, check_int


def scenario_changed(known: Scenario, env: gym.Env[Any, Any]) -> Scenario | None:
    """The physical scenario as a sync reads it, if it differs from ``known`` (else None)."""
    seen = env.unwrapped.scenario  # type: ignore[attr-defined]
    return None if seen == known else seen


def fidelity_jump(errors: ArrayLike, *, window: int = 20, rise: float) -> int | None:
    """The first physical iteration (1-based) at which the mean of the twin's one-step error over
    the last ``window`` iterations exceeds its mean over the ``window`` before by more than
    ``rise`` (NaN entries, before the twin was built, are skipped); None if it never does. The
    detection lags the change by up to ``window`` steps."""
    window = check_int("window", window, 1, 10**9)
    rise = check_float("rise", rise, 0.0, float("inf"), low_open=True)
    e = np.asarray(errors, dtype=np.float64)
    steps = np.flatnonzero(np.isfinite(e))
    values = e[steps]
    if values.size < 2 * window:
        return None
    c = np.concatenate([[0.0], np.cumsum(values)])
    recent = (c[2 * window :] - c[window:-window]) / window
    before = (c[window:-window] - c[: -2 * window]) / window
    hit = np.flatnonzero(recent - before > rise)
    return None if hit.size == 0 else int(steps[hit[0] + 2 * window - 1]) + 1


class ScenarioAdaptation:
    """An assist: when the synced twin reads a new physical scenario, re-train the agent in a twin
    of it (:func:`~twinrl.training.pretrain_in_twin` with ``scenarios=[new]``) for ``budget`` twin
    steps before the next physical step. The twin of the new scenario is the twin's model
    (:meth:`~twinrl.twin.DigitalTwin.model_env`, its own values of the other parameters) with the
    scenario values the sync read. The twin's own model for other assists is not rebuilt.

    Args:
        budget: twin steps of re-training per detected change.
        seed: seed of the first re-training's episodes (the k-th uses ``seed + k``).
        storage: where the re-training's transitions go (as twin data, tagged with the new
            scenario); None: nowhere.

    Attributes:
        detections: the physical iterations at which a change was detected.
        twin_steps: twin steps spent re-training (report them beside the physical iterations).
    """

    name = "scenario-adaptation"

    def __init__(self, budget: int, *, seed: int = 0, storage: Storage | None = None) -> None:
        self.budget = check_int("budget", budget, 1, 10**9)
        self.seed = check_int("seed", seed, 0, 2**62)
        self.storage = storage
        self.detections: list[int] = []
        self.twin_steps = 0
        self._env: gym.Env[Any, Any] | None = None
        self.known: Scenario | None = None

    def bind(self, env: gym.Env[Any, Any], twin: DigitalTwin) -> None:
        """Called by ``train``: the twin starts with the physical scenario of the run's start."""
        scenario = getattr(env.unwrapped, "scenario", None)
        if not isinstance(scenario, Scenario):
            raise ConfigError(f"ScenarioAdaptation needs an env with a scenario; {env} has none")
        self._env, self.known = env, scenario

    def after_step(self, ctx: StepContext, agent: Agent) -> None:
        if self._env is None or self.known is None:
            raise RuntimeError("ScenarioAdaptation is used by train(), which binds it first")
        seen = scenario_changed(self.known, self._env)
        if seen is None:
            return
        self.known = seen
        self.detections.append(ctx.iteration)
        run = pretrain_in_twin(
            ctx.twin, agent, budget=self.budget, seed=self.seed + len(self.detections) - 1,
            scenarios=[seen], evaluate=False, storage=self.storage,
        )  # fmt: skip
        self.twin_steps += run.iterations
