"""Resumable training: the checkpoint of a run in progress, and continuing from it.

:func:`~twinrl.training.train` with ``checkpoint=Checkpointing(path, every)`` writes, after every
``every``-th physical iteration, one checkpoint file (:func:`twinrl.checkpoint.save_checkpoint`:
atomic, checksummed, arrays only) holding every piece of state the rest of the run depends on,
each piece through its own ``state_dict()``:

* ``agent.*``: the agent (``full_state_dict()`` where it has one: a DQN's weights, Adam moments,
  counters, RNG, replay storage and pending n-step rows; else ``state_dict()``: a Q-table, its
  iteration and RNG);
* ``assist.<i>.*``: the ``i``-th assist (RNGs, counters, twin agents' tables);
* ``twin.*``: the digital twin's work counters and RNG; ``storage.*``: a storage space given to
  ``train``;
* ``env.*``: the physical env's state, its ``get_state()`` dataclass field by field, and its
  ``np_random`` stream as ``env.rng``;
* ``loop.*``: the loop itself: the iteration, the observation and action mask, whether an episode
  starts, the last action, the start of the current episode's greedy evaluation
  (``loop.start.*``), the history so far, the episodes, the evaluation schedule and the start gate.

``train(..., resume_from=load_resume(path))`` restores every piece (each checks what it is given)
and continues with the next iteration; the rest of the run is then identical to the uninterrupted
run's, bit for bit. Only what measures the machine (``Run.wall_time``) differs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.checkpoint import load_checkpoint, manifest_for, save_checkpoint
from twinrl.checkpoint.rng import rng_words, set_rng_words
from twinrl.checkpoint.state import check_state_dict, state_kind
from twinrl.errors import CheckpointError, ConfigError, short_repr
from twinrl.validation import check_int

if TYPE_CHECKING:
    from twinrl.storage.replay import Storage
    from twinrl.twin.digital_twin import DigitalTwin


class _Log(Protocol):
    """What :mod:`twinrl.resume` reads and restores of the training loop's bookkeeping
    (``twinrl.training._Log``; a protocol, since the loop imports this module)."""

    run: Any
    history: dict[str, NDArray[np.float64]]
    episode_return: float
    episode_first: int
    last_greedy: float

    def elapsed(self) -> float: ...

    def resume_clock(self, elapsed: float) -> None: ...


class _StartGate(Protocol):
    """The loop's start gate (``twinrl.training._StartGate``)."""

    open: bool
    errors: deque[float]


CONTENT = "train-resume"
"""The manifest's ``content`` of a resume checkpoint (a final ``checkpoint.npz`` is refused)."""


@dataclass(frozen=True)
class Checkpointing:
    """Where and how often :func:`~twinrl.training.train` writes its resume checkpoint.

    Args:
        path: the checkpoint file (replaced atomically at every save); its directory must exist.
        every: save after every ``every``-th physical iteration (not after the last one: the run
            is finished then), an integer in [1, 1e9].
        manifest: the run's manifest (:func:`~twinrl.checkpoint.manifest_for`: algorithm, config
            hash, spaces), which :func:`load_resume` compares with ``expect``; None: one naming
            algorithm ``"train"`` and the budget.
    """

    path: Path
    every: int
    manifest: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "every", check_int("checkpoint every", self.every, 1, 10**9))


def resume_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """``manifest`` marked as a resume checkpoint's (``content``: :data:`CONTENT`)."""
    return {**manifest, "content": CONTENT}


def load_resume(
    path: str | Path, *, expect: Mapping[str, Any] | None = None
) -> dict[str, NDArray[Any]]:
    """The arrays of a resume checkpoint, for ``train(..., resume_from=...)``.

    Args:
        path: the file :class:`Checkpointing` wrote.
        expect: the resuming run's manifest (as given to :class:`Checkpointing`); every field
            must match (another algorithm, config or space is refused).

    Raises:
        CheckpointError: the file is missing, damaged, altered, not a resume checkpoint, or
            another run's (see :func:`twinrl.checkpoint.load_checkpoint`).
    """
    arrays, manifest = load_checkpoint(
        path, expect=None if expect is None else resume_manifest(expect)
    )
    if manifest.get("content") != CONTENT:
        raise CheckpointError(
            f"checkpoint {path} is not a resume checkpoint (content "
            f"{short_repr(manifest.get('content'))}); give the resume.npz a run wrote with "
            "checkpointing on"
        )
    return arrays


# --- the pieces -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunParts:
    """The stateful parts of one :func:`~twinrl.training.train` call."""

    env: gym.Env[Any, Any]
    agent: Any
    assists: Sequence[Any]
    twin: DigitalTwin | None
    storage: Storage | None
    log: _Log
    gate: _StartGate


def _pieces(run: RunParts) -> dict[str, Any]:
    """The parts with a ``state_dict()`` by prefix; refuses an assist without one."""
    agent, twin, storage = run.agent, run.twin, run.storage
    pieces: dict[str, Any] = {"agent": agent}
    for i, assist in enumerate(run.assists):
        if not callable(getattr(assist, "state_dict", None)):
            raise ConfigError(
                f"assist {short_repr(getattr(assist, 'name', type(assist).__name__))} has no "
                "state_dict()/load_state_dict(), so a run using it cannot be checkpointed"
            )
        pieces[f"assist.{i}"] = assist
    if twin is not None:
        pieces["twin"] = twin
    if storage is not None and storage is not getattr(agent, "storage", None):
        pieces["storage"] = storage
    return pieces


def _state_of(piece: Any) -> dict[str, NDArray[Any]]:
    full = getattr(piece, "full_state_dict", None)
    return dict(full() if callable(full) else piece.state_dict())


def _load_into(piece: Any, state: dict[str, NDArray[Any]]) -> None:
    full = getattr(piece, "load_full_state_dict", None)
    (full if callable(full) else piece.load_state_dict)(state)


def env_state_dict(env: gym.Env[Any, Any]) -> dict[str, NDArray[Any]]:
    """The physical env's state as arrays: each field of its ``get_state()`` dataclass, and its
    random stream as ``rng`` (PCG64 words).

    Raises:
        ConfigError: the env has no ``get_state()`` returning a dataclass (such an env can be
            trained, but not checkpointed).
    """
    return snapshot_arrays(_native_state(env))


def snapshot_arrays(state: Any) -> dict[str, NDArray[Any]]:
    """A ``get_state()`` dataclass as arrays (its ``rng_state`` as ``rng`` words)."""
    out = {f.name: np.array(getattr(state, f.name)) for f in fields(state) if f.name != "rng_state"}
    rng_state = getattr(state, "rng_state", None)
    if rng_state is not None:
        out["rng"] = rng_words(_generator(rng_state), "the env")
    return out


def _generator(rng_state: Mapping[str, Any]) -> np.random.Generator:
    if rng_state.get("bit_generator") != "PCG64":
        raise ConfigError(
            f"the env's np_random runs on {rng_state.get('bit_generator')}; a checkpoint stores "
            "PCG64 streams only (gymnasium's default)"
        )
    bitgen = np.random.PCG64()
    bitgen.state = dict(rng_state)  # type: ignore[assignment]
    return np.random.Generator(bitgen)


def _native_state(env: gym.Env[Any, Any]) -> Any:
    get_state = getattr(env.unwrapped, "get_state", None)
    state = get_state() if callable(get_state) else None
    if state is None or not is_dataclass(state):
        raise ConfigError(
            f"{type(env.unwrapped).__name__} has no get_state() returning a dataclass, so its "
            "state cannot be checkpointed; train it without checkpointing"
        )
    return state


def snapshot_from(template: Any, arrays: Mapping[str, NDArray[Any]], owner: str) -> Any:
    """The inverse of :func:`snapshot_arrays`, checked against ``template`` (a snapshot of the
    same env: the same fields, shapes and dtype kinds)."""
    own = snapshot_arrays(template)
    expected = {key: (v.shape, state_kind(v.dtype)) for key, v in own.items()}
    state = check_state_dict(arrays, expected, owner=owner, allow_nonfinite=own)  # NaN-coded
    values: dict[str, Any] = {
        name: np.array(state[name], dtype=own[name].dtype) for name in own if name != "rng"
    }
    if "rng" in state:
        generator = np.random.default_rng()
        set_rng_words(generator, state["rng"], owner)
        values["rng_state"] = dict(generator.bit_generator.state)
    return type(template)(**values)


def load_env_state(env: gym.Env[Any, Any], arrays: Mapping[str, NDArray[Any]]) -> None:
    """Restore :func:`env_state_dict` output into ``env`` (reset already)."""
    state = snapshot_from(_native_state(env), arrays, "env")
    try:
        env.unwrapped.set_state(state)  # type: ignore[attr-defined]
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"the checkpoint's env state does not fit this env ({err})") from err


# --- saving and restoring -------------------------------------------------------------------------
@dataclass
class Cursor:
    """Where the loop stands after an iteration: what the next iteration starts from."""

    iteration: int
    obs: Any
    info: dict[str, Any]
    start: tuple[Any, Any, Any]
    """The current episode's greedy-evaluation start: ``(obs, mask, env snapshot or None)``."""
    fresh: bool
    last_action: Any


def check_resumable(run: RunParts) -> None:
    """Refuse, before any work, a run whose state a checkpoint cannot hold (``ConfigError`` or
    ``CheckpointError`` naming the piece): every piece's state is built once."""
    for piece in _pieces(run).values():
        _state_of(piece)
    env_state_dict(run.env)


def save_run(checkpoint: Checkpointing, cursor: Cursor, run: RunParts) -> None:
    """Write the run's resume checkpoint (see the module docstring) atomically."""
    arrays: dict[str, NDArray[Any]] = {}
    for prefix, piece in _pieces(run).items():
        arrays.update({f"{prefix}.{k}": v for k, v in _state_of(piece).items()})
    arrays.update({f"env.{k}": v for k, v in env_state_dict(run.env).items()})
    arrays.update({f"loop.{k}": v for k, v in _loop_arrays(cursor, run.log, run.gate).items()})
    manifest = checkpoint.manifest
    if manifest is None:
        budget = {"budget": len(next(iter(run.log.history.values())))}
        manifest = manifest_for("train", budget, run.env.observation_space, run.env.action_space)
    nan_coded = ("env.", "loop.start.", "loop.obs", "loop.history.", "loop.last_greedy")
    nonfinite = [k for k in arrays if k.startswith(nan_coded)]  # e.g. a NaN latency, no value
    nonfinite += [f"agent.{k}" for k in getattr(run.agent, "NONFINITE", ())]
    nonfinite += [k for k in arrays if k.startswith("storage.buffer.discount")]
    save_checkpoint(
        checkpoint.path, arrays, {**resume_manifest(manifest), "allow_nonfinite": nonfinite}
    )


def _loop_arrays(cursor: Cursor, log: _Log, gate: _StartGate) -> dict[str, NDArray[Any]]:
    i, run = cursor.iteration, log.run
    out: dict[str, NDArray[Any]] = {
        "iteration": np.array(i, dtype=np.int64),
        "obs": np.array(cursor.obs),
        "fresh": np.array(bool(cursor.fresh)),
        "episode_return": np.array(log.episode_return, dtype=np.float64),
        "episode_first": np.array(log.episode_first, dtype=np.int64),
        "last_greedy": np.array(log.last_greedy, dtype=np.float64),
        "episodes": np.array(run.episodes, dtype=np.int64),
        "episode_returns": np.array(run.episode_returns, dtype=np.float64),
        "episode_lengths": np.array(run.episode_lengths, dtype=np.int64),
        "eval_steps": np.array(run.eval_steps, dtype=np.int64),
        "twin_started": np.array(-1 if run.twin_started is None else run.twin_started, np.int64),
        "wall_time": np.array(log.elapsed(), dtype=np.float64),
        "gate_open": np.array(bool(gate.open)),
        "gate_errors": np.array(list(gate.errors), dtype=np.float64),
    }
    mask = cursor.info.get("action_mask")
    if mask is not None:
        out["mask"] = np.array(mask)
    if cursor.last_action is not None:
        out["last_action"] = np.array(cursor.last_action)
    start_obs, start_mask, start_state = cursor.start
    out["start.obs"] = np.array(start_obs)
    if start_mask is not None:
        out["start.mask"] = np.array(start_mask)
    if start_state is not None:
        out.update({f"start.state.{k}": v for k, v in snapshot_arrays(start_state).items()})
    out.update({f"history.{k}": v[:i].copy() for k, v in log.history.items()})
    return out


def restore_run(arrays: Mapping[str, NDArray[Any]], run: RunParts) -> Cursor:
    """Restore every piece from :func:`save_run` arrays (``env`` reset already); returns the
    cursor to continue from. Every piece checks what it is given.

    Raises:
        CheckpointError: the arrays are not a checkpoint of a run with these pieces (another
            agent, other assists, another budget or history), naming what differs.
    """
    pieces = _pieces(run)
    groups: dict[str, dict[str, NDArray[Any]]] = {p: {} for p in (*pieces, "env", "loop")}
    for key, value in arrays.items():
        prefix = next((p for p in groups if key.startswith(p + ".")), None)
        if prefix is None:
            raise CheckpointError(
                f"the checkpoint holds {short_repr(key)}, which belongs to no piece of this run "
                f"({', '.join(groups)}); it was written by a run with other assists or storage"
            )
        groups[prefix][key[len(prefix) + 1 :]] = value
    loop = groups.pop("loop")
    cursor = _cursor(loop, run.log, run.env)
    for prefix, piece in pieces.items():
        attach = getattr(piece, "attach", None)  # twin agents are created lazily (TwinAgents)
        if groups[prefix] and callable(attach) and not getattr(piece, "agents", True):
            attach(run.agent)
        _load_into(piece, groups[prefix])
    load_env_state(run.env, groups["env"])
    _restore_log(loop, run.log, run.gate, cursor.iteration)
    return cursor


_LOOP = {
    "iteration": ((), "i"), "fresh": ((), "b"), "episode_return": ((), "f"),
    "episode_first": ((), "i"), "last_greedy": ((), "f"), "episodes": ((), "i"),
    "eval_steps": ((), "i"), "twin_started": ((), "i"), "wall_time": ((), "f"),
    "gate_open": ((), "b"),
}  # fmt: skip
_COUNTERS = ("iteration", "episode_first", "episodes", "eval_steps", "wall_time")


def _cursor(loop: dict[str, NDArray[Any]], log: _Log, env: gym.Env[Any, Any]) -> Cursor:
    scalars = check_state_dict(
        {k: loop.get(k) for k in _LOOP if k in loop}, _LOOP, owner="the loop", counters=_COUNTERS,
        allow_nonfinite=("last_greedy",),
    )  # fmt: skip
    budget = len(next(iter(log.history.values())))
    i = int(scalars["iteration"])
    if not 1 <= i < budget:
        raise CheckpointError(
            f"the checkpoint stands at iteration {i}; this run's budget is {budget} (resume with "
            "the budget of the run that wrote it)"
        )
    mask = loop.get("mask")
    start_state = {k.removeprefix("start.state."): v for k, v in loop.items()
                   if k.startswith("start.state.")}  # fmt: skip
    snapshot = (
        snapshot_from(_native_state(env), start_state, "the evaluation start")
        if start_state
        else None
    )
    start = (_value(loop, "start.obs"), loop.get("start.mask"), snapshot)
    last = loop.get("last_action")
    return Cursor(
        iteration=i,
        obs=_value(loop, "obs"),
        info={} if mask is None else {"action_mask": np.array(mask)},
        start=start,
        fresh=bool(scalars["fresh"]),
        last_action=None if last is None else _scalar_or_array(last),
    )


def _value(loop: Mapping[str, NDArray[Any]], key: str) -> Any:
    if key not in loop:
        raise CheckpointError(f"the checkpoint lacks loop.{key}; it is not a resume checkpoint")
    return _scalar_or_array(loop[key])


def _scalar_or_array(value: NDArray[Any]) -> Any:
    """A 0-d array as the numpy scalar an env returns (a Discrete observation or action)."""
    array = np.array(value)
    return array[()] if array.ndim == 0 else array


def _restore_log(loop: dict[str, NDArray[Any]], log: _Log, gate: _StartGate, i: int) -> None:
    run = log.run
    keys = {k.removeprefix("history."): v for k, v in loop.items() if k.startswith("history.")}
    if keys.keys() != log.history.keys():
        raise CheckpointError(
            f"the checkpoint's history holds {sorted(keys)}; this run records "
            f"{sorted(log.history)} (resume with the options of the run that wrote it)"
        )
    for key, values in keys.items():
        if values.shape != (i,) or values.dtype.kind != "f":
            raise CheckpointError(f"the checkpoint's loop.history.{key} is not {i} floats")
        log.history[key][:i] = values
    lengths = np.asarray(loop.get("episode_lengths", np.zeros(0, np.int64)))
    returns = np.asarray(loop.get("episode_returns", np.zeros(0)))
    episodes = int(loop["episodes"])
    if lengths.shape != (episodes,) or returns.shape != (episodes,):
        raise CheckpointError(f"the checkpoint's episode lists do not hold {episodes} episodes")
    run.iterations, run.episodes, run.eval_steps = i, episodes, int(loop["eval_steps"])
    run.episode_returns = [float(x) for x in returns]
    run.episode_lengths = [int(x) for x in lengths]
    started = int(loop["twin_started"])
    run.twin_started = None if started < 0 else started
    log.episode_return = float(loop["episode_return"])
    log.episode_first = int(loop["episode_first"])
    log.last_greedy = float(loop["last_greedy"])
    log.resume_clock(float(loop["wall_time"]))
    gate.open = bool(loop["gate_open"])
    gate.errors.clear()
    gate.errors.extend(float(x) for x in np.asarray(loop.get("gate_errors", [])).ravel())


__all__ = [
    "CONTENT",
    "Checkpointing",
    "Cursor",
    "RunParts",
    "check_resumable",
    "env_state_dict",
    "load_env_state",
    "load_resume",
    "restore_run",
    "save_run",
]
