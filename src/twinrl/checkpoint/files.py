"""Saving and loading checkpoint files: the archive (:mod:`twinrl.checkpoint.format`), the manifest
(:mod:`twinrl.checkpoint.manifest`) and the array checks (:mod:`twinrl.checkpoint.state`) put
together, so that a checkpoint :func:`load_checkpoint` would refuse is never written."""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.checkpoint.format import (
    _RESERVED,
    CHECKSUM_KEY,
    MANIFEST_KEY,
    _check_file_digest,
    _checksum,
    _contiguous,
    _pop_reserved,
    _read_members,
    _write_atomically,
)
from twinrl.checkpoint.manifest import (
    FORMAT_VERSION,
    _allowed_nonfinite,
    _check_expected,
    _is_format_version,
    _manifest_bytes,
    _parse_manifest,
)
from twinrl.checkpoint.state import _check_arrays
from twinrl.errors import CheckpointError, short_repr


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
            not JSON or its ``format_version`` is not the int :data:`FORMAT_VERSION` (the check
            :func:`load_checkpoint` makes), or the file cannot be written.
    """
    path = Path(path)
    manifest = dict(manifest)
    version = manifest.setdefault("format_version", FORMAT_VERSION)
    if not _is_format_version(version):
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
