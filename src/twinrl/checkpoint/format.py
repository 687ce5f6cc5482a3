"""The checkpoint archive: uncompressed ``.npy`` members in a zip, checksummed and sealed.

Writing: :func:`_write_atomically` writes the members with fixed timestamps to a temporary file,
:func:`_seal` puts the SHA-256 of every byte before it at the end of the zip comment, and the file
is moved into place. Reading: :func:`_check_file_digest` checks that seal, then
:func:`_read_members` reads each ``.npy`` member with its header checked against its size before
anything is allocated. :func:`_checksum` is the SHA-256 stored in the ``CHECKSUM_KEY`` member.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import secrets
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from twinrl.checkpoint.state import _numeric
from twinrl.errors import CheckpointError, short_repr

MANIFEST_KEY = "__twinrl_manifest__"
CHECKSUM_KEY = "__twinrl_checksum__"
_RESERVED = "__twinrl_"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: the same input gives the same bytes
_MAX_HEADER = 10_000
_DIGEST_PREFIX = b"twinrl-sha256:"
_DIGEST_LEN = 64  # hex SHA-256 of every byte before it, the last bytes of the file
_CHUNK = 1 << 20


# --- writing --------------------------------------------------------------------------------------
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


# --- reading --------------------------------------------------------------------------------------
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
    if not _numeric(dtype):
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


# --- checksum -------------------------------------------------------------------------------------
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
