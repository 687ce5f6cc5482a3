"""Safe exploration: risky actions are tried in the twin first (paper 000, Section III-A)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import Agent
from twinrl.assists.base import (
    StepContext,
    check_count,
    check_discrete_actions,
    teach,
    twin_transitions,
    valid_actions,
)
from twinrl.checkpoint import check_like
from twinrl.contract import DomainSteps
from twinrl.errors import ConfigError, ConfigTypeError, short_repr
from twinrl.twin.digital_twin import DigitalTwin
from twinrl.validation import check_bool, check_float

Unsafe = Callable[[DomainSteps], NDArray[Any]]
"""Maps the twin's outcomes to a risk per domain (a failure probability, or booleans)."""


def failed(out: DomainSteps) -> NDArray[np.float64]:
    """Default hazard: the env's per-domain ``info["failed"]`` (declared in ``twin_info_keys``), as
    a failure probability: 0 or 1 from one view of the state, the share of failing views with
    domain averaging (``DigitalTwin(average=m)``)."""
    if "failed" not in out.info:
        raise ValueError(
            "SafeExploration needs to know which outcomes are unsafe: this env reports no 'failed' "
            "info to the twin (list it in the env's twin_info_keys), or pass unsafe=callable"
        )
    return np.asarray(out.info["failed"], dtype=np.float64)


class SafeExploration:
    """Before the physical agent executes any action, the identical domain tries it. If the twin
    predicts an unsafe outcome, the action is vetoed: the agent learns from the vetoed action's twin
    outcome, and the physical env executes the best action the twin verified as safe instead. When
    no valid action is safe the proposed action is executed and counted as unavoidable.

    With a perfect twin no predicted failure reaches the physical env except unavoidable ones.

    Args:
        n_actions: size of the action space.
        unsafe: maps the twin's outcomes to a boolean per domain; default :func:`failed`.
        replacement: ``"greedy"``: the agent's greedy choice among the safe actions (its learned
            values weigh later consequences, e.g. a busy access point); ``"reward"``: the safe
            action with the highest immediate twin reward (lowest index on ties).
        audit_only: check and count, but never veto or learn: measures how many of an unguarded
            agent's physical failures a veto could have avoided, without changing its run.
        risk: veto an action whose estimated failure probability exceeds this, in [0, 1) (paper
            000, Section III-A: risk estimated over the twin's domains; with one view of the state
            every predicted failure is vetoed).

    Attributes:
        checked: physical actions vetted.
        vetoed: actions the twin predicted unsafe and that were replaced (with ``audit_only``: that
            would have been replaced).
        unavoidable: actions predicted unsafe with no safe alternative.
        false_vetoes: vetoed actions that would not have failed physically (an imperfect twin's
            false alarms; checked against an exact simulation of the physical state, an audit the
            agent never sees; 0 for a perfect twin).
        missed_failures: executed actions the twin judged safe that failed physically (what an
            imperfect twin lets through; 0 for a perfect twin with deterministic outcomes).
    """

    name = "safe_exploration"

    def __init__(
        self,
        n_actions: int,
        *,
        unsafe: Unsafe = failed,
        replacement: str = "greedy",
        audit_only: bool = False,
        risk: float = 0.0,
    ) -> None:
        self.n_actions = check_count("n_actions", n_actions)
        if replacement not in ("greedy", "reward"):
            raise ValueError(f"replacement={replacement!r} is not allowed; choose greedy or reward")
        self.unsafe = unsafe
        self.replacement = replacement
        if not callable(unsafe):
            raise ConfigTypeError(f"unsafe must be a callable, got {short_repr(unsafe)}")
        self.audit_only = check_bool("audit_only", audit_only)
        self.risk = check_float("risk", risk, 0.0, 1.0, high_open=True)
        self.checked = self.vetoed = self.unavoidable = 0
        self.false_vetoes = self.missed_failures = 0
        self._judged_safe = False  # the executed action was judged safe by the twin
        self._reference: DigitalTwin | None = None  # an exact twin, for the audit only

    def bind(self, env: gym.Env[Any, Any], twin: DigitalTwin | None) -> None:
        """Check, before training starts, the action space and that the twin reports failures."""
        check_discrete_actions("SafeExploration", env, self.n_actions)
        if self.unsafe is failed and "failed" not in getattr(env.unwrapped, "twin_info_keys", ()):
            raise ConfigError(
                f"SafeExploration needs to know which outcomes are unsafe: "
                f"{type(env.unwrapped).__name__} reports no 'failed' info to the twin (list it "
                "in the env's twin_info_keys), or pass unsafe=callable"
            )
        if twin is not None and (not twin.fidelity.perfect or twin.average > 1):
            self._reference = DigitalTwin(env)

    def vet(self, ctx: StepContext, agent: Agent) -> int:
        proposed = np.array([ctx.action], dtype=np.int64)
        out = ctx.twin.trial_identical(proposed)
        self.checked += 1
        self._judged_safe = not self.unsafe(out)[0] > self.risk
        if self._judged_safe:
            return ctx.action
        if not self.audit_only:
            teach(ctx, agent, twin_transitions(ctx, proposed, out))  # learn from the vetoed outcome
        others = valid_actions(ctx.mask, self.n_actions)
        others = others[others != ctx.action]
        if others.size:
            alt = ctx.twin.trial_identical(others)
            safe = ~(np.asarray(self.unsafe(alt)) > self.risk)
            if safe.any():
                self.vetoed += 1
                self._count_false_veto(ctx, proposed)
                if self.audit_only:
                    return ctx.action
                self._judged_safe = True
                if self.replacement == "reward":
                    return int(others[int(np.argmax(np.where(safe, alt.reward, -np.inf)))])
                mask = np.zeros(self.n_actions, dtype=np.int8)
                mask[others[safe]] = 1
                return int(agent.act(ctx.obs, explore=False, mask=mask))
        self.unavoidable += 1
        return ctx.action

    def _count_false_veto(self, ctx: StepContext, proposed: NDArray[np.int64]) -> None:
        """Audit: would the vetoed action have failed in the exact physical state?"""
        if self._reference is None:
            return
        truth = self._reference.trial(ctx.twin.physical_state, proposed)
        self.false_vetoes += int(not np.asarray(self.unsafe(truth))[0] > 0)

    def after_step(self, ctx: StepContext, agent: Agent) -> None:
        """Audit the physical outcome: a failure of an action the twin judged safe is missed."""
        if ctx.info is not None and self._judged_safe and bool(ctx.info.get("failed", False)):
            self.missed_failures += 1

    def stats(self) -> dict[str, int]:
        return {"checked": self.checked, "vetoed": self.vetoed, "unavoidable": self.unavoidable,
                "false_vetoes": self.false_vetoes, "missed_failures": self.missed_failures}  # fmt: skip

    _COUNTERS = ("checked", "vetoed", "unavoidable", "false_vetoes", "missed_failures")

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """Arrays only: the counters of :meth:`stats` and whether the last executed action was
        judged safe (the audit of the next physical outcome reads it)."""
        out = {name: np.array(getattr(self, name), dtype=np.int64) for name in self._COUNTERS}
        return {**out, "judged_safe": np.array(self._judged_safe)}

    def load_state_dict(self, state: Mapping[str, NDArray[Any]]) -> None:
        """Restore :meth:`state_dict` output (checked; ``CheckpointError`` naming the key)."""
        own = self.state_dict()
        state = check_like(state, own, owner="SafeExploration", counters=self._COUNTERS)
        for name in self._COUNTERS:
            setattr(self, name, int(state[name]))
        self._judged_safe = bool(state["judged_safe"])
