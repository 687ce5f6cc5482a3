from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from twinrl.cli import main


def test_list_shows_envs_algorithms_experiments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "twinrl/EdgeScheduling-v0" in out and "dteql" in out and "table2" in out


def test_train_writes_outputs_and_is_deterministic(tmp_path: Path) -> None:
    args = ["train", "--algo", "dteql", "--budget", "60", "--set", "env_kwargs.n_tasks=4",
            "--set", "n_trials=5", "--no-progress"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for name in ("config.json", "metrics.csv", "summary.json", "checkpoint.npz"):
        assert (tmp_path / "a" / name).is_file()
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == (
        tmp_path / "b" / "metrics.csv"
    ).read_bytes()
    ckpt = np.load(tmp_path / "a" / "checkpoint.npz", allow_pickle=False)
    assert ckpt["q"].shape == (1, 24)
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["env_kwargs"] == {"n_tasks": 4} and config["seed"] == 0


def test_train_reads_yaml_and_toml_configs(tmp_path: Path) -> None:
    yml = tmp_path / "c.yaml"
    yml.write_text("algo: ql\nbudget: 20\nenv_kwargs:\n  n_tasks: 3\nagent:\n  lr: 0.2\n")
    toml = tmp_path / "c.toml"
    toml.write_text('algo = "ql"\nbudget = 20\n[env_kwargs]\nn_tasks = 3\n')
    for cfg in (yml, toml):
        out = tmp_path / f"out-{cfg.suffix}"
        assert main(["train", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
        assert json.loads((out / "summary.json").read_text())["iterations"] == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "bogus=1"], "bogus"),
        (["--set", "budget=0"], "budget=0"),
        (["--set", "budget=ten"], "budget"),
        (["--set", "agent.lr=5"], "lr=5"),
        (["--set", "agent.speed=1"], "speed"),
        (["--set", "env_kwargs.n_tasks=0"], "n_tasks=0"),
        (["--set", "env_kwargs.rate=-1"], "rate"),
        (["--set", "backend=gpu"], "gpu"),
        (["--set", "k=0"], "k=0"),
        (["--set", "m=-2"], "m=-2"),
        (["--set", "evaluate=maybe"], "maybe"),
        (["--algo", "dqn", "--set", "agent.gamma=2"], "gamma"),
        (["--set", "noequals"], "key=value"),
        (["--env", "twinrl/Nope-v0"], "Nope"),
        (["--config", "missing.yaml"], "missing.yaml"),
    ],
)
def test_train_bad_input_exits_nonzero_naming_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    assert main(["train", "--budget", "5", *args, "--out", str(out), "--no-progress"]) == 2
    assert re.search(re.escape(message), capsys.readouterr().err)
    assert not out.exists() and not any(tmp_path.glob(".out-*"))  # nothing half-written


def test_bad_config_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, text in (("a.yaml", "budget: [1"), ("b.toml", "budget = "), ("c.json", "{}"),
                       ("d.yaml", "- 1\n- 2\n")):  # fmt: skip
        path = tmp_path / name
        path.write_text(text)
        assert main(["train", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
        assert name in capsys.readouterr().err


def test_reproduce_rejects_bad_names_and_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reproduce", "table9", "--out", str(tmp_path / "r")]) == 2
    assert "table9" in capsys.readouterr().err
    assert main(["reproduce", "table1", "--workers", "0", "--out", str(tmp_path / "r")]) == 2
    assert "workers=0" in capsys.readouterr().err
    assert main(["reproduce", "table1", "--instances", "0", "--out", str(tmp_path / "r")]) == 2
    assert main(["reproduce", "fig4", "--seeds", "0", "--out", str(tmp_path / "r")]) == 2
    assert "seeds=0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    with pytest.raises(SystemExit):
        main(["reproduce", "--preset", "huge"])


def test_reproduce_writes_report_tables_and_figure(tmp_path: Path) -> None:
    from twinrl.experiments import edge_tables

    tiny = edge_tables.Preset(ns=(4, 5), instances=2, budget=300, deadline_instances=1)
    edge_tables.PRESETS["tiny-test"] = tiny
    from twinrl.experiments import runner

    runner.PRESET_NAMES = (*runner.PRESET_NAMES, "tiny-test")
    try:
        report = runner.reproduce(["table1", "table2"], preset="tiny-test", out=tmp_path / "r")
    finally:
        del edge_tables.PRESETS["tiny-test"]
        runner.PRESET_NAMES = runner.PRESET_NAMES[:-1]
    text = report.read_text()
    assert "Table I" in text and "Table II" in text and "paper 0.6435" in text
    summary = json.loads((tmp_path / "r" / "table1" / "summary.json").read_text())
    methods = {row["method"] for row in summary["rows"]}
    assert {"DTEQL φ=500", "QL", "exact optimum", "SPT (transmission)"} <= methods
    assert (tmp_path / "r" / "table1" / "fig2_convergence.png").stat().st_size > 10_000


def test_train_rejects_agent_keys_of_the_other_family(tmp_path: Path) -> None:
    code = main(["train", "--algo", "dqn", "--set", "agent.beta=3", "--budget", "5",
                 "--out", str(tmp_path / "x")])  # fmt: skip
    assert code == 2 and not (tmp_path / "x").exists()


def test_reproduce_without_torch_skips_deep_experiments_or_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from twinrl.experiments import runner

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m: None if m == "torch" else real(m))
    assert main(["reproduce", "fig5", "--out", str(tmp_path / "r")]) == 2
    assert 'pip install -e ".[torch]"' in capsys.readouterr().err

    def write(summary: dict, out: Path) -> dict:
        out.mkdir(parents=True)
        (out / "table.md").write_text(f"# {summary['name']}\n")
        return {}

    monkeypatch.setattr(runner, "GROUPS", {"g": runner.Group(lambda preset, **_: {"name": "ran"})})
    monkeypatch.setattr(runner, "EXPERIMENTS", {
        "plain": runner.Experiment("no extra", "g", write),
        "deep": runner.Experiment("needs torch", "g", write, needs=("torch",), extra="torch"),
    })  # fmt: skip
    text = runner.reproduce([], out=tmp_path / "all").read_text()
    assert (
        "# ran" in text
        and 'Not run: deep needs torch: from a twinrl checkout, pip install -e ".[torch]"' in text
    )
    assert not (tmp_path / "all" / "deep").exists()
    assert "skipping deep" in capsys.readouterr().err


def test_train_checkpoint_carries_its_manifest_and_refuses_another_run(tmp_path: Path) -> None:
    from twinrl.checkpoint import load_checkpoint
    from twinrl.errors import CheckpointError

    args = ["train", "--algo", "ql", "--budget", "20", "--set", "env_kwargs.n_tasks=4",
            "--no-progress", "--out", str(tmp_path / "a")]  # fmt: skip
    assert main(args) == 0
    arrays, manifest = load_checkpoint(tmp_path / "a" / "checkpoint.npz")
    assert manifest["algorithm"] == "ql" and arrays["q"].shape == (1, 24)
    other = dict(manifest, algorithm="dteql")
    with pytest.raises(CheckpointError, match="dteql"):
        load_checkpoint(tmp_path / "a" / "checkpoint.npz", expect=other)


def test_studies_run_only_when_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from twinrl.experiments import runner

    groups: list[str] = []

    def recorder(name: str) -> runner.Group:
        def run(preset: str, **kwargs: object) -> dict:
            groups.append(name)
            raise RuntimeError("stop: only the choice of group is under test")

        return runner.Group(run)

    for group in list(runner.GROUPS):
        monkeypatch.setitem(runner.GROUPS, group, recorder(group))
    for names, out in (([], "bare"), (["fidelity"], "named")):
        with pytest.raises(RuntimeError, match="stop"):
            runner.reproduce(names, out=tmp_path / out)
    assert groups == ["edge", "fidelity"]  # a bare run starts with Table I/II
    paper = {"table1", "table2", "fig4", "safety", "fig5", "observation"}
    assert {n for n, e in runner.EXPERIMENTS.items() if e.default} == paper
    assert main(["list"]) == 0
    assert "*fidelity" in capsys.readouterr().out


def test_list_aligns_every_description_in_one_column(capsys: pytest.CaptureFixture[str]) -> None:
    from twinrl.algorithms import ALGORITHMS
    from twinrl.experiments import runner

    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for names in (ALGORITHMS, runner.EXPERIMENTS):
        rows = [ln for ln in lines if ln[2:].split(" ")[0] in names and ln[:2].strip() in ("", "*")]
        assert len(rows) == len(names)
        starts = {len(ln) - len(ln[2:].split(" ", 1)[1].lstrip()) for ln in rows}
        assert len(starts) == 1  # the longest name (dtaql-visit, construction) included
