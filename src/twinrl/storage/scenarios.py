"""Scenario tags of the storage space (paper 000, Section II-A: data served "according to the
characteristics of the current task"): each stored transition keeps the scenario it came from, and
:meth:`ScenarioTags.weights_near` / ``Storage.sample(..., near=...)`` weight transitions by the
similarity of their scenario to a given one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.contract import Scenario
from twinrl.errors import CheckpointError, ConfigError, ConfigTypeError
from twinrl.validation import check_float, check_int


class ScenarioTags:
    """The scenario part of :class:`~twinrl.storage.Storage` (a mixin: it reads the storage's
    buffers, counters and sampling RNG)."""

    n_domains: int
    capacity: int
    rng: np.random.Generator
    _arrays: dict[str, NDArray[Any]] | None
    _scenarios: list[Scenario]
    _current: int
    _stored_as: int | None

    def _order(self, domain: int) -> NDArray[np.int64]:
        raise NotImplementedError

    def _check_domain(self, domain: int) -> None:
        raise NotImplementedError

    @property
    def scenarios(self) -> list[Scenario]:
        """Every scenario transitions were tagged with, in the order first named."""
        return list(self._scenarios)

    def set_scenario(self, scenario: Scenario | None) -> None:
        """Tag the transitions added from now on with ``scenario`` (None: with none)."""
        if scenario is None:
            self._current = -1
            return
        if not isinstance(scenario, Scenario):
            raise ConfigTypeError(f"set_scenario needs a Scenario, got {type(scenario).__name__}")
        keys = [s.key() for s in self._scenarios]
        if scenario.key() not in keys:
            self._scenarios.append(scenario)
            keys.append(scenario.key())
        self._current = keys.index(scenario.key())

    @contextmanager
    def stored_as(self, source: int) -> Iterator[None]:
        """Within the block, every added transition is stored under domain ``source`` (e.g. the
        steps of pre-training in the twin, which the loop sees as "physical", as twin data)."""
        source = check_int("source", source, 0, self.n_domains - 1)  # 0 physical, 1..K twin
        before, self._stored_as = self._stored_as, source
        try:
            yield
        finally:
            self._stored_as = before

    def scenario_tags(self, domain: int) -> NDArray[np.int64]:
        """The scenario of each transition of ``domain`` (an index into :attr:`scenarios`, -1
        for none), oldest first, like :meth:`domain`."""
        self._check_domain(domain)
        if self._arrays is None:
            return np.zeros(0, dtype=np.int64)
        return self._arrays["scenario"][domain, self._order(domain)].copy()

    def _similarity(self, near: Scenario, bandwidth: float) -> NDArray[np.float64]:
        """Similarity to ``near`` of each known scenario, indexed by tag + 1 (index 0: none)."""
        if not isinstance(near, Scenario):
            raise ConfigTypeError(f"near must be a Scenario, got {type(near).__name__}")
        bandwidth = check_float("bandwidth", bandwidth, 0.0, 1e9, low_open=True)
        known = [near.similarity(s, bandwidth) for s in self._scenarios]
        return np.array([np.exp(-1.0 / bandwidth), *known])

    def weights_near(
        self, near: Scenario, bandwidth: float = 0.1, domains: Any = None
    ) -> NDArray[np.float64]:
        """The probability of each stored transition of ``domains`` (default: all) under
        ``sample(..., near=near)`` within one part made of them: an array of shape
        ``(K + 1, capacity)`` (0 for empty slots and other domains), summing to 1."""
        part = np.arange(self.n_domains) if domains is None else np.atleast_1d(domains)
        similarity = self._similarity(near, bandwidth)
        out = np.zeros((self.n_domains, self.capacity))
        for d in part:
            order = self._order(int(d))
            if self._arrays is not None:
                out[d, order] = similarity[self._arrays["scenario"][d, order] + 1]
        total = out.sum()
        if total == 0:
            raise ValueError("no transitions stored in those domains")
        return out / total

    def _weighted(
        self, part: NDArray[np.int64], count: int, similarity: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``count`` draws from ``part``'s transitions, each with probability proportional to its
        scenario's ``similarity``."""
        if self._arrays is None:
            raise ValueError("the storage is empty; add transitions first")
        orders = [self._order(int(d)) for d in part]
        domain = np.concatenate([np.full(o.size, d) for d, o in zip(part, orders, strict=True)])
        slot = np.concatenate(orders)
        w = similarity[self._arrays["scenario"][domain, slot] + 1]
        pick = self.rng.choice(slot.size, size=count, p=w / w.sum())
        return domain[pick], slot[pick]


def _encode_scenarios(scenarios: list[Scenario]) -> NDArray[np.uint8]:
    """The scenarios as UTF-8 JSON bytes (a checkpoint holds arrays only, never pickles)."""
    text = json.dumps([[list(pair) for pair in s.values] for s in scenarios])
    return np.frombuffer(text.encode(), dtype=np.uint8).copy()


def _decode_scenarios(data: Any) -> list[Scenario]:
    """The inverse of :func:`_encode_scenarios` (None: no scenarios)."""
    if data is None:
        return []
    try:
        raw = json.loads(np.asarray(data, dtype=np.uint8).tobytes().decode())
        return [Scenario.of({n: tuple(v) if isinstance(v, list) else v for n, v in items})
                for items in raw]  # fmt: skip
    except (ValueError, TypeError, ConfigError) as err:
        raise CheckpointError(f"Storage state entry 'scenarios' is not valid ({err})") from err
