"""The typed contract every layer shares: transitions, source tags, batched steps, twinnable envs.

This module sits at the bottom of the package (DESIGN.md section 2): envs, the twin, agents,
storage, assists and the training loop all import their shared types from here, and it imports
nothing of twinrl but its error classes. Imports flow one way, ``envs <- twin <- agents/storage/assists <- training <-
experiments <- cli``; ``tests/test_layering.py`` fails when a module imports a higher layer.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from twinrl.errors import ConfigError, ConfigTypeError

PHYSICAL = 0
"""Source tag of transitions from the physical space; digital domains are tagged 1, 2, ..."""


class _TransitionFields(NamedTuple):
    """The fields of :class:`Transitions` (a NamedTuple may not override ``_replace``)."""

    obs: NDArray[Any]
    action: NDArray[np.int64]
    reward: NDArray[np.float64]
    next_obs: NDArray[Any]
    terminated: NDArray[np.bool_]
    next_mask: NDArray[np.int8] | None
    """Valid actions in ``next_obs`` (1 = valid), or None when every action is valid."""
    source: NDArray[np.int64]
    """Where each transition came from: :data:`PHYSICAL` or a digital domain id >= 1."""
    discount: NDArray[np.float64] | None = None
    """Per-transition bootstrap factor ``gamma^k`` of a k-step transition (``reward`` then holds the
    discounted k-step return), or None: every row is one-step and uses the learner's own gamma. A
    NaN entry means the learner's own gamma for that row (how :class:`~twinrl.storage.Storage`
    returns a mix of rows added with and without a discount)."""


class Transitions(_TransitionFields):
    """A batch of transitions, learned in order. Every field has leading axis B."""

    __slots__ = ()

    @staticmethod
    def single(
        obs: Any,
        action: Any,
        reward: float,
        next_obs: Any,
        terminated: bool,
        next_mask: NDArray[np.int8] | None = None,
        source: int = PHYSICAL,
        discount: float | None = None,
    ) -> Transitions:
        """A batch of one transition (``action`` an int, or an int array per branch)."""
        return Transitions(
            obs=np.asarray(obs)[None],
            action=np.asarray(action, dtype=np.int64)[None],
            reward=np.array([reward], dtype=np.float64),
            next_obs=np.asarray(next_obs)[None],
            terminated=np.array([terminated]),
            next_mask=None if next_mask is None else np.asarray(next_mask, dtype=np.int8)[None],
            source=np.array([source], dtype=np.int64),
            discount=None if discount is None else np.array([discount], dtype=np.float64),
        )

    def __len__(self) -> int:  # number of transitions, not of fields
        return int(self.action.shape[0])

    def _replace(self, /, **changes: Any) -> Transitions:
        """A copy with some fields replaced (NamedTuple's own version counts fields with
        ``len``, which here counts transitions)."""
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise ValueError(f"Transitions has no field(s) {sorted(unknown)}")
        return Transitions(**{**self._asdict(), **changes})

    def rows(self, index: Any) -> Transitions:
        """The transitions at ``index`` (an int slice, or an index array), as a batch."""
        if isinstance(index, (int, np.integer)):
            index = slice(int(index), int(index) + 1)
        return Transitions(*(None if x is None else x[index] for x in self))  # type: ignore[arg-type]


class DomainSteps(NamedTuple):
    """Outcome of stepping K digital domains once; every field has leading axis K.

    This is the one batched step result of the contract: an env's ``step_batch`` returns it, every
    twin backend returns it, and it names every field of a Gymnasium step, truncation included.
    """

    states: Any
    """The K next states: a sequence of K states from a backend (for the vectorized backend a
    lazily unbatched view); the stacked states from an env's ``step_batch``."""
    next_obs: NDArray[Any]
    reward: NDArray[np.float64]
    terminated: NDArray[np.bool_]
    truncated: NDArray[np.bool_]
    next_mask: NDArray[np.int8] | None
    """Valid actions in each next state (1 = valid), or None when every action is valid."""
    info: Mapping[str, NDArray[Any]] = {}
    """The ``info`` entries an env declares in ``twin_info_keys`` (e.g. ``failed``), each an array
    with leading axis K."""

    @property
    def done(self) -> NDArray[np.bool_]:
        """Episode ended (terminated or truncated) per domain."""
        return np.asarray(self.terminated, dtype=bool) | np.asarray(self.truncated, dtype=bool)


class Measured(NamedTuple):
    """A measurable state field, as an env declares it in ``measured_state``."""

    unit: str
    """Unit of the field's values (noise is given in it), or ``"relative"``: noise is a fraction
    of each value."""
    low: float = -math.inf
    """Smallest physically possible value (a measurement is clipped to it)."""
    high: float = math.inf
    """Largest physically possible value."""


@runtime_checkable
class TwinnableEnv(Protocol):
    """What a digital twin needs of an env's ``unwrapped`` to mirror it exactly: a snapshot of the
    whole state, RNG included, and its exact restoration. An env without these methods is
    snapshotted by deep copy instead (slower; see :class:`twinrl.twin.DigitalTwin`)."""

    def get_state(self) -> Any: ...

    def set_state(self, state: Any) -> None: ...


@runtime_checkable
class BatchedEnv(TwinnableEnv, Protocol):
    """A twinnable env with pure batched dynamics: K domains in one call, no side effects.

    ``step_batch(states, actions)`` takes the K states stacked along a leading axis and returns a
    :class:`DomainSteps` whose ``states`` field holds the stacked next states.
    """

    def step_batch(self, state: Any, actions: NDArray[Any]) -> DomainSteps: ...


ScenarioValue = int | float | tuple[float, ...]
"""The value of one scenario parameter: a number, or a tuple of numbers (one per AP, a range)."""


@dataclass(frozen=True)
class Scenario:
    """The scenario of a network: the values of the parameters that describe *where and under
    what load* it runs (paper 000, Section III-C: "the network changes (environment, task
    distribution, location)"), as opposed to how it works.

    An env names its scenario parameters in its params dataclass (``scenario_fields``, e.g. the
    AP layout and rates of access-point selection) and exposes ``env.unwrapped.scenario`` and
    ``env.unwrapped.set_scenario(scenario)``; :class:`twinrl.envs.ScenarioSampler` draws them.
    A scenario may give only some of an env's fields: setting it changes only those.

    Build one with :meth:`of`; ``values`` is kept sorted by name, so equal scenarios are equal
    values with equal :meth:`key`.
    """

    values: tuple[tuple[str, ScenarioValue], ...]
    """``(name, value)`` pairs, sorted by name; a value is a number or a tuple of numbers."""
    name: str = field(default="", compare=False)
    """A label for tables (``"held-out"``); not part of the scenario's identity."""

    def __post_init__(self) -> None:
        if not isinstance(self.values, tuple):
            raise ConfigTypeError(
                "Scenario.values must be a tuple of (name, value) pairs; use Scenario.of"
            )
        items = []
        for pair in self.values:
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
                raise ConfigTypeError(f"Scenario.values entry {pair!r} is not a (name, value) pair")
            items.append((pair[0], _scenario_value(pair[0], pair[1])))
        names = [n for n, _ in items]
        if len(set(names)) != len(names):
            raise ConfigError(f"Scenario gives a parameter twice: {sorted(names)}")
        object.__setattr__(self, "values", tuple(sorted(items)))

    @classmethod
    def of(
        cls, values: Mapping[str, Any] | None = None, /, *, name: str = "", **more: Any
    ) -> Scenario:
        """A scenario from a mapping and/or keywords, e.g. ``Scenario.of(speed=25.0)``."""
        merged = {**dict(values or {}), **more}
        return cls(tuple(merged.items()), name=name)

    def as_dict(self) -> dict[str, ScenarioValue]:
        """The values as a dict (parameter name -> value)."""
        return dict(self.values)

    def __getitem__(self, key: str) -> ScenarioValue:
        return self.as_dict()[key]

    def key(self) -> str:
        """A stable identifier of the values (16 hex digits of a SHA-256 of their canonical
        JSON, every number as a float): the same across runs, processes and machines, equal
        exactly when the scenarios are equal; the ``name`` does not enter it."""
        canonical = [[n, [x + 0.0 for x in v] if isinstance(v, tuple) else v + 0.0]
                     for n, v in self.values]  # fmt: skip
        text = json.dumps(canonical, separators=(",", ":"))  # 20 and 20.0, -0.0 and 0.0 agree
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def distance(self, other: Scenario) -> float:
        """How different two scenarios are, in [0, 1]: the mean over the parameters either one
        gives of the relative difference ``|a - b| / max(|a|, |b|)`` (clipped to 1; averaged over
        the entries of a tuple); a parameter only one gives, or tuples of different lengths,
        count 1. 0 means equal values."""
        if not isinstance(other, Scenario):
            raise ConfigTypeError(f"distance needs a Scenario, got {type(other).__name__}")
        mine, theirs = self.as_dict(), other.as_dict()
        names = sorted(set(mine) | set(theirs))
        if not names:
            return 0.0
        return sum(_value_distance(mine.get(n), theirs.get(n)) for n in names) / len(names)

    def similarity(self, other: Scenario, bandwidth: float = 0.1) -> float:
        """``exp(-distance / bandwidth)``, in (0, 1]: 1 for equal scenarios; ``bandwidth`` > 0
        sets how fast it falls (at distance = bandwidth it is 1/e)."""
        if not (isinstance(bandwidth, (int, float)) and math.isfinite(bandwidth) and bandwidth > 0):
            raise ConfigError(f"bandwidth must be a finite number > 0, got {bandwidth!r}")
        return math.exp(-self.distance(other) / bandwidth)


def _scenario_value(name: str, value: Any) -> ScenarioValue:
    """``value`` as a plain number or tuple of floats (numpy scalars and lists accepted)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        items = tuple(_scenario_value(name, v) for v in np.ravel(np.asarray(value, dtype=object)))
        return tuple(float(v) for v in items)  # type: ignore[arg-type]
    if type(value) is float and math.isfinite(value):  # the common case, fast
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise ConfigTypeError(
            f"Scenario parameter {name!r} must be a number or numbers, got {value!r}"
        )
    if not math.isfinite(float(value)):
        raise ConfigError(f"Scenario parameter {name!r} must be finite, got {value!r}")
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def _value_distance(a: ScenarioValue | None, b: ScenarioValue | None) -> float:
    if a is None or b is None:
        return 1.0
    xs = a if isinstance(a, tuple) else (a,)
    ys = b if isinstance(b, tuple) else (b,)
    if isinstance(a, tuple) != isinstance(b, tuple) or len(xs) != len(ys):
        return 1.0
    if not xs:
        return 0.0
    total = 0.0
    for x, y in zip(xs, ys, strict=True):
        scale = max(abs(x), abs(y))
        total += 0.0 if scale == 0 else min(1.0, abs(x - y) / scale)
    return total / len(xs)


@dataclass(frozen=True)
class ScenarioChange:
    """The physical network switches to ``scenario`` just before physical iteration ``step``
    (1-based): that step and every later one run under it (``twinrl.train(..., changes=...)``)."""

    step: int
    scenario: Scenario

    def __post_init__(self) -> None:
        step = self.step
        if (
            isinstance(step, (bool, np.bool_))
            or not isinstance(step, (int, np.integer))
            or step < 1
        ):
            raise ConfigError(f"ScenarioChange.step must be an int >= 1, got {step!r}")
        if not isinstance(self.scenario, Scenario):
            raise ConfigTypeError(
                f"ScenarioChange.scenario must be a Scenario, got {type(self.scenario).__name__}"
            )
        object.__setattr__(self, "step", int(step))


def as_generator(
    rng: np.random.Generator | np.random.SeedSequence | int | None,
) -> np.random.Generator:
    """A numpy Generator from a Generator, a SeedSequence, an int seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.Generator(np.random.PCG64(rng))


_MASK64 = (1 << 64) - 1


def pcg64_to_array(state: Mapping[str, Any]) -> NDArray[np.uint64]:
    """A PCG64 bit generator's state as 6 uint64 words (to store it in an ``.npz`` checkpoint)."""
    inner = state["state"]
    words = [
        inner["state"] >> 64, inner["state"] & _MASK64, inner["inc"] >> 64, inner["inc"] & _MASK64,
        state["has_uint32"], state["uinteger"],
    ]  # fmt: skip
    return np.array(words, dtype=np.uint64)


def pcg64_from_array(words: NDArray[Any]) -> Any:
    """The inverse of :func:`pcg64_to_array`."""
    if words.shape != (6,):
        raise ValueError(f"rng state must have shape (6,), got {words.shape}")
    w = [int(x) for x in words]
    return {
        "bit_generator": "PCG64",
        "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
        "has_uint32": w[4],
        "uinteger": w[5],
    }
