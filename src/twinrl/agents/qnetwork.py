"""The factorized (branching) Q-network of :class:`~twinrl.agents.dqn.DQN`; torch extra.

One shared MLP torso and one linear head per action branch (one per UAV for
``MultiDiscrete([5] * M)``; one for ``Discrete(n)``), all branch heads held in one output layer
of ``branches x actions`` units (action branching, Tavakoli et al., AAAI 2018). With
``DQNConfig.shared_branches`` the same builder makes the network shared by the branches: its input
is one branch's observation block and the branch's one-hot, its output that branch's values
(:meth:`~twinrl.agents.dqn.DQN._q` applies it to every block).

Torch is imported only by :func:`import_torch`, called when a DQN is built, so importing this
module (and ``twinrl.agents``) does not need it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    import torch

TORCH_MISSING = "DQN needs torch: pip install 'twinrl[torch]'"


def import_torch() -> Any:
    try:
        import torch
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(TORCH_MISSING) from err
    return torch


def action_branches(space: gym.Space[Any]) -> tuple[int, int, bool]:
    """(branches, actions per branch, is Discrete) of a Discrete or MultiDiscrete space."""
    if isinstance(space, gym.spaces.Discrete):
        if int(space.start) != 0:
            raise ValueError(f"Discrete action spaces must start at 0, got start={space.start}")
        return 1, int(space.n), True
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec)
        if nvec.ndim != 1 or nvec.size == 0 or not (nvec == nvec[0]).all():
            raise ValueError(
                f"the factorized Q-head needs a 1-D MultiDiscrete with equal sizes, got nvec={nvec}"
            )
        if np.any(np.asarray(space.start) != 0):
            raise ValueError("MultiDiscrete action spaces must start at 0")
        return int(nvec.size), int(nvec[0]), False
    raise TypeError(f"DQN needs a Discrete or MultiDiscrete action space, got {space}")


def check_item_layout(obs_size: int, n_actions: int, item_features: int) -> int:
    """The number of global entries of an observation laid out as ``n_actions`` blocks of
    ``item_features`` per-action entries followed by global entries; raises ``ValueError`` naming
    the sizes if the observation is too short for that layout."""
    n_global = obs_size - n_actions * item_features
    if n_global < 0:
        raise ValueError(
            f"agent.item_features={item_features} needs observations of at least "
            f"{n_actions} x {item_features} entries (one block per action), got {obs_size}"
        )
    return n_global


def build_network(
    torch: Any,
    obs_size: int,
    hidden: tuple[int, ...],
    n_outputs: int,
    init: np.random.Generator | None,
    item_features: int = 0,
    *,
    dueling_branches: int = 0,
    history: int = 1,
) -> torch.nn.Module:
    """Torso MLP of widths ``hidden`` (ReLU after each layer), then one linear layer of
    ``n_outputs`` units holding all branch heads; weights drawn from ``init`` with torch's default
    bounds ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (``None`` keeps torch's own initialisation).

    With ``item_features`` k > 0 the network is a per-action set network instead (one ``Discrete``
    branch): the observation holds one block of k entries per action, then global entries, and
    action a's value is the same MLP applied to ``[block_a, mean of all blocks, global]``. Its
    values do not depend on the order of the blocks (a permutation of the actions permutes the
    values), and it has one output unit whatever the number of actions.

    With ``dueling_branches`` B > 0 the head is a dueling one (Wang et al., ICML 2016) per branch:
    a value unit ``V(s)`` and advantages ``A_b(s, a)``, combined as
    ``Q_b(s, a) = V(s) + A_b(s, a) - mean_a A_b(s, a)`` (the ``n_outputs`` outputs are B branches
    of ``n_outputs / B`` actions).

    With ``history`` L > 1 the network is recurrent (a recurrent Q-network for partial
    observation): its input row is a window of L frames of ``obs_size / L`` entries, oldest
    first; a GRU of width ``hidden[0]`` reads them in order, and its last hidden state goes
    through the MLP of the other widths to the output layer. The GRU's weights are drawn from
    ``init`` with its default bounds ``U(-1/sqrt(hidden[0]), 1/sqrt(hidden[0]))``."""
    nn = torch.nn
    if history > 1:
        recurrent = _recurrent(torch, obs_size // history, hidden, n_outputs, history)
        _draw(torch, recurrent, init)
        return recurrent
    layers: list[Any] = []
    width = obs_size
    if item_features:
        n_global = check_item_layout(obs_size, n_outputs, item_features)
        width = 2 * item_features + n_global
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    net: Any
    if dueling_branches and not item_features:
        net = _dueling(nn, nn.Sequential(*layers), width, dueling_branches, n_outputs)
    else:
        layers.append(nn.Linear(width, 1 if item_features else n_outputs))
        net = nn.Sequential(*layers)
    if item_features:
        net = _set_network(torch, net, n_outputs, item_features)
    _draw(torch, net, init)
    return net


def _draw(torch: Any, net: Any, init: np.random.Generator | None) -> None:
    """Draw every linear layer's and GRU's weights from ``init`` with torch's default bounds
    (the module order fixes the draws; ``None`` keeps torch's own initialisation)."""
    if init is None:
        return
    nn = torch.nn
    with torch.no_grad():
        for layer in net.modules():
            if isinstance(layer, nn.Linear):
                bound = 1.0 / math.sqrt(layer.in_features)
                params = [layer.weight, layer.bias]
            elif isinstance(layer, nn.GRU):
                bound = 1.0 / math.sqrt(layer.hidden_size)
                params = list(layer.parameters())
            else:
                continue
            for p in params:
                drawn = init.uniform(-bound, bound, size=tuple(p.shape))
                p.copy_(torch.from_numpy(drawn.astype(np.float32)))


def _recurrent(
    torch: Any, frame_size: int, hidden: tuple[int, ...], n_outputs: int, history: int
) -> Any:
    """A GRU over a window of ``history`` frames, then an MLP head (see :func:`build_network`)."""
    nn = torch.nn
    layers: list[Any] = []
    width = hidden[0]
    for size in hidden[1:]:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_outputs))

    class RecurrentQ(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(frame_size, hidden[0], batch_first=True)
            self.head = nn.Sequential(*layers)

        def forward(self, x: Any) -> Any:  # x: (rows, history * frame_size), oldest frame first
            _, last = self.gru(x.reshape(x.shape[0], history, frame_size))
            return self.head(last[-1])

    return RecurrentQ()


def _dueling(nn: Any, torso: Any, width: int, branches: int, n_outputs: int) -> Any:
    """The torso with a dueling head of ``branches`` branches (see :func:`build_network`)."""

    class DuelingQ(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.torso = torso
            self.value = nn.Linear(width, 1)
            self.advantage = nn.Linear(width, n_outputs)

        def forward(self, x: Any) -> Any:  # x: (..., features); any leading dimensions
            h = self.torso(x)
            lead = tuple(h.shape[:-1])
            a = self.advantage(h).view(*lead, branches, -1)
            q = self.value(h)[..., None] + a - a.mean(dim=-1, keepdim=True)
            return q.reshape(*lead, n_outputs)

    return DuelingQ()


def _set_network(torch: Any, scorer: Any, n_items: int, item_features: int) -> Any:
    """``scorer`` applied to every action's ``[block, mean block, global]`` (see build_network)."""

    class SetQNetwork(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scorer = scorer

        def forward(self, x: Any) -> Any:
            rows = x.shape[0]
            items = x[:, : n_items * item_features].reshape(rows, n_items, item_features)
            pooled = items.mean(dim=1, keepdim=True).expand(rows, n_items, item_features)
            context = x[:, n_items * item_features :].unsqueeze(1).expand(rows, n_items, -1)
            return self.scorer(torch.cat([items, pooled, context], dim=-1)).squeeze(-1)

    return SetQNetwork()
