"""Checkpoint files: numeric arrays plus a manifest that says which run wrote them, checksummed.

A checkpoint is an ``.npz`` archive (the layout ``np.savez`` writes: one uncompressed ``.npy``
member per array) with two reserved members:

* ``__twinrl_manifest__``: the manifest as UTF-8 canonical JSON in a ``uint8`` array. Its fields
  (see :func:`manifest_for`) name the format version, the twinrl version, the algorithm, a SHA-256
  of the canonical JSON of the configuration and a canonical description of both spaces.
* ``__twinrl_checksum__``: SHA-256 over the manifest bytes and every array's name, dtype, shape and
  bytes (in name order), so any change to the data that ``zip``'s CRC-32 misses is still caught.

The zip comment, the last bytes of the file, is ``twinrl-sha256:`` and the hex SHA-256 of every
byte before it; it catches changes to the zip's own metadata too, which readers partly ignore.
Files are written atomically (a temporary file in the same directory, then ``os.replace``), with
fixed zip timestamps, so the same input gives the same bytes. :func:`load_checkpoint` reads every
member itself with ``allow_pickle`` off: the ``.npy`` header is checked against the member's size
before anything is allocated, a member holding Python objects is refused before it is read, and
every failure (missing file, not a zip, truncation, CRC or checksum mismatch, object or
non-numeric dtype, NaN/inf in a float array, unknown format version, another run's manifest)
raises :class:`~twinrl.errors.CheckpointError` with one line that says what is wrong.

:func:`check_state_dict` is the same refusal for a state dict handed over in memory; the agents'
and the storage's ``load_state_dict`` use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import struct
import zipfile
import zlib
from collections.abc import Collection, Mapping
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.errors import CheckpointError, ConfigTypeError, short_repr

FORMAT_VERSION: int = 1
"""Version of the checkpoint layout; :func:`load_checkpoint` refuses any other."""

MANIFEST_KEY = "__twinrl_manifest__"
CHECKSUM_KEY = "__twinrl_checksum__"
_RESERVED = "__twinrl_"
_IDENTITY = ("algorithm", "config_hash", "observation_space", "action_space")
_NOT_COMPARED = ("format_version", "twinrl_version", "allow_nonfinite")
_KINDS = {"b": "bool", "i": "integer", "u": "integer", "f": "float", "c": "complex"}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: the same input gives the same bytes
_MAX_HEADER = 10_000
_DIGEST_PREFIX = b"twinrl-sha256:"
_DIGEST_LEN = 64  # hex SHA-256 of every byte before it, the last bytes of the file
_CHUNK = 1 << 20
_SUM_FIRST = 1 << 16  # arrays larger than this are checked for NaN/inf by their sum first


# --- manifests ----------------------------------------------------------------------------------
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
    canonical = json.dumps(_plain(config, "config"), sort_keys=True, separators=(",", ":"))
    return {
        "format_version": FORMAT_VERSION,
        "twinrl_version": _twinrl_version(),
        "algorithm": str(algorithm),
        "config_hash": hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
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


# --- saving -------------------------------------------------------------------------------------
def save_checkpoint(
    path: str | Path, arrays: Mapping[str, NDArray[Any]], manifest: Mapping[str, Any]
) -> None:
    """Write ``arrays`` and ``manifest`` to ``path`` atomically (the file is either the old one or
    the complete new one, never a torn write).

    Args:
        path: the file to write, e.g. ``out / "checkpoint.npz"`` (written as given, no suffix
            added); its directory must exist.
        arrays: numeric (bool, integer, float, complex) arrays by name; names must not start
            with ``__twinrl_``. Float arrays must be finite unless named in the manifest's
            ``allow_nonfinite`` list (a checkpoint that :func:`load_checkpoint` would refuse is
            never written).
        manifest: usually :func:`manifest_for` output, plus any JSON-serialisable fields.

    Raises:
        CheckpointError: an array is not numeric or not finite, a name is reserved, the manifest is
            not JSON, or the file cannot be written.
    """
    path = Path(path)
    manifest = dict(manifest)
    version = manifest.setdefault("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"manifest format_version={short_repr(version)}; this twinrl writes version "
            f"{FORMAT_VERSION}; build the manifest with manifest_for()"
        )
    manifest_bytes = _manifest_bytes(manifest)
    entries: dict[str, NDArray[Any]] = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not name or name.startswith(_RESERVED):
            raise CheckpointError(
                f"array name {short_repr(name)} is not allowed: use a non-empty string that does "
                f"not start with {_RESERVED!r}"
            )
        entries[name] = _contiguous(value)
    _check_arrays(entries, _allowed_nonfinite(manifest), label=path.name)
    digest = _checksum(manifest_bytes, entries)
    members = [
        (MANIFEST_KEY, np.frombuffer(manifest_bytes, dtype=np.uint8)),
        *sorted(entries.items()),
        (CHECKSUM_KEY, np.frombuffer(digest, dtype=np.uint8)),
    ]
    _write_atomically(path, members)


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"the checkpoint manifest is not plain JSON ({err}); use manifest_for() and add only "
            "numbers, strings, lists and dicts"
        ) from err
    return text.encode("utf-8")


def _write_atomically(path: Path, members: list[tuple[str, NDArray[Any]]]) -> None:
    if path.is_dir():
        raise CheckpointError(f"cannot write checkpoint {path}: it is a directory; name a file")
    directory = path.parent
    if not directory.is_dir():
        raise CheckpointError(
            f"cannot write checkpoint {path}: directory {directory} does not exist; create it first"
        )
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        # O_EXCL: never reuse a stranger's file; mode 0o666 lets the umask decide, as open() does.
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "w+b") as handle:
            _write_zip(handle, members)
            _seal(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise CheckpointError(f"cannot write checkpoint {path}: {err}") from err
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError, AttributeError):  # make the rename durable where possible
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _write_zip(handle: IO[bytes], members: list[tuple[str, NDArray[Any]]]) -> None:
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.comment = _DIGEST_PREFIX + b"0" * _DIGEST_LEN  # placeholder, see _seal
        for name, array in members:
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _seal(handle: IO[bytes]) -> None:
    """Overwrite the placeholder at the end of the zip comment with the SHA-256 of every byte
    before it, so that a change to any byte of the file (zip metadata included, which zip readers
    partly ignore) is detected."""
    end = handle.seek(0, os.SEEK_END)
    digest = _file_digest(handle, end - _DIGEST_LEN)
    handle.seek(end - _DIGEST_LEN)
    handle.write(digest)


def _file_digest(handle: IO[bytes], length: int) -> bytes:
    """Hex SHA-256 of the first ``length`` bytes of ``handle``."""
    handle.seek(0)
    digest = hashlib.sha256()
    while length > 0:
        chunk = handle.read(min(_CHUNK, length))
        if not chunk:
            break
        digest.update(chunk)
        length -= len(chunk)
    return digest.hexdigest().encode("ascii")


def _check_file_digest(path: Path) -> None:
    tail_len = len(_DIGEST_PREFIX) + _DIGEST_LEN
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size < tail_len:
            raise CheckpointError(
                f"checkpoint {path} holds {size} bytes, too few for a twinrl checkpoint; it is "
                "truncated or not a checkpoint"
            )
        handle.seek(size - tail_len)
        tail = handle.read(tail_len)
        if not tail.startswith(_DIGEST_PREFIX):
            raise CheckpointError(
                f"checkpoint {path} does not end with a twinrl file digest; it was not written by "
                "save_checkpoint (a plain np.savez file?) or it is truncated"
            )
        if _file_digest(handle, size - _DIGEST_LEN) != tail[len(_DIGEST_PREFIX) :]:
            raise CheckpointError(
                f"checkpoint {path} fails its SHA-256 file digest (the file was altered, damaged "
                "or cut short); restore it from a copy or start a fresh run"
            )


# --- loading ------------------------------------------------------------------------------------
def load_checkpoint(
    path: str | Path, *, expect: Mapping[str, Any] | None = None
) -> tuple[dict[str, NDArray[Any]], dict[str, Any]]:
    """Read a :func:`save_checkpoint` file, refusing anything it cannot vouch for.

    Args:
        path: the checkpoint file.
        expect: the manifest of the run that wants to resume (:func:`manifest_for`); every field
            except ``format_version``, ``twinrl_version`` and ``allow_nonfinite`` must match.

    Returns:
        ``(arrays, manifest)``: the arrays by name (writable) and the manifest.

    Raises:
        CheckpointError: the file is missing, a directory, not a zip, truncated, corrupted (CRC or
            checksum), lacks the manifest or checksum, holds an object or non-numeric array or a
            non-finite float array, has another format version, or differs from ``expect``; the
            message is one line and names what is wrong.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory; name the .npz file inside it")
    try:
        _check_file_digest(path)
        members = _read_members(path)
    except CheckpointError:
        raise
    except (
        OSError, EOFError, ValueError, LookupError, RuntimeError, ArithmeticError,
        zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error,
    ) as err:  # fmt: skip
        # Every way a damaged or foreign file makes zipfile or numpy fail.
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(
            f"checkpoint {path} is damaged or not a twinrl checkpoint ({type(err).__name__}: "
            f"{short_repr(reason, 120)}); restore it from a copy or start a fresh run"
        ) from err
    manifest_bytes = _pop_reserved(members, MANIFEST_KEY, path)
    stored_digest = _pop_reserved(members, CHECKSUM_KEY, path)
    manifest = _parse_manifest(manifest_bytes, path)
    if _checksum(manifest_bytes, members) != stored_digest:
        raise CheckpointError(
            f"checkpoint {path} fails its SHA-256 checksum (the file was altered or damaged); "
            "restore it from a copy or start a fresh run"
        )
    _check_arrays(members, _allowed_nonfinite(manifest), label=str(path))
    if expect is not None:
        _check_expected(manifest, expect, path)
    return members, manifest


def _read_members(path: Path) -> dict[str, NDArray[Any]]:
    size = path.stat().st_size
    out: dict[str, NDArray[Any]] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if name == info.filename or name in out:
                raise CheckpointError(
                    f"checkpoint {path} has a member {short_repr(info.filename)} that is not one "
                    "array of a twinrl checkpoint; it was not written by save_checkpoint"
                )
            if info.compress_type != zipfile.ZIP_STORED or info.file_size > size:
                raise CheckpointError(
                    f"checkpoint {path}: member {name!r} is compressed or larger than the file; "
                    "twinrl checkpoints store arrays uncompressed"
                )
            with archive.open(info) as member:
                out[name] = _read_npy(member, info.file_size, name, path)
    return out


def _read_npy(member: IO[bytes], size: int, name: str, path: Path) -> NDArray[Any]:
    """One ``.npy`` member, its header checked against ``size`` before any allocation."""
    fmt = np.lib.format
    version = fmt.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(member, max_header_size=_MAX_HEADER)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(member, max_header_size=_MAX_HEADER)
    else:
        raise CheckpointError(f"checkpoint {path}: array {name!r} has .npy version {version}")
    if dtype.hasobject or dtype.kind not in _KINDS or dtype.fields is not None:
        raise CheckpointError(
            f"checkpoint {path}: array {name!r} has dtype {dtype}, which twinrl refuses (object "
            "arrays would need unpickling); a checkpoint holds bool, integer and float arrays only"
        )
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != size - member.tell():
        raise CheckpointError(
            f"checkpoint {path}: array {name!r} claims shape {shape} of {dtype} ({nbytes} bytes) "
            f"but holds {size - member.tell()}; the file is damaged"
        )
    buffer = bytearray(nbytes)
    view, done = memoryview(buffer), 0
    while done < nbytes:
        got = member.readinto(view[done:])  # type: ignore[attr-defined]
        if not got:
            raise CheckpointError(f"checkpoint {path}: array {name!r} is truncated")
        done += got
    if member.read(1):  # reaching the end also makes zipfile check the CRC-32
        raise CheckpointError(f"checkpoint {path}: array {name!r} has trailing bytes")
    array = np.frombuffer(buffer, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C")


def _pop_reserved(members: dict[str, NDArray[Any]], key: str, path: Path) -> bytes:
    value = members.pop(key, None)
    if value is None or value.dtype != np.uint8 or value.ndim != 1:
        what = "manifest" if key == MANIFEST_KEY else "checksum"
        raise CheckpointError(
            f"checkpoint {path} has no twinrl {what} ({key}); it was not written by "
            "save_checkpoint (a plain np.savez file?) or it is damaged"
        )
    return value.tobytes()


def _parse_manifest(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError
        raise CheckpointError(f"checkpoint {path} has an unreadable manifest ({err})") from err
    if not isinstance(manifest, dict):
        raise CheckpointError(f"checkpoint {path} has a manifest that is not a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
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


# --- shared checks ------------------------------------------------------------------------------
def _checksum(manifest_bytes: bytes, arrays: Mapping[str, NDArray[Any]]) -> bytes:
    """SHA-256 over the manifest and each array's name, dtype, shape and bytes, in name order;
    every part is length-prefixed, so no two different inputs feed the same byte stream."""
    digest = hashlib.sha256(b"twinrl-checkpoint\0")

    def feed(part: bytes) -> None:
        digest.update(struct.pack("<Q", len(part)))
        digest.update(part)

    feed(manifest_bytes)
    for name in sorted(arrays):
        array = _contiguous(arrays[name])
        feed(name.encode("utf-8"))
        feed(array.dtype.str.encode("ascii"))
        feed(repr(tuple(int(n) for n in array.shape)).encode("ascii"))
        feed(array.reshape(-1).view(np.uint8).tobytes())
    return digest.digest()


def _contiguous(value: Any) -> NDArray[Any]:
    """``value`` as a C-contiguous array of the same shape (``np.ascontiguousarray`` would turn a
    0-d array into shape ``(1,)``)."""
    array = np.asarray(value)
    return array if array.flags.c_contiguous else array.copy(order="C")


def _allowed_nonfinite(manifest: Mapping[str, Any]) -> frozenset[str]:
    allowed = manifest.get("allow_nonfinite", [])
    if not isinstance(allowed, list) or not all(isinstance(k, str) for k in allowed):
        raise CheckpointError(
            f"manifest allow_nonfinite={short_repr(allowed)} must be a list of array names"
        )
    return frozenset(allowed)


def _check_arrays(arrays: Mapping[str, NDArray[Any]], allow: Collection[str], label: str) -> None:
    for name, array in arrays.items():
        if array.dtype.hasobject or array.dtype.kind not in _KINDS or array.dtype.fields:
            raise CheckpointError(
                f"checkpoint {label}: array {name!r} has dtype {array.dtype}; a checkpoint holds "
                "bool, integer and float arrays only (no objects, strings or records)"
            )
        if name not in allow and not all_finite(array):
            raise CheckpointError(
                f"checkpoint {label}: array {name!r} holds {_count_nonfinite(array)} NaN/inf "
                f"value(s) of {array.size}; training diverged or the data is damaged"
            )


def all_finite(array: NDArray[Any]) -> bool:
    """True when ``array`` holds no NaN or inf (always for bool and integer arrays).

    A large array is first summed: a sum of finite numbers is NaN or inf only if an entry is, or
    if the sum overflows, and only then is every entry tested (no temporary mask in the common
    case). A small one is tested directly, which is cheaper than entering ``np.errstate``."""
    if array.dtype.kind not in "fc" or array.size == 0:
        return True
    if array.size > _SUM_FIRST:
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(array.sum()):
                return True
    return bool(np.isfinite(array).all())


def _count_nonfinite(array: NDArray[Any]) -> int:
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def check_state_dict(
    state: Mapping[str, Any],
    expected: Mapping[str, tuple[tuple[int, ...], str]],
    *,
    owner: str,
    counters: Collection[str] = (),
    allow_nonfinite: Collection[str] = (),
) -> dict[str, NDArray[Any]]:
    """Validate a state dict handed to ``load_state_dict`` and return it as numpy arrays.

    Args:
        state: the state dict to load.
        expected: ``{key: (shape, kinds)}`` for every key the owner needs; ``kinds`` holds the
            accepted dtype kinds: ``"f"`` (float), ``"i"`` (integer, signed or unsigned), ``"b"``
            (bool), e.g. ``"fi"`` for an observation that may be either.
        owner: the owner's name in messages (``"QLearning"``).
        counters: keys that are non-negative integer scalars (iterations, step counters).
        allow_nonfinite: float keys that may hold NaN/inf (a NaN-coded column).

    Raises:
        CheckpointError: a key is missing or extra, an entry has the wrong shape or dtype kind,
            a float entry holds NaN/inf, or a counter is negative; the message names the key.
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(
            f"{owner}.load_state_dict takes a dict of arrays, got {type(state).__name__}"
        )
    if state.keys() != expected.keys():
        missing = sorted(set(expected) - set(state))
        extra = sorted(str(k) for k in set(state) - set(expected))
        parts = [f"lacks {short_repr(missing)}"] if missing else []
        parts += [f"has unknown {short_repr(extra)}"] if extra else []
        raise CheckpointError(
            f"{owner} state {' and '.join(parts)}; pass the state_dict() of a {owner} built with "
            "the same sizes"
        )
    out: dict[str, NDArray[Any]] = {}
    for key, (shape, kind) in expected.items():
        value = np.asarray(state[key])
        got = "i" if value.dtype.kind == "u" else value.dtype.kind
        if got not in kind or value.dtype.hasobject:
            wanted = " or ".join(_KINDS[k] for k in kind)
            raise CheckpointError(
                f"{owner} state entry {key!r} has dtype {value.dtype}; expected {wanted} values "
                f"of shape {shape}"
            )
        if value.shape != tuple(shape):
            raise CheckpointError(
                f"{owner} state entry {key!r} has shape {value.shape}; this {owner} needs {shape}"
            )
        if got == "f" and key not in allow_nonfinite and not all_finite(value):
            raise CheckpointError(
                f"{owner} state entry {key!r} holds {_count_nonfinite(value)} NaN/inf value(s) of "
                f"{value.size}; expected finite floats (did training diverge?)"
            )
        out[key] = value
    for key in counters:
        if out[key].item() < 0:  # a scalar: its shape () was checked above
            raise CheckpointError(
                f"{owner} state entry {key!r} is {out[key].item()}; expected an integer >= 0"
            )
    return out


__all__ = [
    "CHECKSUM_KEY",
    "FORMAT_VERSION",
    "MANIFEST_KEY",
    "all_finite",
    "check_state_dict",
    "describe_space",
    "load_checkpoint",
    "manifest_for",
    "save_checkpoint",
]
