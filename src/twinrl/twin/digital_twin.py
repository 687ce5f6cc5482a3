"""The digital space of a physical env: one identical domain and many different domains."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.checkpoint import check_like
from twinrl.checkpoint.rng import rng_words, set_rng_words
from twinrl.contract import DomainSteps
from twinrl.errors import ConfigError, ConfigTypeError, short_repr
from twinrl.twin.backends import Backend, capture, deep_copy, make_backend, snapshot_mode
from twinrl.twin.calibration import Calibrator, Recalibration, calibrator_for
from twinrl.twin.fidelity import Fidelity, Measured
from twinrl.validation import check_float, check_int


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
        average: domain averaging (paper 000, Section V-A): the identical domain keeps this many
            mirrors of the physical state, each with its own measurement noise, and
            :meth:`trial_identical` returns each action's mean outcome over them (rewards and
            declared info averaged; ``info["failed"]`` becomes a failure probability). Where the
            env can re-key a state's randomness (``reseed_domain``), each view also draws its own
            future. 1: off.
        ensemble: ensemble trust (the masking of model-based RL with learned models, e.g.
            M2AC/MOPO): one set of model parameters per view (e.g. a ``Calibrator``'s bootstrap
            ``samples``), so the m views run m plausible models; ``average`` becomes m.
        trust: with an ensemble, the largest spread (standard deviation over the members) of an
            action's reward that is still trusted; :meth:`trial_identical` marks each action in
            ``info["trusted"]`` (1 or 0) beside ``info["disagreement"]``, and the assists learn
            only from trusted outcomes. None: every outcome is trusted.
        recalibrate: online calibration (a mitigation of model bias): the twin re-estimates its
            model from the physical transitions it mirrors (:meth:`observe`, called by
            ``train``), every ``recalibrate.every`` of them; with ``recalibrate.members`` m > 1
            the m bootstrap estimates form the ensemble (then ``ensemble`` and ``trust`` must not
            be passed: ``recalibrate.trust`` sets the threshold). Needs an env with a
            :class:`~twinrl.twin.Calibrator` (:func:`~twinrl.twin.calibrator_for`).
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        *,
        backend: str = "auto",
        fidelity: Fidelity | None = None,
        average: int = 1,
        ensemble: Sequence[Mapping[str, Any]] = (),
        trust: float | None = None,
        recalibrate: Recalibration | None = None,
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
        self._estimate: dict[str, Any] | None = None  # the last recalibration's parameters
        self.backend: Backend = self._build(1.0)
        self._rng = np.random.default_rng(self.fidelity.seed)
        self._seen: deque[Any] = deque(maxlen=self.fidelity.delay + 1)
        self._actions: deque[Any] = deque(maxlen=max(self.fidelity.delay, 1))
        self.prediction_steps = 0
        """Model steps the identical domain took to predict the physical state between syncs
        (and through a sync delay); not part of :attr:`evaluations`."""
        self.average = check_int("average", average, 1, 10_000)
        self._members = self._ensemble(ensemble)
        if self._members:
            self.average = len(self._members)
        self.trust = None if trust is None else check_float("trust", trust, 0.0, math.inf)
        if self.trust is not None and not self._members:
            raise ConfigError("trust needs an ensemble: pass ensemble=[params, ...]")
        self.recalibrate = self._recalibration(recalibrate)
        self.calibrator: Calibrator | None = None
        """The calibrator of ``recalibrate`` (None without it): the physical data seen so far."""
        self.recalibrations = 0
        """Times the model was rebuilt from the calibrator's estimates."""
        if self.recalibrate is not None:
            self.calibrator = calibrator_for(env)
            self._cal_rng = np.random.default_rng(self.recalibrate.seed)
            if self.recalibrate.members > 1:
                self._members = [self.backend] * self.recalibrate.members  # the prior, m times
                model: Any = self.model  # native mode: an env with params
                prior = model.params
                names = getattr(prior, "twin_params", ())
                self.members = [{n: getattr(prior, n) for n in names}] * len(self._members)
                self.average, self.trust = len(self._members), self.recalibrate.trust
        self._mirrors: list[Any] = []  # the identical domain's m views of the physical state
        self._truth: Any | None = None  # the exact physical state at the last mirror (audits)
        self._ended: list[bool] = []  # per view: the twin's model ended the episode
        self.evaluations = 0
        """Number of domain steps simulated so far (the twin's work, reported beside the
        physical iterations)."""
        self.calls = 0
        """Number of :meth:`step_domains` calls so far (each steps K domains at once; what a
        batched twin's time is roughly proportional to)."""

    _COUNTERS = ("evaluations", "calls", "prediction_steps", "recalibrations")

    def state_dict(self) -> dict[str, NDArray[Any]]:
        """Arrays only: the work counters (:attr:`evaluations`, :attr:`calls`, ...) and the
        twin's random stream ``rng``. Enough to resume training with a twin that mirrors the
        physical state at every step (a perfect twin, ``twinrl train``'s); an imperfect twin
        also carries its measurements, predictions and model between syncs, which are not saved.

        Raises:
            ConfigError: the twin is imperfect or recalibrates (its state is not saved).
        """
        if not self.fidelity.perfect or self.recalibrate is not None:
            raise ConfigError(
                "resuming needs a perfect twin (Fidelity()); an imperfect or recalibrating "
                "twin's measurements and model between syncs are not saved in a checkpoint"
            )
        out = {name: np.array(getattr(self, name), dtype=np.int64) for name in self._COUNTERS}
        return {**out, "rng": rng_words(self._rng, "DigitalTwin")}

    def load_state_dict(self, state: Mapping[str, NDArray[Any]]) -> None:
        """Restore :meth:`state_dict` output (checked; ``CheckpointError`` naming the key)."""
        own = self.state_dict()
        state = check_like(state, own, owner="DigitalTwin", counters=self._COUNTERS)
        set_rng_words(self._rng, state["rng"], "DigitalTwin")
        for name in self._COUNTERS:
            setattr(self, name, int(state[name]))

    def capture(self, env: gym.Env[Any, Any]) -> Any:
        """A snapshot of the physical env's current state, in this twin's snapshot mode."""
        return capture(env, self.mode)

    def sync(self, state: Any) -> None:
        """The identical domain mirrors exactly ``state`` (Fig. 1 of paper 000)."""
        self._truth = state
        self._mirrors = self._own_futures([state] * self.average)
        self._ended = [False] * self.average

    def _own_futures(self, views: list[Any]) -> list[Any]:
        """With ``average`` m > 1, or for any imperfect twin, each view gets its own random
        future where the model can re-key one (``reseed_domain``: user mobility, link fading),
        keys from the twin's stream: the m views estimate the spread of outcomes instead of
        replaying the physical one, and a real twin, which measures the state but not the
        physical env's random stream, cannot foresee the physical draws (only the perfect twin,
        the papers' oracle, replays them)."""
        reseed = getattr(self.model, "reseed_domain", None)
        if (self.average == 1 and self.fidelity.perfect) or not callable(reseed):
            return views
        keys = self._rng.integers(0, 2**63, size=len(views))
        return [reseed(view, int(key)) for view, key in zip(views, keys, strict=True)]

    def model_env(self) -> gym.Env[Any, Any]:
        """A fresh env that runs the twin's model (its parameters), apart from the physical env:
        where an agent can be pre-trained in the digital space only."""
        if self.mode != "native":
            return deep_copy(self._env)
        return _env_with(self._env.unwrapped, self.model.params)

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
            self.sync(state)
            return
        self._truth = state
        self._rescale(f.error_scale(t))
        if episode_start:
            self._seen.clear()
            self._actions.clear()
        else:
            self._actions.append(action)
        self._seen.append(state)
        if episode_start or not self._mirrors or (t - 1) % f.sync_every == 0:
            measured = [
                f.measure(self._seen[0], self._measured(), self._rng, self._scale)
                for _ in range(self.average)
            ]
            self._ended = [False] * self.average
            measured = self._own_futures(measured)
            pending = list(self._actions)[len(self._actions) - (len(self._seen) - 1) :]
            for past in pending:  # the delay: predict from the late measurement to now
                measured = self._predict(measured, past)
            self._mirrors = measured
        else:
            self._mirrors = self._predict(self._mirrors, action)

    def trial_identical(self, actions: NDArray[np.int64]) -> DomainSteps:
        """Try each action from the identical domain; with ``average`` m > 1, in each of its m
        views (each in its own model with an ``ensemble``), returning the mean reward and mean
        declared info per action (the next states, observations and episode ends of the first
        view); with an ensemble also ``info["disagreement"]`` and ``info["trusted"]``."""
        actions = np.asarray(actions, dtype=np.int64)
        if self.average == 1 and not self._members:
            return self.trial(self.identical_state, actions)
        k = actions.shape[0]
        if self._members:
            self.evaluations += self.average * k
            self.calls += self.average
            outs = [m.step([v] * k, actions) for m, v in zip(self._members, self._mirrors,
                                                             strict=True)]  # fmt: skip
        else:
            states = [view for view in self._mirrors for _ in range(k)]
            out = self.step_domains(states, np.concatenate([actions] * self.average))
            outs = [_rows(out, slice(j * k, (j + 1) * k)) for j in range(self.average)]
        rewards = np.stack([o.reward for o in outs])
        info = {key: np.mean([np.asarray(o.info[key], dtype=np.float64) for o in outs], axis=0)
                for key in outs[0].info}  # fmt: skip
        if self._members:
            info["disagreement"] = rewards.std(axis=0)
            limit = math.inf if self.trust is None else self.trust
            info["trusted"] = (info["disagreement"] <= limit).astype(np.float64)
        first = outs[0]
        return first._replace(reward=rewards.mean(axis=0), info=info)

    def one_step_error(
        self, action: Any, obs: Any, reward: float, terminated: bool, info: dict[str, Any]
    ) -> dict[str, float]:
        """The fidelity metric: how far the identical domain's prediction of the physical step just
        taken (``action`` from the mirrored state, exactly as :meth:`trial_identical` gives it to
        the assists: averaged over the views, each in its ensemble member's model) is from what
        the physical env did. Keys: ``reward`` (absolute error), ``obs`` (Euclidean distance of
        the observations), ``terminated`` (1 if they disagree) and, per declared
        ``twin_info_keys`` entry, the absolute difference (a mismatch with one view; a predicted
        failure probability's distance from the outcome with several). With ``average`` > 1 the
        views draw their own random futures where the env can re-key them, so the metric then
        includes the randomness the twin does not know. Not counted as twin work."""
        work = self.evaluations, self.calls
        out = self.trial_identical(np.asarray([action], dtype=np.int64))
        self.evaluations, self.calls = work
        error = {
            "reward": abs(float(out.reward[0]) - float(reward)),
            "obs": float(np.linalg.norm(np.ravel(out.next_obs[0]).astype(float)
                                        - np.ravel(np.asarray(obs)).astype(float))),
            "terminated": float(bool(out.terminated[0]) != bool(terminated)),
        }  # fmt: skip
        for key in getattr(self._env.unwrapped, "twin_info_keys", ()):
            predicted = np.asarray(out.info[key][0], dtype=np.float64)
            error[key] = float(
                np.abs(predicted - np.asarray(info.get(key), dtype=np.float64)).max()
            )
        return error

    def observe(self, env: gym.Env[Any, Any], action: Any, info: dict[str, Any]) -> None:
        """With ``recalibrate``: record the physical step just taken (``action`` from the state
        mirrored at this step to ``env``'s state now, with the step's ``info``) and rebuild the
        model from the estimates every ``recalibrate.every`` transitions (the prior model stays
        while some parameter has no data yet). Without it: nothing."""
        if self.calibrator is None or self.recalibrate is None:
            return
        self.calibrator.observe(self.physical_state, action, self.capture(env), info)
        if self.calibrator.n_observations % self.recalibrate.every:
            return
        try:
            estimate = self.calibrator.estimate()
            samples = (self.calibrator.samples(self.recalibrate.members, self._cal_rng)
                       if self.recalibrate.members > 1 else [])  # fmt: skip
        except ConfigError:  # some parameter has no data yet: keep the prior model
            return
        self._estimate = estimate
        self.backend = self._build(self._scale)
        if samples:
            self._members = self._ensemble(samples)
        self.recalibrations += 1

    @property
    def estimate(self) -> dict[str, Any] | None:
        """The model parameters of the last recalibration (None before the first)."""
        return None if self._estimate is None else dict(self._estimate)

    def _recalibration(self, recalibrate: Recalibration | None) -> Recalibration | None:
        if recalibrate is None:
            return None
        if not isinstance(recalibrate, Recalibration):
            raise ConfigTypeError(
                f"recalibrate must be a Recalibration, got {short_repr(recalibrate)}"
            )
        if self.mode != "native":
            raise ConfigError("recalibrate needs an env with get_state()/set_state() and params")
        if self._members or self.trust is not None:
            raise ConfigError(
                "recalibrate builds its own ensemble from bootstrap estimates: drop ensemble= "
                "and trust= (set Recalibration(members=..., trust=...))"
            )
        if self.average != 1 and recalibrate.members > 1:
            raise ConfigError("recalibrate with members > 1 sets average to members; drop average=")
        return recalibrate

    def _predict(self, views: list[Any], action: Any) -> list[Any]:
        """One step of the twin's model (each view's own, with an ensemble) from each view; a view
        whose episode the model ended stays at that last state until the next sync."""
        running = [j for j, ended in enumerate(self._ended) if not ended]
        if not running:
            return views
        self.prediction_steps += len(running)
        a = np.asarray([action], dtype=np.int64)
        if self._members:
            outs = [self._members[j].step([views[j]], a) for j in running]
        else:
            out = self.backend.step([views[j] for j in running], np.concatenate([a] * len(running)))
            outs = [_rows(out, slice(i, i + 1)) for i in range(len(running))]
        views = list(views)
        for o, j in zip(outs, running, strict=True):
            views[j] = o.states[0]
            self._ended[j] = bool(o.done[0])
        return views

    def _ensemble(self, ensemble: Sequence[Mapping[str, Any]]) -> list[Backend]:
        """One backend per ensemble member, each over the env's dynamics with those parameters."""
        if isinstance(ensemble, Mapping) or not all(isinstance(m, Mapping) for m in ensemble):
            raise ConfigTypeError(
                f"ensemble must be a sequence of parameter mappings (e.g. Calibrator.samples()), "
                f"got {short_repr(ensemble)}"
            )
        if ensemble and self.mode != "native":
            raise ConfigError("an ensemble needs an env with get_state()/set_state() and params")
        members = []
        base: Any = self._env.unwrapped
        self.members = [dict(params) for params in ensemble]
        """The ensemble's parameter sets, one per member (empty without an ensemble)."""
        for params in ensemble:
            model = Fidelity(model=dict(params)).model_params(base.params, 1.0)
            members.append(make_backend(_env_with(base, model), self._backend_name))
        return members

    def _measured(self) -> dict[str, Measured]:
        return dict(getattr(self._env.unwrapped, "measured_state", {}))

    def _build(self, scale: float) -> Backend:
        """The backend over the twin's model at error ``scale``."""
        self._scale = scale
        base: Any = self._env.unwrapped
        if self.mode != "native":
            return make_backend(self._env, self._backend_name)
        if self._estimate is not None:  # recalibrated: the data replace the prior parameters
            fidelity = Fidelity(model=self._estimate)
            self.model = _env_with(base, fidelity.model_params(base.params, 1.0))
            return make_backend(self.model, self._backend_name)
        if self.fidelity.exact_model or scale == 0.0:
            self.model = base
            return make_backend(self._env, self._backend_name)
        self.model = _env_with(base, self.fidelity.model_params(base.params, scale))
        return make_backend(self.model, self._backend_name)

    def _rescale(self, scale: float) -> None:
        """Rebuild the model when a twin under construction has become more accurate."""
        if scale != self._scale:
            self.backend = self._build(scale)

    @property
    def physical_state(self) -> Any:
        """The exact physical state at the last :meth:`mirror` (for audits and metrics of the
        twin's error; an assist must decide from :attr:`identical_state`, the twin's view)."""
        if self._truth is None:
            raise RuntimeError("the twin has not been synced with the physical env yet")
        return self._truth

    @property
    def identical_state(self) -> Any:
        """The physical state as mirrored at the last :meth:`sync`."""
        if not self._mirrors:
            raise RuntimeError("the twin has not been synced with the physical env yet")
        return self._mirrors[0]

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


def _env_with(base: Any, params: Any) -> Any:
    """A fresh env of ``base``'s type built from the parameter dataclass ``params`` (the twin's
    model of the network: the env's own dynamics with the twin's parameter values)."""
    return type(base)(**{f.name: getattr(params, f.name) for f in fields(params)})


def _rows(out: DomainSteps, index: slice) -> DomainSteps:
    """The domains ``index`` of a batched step."""
    return DomainSteps(
        out.states[index],
        out.next_obs[index],
        out.reward[index],
        out.terminated[index],
        out.truncated[index],
        None if out.next_mask is None else out.next_mask[index],
        {key: value[index] for key, value in out.info.items()},
    )
