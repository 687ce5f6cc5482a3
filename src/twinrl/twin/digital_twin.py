"""The digital space of a physical env: one identical domain and many different domains."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.contract import DomainSteps
from twinrl.errors import ConfigTypeError, short_repr
from twinrl.twin.backends import Backend, capture, make_backend, snapshot_mode
from twinrl.twin.fidelity import Fidelity, Measured


class DigitalTwin:
    """Digital space of a physical env (paper 000, Section II-A; DESIGN.md section 3).

    The *identical* domain mirrors the physical state (:meth:`mirror` in the training loop, or
    :meth:`sync`). *Different* domains start from a mirrored state and try other actions
    (:meth:`trial`) or run ahead (:meth:`step_domains`); they never touch the physical env. With
    ``Fidelity()`` (the default) the twin is perfect: its dynamics and parameters are the physical
    env's own and it mirrors the exact state at every step. Other fidelities make it biased, noisy,
    stale or late (:mod:`twinrl.twin.fidelity`).

    Any Gymnasium env works. An env whose ``unwrapped`` offers ``get_state``/``set_state`` and
    carries no wrapper that changes what the agent sees is snapshotted natively (fast; with a
    ``step_batch`` it runs all domains in one numpy call); any other env, including a wrapped one,
    is snapshotted by deep copy of the whole wrapped env, so every domain applies the same wrappers
    (see :mod:`twinrl.twin.backends`).

    Args:
        env: the physical env (the one the agent acts in, wrappers included).
        backend: ``"vectorized"`` (the env's batched dynamics), ``"serial"`` (one env step per
            domain) or ``"auto"``. All give identical results.
        fidelity: how the twin differs from the physical network (default: perfect).
    """

    def __init__(
        self, env: gym.Env[Any, Any], *, backend: str = "auto", fidelity: Fidelity | None = None
    ) -> None:
        self.mode = snapshot_mode(env)
        """``"native"`` (the env's own get/set_state) or ``"copy"`` (deep copies)."""
        if fidelity is not None and not isinstance(fidelity, Fidelity):
            raise ConfigTypeError(f"fidelity must be a Fidelity, got {short_repr(fidelity)}")
        self.fidelity = fidelity or Fidelity()
        self.fidelity.check_env(env, self.mode)
        self._env, self._backend_name = env, backend
        self._scale = 1.0
        self.model: Any = None
        """The twin's model of the network: the physical env's own dynamics with the twin's
        parameters (the physical ones for an exact model), read for env-specific twin services
        such as ``reseed_domain``; None in ``copy`` mode, where states are whole env copies."""
        self.backend: Backend = self._build(1.0)
        self._rng = np.random.default_rng(self.fidelity.seed)
        self._seen: deque[Any] = deque(maxlen=self.fidelity.delay + 1)
        self._actions: deque[Any] = deque(maxlen=max(self.fidelity.delay, 1))
        self.prediction_steps = 0
        """Model steps the identical domain took to predict the physical state between syncs
        (and through a sync delay); not part of :attr:`evaluations`."""
        self._identical: Any | None = None
        self._ended: Any | None = None  # the predicted state at which the model ended an episode
        self.evaluations = 0
        """Number of domain steps simulated so far (the twin's work, reported beside the
        physical iterations)."""
        self.calls = 0
        """Number of :meth:`step_domains` calls so far (each steps K domains at once; what a
        batched twin's time is roughly proportional to)."""

    def capture(self, env: gym.Env[Any, Any]) -> Any:
        """A snapshot of the physical env's current state, in this twin's snapshot mode."""
        return capture(env, self.mode)

    def sync(self, state: Any) -> None:
        """The identical domain mirrors exactly ``state`` (Fig. 1 of paper 000)."""
        self._identical = state

    def ready(self, t: int) -> bool:
        """Whether the twin is built and usable at physical step ``t`` (1-based)."""
        return self.fidelity.ready(t)

    def mirror(self, env: gym.Env[Any, Any], t: int, *, episode_start: bool, action: Any) -> None:
        """The identical domain's view of the physical state at step ``t`` under this twin's
        fidelity: exact for a perfect twin; otherwise a (noisy, possibly late) measurement at
        each sync moment (every ``sync_every`` steps and at every episode start), rolled forward
        through the ``delay`` with the executed actions, and the twin's own prediction between
        syncs. ``action`` is the physical action executed at ``t - 1`` (ignored at an episode
        start)."""
        state = self.capture(env)
        f = self.fidelity
        if f.perfect:
            self._identical = state
            return
        self._rescale(f.error_scale(t))
        if episode_start:
            self._seen.clear()
            self._actions.clear()
        else:
            self._actions.append(action)
        self._seen.append(state)
        if episode_start or self._identical is None or (t - 1) % f.sync_every == 0:
            measured = f.measure(self._seen[0], self._measured(), self._rng, self._scale)
            pending = list(self._actions)[len(self._actions) - (len(self._seen) - 1) :]
            for past in pending:  # the delay: predict from the late measurement to now
                measured = self._predict(measured, past)
            self._identical = measured
        else:
            self._identical = self._predict(self._identical, action)

    def one_step_error(
        self, action: Any, obs: Any, reward: float, terminated: bool, info: dict[str, Any]
    ) -> dict[str, float]:
        """The fidelity metric: how far the identical domain's prediction of the physical step just
        taken (``action`` from the mirrored state) is from what the physical env did. Keys:
        ``reward`` (absolute error), ``obs`` (Euclidean distance of the observations),
        ``terminated`` (1 if they disagree) and, per declared ``twin_info_keys`` entry, 1 if the
        twin's value differs. Not counted as twin work."""
        out = self.backend.step([self.identical_state], np.asarray([action], dtype=np.int64))
        error = {
            "reward": abs(float(out.reward[0]) - float(reward)),
            "obs": float(np.linalg.norm(np.ravel(out.next_obs[0]).astype(float)
                                        - np.ravel(np.asarray(obs)).astype(float))),
            "terminated": float(bool(out.terminated[0]) != bool(terminated)),
        }  # fmt: skip
        for key, values in out.info.items():
            error[key] = float(not np.array_equal(values[0], np.asarray(info.get(key))))
        return error

    def _predict(self, state: Any, action: Any) -> Any:
        """One step of the twin's model from ``state``; once the model ends the episode, the
        prediction stays at that last state until the next sync."""
        if self._ended is state:
            return state
        self.prediction_steps += 1
        out = self.backend.step([state], np.asarray([action], dtype=np.int64))
        nxt = out.states[0]
        if out.done[0]:
            self._ended = nxt
        return nxt

    def _measured(self) -> dict[str, Measured]:
        return dict(getattr(self._env.unwrapped, "measured_state", {}))

    def _build(self, scale: float) -> Backend:
        """The backend over the twin's model at error ``scale``."""
        self._scale = scale
        base: Any = self._env.unwrapped
        if self.mode != "native":
            return make_backend(self._env, self._backend_name)
        if self.fidelity.exact_model or scale == 0.0:
            self.model = base
            return make_backend(self._env, self._backend_name)
        params = self.fidelity.model_params(base.params, scale)
        self.model = type(base)(**{f.name: getattr(params, f.name) for f in fields(params)})
        return make_backend(self.model, self._backend_name)

    def _rescale(self, scale: float) -> None:
        """Rebuild the model when a twin under construction has become more accurate."""
        if scale != self._scale:
            self.backend = self._build(scale)

    @property
    def identical_state(self) -> Any:
        """The physical state as mirrored at the last :meth:`sync`."""
        if self._identical is None:
            raise RuntimeError("the twin has not been synced with the physical env yet")
        return self._identical

    def trial(self, state: Any, actions: NDArray[np.int64]) -> DomainSteps:
        """Try each action in its own different domain, all synced to ``state``."""
        actions = np.asarray(actions, dtype=np.int64)
        return self.step_domains([state] * actions.shape[0], actions)

    def step_domains(self, states: Sequence[Any], actions: NDArray[np.int64]) -> DomainSteps:
        """Step K domains, each from its own state with its own action."""
        if len(states) != len(actions):
            raise ValueError(f"got {len(states)} domain states but {len(actions)} actions")
        if len(states) == 0:
            raise ValueError("step_domains needs at least one domain")
        self.evaluations += len(states)
        self.calls += 1
        return self.backend.step(states, np.asarray(actions, dtype=np.int64))
