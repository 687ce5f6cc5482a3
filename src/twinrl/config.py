"""Training configuration: one validated dataclass, from YAML/TOML files and ``--set key=value``.

Unknown keys, wrong types and out-of-range values raise :class:`~twinrl.errors.ConfigError` (a
``ValueError``; :class:`~twinrl.errors.ConfigTypeError` for a wrong type) naming the key, the bad
value and what is allowed; a file that cannot be read or parsed safely raises
:class:`~twinrl.errors.InputFileError` naming the file. Values are parsed as YAML scalars (never
``eval``-ed), with YAML 1.2 floats (``5e-1``, ``1e-3``, ``.5``), at most :data:`MAX_ALIASES` aliases
(none to a list or mapping, so an alias bomb cannot expand) and at most :data:`MAX_DEPTH` levels
of nesting.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

from twinrl.agents.dqn import DQNConfig
from twinrl.agents.qlearning import QLearningConfig
from twinrl.algorithms import ALGORITHMS, config_class
from twinrl.envs import ENV_IDS, APSelectionParams, EdgeParams, MultiUAVParams
from twinrl.errors import ConfigError, ConfigTypeError, InputFileError, short_repr
from twinrl.training import MAX_BUDGET
from twinrl.twin.backends import BACKENDS
from twinrl.validation import check_bool, check_choice, check_int, plain, set_field

MAX_FILE_BYTES = 1 << 20
"""Largest config file accepted (1 MiB); a training config is a few hundred bytes."""
MAX_DEPTH = 32
"""Deepest nesting of lists and mappings accepted in a config file or ``--set`` value."""
MAX_ALIASES = 100
"""Most YAML alias uses (``*name``) accepted in one document."""

ENV_PARAMS: dict[str, type[Any]] = {
    "twinrl/EdgeScheduling-v0": EdgeParams,
    "twinrl/APSelection-v0": APSelectionParams,
    "twinrl/MultiUAV-v0": MultiUAVParams,
}
"""The parameter dataclass whose fields are the ``env_kwargs`` of each twinrl environment."""

_INT_FIELDS = {  # name: (low, high)
    "budget": (1, MAX_BUDGET),
    "seed": (0, 2**63 - 1),
    "n_trials": (1, 10**6),
    "n_agents": (1, 10**5),
    "sync_every": (1, 10**9),
    "k": (1, 10_000),
    "m": (1, 10_000),
    "eval_steps": (1, MAX_BUDGET),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``twinrl train`` needs; every field can be set from a file or ``--set``.

    Numbers given as numpy scalars, and lists where a tuple belongs, are converted on the way in,
    so the config holds plain Python values and :meth:`to_dict` is JSON-ready.
    """

    env: str = "twinrl/EdgeScheduling-v0"
    """Registered environment id."""
    algo: str = "dteql"
    """Named algorithm (``twinrl list``): ql, dteql, dtaql, dtaql-visit, dqn, dt-dqn, nstep-dqn."""
    budget: int = 25_600
    """Physical iterations, an integer in [1, 1e9]."""
    seed: int = 0
    """The one seed every random stream is derived from, an integer in [0, 2**63 - 1]."""
    n_trials: int = 500
    """DTEQL: actions tried in the twin per physical step (phi), an integer in [1, 1e6]."""
    n_agents: int = 500
    """DTAQL: twin agents (phi), an integer in [1, 1e5]; each holds a copy of the Q table."""
    sync_every: int = 512
    """DTAQL: knowledge-sharing period (delta), an integer in [1, 1e9]."""
    k: int = 3
    """dt-dqn: look-ahead steps of the twin's predictive targets; nstep-dqn: n. In [1, 10000]."""
    m: int = 4
    """dt-dqn: twin trajectories averaged per target, an integer in [1, 10000]."""
    evaluate: bool = True
    """Record the greedy policy's return, rolled out in the twin (``metrics.csv``'s
    ``greedy_return``, the last evaluated value between evaluations)."""
    eval_every: int | None = None
    """Evaluate after every ``eval_every``-th iteration, an integer in [1, 1e9]; None: keep the
    evaluations within 10% of the run's physical iterations plus twin work (``twinrl.train``)."""
    eval_steps: int = 1000
    """Most twin steps of one greedy evaluation episode, an integer in [1, 1e9]."""
    backend: str = "auto"
    """Twin backend (:data:`twinrl.twin.BACKENDS`): auto, vectorized, serial, or ray (the ``ray``
    extra: blocks of domains stepped in Ray actors on a local Ray instance)."""
    checkpoint_every: int | None = None
    """Write a resume checkpoint (``resume.npz`` in ``--out``) after every ``checkpoint_every``-th
    physical iteration, an integer in [1, 1e9], so ``twinrl train --resume DIR`` can continue a
    killed run; None: no checkpoints."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the environment (e.g. ``n_tasks``); for the twinrl environments, the
    fields of its parameter dataclass (:data:`ENV_PARAMS`), validated here."""
    agent: dict[str, Any] = field(default_factory=dict)
    """Agent fields: QLearningConfig's (lr, gamma, eps_min, eps0, beta, q_init, tie_break,
    reward_offset) for the tabular algorithms, DQNConfig's for the deep ones."""

    def __post_init__(self) -> None:
        if not isinstance(self.env, str):
            raise ConfigTypeError(
                f"env must be an environment id such as {ENV_IDS[0]!r}, got {short_repr(self.env)}"
            )
        if self.env not in gym.registry:
            raise ConfigError(
                f"env={short_repr(self.env)} is not a registered environment; choose one of "
                f"{', '.join(ENV_IDS)}"
            )
        check_choice("algo", self.algo, ALGORITHMS)
        for name, (low, high) in _INT_FIELDS.items():
            set_field(self, name, check_int(name, getattr(self, name), low, high))
        check_choice("backend", self.backend, BACKENDS)
        set_field(self, "evaluate", check_bool("evaluate", self.evaluate))
        for name in ("eval_every", "checkpoint_every"):
            if getattr(self, name) is not None:
                set_field(self, name, check_int(name, getattr(self, name), 1, MAX_BUDGET))
        for name in ("env_kwargs", "agent"):
            value = getattr(self, name)
            if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
                raise ConfigTypeError(
                    f"{name} must be a mapping of key: value, got {short_repr(value)}"
                )
        set_field(self, "env_kwargs", self._checked_env_kwargs())
        agent = self.agent_config()  # validates the agent's fields
        set_field(self, "agent", {key: getattr(agent, key) for key in self.agent})

    def _checked_env_kwargs(self) -> dict[str, Any]:
        """``env_kwargs`` validated by the environment's parameter dataclass (plain values)."""
        params_class = ENV_PARAMS.get(self.env)
        if params_class is None:  # a third-party env: its constructor validates
            return dict(plain(self.env_kwargs))
        params = build_dataclass(params_class, self.env_kwargs, "env_kwargs", self.env)
        return {key: getattr(params, key) for key in self.env_kwargs}

    def agent_config(self) -> QLearningConfig | DQNConfig:
        """The algorithm's agent configuration (QLearningConfig or DQNConfig) from ``agent``."""
        return build_dataclass(config_class(self.algo), self.agent, "agent", self.algo)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_dataclass(cls: type[Any], values: dict[str, Any], prefix: str, owner: str) -> Any:
    """``cls(**values)``, with unknown keys refused and every error message naming the key as
    ``prefix.name`` (e.g. ``agent.lr``)."""
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown {prefix} key(s) {short_repr(', '.join(unknown))} for {owner}; allowed: "
            f"{', '.join(known)}"
        )
    try:
        return cls(**values)
    except ConfigTypeError as exc:
        raise ConfigTypeError(f"{prefix}.{exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{prefix}.{exc}") from None


# --- parsing ------------------------------------------------------------------------------

_YAML12_FLOAT = re.compile(
    r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[0-9][0-9_]*[eE][-+]?[0-9]+)$""",
    re.VERBOSE,
)


class _LimitError(yaml.YAMLError):
    """A YAML document breaks a safety limit (aliases, nesting)."""


class SafeConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 floats and limits against alias bombs and deep nesting.

    ``5e-1``, ``1e-3`` and ``.5`` load as floats (YAML 1.1 needs a dot in ``5.0e-1``). An alias
    may stand for a scalar only (an alias of a list or mapping is how a short document expands to
    billions of elements), at most :data:`MAX_ALIASES` times; lists and mappings may nest at most
    :data:`MAX_DEPTH` levels deep.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _LimitError(f"more than {MAX_ALIASES} aliases (*name); write the values out")
            target = self.anchors.get(event.anchor)
            if isinstance(target, (yaml.SequenceNode, yaml.MappingNode)):
                raise _LimitError(
                    f"alias *{event.anchor} (line {event.start_mark.line + 1}) refers to a list or "
                    "mapping; only aliases of single values are allowed, write the values out"
                )
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _LimitError(
                    f"nesting deeper than {MAX_DEPTH} levels (line {mark.line + 1}); flatten it"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


SafeConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789.")
)


def parse_yaml(text: str) -> Any:
    """One YAML document parsed with :class:`SafeConfigLoader`; raises ``yaml.YAMLError``."""
    loader = SafeConfigLoader(text)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise _LimitError(f"nesting too deep; at most {MAX_DEPTH} levels are allowed") from None
    finally:
        loader.dispose()


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Depth of nested lists and mappings in ``value`` (a scalar is 0), counted without recursion
    and stopping once past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, (list, tuple)):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth) for child in item)
    return deepest


def load_file(path: str | Path) -> dict[str, Any]:
    """A mapping from a ``.yaml``/``.yml`` or ``.toml`` file of at most 1 MiB."""
    path = Path(path)
    name = short_repr(str(path), 400)
    if path.suffix not in (".yaml", ".yml", ".toml"):
        raise InputFileError(f"config file {name} must end in .yaml, .yml or .toml")
    if not path.is_file():
        raise InputFileError(f"config file {name} does not exist; check the path")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputFileError(
                f"config file {name} is {size} bytes; a config file may be at most "
                f"{MAX_FILE_BYTES} bytes (1 MiB): keep only the settings you change"
            )
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"config file {name} is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InputFileError(f"config file {name} cannot be read: {exc.strerror}") from None
    data = _parse_yaml_file(text, name) if path.suffix != ".toml" else _parse_toml_file(text, name)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputFileError(
            f"config file {name} must hold a mapping of key: value, got a {type(data).__name__}"
        )
    if nesting_depth(data) > MAX_DEPTH:
        raise InputFileError(
            f"config file {name} nests more than {MAX_DEPTH} levels deep; flatten it"
        )
    return data


def _parse_yaml_file(text: str, name: str) -> Any:
    try:
        return parse_yaml(text)
    except _LimitError as exc:
        raise InputFileError(f"config file {name} is refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise InputFileError(
            f"config file {name} is not valid YAML: {short_repr(str(exc), 400)}"
        ) from None


def _parse_toml_file(text: str, name: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise InputFileError(
            f"config file {name} nests more than {MAX_DEPTH} levels deep; flatten it"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputFileError(
            f"config file {name} is not valid TOML: {short_repr(str(exc), 400)}"
        ) from None


def parse_value(raw: str, where: str) -> Any:
    """A ``--set`` value parsed as one YAML value (``5e-1`` is a float, ``[64, 64]`` a list)."""
    if not raw:
        return ""
    try:
        value = parse_yaml(raw)
    except yaml.YAMLError as exc:
        detail = str(exc) if isinstance(exc, _LimitError) else "not a valid YAML value"
        raise ConfigError(f"{where}: cannot parse value {short_repr(raw)}: {detail}") from None
    if nesting_depth(value) > MAX_DEPTH:
        raise ConfigError(f"{where}: the value nests more than {MAX_DEPTH} levels deep")
    return value


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``key=value`` (dotted keys reach nested mappings, e.g. ``agent.lr=0.2``)."""
    where = f"--set {short_repr(item)}"
    if "=" not in item:
        raise ConfigError(f"{where} must look like key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"{where} has an empty key or key part; write e.g. agent.lr=0.2")
    value = parse_value(raw, where)
    *parents, leaf = parts
    target = data
    for part in parents:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{where}: {short_repr(part)} is not a mapping")
    target[leaf] = value


def build_config(
    file: str | None, overrides: list[str], *, base: dict[str, Any] | None = None, **cli: Any
) -> TrainConfig:
    """Defaults, then ``base`` (e.g. the config a resumed run recorded), then the file, then
    explicit CLI options, then ``--set`` overrides."""
    data: dict[str, Any] = dict(base or {})
    data.update(load_file(file) if file else {})
    data.update({k: v for k, v in cli.items() if v is not None})
    for item in overrides:
        apply_override(data, item)
    known = [f.name for f in fields(TrainConfig)]
    unknown = sorted(str(key) for key in set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {short_repr(', '.join(unknown))}; allowed: {', '.join(known)}"
        )
    return TrainConfig(**data)
