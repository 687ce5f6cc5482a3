"""The ``ray`` twin backend: blocks of domains stepped in Ray actors, for slow third-party envs.

Each actor holds its own copy of the env and steps a block of domains with the
:class:`~twinrl.twin.backends.SerialBackend`, exactly as the serial backend would in this process,
so the results are bit-identical to it. A call ships the block's states and actions to the actor
and the next states back; that costs about a millisecond, so a block is sized to do at least
``min_seconds`` (10 ms) of stepping: the first call times a few domain steps in this process and
sets :attr:`RayBackend.block` from them. A call with less than one block of domains is stepped here.

Worth it only where one env step costs a millisecond or more (a simulator behind the env); a
twinrl env with ``step_batch`` is far faster with the ``vectorized`` backend.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.contract import DomainSteps
from twinrl.errors import ConfigError, WorkerLostError
from twinrl.twin.backends import SerialBackend, snapshot_mode
from twinrl.twin.ray_session import ensure_connected, require_ray
from twinrl.validation import check_float, check_int

_PROBE_STEPS = 4
"""Domain steps timed in this process (at the first call) to size a block."""


class _Stepper:
    """A Ray actor's state: its own serial backend over its copy of the env."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        self.backend = SerialBackend(env)

    def step(self, states: Sequence[Any], actions: NDArray[np.int64]) -> DomainSteps:
        return self.backend.step(states, actions)

    def cpu_seconds(self) -> float:
        """CPU time of the actor's process so far (read by ``benchmarks/ray_backend.py``)."""
        return time.process_time()


class RayBackend:
    """Any env the serial backend can step, whose env and states Ray can send to an actor.

    Args:
        env: the physical env (as for :class:`~twinrl.twin.backends.SerialBackend`).
        workers: actors (one CPU each); default: the CPUs of the Ray cluster. Connects to Ray,
            starting a local instance if none is connected (``ray.init`` before, to use a
            cluster).
        block: domains per actor call at least; default: measured, so that a call does at least
            ``min_seconds`` of stepping.
        min_seconds: the least stepping time per actor call, when ``block`` is measured.

    Raises:
        ImportError: Ray is not installed.
        ConfigError: the env cannot be sent to an actor (or copied), or a bad ``workers``,
            ``block`` or ``min_seconds``.
    """

    name = "ray"

    def __init__(
        self,
        env: gym.Env[Any, Any],
        *,
        workers: int | None = None,
        block: int | None = None,
        min_seconds: float = 0.01,
    ) -> None:
        ray = require_ray('the twin backend "ray"')
        self.mode = snapshot_mode(env)
        self._local = SerialBackend(env)  # fails first for an env that cannot be copied
        self.block = None if block is None else check_int("block", block, 1, 10**9)
        """Domains per actor call at least (None until the first call measures it)."""
        self.min_seconds = check_float("min_seconds", min_seconds, 0.0, 60.0)
        if workers is not None:
            check_int("workers", workers, 1, 4096)
        shipped = env.unwrapped if self.mode == "native" else env
        try:
            ray.cloudpickle.dumps(shipped)
        except Exception as exc:
            raise ConfigError(
                f"{type(env.unwrapped).__name__} cannot be sent to a Ray actor "
                f"({type(exc).__name__}: {exc}); the ray twin backend ships the env to each "
                "actor: close what cannot be pickled (e.g. make it with render_mode=None), or "
                "use backend='serial'"
            ) from exc
        ensure_connected()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = max(1, cpus) if workers is None else workers
        """Actors that step the domains (started at the first call that needs them; each
        backend starts its own, e.g. one per ensemble member of a twin)."""
        self._shipped = shipped
        self._actors: list[Any] = []

    def step(self, states: Sequence[Any], actions: NDArray[np.int64]) -> DomainSteps:
        actions = np.asarray(actions)
        if not len(states):
            return self._local.step(states, actions)
        parts: list[DomainSteps] = []
        first = 0
        block = self.block
        if block is None:  # time a few steps here to size the blocks
            first = min(_PROBE_STEPS, len(states))
            start = time.perf_counter()
            parts.append(self._local.step(states[:first], actions[:first]))
            per_step = (time.perf_counter() - start) / first
            block = self.block = max(1, math.ceil(self.min_seconds / max(per_step, 1e-9)))
        rest = len(states) - first
        if block is not None and rest >= block:
            parts += self._remote(states[first:], actions[first:], block)
        elif rest:
            parts.append(self._local.step(states[first:], actions[first:]))
        return concat(parts)

    def _remote(
        self, states: Sequence[Any], actions: NDArray[np.int64], block: int
    ) -> list[DomainSteps]:
        """Step the domains in at most :attr:`workers` actor calls of at least ``block``.

        If an actor's process dies, every actor is replaced and the calls run once more.

        Raises:
            WorkerLostError: an actor died again.
        """
        from ray.exceptions import RayActorError

        bounds = np.linspace(0, len(states), min(self.workers, len(states) // block) + 1)
        blocks = list(itertools.pairwise(bounds.astype(int)))
        try:
            return self._call(blocks, states, actions)
        except RayActorError:
            self._stop_actors()  # and run the calls once more in fresh ones
        try:
            return self._call(blocks, states, actions)
        except RayActorError as exc:
            self._stop_actors()
            raise WorkerLostError(
                f"a Ray actor of the twin backend died ({type(exc).__name__}) while stepping "
                f"{len(states)} domains, and again in a fresh actor; step them with "
                "backend='serial' to find out why"
            ) from None

    def _call(
        self, blocks: list[tuple[int, int]], states: Sequence[Any], actions: NDArray[np.int64]
    ) -> list[DomainSteps]:
        """One actor call per block (starting the actors if there are none)."""
        ray = require_ray('the twin backend "ray"')
        if not self._actors:
            actor = ray.remote(num_cpus=1)(_Stepper)
            env = ray.put(self._shipped)
            self._actors = [actor.remote(env) for _ in range(self.workers)]
        refs = [self._actors[i].step.remote(list(states[lo:hi]), actions[lo:hi])
                for i, (lo, hi) in enumerate(blocks)]  # fmt: skip
        return list(ray.get(refs))

    def _stop_actors(self) -> None:
        ray = require_ray('the twin backend "ray"')
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []


def concat(parts: Sequence[DomainSteps]) -> DomainSteps:
    """The steps of consecutive blocks of domains as one :class:`DomainSteps`."""
    if len(parts) == 1:
        return parts[0]
    masks = [p.next_mask for p in parts]
    return DomainSteps(
        [s for p in parts for s in p.states],
        np.concatenate([p.next_obs for p in parts]),
        np.concatenate([p.reward for p in parts]),
        np.concatenate([p.terminated for p in parts]),
        np.concatenate([p.truncated for p in parts]),
        None if any(m is None for m in masks) else np.concatenate(masks),  # type: ignore[arg-type]
        {key: np.concatenate([p.info[key] for p in parts]) for key in parts[0].info},
    )
