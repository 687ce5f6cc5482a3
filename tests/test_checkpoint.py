"""Checkpoint files (twinrl.checkpoint) and the refusal of bad state by the agents and storage."""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from twinrl.agents import QLearning, Transitions
from twinrl.checkpoint import (
    CHECKSUM_KEY,
    FORMAT_VERSION,
    MANIFEST_KEY,
    _checksum,
    _seal,
    _write_zip,
    load_checkpoint,
    manifest_for,
    save_checkpoint,
)
from twinrl.errors import CheckpointError
from twinrl.storage import Storage

OBS, ACT = gym.spaces.Discrete(24), gym.spaces.Discrete(5)
CONFIG = {"lr": 0.1, "gamma": 0.9, "hidden": (8, 8)}


def manifest(algorithm: str = "ql", **config: Any) -> dict[str, Any]:
    return manifest_for(algorithm, {**CONFIG, **config}, OBS, ACT)


def sample_arrays() -> dict[str, NDArray[Any]]:
    rng = np.random.default_rng(0)
    return {
        "q": rng.normal(size=(24, 5)),
        "iteration": np.array(7, dtype=np.int64),
        "mask": rng.random((3, 4)) < 0.5,
        "rng": np.array([1, 2**63, 3, 4, 0, 5], dtype=np.uint64),
        "weights": rng.normal(size=(4, 3)).astype(np.float32),
        "empty": np.zeros((0, 2)),
    }


def forge(path: Path, arrays: dict[str, NDArray[Any]], meta: dict[str, Any]) -> None:
    """A file with valid checksums whatever its content: save_checkpoint's steps without its
    checks (to test that load_checkpoint refuses what save_checkpoint would never write)."""
    raw = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    members = [
        (MANIFEST_KEY, np.frombuffer(raw, np.uint8)),
        *sorted(arrays.items()),
        (CHECKSUM_KEY, np.frombuffer(_checksum(raw, arrays), np.uint8)),
    ]
    with path.open("w+b") as handle:
        _write_zip(handle, members)
        _seal(handle)


def assert_same(a: dict[str, NDArray[Any]], b: dict[str, NDArray[Any]]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert np.array_equal(a[key], b[key], equal_nan=a[key].dtype.kind == "f"), key


# --- round trip ---------------------------------------------------------------------------------
def test_round_trip(tmp_path: Path) -> None:
    arrays, meta = sample_arrays(), manifest()
    save_checkpoint(tmp_path / "c.npz", arrays, meta)
    loaded, got = load_checkpoint(tmp_path / "c.npz", expect=meta)
    assert_same(loaded, arrays)
    assert got == meta and got["format_version"] == FORMAT_VERSION
    assert all(v.flags.writeable for v in loaded.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]  # no temporary file left
    with np.load(tmp_path / "c.npz", allow_pickle=False) as plain:  # an ordinary .npz
        assert np.array_equal(plain["q"], arrays["q"])


def test_same_input_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays, meta = sample_arrays(), manifest()
    monkeypatch.setattr(time, "time", lambda: 1.0e9)  # zip members would carry the clock
    save_checkpoint(tmp_path / "a.npz", arrays, meta)
    monkeypatch.setattr(time, "time", lambda: 1.7e9)
    save_checkpoint(tmp_path / "b.npz", dict(reversed(arrays.items())), meta)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_overwrite_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"x": np.zeros(1000)}, manifest())
    save_checkpoint(path, {"y": np.ones(3)}, manifest())
    assert list(load_checkpoint(path)[0]) == ["y"]


def test_manifest_fields() -> None:
    meta = manifest_for(
        "dqn", CONFIG, gym.spaces.Box(0, 1, (3,)), gym.spaces.MultiDiscrete([5] * 3)
    )
    canonical = '{"gamma":0.9,"hidden":[8,8],"lr":0.1}'
    assert meta == {
        "format_version": FORMAT_VERSION,
        "twinrl_version": meta["twinrl_version"],
        "algorithm": "dqn",
        "config_hash": hashlib.sha256(canonical.encode()).hexdigest(),
        "observation_space": "Box(0.0, 1.0, (3,), float32)",
        "action_space": "MultiDiscrete([5, 5, 5])",
    }
    reordered = {"hidden": [8, 8], "lr": np.float64(0.1), "gamma": 0.9}
    assert manifest_for("dqn", reordered, OBS, ACT)["config_hash"] == meta["config_hash"]
    assert manifest(lr=0.2)["config_hash"] != manifest()["config_hash"]
    big = gym.spaces.Box(np.arange(5000.0), np.arange(5000.0) + 1, dtype=np.float64)
    assert len(manifest_for("x", {}, big, ACT)["observation_space"]) < 120


# --- another run --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("other", "match"),
    [
        (manifest("dteql"), r"algorithm 'ql' with config hash \w{12}\.\.\., this run is 'dteql'"),
        (manifest(lr=0.5), r"'ql' with config hash (\w{12})\.\.\., this run is 'ql' with (?!\1)"),
        (manifest_for("ql", CONFIG, gym.spaces.Discrete(25), ACT), r"observation space Discrete"),
        (manifest_for("ql", CONFIG, OBS, gym.spaces.Discrete(120)), r"Discrete\(5\) vs Discrete"),
    ],
)
def test_other_run_refused(tmp_path: Path, other: dict[str, Any], match: str) -> None:
    save_checkpoint(tmp_path / "checkpoint.npz", sample_arrays(), manifest())
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tmp_path / "checkpoint.npz", expect=other)


def test_every_difference_named(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "checkpoint.npz", sample_arrays(), manifest())
    other = manifest_for("dteql", {"lr": 1}, OBS, gym.spaces.Discrete(120))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "checkpoint.npz", expect=other)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("checkpoint.npz belongs to another run: it was written by algorithm")
    assert "'dteql'" in message and "action space Discrete(5) vs Discrete(120)" in message
    assert "observation space" not in message  # equal fields are not listed


# --- damaged files ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("good") / "c.npz"
    save_checkpoint(path, sample_arrays(), manifest())
    return path.read_bytes()


N_CUTS, N_FLIPS = 60, 200


@pytest.mark.parametrize("i", range(N_CUTS))
def test_truncated_refused(tmp_path: Path, good_bytes: bytes, i: int) -> None:
    cut = i * len(good_bytes) // N_CUTS if i else len(good_bytes) - 1
    (tmp_path / "c.npz").write_bytes(good_bytes[:cut])
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "c.npz")


def flips(size: int) -> list[tuple[int, int]]:
    """(offset, xor mask) pairs: 200 distinct offsets spread over the file, seeded."""
    rng = np.random.default_rng(2024)
    offsets = np.sort(rng.choice(size, N_FLIPS, replace=False))
    return [(int(o), int(m)) for o, m in zip(offsets, rng.integers(1, 256, N_FLIPS), strict=True)]


@pytest.mark.parametrize("i", range(N_FLIPS))
def test_byte_flip_refused(tmp_path: Path, good_bytes: bytes, i: int) -> None:
    offset, mask = flips(len(good_bytes))[i]
    data = bytearray(good_bytes)
    data[offset] ^= mask
    (tmp_path / "c.npz").write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "c.npz")


@pytest.mark.parametrize("i", range(N_FLIPS))
def test_resealed_byte_flip_never_passes_silently(
    tmp_path: Path, good_bytes: bytes, i: int
) -> None:
    """Past the file digest (recomputed after the flip), the reader still raises only
    CheckpointError, and whatever it accepts is exactly what was saved."""
    offset, mask = flips(len(good_bytes) - 78)[i]  # not in the digest itself
    data = bytearray(good_bytes)
    data[offset] ^= mask
    path = tmp_path / "c.npz"
    with path.open("w+b") as handle:
        handle.write(bytes(data))
        _seal(handle)
    try:
        arrays, meta = load_checkpoint(path)
    except CheckpointError:
        return
    assert_same(arrays, sample_arrays())  # only bytes zip readers ignore (timestamps, ...)
    assert meta == manifest()


def test_flip_offsets_cover_the_file(good_bytes: bytes) -> None:
    offsets = [o for o, _ in flips(len(good_bytes))]
    assert offsets[0] < len(good_bytes) // 20 and offsets[-1] > len(good_bytes) * 19 // 20


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p.write_bytes(b""), "too few"),
        (lambda p: p.write_text("not a zip file at all, just some text " * 4), "file digest"),
        (lambda p: np.savez(p, q=np.zeros(3)), "file digest"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: None, "does not exist"),
    ],
    ids=["empty", "text", "plain-npz", "directory", "missing"],
)
def test_not_a_checkpoint(tmp_path: Path, make: Any, match: str) -> None:
    path = tmp_path / "c.npz"
    make(path)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_file_not_a_zip_but_sealed(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    with path.open("w+b") as handle:
        handle.write(b"garbage" * 10 + b"twinrl-sha256:" + b"0" * 64)
        _seal(handle)
    with pytest.raises(CheckpointError, match="damaged or not a twinrl checkpoint"):
        load_checkpoint(path)


class Bomb:
    """Unpickling this object would set ``exploded``."""

    exploded = False

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (Bomb._explode, ())

    @staticmethod
    def _explode() -> None:
        Bomb.exploded = True


def test_object_array_refused_without_unpickling(tmp_path: Path) -> None:
    objects = np.array([Bomb()], dtype=object)
    np.savez(tmp_path / "plain.npz", q=objects)  # what np.load(allow_pickle=False) rejects
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "plain.npz")
    # The same object array inside an otherwise valid, sealed checkpoint.
    raw = json.dumps(manifest(), sort_keys=True, separators=(",", ":")).encode()
    path = tmp_path / "sealed.npz"
    with path.open("w+b") as handle:
        with zipfile.ZipFile(handle, "w") as archive:
            archive.comment = b"twinrl-sha256:" + b"0" * 64
            for name, value in ((MANIFEST_KEY, np.frombuffer(raw, np.uint8)), ("q", objects)):
                with archive.open(f"{name}.npy", "w") as member:
                    np.lib.format.write_array(member, value, allow_pickle=True)
        _seal(handle)
    with pytest.raises(CheckpointError, match=r"'q' has dtype object"):
        load_checkpoint(path)
    assert not Bomb.exploded


# --- non-finite values --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "arrays",
    [
        {"q": np.full((24, 5), np.nan), "iteration": np.array(3)},
        {"online.0.weight": np.array([[0.0, np.inf]], np.float32)},
    ],
    ids=["nan-table", "inf-weight"],
)
def test_non_finite_refused(tmp_path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    with pytest.raises(CheckpointError, match="NaN/inf"):
        save_checkpoint(tmp_path / "c.npz", arrays, manifest())
    assert not (tmp_path / "c.npz").exists()
    forge(tmp_path / "c.npz", arrays, manifest())
    with pytest.raises(CheckpointError, match=r"array '(q|online\.0\.weight)' holds \d+ NaN/inf"):
        load_checkpoint(tmp_path / "c.npz")
    allowed = {**manifest(), "allow_nonfinite": list(arrays)}
    save_checkpoint(tmp_path / "ok.npz", arrays, allowed)
    assert_same(load_checkpoint(tmp_path / "ok.npz")[0], arrays)


def test_unknown_format_version_and_missing_checksum(tmp_path: Path) -> None:
    forge(tmp_path / "v2.npz", {"q": np.zeros(2)}, {**manifest(), "format_version": 2})
    with pytest.raises(CheckpointError, match="format version 2; this twinrl"):
        load_checkpoint(tmp_path / "v2.npz")
    raw = json.dumps(manifest()).encode()
    with (tmp_path / "nosum.npz").open("w+b") as handle:
        _write_zip(handle, [(MANIFEST_KEY, np.frombuffer(raw, np.uint8))])
        _seal(handle)
    with pytest.raises(CheckpointError, match="no twinrl checksum"):
        load_checkpoint(tmp_path / "nosum.npz")
    forge(tmp_path / "bad.npz", {"q": np.zeros(2)}, manifest())
    with zipfile.ZipFile(tmp_path / "bad.npz") as archive:
        assert archive.read(f"{CHECKSUM_KEY}.npy")  # present: the forged file is well formed
    assert load_checkpoint(tmp_path / "bad.npz")[1] == manifest()


@pytest.mark.parametrize(
    ("arrays", "meta", "match"),
    [
        ({"__twinrl_x": np.zeros(1)}, manifest(), "not allowed"),
        ({"s": np.array(["a"])}, manifest(), "dtype <U1"),
        ({"q": np.zeros(1)}, {**manifest(), "when": object()}, "not plain JSON"),
        ({"q": np.zeros(1)}, {**manifest(), "format_version": 9}, "format_version=9"),
    ],
)
def test_save_refuses(
    tmp_path: Path, arrays: dict[str, Any], meta: dict[str, Any], match: str
) -> None:
    with pytest.raises(CheckpointError, match=match):
        save_checkpoint(tmp_path / "c.npz", arrays, meta)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_save_and_load_refuse_a_version_equal_to_but_not_the_int_one(
    tmp_path: Path, version: Any
) -> None:
    # True == 1.0 == 1: save_checkpoint once wrote such a file, which load_checkpoint refused.
    meta = {**manifest(), "format_version": version}
    with pytest.raises(CheckpointError, match="format_version="):
        save_checkpoint(tmp_path / "c.npz", {"q": np.zeros(1)}, meta)
    assert list(tmp_path.iterdir()) == []
    forge(tmp_path / "v.npz", {"q": np.zeros(1)}, meta)
    with pytest.raises(CheckpointError, match="format version"):
        load_checkpoint(tmp_path / "v.npz")


def test_save_into_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist; create it first"):
        save_checkpoint(tmp_path / "nope" / "c.npz", sample_arrays(), manifest())


# --- property ------------------------------------------------------------------------------------
NAMES = st.text(alphabet="abcdefghij._0123456789", min_size=1, max_size=12)
ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.int8, np.uint64, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    elements={"allow_nan": False, "allow_infinity": False},
)


@settings(max_examples=60, deadline=None)
@given(arrays=st.dictionaries(NAMES, ARRAYS, max_size=5))
def test_round_trip_property(
    tmp_path_factory: pytest.TempPathFactory, arrays: dict[str, NDArray[Any]]
) -> None:
    path = tmp_path_factory.mktemp("prop") / "c.npz"
    save_checkpoint(path, arrays, manifest())
    loaded, meta = load_checkpoint(path, expect=manifest())
    assert_same(loaded, arrays)
    assert meta == manifest()


# --- agents and storage refuse bad state --------------------------------------------------------
def q_state(**changes: Any) -> dict[str, Any]:
    state = QLearning(4, 3).state_dict()
    state.update(changes)
    return {k: v for k, v in state.items() if v is not None}


@pytest.mark.parametrize(
    ("state", "match"),
    [
        (q_state(q=np.full((4, 3), np.nan)), r"'q' holds 12 NaN/inf"),
        (q_state(q=np.array([[np.inf, 0, 0]] * 4)), r"'q' holds 4 NaN/inf value\(s\) of 12"),
        (q_state(iteration=np.array(-1)), r"'iteration' is -1; expected an integer >= 0"),
        (q_state(iteration=np.array(2.5)), r"'iteration' has dtype float64; expected integer"),
        (q_state(iteration=np.array([1, 2])), r"'iteration' has shape \(2,\)"),
        (q_state(q=np.zeros((4, 4))), r"'q' has shape \(4, 4\); this QLearning needs \(4, 3\)"),
        (q_state(q=np.zeros((4, 3), dtype=np.int64)), r"'q' has dtype int64; expected float"),
        (q_state(iteration=None), r"lacks \['iteration'\]"),
        (q_state(extra=np.zeros(1)), r"has unknown \['extra'\]"),
    ],
)
def test_qlearning_refuses_bad_state(state: dict[str, Any], match: str) -> None:
    agent = QLearning(4, 3)
    agent.q[0, 0] = 5.0
    with pytest.raises(CheckpointError, match=match):
        agent.load_state_dict(state)
    assert agent.q[0, 0] == 5.0 and agent.iteration == 1  # unchanged


def test_qlearning_in_memory_copies_still_work() -> None:
    a = QLearning(4, 3, rng=0)
    a.q[:] = np.arange(12.0).reshape(4, 3)
    a.begin_iteration(9)
    b = a.spawn(np.random.default_rng(1))
    assert np.array_equal(b.q, a.q) and b.iteration == 9
    b.q[0, 0] = -1.0
    b.load_state_dict(a.state_dict(), validate=False)
    assert np.array_equal(b.q, a.q)


def test_qlearning_checkpoint_round_trip(tmp_path: Path) -> None:
    a = QLearning(24, 5, rng=0)
    a.q[:] = np.random.default_rng(3).normal(size=a.q.shape)
    a.begin_iteration(41)
    save_checkpoint(tmp_path / "c.npz", a.state_dict(), manifest())
    b = QLearning(24, 5)
    b.load_state_dict(load_checkpoint(tmp_path / "c.npz", expect=manifest())[0])
    assert np.array_equal(a.q, b.q) and b.iteration == 41


def filled_storage() -> Storage:
    storage = Storage(capacity=4, n_twin_domains=1, seed=0)
    storage.add(
        Transitions(
            obs=np.arange(6, dtype=np.float64).reshape(3, 2),
            action=np.array([0, 1, 2]),
            reward=np.array([1.0, 2.0, 3.0]),
            next_obs=np.ones((3, 2)),
            terminated=np.array([False, True, False]),
            next_mask=None,
            source=np.array([0, 1, 0]),
        )
    )
    return storage


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"buffer.reward": np.full((2, 4), np.nan)}, r"'buffer\.reward' holds 8 NaN/inf"),
        ({"buffer.obs": np.full((2, 4, 2), np.inf)}, r"'buffer\.obs' holds 16 NaN/inf"),
        ({"buffer.discount": np.full((2, 4), 2.0)}, r"'buffer\.discount' must hold NaN"),
        ({"size": np.array([-1, 0])}, r"'size' is \[-1, 0\]"),
        ({"size": np.array([5, 0])}, r"'size' is \[5, 0\]"),
        ({"next": np.array([0.5, 0.0])}, r"'next' has dtype float64"),
        ({"buffer.action": np.zeros((2, 3))}, r"'buffer\.action' has dtype float64"),
        ({"buffer.terminated": np.zeros((2, 3), bool)}, r"'buffer\.terminated' has shape"),
        ({"buffer.extra": np.zeros((2, 4))}, r"unknown \['buffer\.extra'\]"),
        ({"rng": np.zeros(5, np.uint64)}, r"'rng' has shape \(5,\)"),
    ],
)
def test_storage_refuses_bad_state(change: dict[str, Any], match: str) -> None:
    state = {**filled_storage().state_dict(), **change}
    target = Storage(capacity=4, n_twin_domains=1, seed=1)
    with pytest.raises(CheckpointError, match=match):
        target.load_state_dict(state)
    assert len(target) == 0


def test_storage_nan_discount_still_loads() -> None:
    source = filled_storage()
    target = Storage(capacity=4, n_twin_domains=1, seed=1)
    target.load_state_dict(source.state_dict())
    assert target.domain(0).reward.tolist() == [1.0, 3.0] and target.domain(0).discount is None


def test_dqn_refuses_bad_state_and_resumes(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from twinrl.agents import DQN, DQNConfig

    config = DQNConfig(hidden=(4,), batch_size=4, learning_starts=4, n_step=2)
    agent = DQN(2, gym.spaces.Discrete(3), config, rng=0)
    good = agent.state_dict()
    for key, value, match in (
        ("online.0.weight", np.full((4, 2), np.inf, np.float32), r"'online\.0\.weight' holds 8"),
        ("adam.exp_avg.2.bias", np.full(3, np.nan, np.float32), r"'adam\.exp_avg\.2\.bias'"),
        ("gradient_steps", np.array(-3), r"'gradient_steps' is -3"),
        ("iteration", np.array(1.5), r"'iteration' has dtype float64"),
    ):
        with pytest.raises(CheckpointError, match=match):
            agent.load_state_dict({**good, key: value})
    with pytest.raises(CheckpointError, match=r"unknown \['bogus'\]"):
        agent.load_state_dict({**good, "bogus": np.zeros(1)})
    assert all(np.array_equal(good[k], v) for k, v in agent.state_dict().items())  # unchanged

    rng = np.random.default_rng(0)
    for _ in range(12):
        obs, nxt = rng.random(2), rng.random(2)
        agent.learn(Transitions.single(obs, int(rng.integers(3)), float(rng.random()), nxt, False))
    agent.save(tmp_path / "dqn.npz")
    resumed = DQN(2, gym.spaces.Discrete(3), config, rng=5)
    resumed.load(tmp_path / "dqn.npz")
    a, b = agent.state_dict(), resumed.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert len(resumed.nstep.pending) == len(agent.nstep.pending) == 1  # type: ignore[union-attr]
    other = DQN(2, gym.spaces.Discrete(3), DQNConfig(hidden=(4,), batch_size=4, learning_starts=4))
    with pytest.raises(CheckpointError, match="config hash"):
        other.load(tmp_path / "dqn.npz")
