"""Training configuration: one validated dataclass, from YAML/TOML files and ``--set key=value``.

Unknown keys, wrong types and out-of-range values raise ``ValueError`` naming the key, the bad value
and what is allowed. Values are parsed as YAML scalars (never ``eval``-ed).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from twinrl.agents.dqn import DQNConfig
from twinrl.agents.qlearning import QLearningConfig
from twinrl.algorithms import ALGORITHMS, config_class


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``twinrl train`` needs; every field can be set from a file or ``--set``."""

    env: str = "twinrl/EdgeScheduling-v0"
    """Registered environment id."""
    algo: str = "dteql"
    """Named algorithm (``twinrl list``): ql, dteql, dtaql, dqn, dt-dqn, nstep-dqn."""
    budget: int = 25_600
    """Physical iterations."""
    seed: int = 0
    """The one seed every random stream is derived from."""
    n_trials: int = 500
    """DTEQL: actions tried in the twin per physical step (phi)."""
    n_agents: int = 500
    """DTAQL: twin agents (phi)."""
    sync_every: int = 512
    """DTAQL: knowledge-sharing period (delta)."""
    k: int = 3
    """dt-dqn: look-ahead steps of the twin's predictive targets; nstep-dqn: n."""
    m: int = 4
    """dt-dqn: twin trajectories averaged per target."""
    evaluate: bool | None = None
    """Record the greedy policy's return after every iteration (a twin rollout each time);
    None: on for the tabular algorithms, off for the deep ones."""
    backend: str = "auto"
    """Twin backend: auto, vectorized or serial."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the environment (e.g. ``n_tasks``)."""
    agent: dict[str, Any] = field(default_factory=dict)
    """Agent fields: QLearningConfig's (lr, gamma, eps_min, eps0, beta, q_init, tie_break,
    reward_offset) for the tabular algorithms, DQNConfig's for the deep ones."""

    def __post_init__(self) -> None:
        if self.algo not in ALGORITHMS:
            raise ValueError(
                f"algo={self.algo!r} is not allowed; choose one of {', '.join(ALGORITHMS)}"
            )
        for name, low in (("budget", 1), ("seed", 0), ("n_trials", 1), ("n_agents", 1),
                          ("sync_every", 1), ("k", 1), ("m", 1)):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
            if value < low:
                raise ValueError(f"{name}={value} is out of range; allowed: an integer >= {low}")
        if self.backend not in ("auto", "vectorized", "serial"):
            raise ValueError(
                f"backend={self.backend!r} is not allowed; choose one of auto, vectorized, serial"
            )
        if self.evaluate is not None and not isinstance(self.evaluate, bool):
            raise ValueError(f"evaluate must be true, false or null, got {self.evaluate!r}")
        if not isinstance(self.env_kwargs, dict) or not isinstance(self.agent, dict):
            raise ValueError("env_kwargs and agent must be mappings of key: value")
        self.agent_config()  # validates the agent's fields

    def agent_config(self) -> QLearningConfig | DQNConfig:
        """The algorithm's agent configuration (QLearningConfig or DQNConfig) from ``agent``."""
        cls = config_class(self.algo)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(self.agent) - known)
        if unknown:
            raise ValueError(
                f"unknown agent key(s) {', '.join(unknown)} for {self.algo}; "
                f"allowed: {', '.join(sorted(known))}"
            )
        return cls(**self.agent)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_file(path: str | Path) -> dict[str, Any]:
    """A mapping from a ``.yaml``/``.yml`` or ``.toml`` file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
    elif path.suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {str(path)!r} is not valid TOML: {exc}") from exc
    else:
        raise ValueError(f"config file {str(path)!r} must end in .yaml, .yml or .toml")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of key: value")
    return data


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``key=value`` (dotted keys reach nested mappings, e.g. ``agent.lr=0.2``)."""
    if "=" not in item:
        raise ValueError(f"--set {item!r} must look like key=value")
    key, raw = item.split("=", 1)
    if not key:
        raise ValueError(f"--set {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as exc:
        raise ValueError(f"--set {item!r}: cannot parse value {raw!r}") from exc
    *parents, leaf = key.split(".")
    target = data
    for part in parents:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ValueError(f"--set {item!r}: {part!r} is not a mapping")
    target[leaf] = value


def build_config(file: str | None, overrides: list[str], **cli: Any) -> TrainConfig:
    """Defaults, then the file, then explicit CLI options, then ``--set`` overrides."""
    data: dict[str, Any] = load_file(file) if file else {}
    data.update({k: v for k, v in cli.items() if v is not None})
    for item in overrides:
        apply_override(data, item)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(
            f"unknown config key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
        )
    try:
        return TrainConfig(**data)
    except TypeError as exc:  # pragma: no cover - guarded by the key check above
        raise ValueError(str(exc)) from exc
