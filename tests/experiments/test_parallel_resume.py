"""Resuming ``run_jobs`` (issue 14, item 2): job keys, results kept exactly as JSON, and kept jobs
not run again."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from twinrl.checkpoint.results import decode_value, encode_value, read_results, result_line
from twinrl.experiments.parallel import job_key, on_result, resume_from, run_jobs


class Color(enum.Enum):
    RED = 1


@dataclass(frozen=True)
class Inner:
    label: str
    rate: float = 0.1


@dataclass(frozen=True)
class Job:
    index: int
    inner: Inner = Inner("a")
    items: tuple[tuple[str, Any], ...] = ()
    extra: Any = None
    data: Any = field(default=None, compare=False)


def _square(job: Job) -> dict[str, Any]:
    return {"index": job.index, "square": job.index**2, "half": np.float64(job.index / 2)}


def _other(job: Job) -> dict[str, Any]:
    return {"index": job.index}


class DictStore:
    """A :class:`~twinrl.experiments.parallel.ResultStore` over lines in memory."""

    def __init__(self) -> None:
        self.lines: dict[str, str] = {}
        self.kept: list[int] = []

    def __contains__(self, key: str) -> bool:
        return key in self.lines

    def result(self, key: str) -> Any:
        return decode_value(json.loads(self.lines[key])["result"])

    def keep(self, key: str, job: object, result: dict[str, Any]) -> None:
        self.lines[key] = result_line(key, {"seed": 0}, "job", result)
        self.kept.append(result["index"])


def test_values_come_back_with_their_types_and_bits() -> None:
    value = {
        "floats": [0.1, -0.0, 1e308, 5e-324, math.nan, math.inf, -math.inf],
        "tuple": (1, (2.5, "x"), []),
        "ints": [0, -(2**70), True, None],
        "arrays": [
            np.arange(6, dtype=np.int16).reshape(2, 3),
            np.array([np.nan, -0.0]),
            np.zeros((0, 3)),
            np.array([True]),
            np.asfortranarray(np.eye(2)),
        ],
        "scalars": [np.float32(0.1), np.int64(-3), np.bool_(True), np.uint8(255)],
        "int keys": {1: "a", (2, 3): "b"},
        "$": {"$": "tuple", "items": []},  # looks like a tag: still a plain dict
    }
    text = json.dumps(encode_value(value), allow_nan=False)
    back = decode_value(json.loads(text))

    def same(a: Any, b: Any) -> bool:
        if type(a) is not type(b):
            return False
        if isinstance(a, np.ndarray):
            return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        if isinstance(a, np.generic):
            return a.dtype == b.dtype and a.tobytes() == b.tobytes()
        if isinstance(a, float):
            return np.float64(a).tobytes() == np.float64(b).tobytes()
        if isinstance(a, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, dict):
            return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
        return bool(a == b)

    assert same(value, back)


@pytest.mark.parametrize(
    "value", [np.array([object()]), np.array(["x"]), object(), {1.5j}, b"bytes", Color.RED]
)
def test_values_json_cannot_hold_exactly_are_refused(value: Any) -> None:
    with pytest.raises(TypeError, match="cannot keep"):
        encode_value({"x": value})


@pytest.mark.parametrize(
    "data",
    [
        {"$": "ndarray", "dtype": "|O", "shape": [1], "data": "gAN9"},  # a pickle, never loaded
        {"$": "ndarray", "dtype": "<f8", "shape": [2], "data": "AAAAAAAAAAA="},  # too short
        {"$": "ndarray", "dtype": "<f8", "shape": [-1], "data": ""},
        {"$": "scalar", "dtype": "V8", "data": "AAAAAAAAAAA="},
        {"$": "pickle", "data": ""},
        {"$": "float", "value": "1.5"},
        {"$": "dict", "items": [[1]]},
    ],
)
def test_decoding_refuses_what_the_encoder_never_writes(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        decode_value(data)


def test_job_keys_are_stable_and_change_with_any_input() -> None:
    base = Job(1, Inner("a", 0.1), (("n", 4),), np.arange(3.0))
    again = Job(1, Inner("a", 0.1), (("n", 4),), np.arange(3.0))
    assert job_key(_square, base) == job_key(_square, again)
    changed = [
        Job(2, Inner("a", 0.1), (("n", 4),), np.arange(3.0)),
        Job(1, Inner("a", math.nextafter(0.1, 1)), (("n", 4),), np.arange(3.0)),
        Job(1, Inner("b", 0.1), (("n", 4),), np.arange(3.0)),
        Job(1, Inner("a", 0.1), (("n", 4.0),), np.arange(3.0)),
        Job(1, Inner("a", 0.1), [("n", 4)], np.arange(3.0)),
        Job(1, Inner("a", 0.1), (("n", 4),), np.arange(3.0, dtype=np.float32)),
        Job(1, Inner("a", 0.1), (("n", 4),), np.arange(3.0).reshape(3, 1)),
        Job(1, Inner("a", 0.1), (("n", 4),), np.array([0.0, 1.0, 2.0000000000000004])),
        Job(1, Inner("a", 0.1), (("n", 4),), Color.RED),
        Job(1, Inner("a", 0.1), (("n", 4),), {"n": 4}),
        Job(1, Inner("a", 0.1), (("n", 4),), None),
        Job(1, Inner("a", 0.1), (("n", 4),), (1, True)),
    ]
    keys = {job_key(_square, job) for job in changed} | {job_key(_other, base)}
    assert len(keys) == len(changed) + 1 and job_key(_square, base) not in keys
    assert job_key(_square, Job(1, extra=(1, 1))) != job_key(_square, Job(1, extra=(1, True)))
    # a job with a value that has no canonical text has no key: it always runs
    assert job_key(_square, Job(1, extra=lambda: 0)) is None
    assert job_key(_square, (Job(1), object())) is None


@pytest.mark.parametrize("workers", [1, 2])
def test_kept_jobs_are_not_run_again_and_results_are_unchanged(workers: int) -> None:
    jobs = [Job(i, extra=(i, "x")) for i in range(6)]
    store = DictStore()
    with resume_from(store):
        first = list(run_jobs(_square, jobs[:4], workers=workers))
    assert sorted(store.kept) == [0, 1, 2, 3]
    store.kept.clear()
    seen: list[int] = []
    with resume_from(store), on_result(lambda r: seen.append(r["index"])):
        runs = list(run_jobs(_square, jobs, workers=workers))
    assert sorted(store.kept) == [4, 5]  # only the jobs without a kept result ran
    assert sorted(seen) == list(range(6))  # on_result sees every result, kept ones too
    expected = [_square(job) for job in jobs]
    assert sorted(runs, key=lambda r: r["index"]) == expected
    assert all(type(r["half"]) is np.float64 for r in runs)
    if workers == 1:
        assert [r["index"] for r in runs] == list(range(6))  # one worker keeps the job order
    assert sorted(first, key=lambda r: r["index"]) == expected[:4]
    # every job kept: nothing runs, not even a pool
    store.kept.clear()
    with resume_from(store):
        assert len(list(run_jobs(_square, jobs, workers=workers))) == 6
    assert store.kept == []


def test_read_results_keeps_only_whole_matching_lines(tmp_path: Path) -> None:
    scope = {"version": "0.1.0", "preset": "quick", "seed": 0}
    good = result_line("a" * 64, scope, "job", {"x": (1, math.nan)})
    other = result_line("b" * 64, {**scope, "seed": 1}, "job", {"x": 1})
    bad_key = result_line("../x", scope, "job", {"x": 1})
    not_dict = result_line("c" * 64, scope, "job", [1])  # type: ignore[arg-type]
    path = tmp_path / "kept.jsonl"
    path.write_text(good + other + bad_key + not_dict + "NaN\n" + "\n" + good[:-5])
    kept = read_results(path, scope)
    assert list(kept.lines) == ["a" * 64]
    assert kept.result("a" * 64)["x"][0] == 1 and math.isnan(kept.result("a" * 64)["x"][1])
    assert sum(kept.ignored.values()) == 5 and kept.ignored["incomplete last line"] == 1
    assert read_results(tmp_path / "missing.jsonl", scope).lines == {}
