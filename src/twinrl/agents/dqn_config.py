"""Hyper-parameters of :class:`~twinrl.agents.dqn.DQN` and the memory check run before a DQN is
built. No torch here: ``from twinrl.agents import DQNConfig`` works without the torch extra."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

from twinrl.errors import ConfigError
from twinrl.resources import check_memory, replay_bytes
from twinrl.validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_int_tuple,
    set_field,
)

MAX_HISTORY = 1024
"""Most observations a recurrent DQN's window holds (``DQNConfig.history``)."""


@dataclass(frozen=True)
class DQNConfig:
    """Hyper-parameters of :class:`DQN`. The paper does not state its DQN settings; these defaults
    are common small-network choices (CleanRL / SB3 scale)."""

    hidden: tuple[int, ...] = (128, 128)
    """Widths of the shared MLP torso (ReLU after each layer): 1 to 16 layers, each an integer in
    [1, 65536]; a list (from YAML or ``--set agent.hidden=[64,64]``) is accepted."""
    lr: float = 5e-4
    """Adam learning rate, in (0, 0.1] (Adam diverges far below 1; typical values are 1e-4 to
    1e-3)."""
    gamma: float = 0.95
    """Discount factor of the one-step (and n-step) TD target, in [0, 1]."""
    batch_size: int = 64
    """Transitions per gradient step, an integer in [1, 65536]."""
    buffer_capacity: int = 50_000
    """Transitions kept per storage domain (physical, and pooled twin data), an integer in
    [1, 1e9]; the replay memory it needs is checked against the machine when the agent is built."""
    learning_starts: int = 500
    """Physical transitions stored before the first gradient step, in [1, buffer_capacity]."""
    train_every: int = 1
    """Gradient updates run on every ``train_every``-th :meth:`DQN.learn` call that brings physical
    transitions (twin-only calls never trigger updates, so assists do not change the update rate);
    an integer in [1, 1e9]."""
    gradient_steps: int = 1
    """Gradient steps per update, an integer in [1, 10000]."""
    target_update: int = 500
    """Gradient steps between hard copies of the online network into the target network, an
    integer in [1, 1e9]."""
    huber_delta: float = 1.0
    """Delta of the Huber (smooth L1) TD loss, in (0, 1e12]."""
    grad_clip: float = 10.0
    """Maximum global L2 norm of the gradient, in (0, inf] (``inf`` disables clipping)."""
    eps_start: float = 1.0
    """Exploration rate at physical iteration 1, a probability in [0, 1]."""
    eps_end: float = 0.05
    """Exploration rate after the decay, a probability in [0, 1]."""
    eps_decay_steps: int = 10_000
    """Physical iterations of the linear decay from ``eps_start`` to ``eps_end``, an integer in
    [1, 1e12]."""
    n_step: int = 1
    """Physical transitions are stored as n-step returns (the n-step DQN baseline); 1 = one-step.
    An integer in [1, 10000]."""
    double: bool = True
    """Double DQN: the online network picks the next action, the target network values it;
    ``true`` or ``false``."""
    item_features: int = 0
    """0: an MLP on the whole observation, one output per action (per branch). k > 0: a per-action
    set network (:func:`~twinrl.agents.qnetwork.build_network`) for a ``Discrete`` action space
    whose observation holds k entries per action, then global entries (e.g. 7 for
    ``EdgeScheduling-v0`` with ``observation="features"``); an integer in [0, 65536]."""
    head: Literal["mean", "sum"] = "mean"
    """How the per-branch values make the joint one (the same for ``Discrete``, one branch).
    ``mean``: ``Q(s, a) = mean_b Q_b(s, a_b)`` and every branch regresses on the joint target
    (action branching, Tavakoli et al., AAAI 2018). ``sum``: ``Q(s, a) = sum_b Q_b(s, a_b)`` is
    regressed as a whole, so each branch learns its share of the joint value (value
    decomposition, VDN: Sunehag et al., AAMAS 2018): per-UAV utilities with the shared reward."""
    shared_branches: bool = False
    """``true``: the observation is one equal block per branch (e.g. MultiUAV's
    ``observation="per_uav"``), and one network, shared by the branches, maps a block and the
    one-hot of its branch to that branch's values (the one-hot lets UAVs that see the same thing
    act differently). ``false``: one torso reads the whole observation, one head per branch."""
    dueling: bool = False
    """A dueling head per branch, ``Q_b(s, a) = V(s) + A_b(s, a) - mean_a A_b(s, a)`` (Wang et
    al., ICML 2016); ``true`` or ``false``."""
    history: int = 1
    """Observations the network reads per decision. 1: the current one (an MLP, as above).
    L > 1: a recurrent Q-network for partial observation: a GRU (of width ``hidden[0]``; the
    other widths follow it as an MLP) reads the last L observations, each with a flag that marks
    it real, zeros before the episode's first (:mod:`~twinrl.agents.history`). The agent keeps
    the window as it acts and stores windows in its replay storage; an integer in [1, 1024]. Not
    with ``shared_branches``, ``item_features`` or ``dueling``, nor with twin transitions
    (``PredictiveTargets``: a twin row has no history)."""
    twin_share: float = 0.5
    """Share of each sampled batch drawn from twin domains, in [0, 1], once the storage holds twin
    data (only an agent fed twin transitions, e.g. by ``PredictiveTargets``, has any; others sample
    physical data only whatever this is)."""

    def __post_init__(self) -> None:
        set_field(self, "hidden", check_int_tuple("hidden", self.hidden, 1, 65536, max_len=16))
        set_field(self, "lr", check_float("lr", self.lr, 0.0, 0.1, low_open=True))
        set_field(self, "gamma", check_float("gamma", self.gamma, 0.0, 1.0))
        for name, high in (("batch_size", 65536), ("buffer_capacity", 10**9),
                           ("train_every", 10**9), ("gradient_steps", 10_000),
                           ("target_update", 10**9), ("eps_decay_steps", 10**12),
                           ("n_step", 10_000)):  # fmt: skip
            set_field(self, name, check_int(name, getattr(self, name), 1, high))
        starts = check_int("learning_starts", self.learning_starts, 1, self.buffer_capacity)
        set_field(self, "learning_starts", starts)
        set_field(self, "item_features", check_int("item_features", self.item_features, 0, 65536))
        set_field(self, "huber_delta", check_float("huber_delta", self.huber_delta, 0.0, 1e12,
                                                   low_open=True))  # fmt: skip
        set_field(self, "grad_clip", check_float("grad_clip", self.grad_clip, 0.0, math.inf,
                                                 low_open=True))  # fmt: skip
        for name in ("eps_start", "eps_end", "twin_share"):
            set_field(self, name, check_float(name, getattr(self, name), 0.0, 1.0))
        set_field(self, "double", check_bool("double", self.double))
        set_field(self, "shared_branches", check_bool("shared_branches", self.shared_branches))
        check_choice("head", self.head, ("mean", "sum"))
        set_field(self, "dueling", check_bool("dueling", self.dueling))
        set_field(self, "history", check_int("history", self.history, 1, MAX_HISTORY))
        if self.history > 1:
            for name, alternative in (("shared_branches", "shared_branches=false"),
                                      ("item_features", "item_features=0"),
                                      ("dueling", "dueling=false")):  # fmt: skip
                if getattr(self, name):
                    raise ConfigError(
                        f"history={self.history} (a recurrent Q-network) is refused with "
                        f"{name}={getattr(self, name)}: the GRU reads whole observations, one "
                        f"head per branch; set {alternative}, or history=1 to keep {name}"
                    )
        if self.dueling and self.item_features:
            raise ConfigError(
                "dueling=true and item_features > 0 exclude each other (the set network has one "
                "output per action, no value head); drop one"
            )


def check_dqn_memory(
    config: DQNConfig, obs_size: int, n_outputs: int, n_inputs: int | None = None
) -> None:
    """Refuse a replay storage or network too large for this machine before allocating it
    (``n_inputs``, default ``obs_size``, and ``n_outputs`` are the network's widths; with
    ``history > 1``, ``obs_size`` is a stored window's size and ``n_inputs`` one frame's)."""
    check_memory(
        replay_bytes(config.buffer_capacity, obs_size, n_domains=2),
        f"the replay storage (2 domains x {config.buffer_capacity} transitions of "
        f"{obs_size} observation floats)",
        "agent.buffer_capacity (or the observation size)",
    )
    if config.item_features:
        n_global = obs_size - n_outputs * config.item_features
        widths: tuple[int, ...] = (2 * config.item_features + max(n_global, 0), *config.hidden, 1)
    else:
        widths = (obs_size if n_inputs is None else n_inputs, *config.hidden, n_outputs)
    weights = sum((a + 1) * b for a, b in itertools.pairwise(widths))
    if config.history > 1:  # the first layer is a GRU: three gates of input and hidden weights
        a, b = widths[0], widths[1]
        weights += 3 * (a * b + b * b + 2 * b) - (a + 1) * b
    check_memory(
        weights * 4 * 5,  # online and target networks, gradients, Adam's two moments (float32)
        f"the Q networks ({weights} weights per network)",
        "agent.hidden (or the observation size)",
    )
