"""The storage space's parameter store: learners' parameters with their provenance (paper 000,
Section II-B: "draw from a panoply of NN parameters obtained using different training methods
under disparate NN architectures and saved to storage space").

Each record holds one learner's ``state_dict()`` arrays (copied), the twin domains it trained in,
the physical iteration, its twin evaluation score and the scenario it was evaluated in. The store
keeps the latest record per (learner, scenario), so a scenario met again finds the parameters that
did best in it (:meth:`ParameterStore.best`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.errors import ConfigError, ConfigTypeError, short_repr


@dataclass(frozen=True)
class ParameterRecord:
    """One learner's parameters with their provenance."""

    learner: str
    """The learner's name."""
    domains: tuple[int, ...]
    """The twin domains (storage source ids) it trained in."""
    iteration: int
    """The physical iteration at which the parameters were stored."""
    score: float
    """Its twin evaluation score then (NaN: not evaluated)."""
    scenario: Hashable
    """The scenario key it was evaluated in (None: no scenario known)."""
    params: Mapping[str, NDArray[Any]]
    """Its ``state_dict()`` arrays, copied when stored."""


def scenario_key(scenario: Any) -> Hashable:
    """``scenario`` if it can key a dict, else a clear error."""
    try:
        hash(scenario)
    except TypeError:
        raise ConfigTypeError(
            f"a scenario key must be hashable (e.g. a tuple or a frozen dataclass), got "
            f"{short_repr(scenario)}"
        ) from None
    return scenario


class ParameterStore:
    """The latest :class:`ParameterRecord` per (learner, scenario)."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, Hashable], ParameterRecord] = {}

    def put(
        self,
        learner: str,
        params: Mapping[str, Any],
        *,
        domains: tuple[int, ...],
        iteration: int,
        score: float = math.nan,
        scenario: Hashable = None,
    ) -> ParameterRecord:
        """Store (a copy of) ``params`` with their provenance, replacing the learner's earlier
        record for the same scenario."""
        key = scenario_key(scenario)
        copied = {name: np.array(value, copy=True) for name, value in params.items()}
        record = ParameterRecord(str(learner), tuple(int(d) for d in domains), int(iteration),
                                 float(score), key, copied)  # fmt: skip
        self._records[(record.learner, key)] = record
        return record

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> list[ParameterRecord]:
        """Every stored record, in the order first stored."""
        return list(self._records.values())

    @property
    def scenarios(self) -> list[Hashable]:
        """The scenario keys with at least one record, in the order first seen."""
        return list(dict.fromkeys(key for _, key in self._records))

    def get(self, learner: str, scenario: Hashable = None) -> ParameterRecord:
        """The learner's record for ``scenario``."""
        record = self._records.get((learner, scenario_key(scenario)))
        if record is None:
            raise ConfigError(
                f"no parameters of learner {short_repr(learner)} in scenario "
                f"{short_repr(scenario)}; stored: {self._describe()}"
            )
        return record

    def best(
        self, scenario: Hashable = None, *, among: Sequence[str] | None = None
    ) -> ParameterRecord:
        """The record with the highest score in ``scenario`` (ties: the first stored), among the
        learners ``among`` (None: all)."""
        key = scenario_key(scenario)
        scored = [r for (name, s), r in self._records.items() if s == key
                  and not math.isnan(r.score) and (among is None or name in among)]  # fmt: skip
        if not scored:
            raise ConfigError(
                f"no evaluated parameters for scenario {short_repr(scenario)}; stored: "
                f"{self._describe()}"
            )
        return max(scored, key=lambda r: r.score)

    def _describe(self) -> str:
        if not self._records:
            return "nothing yet (the learners are evaluated at the sync moments)"
        return ", ".join(f"{name} in {short_repr(key, 30)}" for name, key in self._records)
