"""``scenario`` / ``set_scenario`` of an env (a :class:`~twinrl.contract.Scenario` of its params)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym

from twinrl.contract import Scenario
from twinrl.errors import ConfigError, ConfigTypeError


class Scenarios:
    """The scenario of an env whose parameters are a frozen dataclass in ``self.params`` that names
    its scenario parameters in ``scenario_fields`` (paper 000, Section III-C).

    A subclass implements :meth:`spaces_for` (its action and observation spaces for some params),
    so a scenario that would change them is refused: an agent's tables and networks are sized for
    the spaces, so a scenario change keeps them (the number of APs, UAVs and users is fixed; an AP
    that fails is one whose rate drops).
    """

    params: Any
    action_space: gym.spaces.Space[Any]
    observation_space: gym.spaces.Space[Any]
    _state: Any

    @property
    def scenario(self) -> Scenario:
        """The current values of the env's scenario parameters."""
        p = self.params
        cached = self.__dict__.get("_scenario_of")
        if cached is None or cached[0] is not p:  # built once per params object (params are frozen)
            cached = (p, Scenario.of({name: getattr(p, name) for name in p.scenario_fields}))
            self.__dict__["_scenario_of"] = cached
        return cached[1]

    def set_scenario(self, scenario: Scenario) -> None:
        """Run under ``scenario`` from the next step on (the parameters it gives change, the
        others stay; the current state is kept, e.g. the vehicle's position and the AP queues).

        Raises:
            ConfigTypeError: ``scenario`` is not a :class:`~twinrl.contract.Scenario`.
            ConfigError: it names a parameter that is not a scenario parameter of this env, gives
                a value the params refuse, or would change the action or observation space.
        """
        if not isinstance(scenario, Scenario):
            raise ConfigTypeError(f"set_scenario needs a Scenario, got {type(scenario).__name__}")
        allowed = type(self.params).scenario_fields
        unknown = sorted(set(scenario.as_dict()) - set(allowed))
        if unknown:
            raise ConfigError(
                f"{unknown} are not scenario parameters of {type(self).__name__}; "
                f"its scenario parameters are {list(allowed)}"
            )
        params = replace(self.params, **scenario.as_dict())
        action, observation = self.spaces_for(params)
        if action != self.action_space or observation != self.observation_space:
            raise ConfigError(
                f"scenario {scenario.as_dict()} changes the action or observation space "
                f"({action}, {observation} instead of {self.action_space}, "
                f"{self.observation_space}); a scenario change must keep the spaces"
            )
        self.params = params

    def spaces_for(self, params: Any) -> tuple[gym.spaces.Space[Any], gym.spaces.Space[Any]]:
        """The action and observation spaces of this env under ``params``."""
        raise NotImplementedError
