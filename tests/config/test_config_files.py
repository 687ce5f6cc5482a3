"""Config files and ``--set`` values: YAML 1.2 floats, lists for tuple fields, and safe parsing
(alias bombs, deep nesting, huge files) that fails fast with an error naming the file."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from twinrl.cli import main
from twinrl.config import MAX_FILE_BYTES, TrainConfig, build_config, load_file, parse_yaml
from twinrl.errors import ConfigError, InputFileError


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("5e-1", 0.5), ("1e-3", 0.001), (".5", 0.5), ("-2.5e+2", -250.0), ("1.0e-1", 0.1),
     ("5", 5), ("0x10", 16), ("true", True), ("abc", "abc"), (".inf", float("inf"))],
)  # fmt: skip
def test_scalars_follow_yaml_1_2_floats_and_keep_ints(raw: str, expected: object) -> None:
    value = parse_yaml(raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("spelling", ["agent.lr=5e-1", "agent.lr=0.5", "agent.lr=.5"])
def test_set_float_spellings_give_the_same_config(spelling: str) -> None:
    cfg = build_config(None, ["algo=ql", spelling])
    assert cfg == TrainConfig(algo="ql", agent={"lr": 0.5})
    assert type(cfg.agent["lr"]) is float


def test_hidden_list_from_set_yaml_and_toml_equals_the_tuple(tmp_path: Path) -> None:
    expected = TrainConfig(algo="dqn", agent={"hidden": (64, 64)})
    assert build_config(None, ["algo=dqn", "agent.hidden=[64,64]"]) == expected
    yaml_file = write(tmp_path, "c.yaml", "algo: dqn\nagent:\n  hidden: [64, 64]\n")
    toml_file = write(tmp_path, "c.toml", 'algo = "dqn"\n[agent]\nhidden = [64, 64]\n')
    assert build_config(yaml_file, []) == expected
    assert build_config(toml_file, []) == expected
    assert build_config(None, ["algo=dqn", "agent.hidden=[64,64]"]).agent["hidden"] == (64, 64)


def test_numpy_scalars_give_the_plain_python_config() -> None:
    plain = TrainConfig(budget=5, seed=1, agent={"lr": 0.5}, env_kwargs={"n_tasks": 5, "zeta": 0.5})
    numpy = TrainConfig(
        budget=np.int64(5),  # type: ignore[arg-type]
        seed=np.int32(1),  # type: ignore[arg-type]
        agent={"lr": np.float64(0.5)},
        env_kwargs={"n_tasks": np.int64(5), "zeta": np.float32(0.5)},
    )
    assert numpy == plain
    for value in (numpy.budget, numpy.seed, numpy.agent["lr"], *numpy.env_kwargs.values()):
        assert type(value) in (int, float)


def test_yaml_file_with_floats_and_a_set_override(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "algo: ql\nagent:\n  lr: 5e-1\n  gamma: 9e-1\n")
    cfg = build_config(path, ["agent.eps0=8e-1"])
    assert cfg.agent == {"lr": 0.5, "gamma": 0.9, "eps0": 0.8}


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("bomb.yaml", BOMB, "alias"),
        ("scalar_aliases.yaml", "a: &a 1\nb: [" + ", ".join(["*a"] * 200) + "]\n", "aliases"),
        ("deep.yaml", "a: " + "[" * 10_000 + "]" * 10_000 + "\n", "nesting|deep"),
        ("deep_block.yaml", "".join(" " * i + f"k{i}:\n" for i in range(200)), "nesting|deep"),
        ("deep.toml", "a = " + "[" * 10_000 + "]" * 10_000 + "\n", "nest|deep|TOML"),
        ("deep_tables.toml", "a = " + "{b = " * 60 + "1" + "}" * 60 + "\n", "nest|deep|TOML"),
        ("list.yaml", "- 1\n- 2\n", "mapping"),
        ("bad.yaml", "a: [1, 2\n", "not valid YAML"),
        ("bad.toml", "a = = 1\n", "not valid TOML"),
        ("c.json", "{}", "must end in"),
    ],
)
def test_unsafe_or_bad_files_fail_fast_naming_the_file(
    tmp_path: Path, name: str, text: str, match: str
) -> None:
    path = write(tmp_path, name, text)
    start = time.process_time()  # CPU seconds: a guard against blow-ups, not a speed claim
    with pytest.raises(InputFileError, match=match) as info:
        load_file(path)
    assert time.process_time() - start < 2.0
    assert name in str(info.value)
    assert len(str(info.value)) < 1000


def test_alias_of_a_scalar_is_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "budget: &b 7\nseed: *b\n")
    assert load_file(path) == {"budget": 7, "seed": 7}


def test_missing_huge_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist"):
        load_file(tmp_path / "missing.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_FILE_BYTES + "\n")
    with pytest.raises(InputFileError, match="1 MiB"):
        load_file(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(InputFileError, match="UTF-8"):
        load_file(binary)


@pytest.mark.parametrize(
    ("item", "match"),
    [("agent.lr", "key=value"), ("=3", "empty key"), ("agent..lr=3", "empty key"),
     ("budget=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "deep"),
     ("budget.x=1", "not a mapping"), ("nope=1", "unknown config key"),
     ("budget=[1, 2", "cannot parse")],
)  # fmt: skip
def test_bad_set_items(item: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_config(None, ["budget=5", item] if item.startswith("budget.") else [item])


def test_cli_reports_config_errors_as_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = write(tmp_path, "bomb.yaml", BOMB)
    out = str(tmp_path / "out")
    assert main(["train", "--config", bomb, "--out", out, "--no-progress"]) == 2
    assert "bomb.yaml" in capsys.readouterr().err
    args = ["train", "--set", "agent.eps_min=0.5", "--out", out, "--no-progress"]
    assert main(args) == 2
    assert "eps_min" in capsys.readouterr().err
    assert not Path(out).exists()
