"""How a digital twin differs from the physical network: model bias, measurement noise, stale sync
and construction delay (paper 000, Section V-A "Noise in DT" and V-B "Extra Training Delay of DT
Construction").

``Fidelity()`` is a perfect twin: the physical env's own dynamics and parameters, synced exactly at
every step. Each option makes one thing imperfect:

* **model bias** (``bias``, ``model``): the twin runs the env's dynamics with other parameter
  values. An env names the parameters a twin may get wrong in its params dataclass
  (``twin_params``, e.g. the uplink rate ``rate`` and the server speed ``f_ser`` of edge
  scheduling).
* **measurement noise** (``noise``, ``noise_mean``): at each sync the twin mirrors a noisy
  measurement of the physical state. An env declares its measurable state fields, their units
  and bounds (``measured_state``); noise is Gaussian with the given standard deviation and mean
  (a mean != 0 is a biased sensor), and ``relative`` fields take it as a fraction of the value.
* **stale sync** (``sync_every`` P, ``delay`` D): the twin re-syncs every P physical steps and sees
  the state D steps late; otherwise it predicts the physical state by stepping its own model with
  the actions it knows were executed. An episode start is always a sync moment.
* **construction** (``ready_after`` T_c, ``improve_over``): the twin cannot be used for the first
  T_c physical steps (assists wait; the agent learns physically), and its bias and noise shrink
  linearly to zero over the ``improve_over`` steps after that (0: they stay as given).

The twin draws its noise from its own stream (``seed``), so an imperfect twin never changes the
physical env's randomness, and a seeded fidelity is reproducible bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.contract import Measured
from twinrl.errors import ConfigError, ConfigTypeError, short_repr
from twinrl.validation import check_float, check_int

IMPROVE_LEVELS = 20
"""A twin under construction rebuilds its biased model at most this many times (its error shrinks
in this many steps), so construction costs no model rebuild per physical step."""


@dataclass(frozen=True)
class Fidelity:
    """How the twin differs from the physical network; ``Fidelity()`` is a perfect twin."""

    bias: Mapping[str, float] = field(default_factory=dict)
    """Relative model error per parameter the env lists in ``twin_params``: the twin's value is the
    physical value x (1 + bias), bias > -1 (e.g. ``{"rate": -0.2}``: the twin thinks the uplink
    is 20% slower)."""
    model: Mapping[str, float | tuple[float, ...]] = field(default_factory=dict)
    """Absolute twin values of parameters in ``twin_params`` (e.g. a :class:`Calibrator`'s
    estimates; a tuple for a tuple-valued parameter such as ``ap_rates``); applied before
    ``bias``."""
    noise: Mapping[str, float] = field(default_factory=dict)
    """Standard deviation (>= 0) of the measurement noise per field the env lists in
    ``measured_state``, in the field's unit (a fraction of the value for ``relative`` fields)."""
    noise_mean: Mapping[str, float] = field(default_factory=dict)
    """Mean of the measurement noise per measured field (a biased sensor); 0 when absent."""
    sync_every: int = 1
    """P: the twin re-syncs with the physical state every P physical steps (and at each episode
    start); in between it predicts with its own model. In [1, 1e9]."""
    delay: int = 0
    """D: at a sync the twin sees the physical state of D steps earlier (within the episode) and
    predicts forward with the executed actions. In [0, 1e6]."""
    ready_after: int = 0
    """T_c: physical steps before the twin is built and usable (assists wait). In [0, 1e9]."""
    improve_over: int = 0
    """Physical steps over which bias and noise shrink linearly to 0 once the twin is usable (a twin
    still being built); 0: they stay as given. In [0, 1e9]."""
    seed: int = 0
    """Seed of the twin's own noise stream, in [0, 2**63 - 1]."""

    def __post_init__(self) -> None:
        for name in ("bias", "model", "noise", "noise_mean"):
            value = getattr(self, name)
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise ConfigTypeError(
                    f"Fidelity.{name} must be a mapping of field name to number, got "
                    f"{short_repr(value)}"
                )
            low = -1.0 if name == "bias" else 0.0 if name == "noise" else -math.inf
            checked = {
                key: _check_value(
                    f"Fidelity.{name}[{key!r}]", v, low, name == "bias", tuples=name == "model"
                )
                for key, v in value.items()
            }
            object.__setattr__(self, name, checked)
        for name, low, high in (("sync_every", 1, 10**9), ("delay", 0, 10**6),
                                ("ready_after", 0, 10**9), ("improve_over", 0, 10**9),
                                ("seed", 0, 2**63 - 1)):  # fmt: skip
            object.__setattr__(self, name, check_int(f"Fidelity.{name}", getattr(self, name),
                                                     low, high))  # fmt: skip

    @property
    def perfect(self) -> bool:
        """Whether this is a perfect twin (today's behaviour, bit for bit)."""
        return self == Fidelity(seed=self.seed)

    @property
    def exact_model(self) -> bool:
        """Whether the twin's parameters equal the physical env's."""
        return not self.bias and not self.model

    def error_scale(self, t: int) -> float:
        """Share of the stated bias and noise in force at physical step ``t`` (1-based): 1, or
        shrinking to 0 over ``improve_over`` steps after ``ready_after``, in
        :data:`IMPROVE_LEVELS` steps."""
        if self.improve_over == 0:
            return 1.0
        built = max(0, t - self.ready_after) / self.improve_over
        return max(0.0, math.ceil((1.0 - built) * IMPROVE_LEVELS) / IMPROVE_LEVELS)

    def ready(self, t: int) -> bool:
        """Whether the twin can be used at physical step ``t`` (1-based)."""
        return t > self.ready_after

    def check_env(self, env: Any, mode: str) -> None:
        """Raise a clear error if this fidelity names what ``env`` does not declare."""
        base = env.unwrapped
        if (self.bias or self.model or self.noise or self.noise_mean) and mode != "native":
            raise ConfigError(
                f"model bias and measurement noise need an env with get_state()/set_state() and "
                f"declared twin_params / measured_state; {type(base).__name__} has none (its twin "
                "copies it); stale sync and construction delay work for any env"
            )
        env_name = type(base).__name__
        allowed = tuple(getattr(getattr(base, "params", None), "twin_params", ()))
        measured = tuple(getattr(base, "measured_state", {}))
        for options, declared, what in (
            (("bias", "model"), allowed, "does not let a twin get wrong; its twin_params are"),
            (("noise", "noise_mean"), measured, "does not measure; its measured_state fields are"),
        ):
            for name in options:
                unknown = sorted(set(getattr(self, name)) - set(declared))
                if unknown:
                    raise ConfigError(
                        f"Fidelity.{name} names {unknown}, which {env_name} {what} "
                        f"{sorted(declared)}"
                    )

    def model_params(self, params: Any, scale: float) -> Any:
        """The twin's parameters: each named one at ``model`` (else the physical value) x
        (1 + ``bias``), moved ``scale`` of the way from the physical value (1: all the way).
        Tuple-valued parameters (one value per access point, ...) change elementwise."""
        values = {}
        for name in sorted(set(self.model) | set(self.bias)):
            true = np.asarray(getattr(params, name), dtype=np.float64)
            target = np.asarray(self.model.get(name, true), dtype=np.float64) * (
                1.0 + self.bias.get(name, 0.0)
            )
            if target.shape != true.shape:
                raise ConfigError(
                    f"Fidelity.model[{name!r}] has {target.size} values; the env's {name} has "
                    f"{true.size}"
                )
            value = target if scale == 1.0 else true + scale * (target - true)
            values[name] = tuple(np.ravel(value).tolist()) if true.ndim else float(value)
        return replace(params, **values)

    def measure(
        self, state: Any, measured: Mapping[str, Measured], rng: np.random.Generator, scale: float
    ) -> Any:
        """``state`` as the twin measures it: each noisy field plus Gaussian noise, clipped to its
        declared bounds, in the field's dtype."""
        if scale == 0.0 or not (self.noise or self.noise_mean):
            return state
        changes: dict[str, NDArray[Any]] = {}
        for name in sorted(set(self.noise) | set(self.noise_mean)):
            value = np.asarray(getattr(state, name))
            spec = measured[name]
            error = scale * (
                self.noise_mean.get(name, 0.0)
                + self.noise.get(name, 0.0) * rng.standard_normal(value.shape)
            )
            noisy = value * (1.0 + error) if spec.unit == "relative" else value + error
            noisy = np.clip(noisy, spec.low, spec.high).astype(value.dtype)
            noisy.flags.writeable = False
            changes[name] = noisy
        return replace(state, **changes)


__all__ = ["Fidelity", "Measured"]


def _check_value(name: str, value: Any, low: float, low_open: bool, tuples: bool) -> Any:
    """A finite float at least ``low`` (above it if ``low_open``); with ``tuples``, also a tuple
    or list of such floats (returned as a tuple)."""
    if tuples and isinstance(value, (tuple, list, np.ndarray)):
        items = [_check_value(f"{name}[{i}]", v, low, low_open, False) for i, v in enumerate(value)]
        if not items:
            raise ConfigError(f"{name} is empty; give one value per element")
        return tuple(items)
    return check_float(name, value, low, math.inf, low_open=low_open, high_open=True)


def fidelity_fields() -> list[str]:
    """The names of :class:`Fidelity`'s options (for configs and docs)."""
    return [f.name for f in fields(Fidelity)]
