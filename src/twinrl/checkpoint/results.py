"""Kept results of ``twinrl reproduce``: one finished run per line, read back exactly, JSON only.

``twinrl reproduce`` appends each finished run's result to ``out/partial/<group>.resume.jsonl``
(:func:`result_line`); ``--resume`` reads them back (:func:`read_results`) and runs only the jobs
whose key has no result. A line is one strict-JSON object::

    {"format": 1, "version": "0.1.0", "preset": "quick", "seed": 0, "key": "<sha256 of the job>",
     "job": "Job(setting='default', n=6, ...)", "result": {...}, "sha256": "<hex>"}

``sha256`` is the SHA-256 of the object without it, as canonical JSON (sorted keys, no spaces).
``result`` is the job's result encoded without loss (:func:`encode_value`): plain JSON where the
value is plain JSON, and a tagged object ``{"$": tag, ...}`` for what JSON would change (a tuple,
a NaN or infinite float, a numpy array or scalar by dtype, shape and base64 bytes, a dict with
keys that are not strings). So a result read back equals the one the job returned, types and
bits included, and a resumed run computes the same summary as an uninterrupted one.

A line is never trusted: it is ignored when it is not complete (a command killed mid-write leaves
an incomplete last line), not strict JSON, fails its checksum, belongs to another twinrl version,
preset or seed (``scope``), or holds a value :func:`decode_value` does not know. Nothing is ever
unpickled: arrays are rebuilt with :func:`numpy.frombuffer` from numeric dtypes only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_FORMAT = 1
"""Version of the line layout; lines of another format are ignored."""

_TAG = "$"
_KINDS = "biufc"  # bool, signed and unsigned integers, floats, complex: never objects
_KEY = re.compile(r"[0-9a-f]{64}")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode_value(value: Any) -> Any:
    """``value`` as JSON-able data that :func:`decode_value` turns back into an equal value of the
    same types (bit for bit for floats and arrays).

    Raises:
        TypeError: ``value`` holds something else than dicts, lists, tuples, None, bool, int,
            float, str and numpy arrays or scalars of a numeric dtype.
    """
    if isinstance(value, np.generic):  # before float: np.float64 is a float subclass
        dtype = _numeric_dtype(value.dtype)
        return {_TAG: "scalar", "dtype": dtype.str, "data": _b64(np.asarray(value).tobytes())}
    if isinstance(value, np.ndarray):
        dtype = _numeric_dtype(value.dtype)
        data = _b64(np.ascontiguousarray(value).tobytes())
        return {_TAG: "ndarray", "dtype": dtype.str, "shape": list(value.shape), "data": data}
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        if math.isfinite(value):
            return value
        return {_TAG: "float", "value": "nan" if math.isnan(value) else repr(value)}
    if kind is list:
        return [encode_value(v) for v in value]
    if kind is tuple:
        return {_TAG: "tuple", "items": [encode_value(v) for v in value]}
    if kind is dict:
        if all(type(k) is str for k in value) and _TAG not in value:
            return {k: encode_value(v) for k, v in value.items()}
        items = [[encode_value(k), encode_value(v)] for k, v in value.items()]
        return {_TAG: "dict", "items": items}
    raise TypeError(f"cannot keep a {kind.__name__} in a result line")


def decode_value(data: Any) -> Any:
    """The value :func:`encode_value` encoded as ``data``.

    Raises:
        ValueError: ``data`` is not something :func:`encode_value` writes.
    """
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [decode_value(v) for v in data]
    if type(data) is not dict:
        raise ValueError(f"unexpected {type(data).__name__}")
    tag = data.get(_TAG)
    if tag is None:
        return {k: decode_value(v) for k, v in data.items()}
    if tag == "tuple" and set(data) == {_TAG, "items"} and type(data["items"]) is list:
        return tuple(decode_value(v) for v in data["items"])
    if tag == "float" and set(data) == {_TAG, "value"} and data["value"] in _NONFINITE:
        return _NONFINITE[data["value"]]
    if tag == "dict" and set(data) == {_TAG, "items"} and type(data["items"]) is list:
        pairs = [_pair(item) for item in data["items"]]
        return {decode_value(k): decode_value(v) for k, v in pairs}
    if tag == "ndarray" and set(data) == {_TAG, "dtype", "shape", "data"}:
        return _array(data["dtype"], data["shape"], data["data"])
    if tag == "scalar" and set(data) == {_TAG, "dtype", "data"}:
        return _array(data["dtype"], [], data["data"])[()]
    raise ValueError(f"unknown tagged value {str(tag)[:40]!r}")


def result_line(key: str, scope: Mapping[str, Any], job: str, result: Any) -> str:
    """One line (with its newline) keeping ``result`` of the job with ``key`` under ``scope``
    (``version``, ``preset``, ``seed``, ... that a reader must match).

    Raises:
        TypeError: the result holds a value :func:`encode_value` cannot keep.
    """
    line = {"format": RESULTS_FORMAT, **scope, "key": key, "job": job,
            "result": encode_value(result)}  # fmt: skip
    line["sha256"] = _digest(line)
    return json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n"


@dataclass
class KeptResults:
    """What :func:`read_results` found: the usable lines and why the others were ignored."""

    lines: dict[str, str] = field(default_factory=dict)
    """The text of the last usable line of each job key."""
    ignored: Counter[str] = field(default_factory=Counter)
    """Ignored lines by reason."""

    def result(self, key: str) -> Any:
        """A fresh copy of the result kept for ``key`` (decoded again at each call, so a caller
        that changes it does not change another's)."""
        return decode_value(json.loads(self.lines[key])["result"])

    def describe(self) -> str:
        """E.g. ``3 finished run(s) found; 1 stored line ignored (checksum mismatch)``."""
        text = f"{len(self.lines)} finished run(s) found"
        total = sum(self.ignored.values())
        if total:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.ignored.items()))
            text += f"; {total} stored line(s) ignored ({reasons})"
        return text


def read_results(path: Path, scope: Mapping[str, Any]) -> KeptResults:
    """The usable lines of ``path`` (none if it does not exist) for a run of ``scope``.

    Raises:
        OSError: ``path`` exists but cannot be read.
    """
    kept = KeptResults()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return kept
    pieces = data.split(b"\n")
    if pieces[-1]:
        kept.ignored["incomplete last line"] += 1
    for piece in pieces[:-1]:
        if piece.strip():
            why = _check_line(piece, scope)
            if isinstance(why, str):
                kept.ignored[why] += 1
            else:
                kept.lines[why[0]] = why[1]
    return kept


def _check_line(piece: bytes, scope: Mapping[str, Any]) -> str | tuple[str, str]:
    """``(key, text)`` of a usable line, else the reason it is ignored."""
    try:
        text = piece.decode("utf-8")
        line = json.loads(text, parse_constant=_refuse_constant)
    except ValueError:
        return "not strict JSON"
    if type(line) is not dict or type(line.get("sha256")) is not str:
        return "not a result line"
    digest = line.pop("sha256")
    if digest != _digest(line):
        return "checksum mismatch"
    if line.get("format") != RESULTS_FORMAT or type(line.get("format")) is not int:
        return "another format"
    if any(type(line.get(k)) is not type(v) or line.get(k) != v for k, v in scope.items()):
        return "another version, preset or seed"
    key = line.get("key")
    if type(key) is not str or not _KEY.fullmatch(key):
        return "not a job key"
    try:
        if type(decode_value(line.get("result"))) is not dict:
            return "not a result"
    except (ValueError, TypeError, KeyError, IndexError):
        return "unreadable result"
    return key, text


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _digest(line: Mapping[str, Any]) -> str:
    text = json.dumps(line, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _numeric_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise TypeError(f"cannot keep a numpy value of dtype {dtype} in a result line")
    return dtype


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _pair(item: Any) -> tuple[Any, Any]:
    if type(item) is not list or len(item) != 2:
        raise ValueError("a dict item is not a [key, value] pair")
    return item[0], item[1]


def _array(dtype_text: Any, shape: Any, data: Any) -> np.ndarray[Any, Any]:
    if type(dtype_text) is not str or type(data) is not str or type(shape) is not list:
        raise ValueError("a tagged array needs a dtype string, a shape list and base64 data")
    if not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError("a shape holds a negative or non-integer size")
    try:
        dtype = _numeric_dtype(np.dtype(dtype_text))
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad tagged array: {exc}") from None
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise ValueError("a tagged array's data does not fit its dtype and shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
