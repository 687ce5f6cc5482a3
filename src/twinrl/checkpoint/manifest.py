"""Checkpoint manifests: which run wrote a checkpoint, and whether it is the run that reads it.

A manifest (:func:`manifest_for`) names the format version, the twinrl version, the algorithm, a
SHA-256 of the canonical JSON of the configuration and a canonical description of both spaces
(:func:`describe_space`). It is stored as canonical JSON bytes; reading it back checks the format
version, and :func:`_check_expected` names every field that differs from the reading run's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.errors import CheckpointError, ConfigTypeError, short_repr

FORMAT_VERSION: int = 1
"""Version of the checkpoint layout; :func:`~twinrl.checkpoint.load_checkpoint` refuses others."""

_NOT_COMPARED = ("format_version", "twinrl_version", "allow_nonfinite")


def _is_format_version(value: Any) -> bool:
    """True for the int :data:`FORMAT_VERSION` only: not ``True`` or ``1.0``, which compare equal
    to 1. Saving and loading both use this check, so no file is written that cannot be read."""
    return type(value) is int and value == FORMAT_VERSION


def manifest_for(
    algorithm: str,
    config: Mapping[str, Any],
    observation_space: gym.Space[Any],
    action_space: gym.Space[Any],
) -> dict[str, Any]:
    """The manifest of a run: what a checkpoint must match to be resumed by that run.

    Args:
        algorithm: the algorithm's name (``"ql"``, ``"dtaql"``, ...).
        config: the run's configuration; hashed as canonical JSON (sorted keys, tuples as lists),
            so only plain values (numbers, strings, bools, None, lists, dicts) are allowed.
        observation_space: the space the agent observes.
        action_space: the space the agent acts in.

    Returns:
        ``format_version``, ``twinrl_version``, ``algorithm``, ``config_hash`` (hex SHA-256),
        ``observation_space`` and ``action_space`` (canonical strings such as ``Discrete(24)``).
    """
    canonical = _canonical_json(_plain(config, "config"), allow_nan=True)
    return {
        "format_version": FORMAT_VERSION,
        "twinrl_version": _twinrl_version(),
        "algorithm": str(algorithm),
        "config_hash": hashlib.sha256(canonical).hexdigest(),
        "observation_space": describe_space(observation_space),
        "action_space": describe_space(action_space),
    }


def describe_space(space: gym.Space[Any]) -> str:
    """A canonical, bounded description of a space: ``Discrete(24)``, ``MultiDiscrete([5, 5])``,
    ``Box(0.0, 1.0, (3,), float32)``; non-uniform Box bounds are named by a hash of their bytes."""
    spaces = gym.spaces
    if isinstance(space, spaces.Discrete):
        start = int(space.start)
        return f"Discrete({int(space.n)})" if start == 0 else f"Discrete({int(space.n)}, {start})"
    if isinstance(space, spaces.MultiDiscrete):
        text = f"MultiDiscrete({_values(np.asarray(space.nvec))}"
        offset = np.asarray(space.start)
        return text + (")" if not offset.any() else f", start={_values(offset)})")
    if isinstance(space, spaces.MultiBinary):
        return f"MultiBinary({np.asarray(space.n).tolist()})"
    if isinstance(space, spaces.Box):
        low, high = _bounds(space.low), _bounds(space.high)
        return f"Box({low}, {high}, {tuple(space.shape)}, {space.dtype})"
    if isinstance(space, spaces.Dict):
        inner = ", ".join(f"{key!r}: {describe_space(s)}" for key, s in space.spaces.items())
        return f"Dict({inner})"
    if isinstance(space, spaces.Tuple):
        return f"Tuple({', '.join(describe_space(s) for s in space.spaces)})"
    return short_repr(space, 200)


def _bounds(values: NDArray[Any]) -> str:
    """Box bounds (their shape is stated apart): a scalar when every entry is equal."""
    flat = np.asarray(values).ravel()
    if flat.size and (flat == flat[0]).all():
        return repr(flat[0].item())
    return _values(values)


def _values(values: NDArray[Any]) -> str:
    """The values as a nested list when there are at most 16, else their shape and a hash."""
    array = np.asarray(values)
    if array.size <= 16:
        return repr(array.tolist())
    digest = hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]
    return f"<{array.shape} values, sha256 {digest}>"


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain JSON data (tuples as lists, numpy scalars as Python numbers)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ConfigTypeError(
        f"{where} is a {type(value).__name__} ({short_repr(value)}), which has no canonical JSON "
        "form; pass numbers, strings, bools, None, lists or dicts"
    )


def _twinrl_version() -> str:
    try:
        return metadata.version("twinrl")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _canonical_json(value: Any, *, allow_nan: bool) -> bytes:
    """``value`` as canonical JSON (sorted keys, no spaces), UTF-8; the config hash and the stored
    manifest both use this form."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=allow_nan)
    return text.encode("utf-8")


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    try:
        return _canonical_json(manifest, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"the checkpoint manifest is not plain JSON ({err}); use manifest_for() and add only "
            "numbers, strings, lists and dicts"
        ) from err


def _parse_manifest(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError
        raise CheckpointError(f"checkpoint {path} has an unreadable manifest ({err})") from err
    if not isinstance(manifest, dict):
        raise CheckpointError(f"checkpoint {path} has a manifest that is not a JSON object")
    version = manifest.get("format_version")
    if not _is_format_version(version):
        raise CheckpointError(
            f"checkpoint {path} has format version {short_repr(version)}; this twinrl "
            f"({_twinrl_version()}) reads version {FORMAT_VERSION}; use the twinrl that wrote it"
        )
    return manifest


def _check_expected(manifest: Mapping[str, Any], expect: Mapping[str, Any], path: Path) -> None:
    differ = [
        key for key in expect if key not in _NOT_COMPARED and manifest.get(key) != expect.get(key)
    ]
    if not differ:
        return
    parts = []
    if "algorithm" in differ or "config_hash" in differ:
        parts.append(
            f"was written by algorithm {short_repr(manifest.get('algorithm'))} with config hash "
            f"{_short_hash(manifest.get('config_hash'))}, this run is "
            f"{short_repr(expect.get('algorithm'))} with {_short_hash(expect.get('config_hash'))}"
        )
    for key in differ:
        if key in ("algorithm", "config_hash"):
            continue
        label = key.replace("_", " ")
        parts.append(f"{label} {_text(manifest.get(key))} vs {_text(expect.get(key))}")
    raise CheckpointError(
        f"{path.name} belongs to another run: it {'; '.join(parts)}; resume with the algorithm, "
        "config and env that wrote it, or start a fresh run"
    )


def _short_hash(value: Any) -> str:
    return f"{value[:12]}..." if isinstance(value, str) else short_repr(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else short_repr(value)


def _allowed_nonfinite(manifest: Mapping[str, Any]) -> frozenset[str]:
    allowed = manifest.get("allow_nonfinite", [])
    if not isinstance(allowed, list) or not all(isinstance(k, str) for k in allowed):
        raise CheckpointError(
            f"manifest allow_nonfinite={short_repr(allowed)} must be a list of array names"
        )
    return frozenset(allowed)
