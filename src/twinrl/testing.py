"""Public conformance checks for twinnable environments (run them on your own env).

Each check raises ``AssertionError`` subclass :class:`ConformanceError` with a message that says
what broke and how to fix it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from twinrl.errors import ConfigError
from twinrl.twin.backends import deep_copy, snapshot_mode
from twinrl.twin.digital_twin import DigitalTwin


class ConformanceError(AssertionError):
    """An environment does not meet a twinrl contract."""


def _fail(message: str) -> None:
    raise ConformanceError(message)


def _sample_actions(env: gym.Env[Any, Any], mask: Any, rng: np.random.Generator) -> Any:
    """A valid action from this check's own RNG: an int (Discrete) or an int array
    (MultiDiscrete)."""
    if mask is not None:
        return int(rng.choice(np.flatnonzero(mask)))
    space = env.action_space
    if isinstance(space, gym.spaces.MultiDiscrete):
        return rng.integers(space.nvec).astype(np.int64)
    return int(rng.integers(space.n))  # type: ignore[attr-defined]


def check_twinnable(env: gym.Env[Any, Any], *, seed: int = 0, steps: int = 20) -> None:
    """A snapshot of the env restores it exactly, and stepping never changes an earlier snapshot.

    For an env with ``get_state``/``set_state`` (native snapshots): restoring a snapshot and
    replaying the same actions gives the same observations and rewards (RNG included), and a
    snapshot taken before stepping is unchanged afterwards. For any other env (snapshots by deep
    copy, see :mod:`twinrl.twin.backends`): the env can be deep-copied, and a copy replays the
    same actions exactly as the original does (no state kept outside the env).
    """
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    mask = info.get("action_mask")
    if snapshot_mode(env) == "copy":
        try:
            copied = deep_copy(env)
        except ConfigError as exc:
            _fail(str(exc))
        first = _rollout(env, mask, steps, rng)
        if first != _rollout(copied, mask, steps, np.random.default_rng(seed)):
            _fail(
                f"a deep copy of {type(env.unwrapped).__name__} does not replay its trajectory: "
                "the env keeps state outside itself (a global RNG, a file, a simulator process); "
                "give it get_state()/set_state() that capture that state"
            )
        return
    base: Any = env.unwrapped
    snapshot = base.get_state()
    frozen = _fingerprint(snapshot)
    first = _rollout(env, mask, steps, rng)
    if _fingerprint(snapshot) != frozen:
        _fail("stepping the env changed an earlier get_state() snapshot; return copies, not views")
    base.set_state(snapshot)
    replay = _rollout(env, mask, steps, np.random.default_rng(seed))
    if first != replay:
        _fail(
            "replaying the same actions after set_state(snapshot) gave a different trajectory; "
            "set_state must restore every field, RNG state included"
        )


def _rollout(env: gym.Env[Any, Any], mask: Any, steps: int, rng: np.random.Generator) -> list[Any]:
    out: list[Any] = []
    for _ in range(steps):
        action = _sample_actions(env, mask, rng)
        obs, reward, terminated, truncated, info = env.step(action)
        record = np.asarray(action).tobytes()
        out.append((record, np.asarray(obs).tobytes(), float(reward), terminated, truncated))
        mask = info.get("action_mask")
        if terminated or truncated:
            break
    return out


def _fingerprint(state: Any) -> bytes:
    parts = []
    for name in sorted(getattr(state, "__dataclass_fields__", {})):
        value = getattr(state, name)
        parts.append(repr(value).encode() if name == "rng_state" else np.asarray(value).tobytes())
    return b"|".join(parts) if parts else repr(state).encode()


def check_twin_matches(
    env: gym.Env[Any, Any], twin: DigitalTwin | None = None, *, seed: int = 0, steps: int = 20
) -> None:
    """A twin synced to the physical state predicts every physical step exactly (perfect twin).

    At each step the twin tries the physical action from the synced state, and every field of its
    step must equal the physical env's: next observation, reward, termination, truncation, action
    mask and the info entries the env declares in ``twin_info_keys``. Episodes are reset and the
    check goes on, so episode ends are covered when ``steps`` spans them.
    """
    twin = twin or DigitalTwin(env)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    for t in range(steps):
        state = twin.capture(env)
        action = _sample_actions(env, info.get("action_mask"), rng)
        predicted = twin.trial(state, np.array([action]))
        obs, reward, terminated, truncated, info = env.step(action)
        _compare(t, "observation", predicted.next_obs[0], obs)
        _compare(t, "reward", float(predicted.reward[0]), float(reward))
        _compare(t, "terminated", bool(predicted.terminated[0]), bool(terminated))
        _compare(t, "truncated", bool(predicted.truncated[0]), bool(truncated))
        twin_mask = None if predicted.next_mask is None else predicted.next_mask[0]
        _compare(t, "action mask", _or_none(twin_mask), _or_none(info.get("action_mask")))
        for key in getattr(env.unwrapped, "twin_info_keys", ()):
            if key not in predicted.info:
                _fail(f"step {t}: the twin reported no info[{key!r}] (declared in twin_info_keys)")
            _compare(t, f"info[{key!r}]", predicted.info[key][0], info[key])
        if terminated or truncated:
            obs, info = env.reset()


def _or_none(mask: Any) -> Any:
    return "None" if mask is None else mask


def _compare(step: int, what: str, twin_value: Any, physical: Any) -> None:
    if not np.array_equal(np.asarray(twin_value), np.asarray(physical)):
        _fail(f"step {step}: the twin predicted {what} {twin_value!r}, "
              f"the physical env gave {physical!r}")  # fmt: skip
