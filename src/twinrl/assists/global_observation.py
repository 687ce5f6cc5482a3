"""Observation enhancement: the twin tells a partially observed agent the global state
(paper 000, Section II-B)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from twinrl.twin.digital_twin import DigitalTwin


class GlobalObservation(gym.ObservationWrapper[Any, Any, Any]):
    """Replace a partial observation by the global one that the identical domain holds.

    At every reset and step the identical domain is synced with the physical state (it mirrors it
    every step, Fig. 1 of paper 000) and the agent receives the env's ``global_observation`` of the
    twin's state instead of its own partial view. The layout and space are unchanged (e.g.
    ``MultiUAV-v0`` with a ``sensing_radius``: every user visible), so the same agent
    architecture learns from either. The physical env's dynamics and randomness are untouched.

    Unlike the other assists this one changes what the agent observes, not what it learns from, so
    it wraps the env: ``twinrl.train(GlobalObservation(env), agent, ...)``.

    Args:
        env: a twinnable env whose ``unwrapped`` has ``global_observation(state)``.
        twin: the digital space to use (default: a new ``DigitalTwin(env)``).
    """

    def __init__(self, env: gym.Env[Any, Any], twin: DigitalTwin | None = None) -> None:
        super().__init__(env)
        if not callable(getattr(env.unwrapped, "global_observation", None)):
            raise TypeError(
                f"{type(env.unwrapped).__name__} has no global_observation(state); "
                "GlobalObservation needs the env to say what its global view of a state is"
            )
        self.twin = twin or DigitalTwin(env)

    def observation(self, observation: Any) -> Any:
        base: Any = self.env.unwrapped
        self.twin.sync(base.get_state())
        return base.global_observation(self.twin.identical_state)
