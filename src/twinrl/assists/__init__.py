"""Assists: ways the digital space speeds up learning (DESIGN.md section 3)."""

from __future__ import annotations

from twinrl.assists.action_trials import ActionTrials
from twinrl.assists.base import Assist, StepContext, Vetting
from twinrl.assists.differential import DifferentialTwins
from twinrl.assists.global_observation import GlobalObservation
from twinrl.assists.predictive_targets import PredictiveTargets
from twinrl.assists.safe_exploration import SafeExploration
from twinrl.assists.twin_agents import TwinAgents

__all__ = [
    "ActionTrials",
    "Assist",
    "DifferentialTwins",
    "GlobalObservation",
    "PredictiveTargets",
    "SafeExploration",
    "StepContext",
    "TwinAgents",
    "Vetting",
]
