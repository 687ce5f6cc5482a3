"""Public conformance checks for twinnable environments (run them on your own env).

Each check raises ``AssertionError`` subclass :class:`ConformanceError` with a message that says
what broke and how to fix it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

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
    """``get_state``/``set_state`` round-trip exactly, and stepping a restored copy never changes
    the original snapshot.

    Checks: restoring a snapshot and replaying the same actions gives the same observations and
    rewards (RNG included); a snapshot taken before stepping is unchanged afterwards.
    """
    base: Any = env.unwrapped
    for name in ("get_state", "set_state"):
        if not callable(getattr(base, name, None)):
            _fail(f"{type(base).__name__} has no {name}(); add get_state()/set_state()")
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    snapshot = base.get_state()
    frozen = _fingerprint(snapshot)
    first = _rollout(env, info.get("action_mask"), steps, rng)
    if _fingerprint(snapshot) != frozen:
        _fail("stepping the env changed an earlier get_state() snapshot; return copies, not views")
    base.set_state(snapshot)
    replay = _rollout(env, info.get("action_mask"), steps, np.random.default_rng(seed))
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

    At each step the twin tries the physical action from the synced state, and its next
    observation, reward and termination must equal the physical env's.
    """
    twin = twin or DigitalTwin(env)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    for t in range(steps):
        state = env.unwrapped.get_state()  # type: ignore[attr-defined]
        action = _sample_actions(env, info.get("action_mask"), rng)
        predicted = twin.trial(state, np.array([action]))
        obs, reward, terminated, truncated, info = env.step(action)
        if not np.array_equal(np.asarray(predicted.next_obs[0]), np.asarray(obs)):
            _fail(f"step {t}: the twin predicted observation {predicted.next_obs[0]!r}, "
                  f"the physical env gave {obs!r}")  # fmt: skip
        if float(predicted.reward[0]) != float(reward):
            _fail(f"step {t}: the twin predicted reward {predicted.reward[0]!r}, "
                  f"the physical env gave {reward!r}")  # fmt: skip
        if bool(predicted.terminated[0]) != bool(terminated):
            _fail(f"step {t}: the twin and the physical env disagree on termination")
        for key in getattr(env.unwrapped, "twin_info_keys", ()):
            if key not in predicted.info or predicted.info[key][0] != info[key]:
                _fail(f"step {t}: the twin reported info[{key!r}] = "
                      f"{predicted.info.get(key, [None])[0]!r}, the physical env {info[key]!r}")  # fmt: skip
        if terminated or truncated:
            obs, info = env.reset()
