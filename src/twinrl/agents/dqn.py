"""Deep Q-learning (paper 000, Section IV-B) with a factorized (branching) Q-head; torch extra.

The multi-UAV case study moves M UAVs at once, so the joint action space ``5^M`` grows fast. The
network here has one shared MLP torso and one linear head per action branch (one per UAV for
``MultiDiscrete([5] * M)``; one for ``Discrete(n)``). ``DQNConfig.head`` says how they make the joint
value: ``mean``, ``Q(s, a) = 1/B sum_b Q_b(s, a_b)`` with every branch regressed on the same
double-DQN target (action branching, Tavakoli et al., AAAI 2018); or ``sum``, ``Q(s, a) =
sum_b Q_b(s, a_b)`` regressed as a whole (value decomposition, VDN), so each branch learns its own
share of the shared reward. With ``shared_branches`` the observation is one block per branch and
one network, shared by the branches, reads a block beside its branch's one-hot (per-UAV agents
with shared parameters). With ``history`` L > 1 a GRU reads the last L observations (a recurrent
Q-network for partial observation; the windows: :mod:`~twinrl.agents.history`).

Torch is imported only when a :class:`DQN` is built, so ``twinrl.agents`` imports without it.
Checkpoints are plain ``.npz`` arrays (no pickle, no ``torch.save``).

Modules: :mod:`~twinrl.agents.dqn_config` (:class:`DQNConfig` and the memory check),
:mod:`~twinrl.agents.qnetwork` (the lazy torch import and the factorized network),
:mod:`~twinrl.agents.dqn_checkpoint` (pending n-step rows and RNG state in a checkpoint); this one
holds the agent. ``DQNConfig`` is re-exported here, so ``from twinrl.agents.dqn import DQNConfig``
keeps working.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from twinrl.agents.base import PHYSICAL, Transitions
from twinrl.agents.dqn_checkpoint import COUNTERS, pending_arrays, pending_rows
from twinrl.agents.dqn_config import DQNConfig, check_dqn_memory
from twinrl.agents.history import ObservationHistory
from twinrl.agents.nstep import NStepBuffer, rows_to_transitions
from twinrl.agents.qnetwork import TORCH_MISSING, action_branches, build_network, import_torch
from twinrl.checkpoint import (
    check_state_dict,
    load_checkpoint,
    manifest_for,
    save_checkpoint,
    state_kind,
)
from twinrl.checkpoint.rng import checked_rng_state
from twinrl.contract import pcg64_from_array, pcg64_to_array
from twinrl.errors import ConfigError, ConfigTypeError
from twinrl.storage.replay import TWIN, Storage
from twinrl.validation import check_int

if TYPE_CHECKING:
    import torch

__all__ = ["DQN", "TORCH_MISSING", "DQNConfig"]


class DQN:
    """Double DQN with a factorized Q-head (branch mean or VDN sum), replay :class:`~twinrl.storage.Storage` and n-step
    returns; acts on flat ``Box`` observations.

    The agent keeps its own storage with two domains: ``0`` physical and ``1`` every twin domain
    pooled (transitions with ``source >= 1``), sampled as ``{0: 1 - twin_share, "twin": twin_share}``
    once twin data exists. Exploration is epsilon-greedy, linear over the physical iteration set by
    :meth:`begin_iteration`. All randomness (initial weights, exploration, replay sampling) derives
    from ``rng``; torch's global RNG is never used.

    Args:
        obs_size: length of the flattened observation.
        action_space: ``Discrete(n)`` or ``MultiDiscrete([n] * B)``.
        config: hyper-parameters.
        rng: seed (int or SeedSequence), a numpy Generator to draw a seed from, or None.
    """

    NONFINITE = ("replay.buffer.discount",)
    """Entries of :meth:`full_state_dict` that may hold NaN (a checkpoint's ``allow_nonfinite``)."""

    def __init__(
        self,
        obs_size: int,
        action_space: gym.Space[Any],
        config: DQNConfig | None = None,
        *,
        rng: np.random.Generator | np.random.SeedSequence | int | None = None,
    ) -> None:
        self._torch = torch = import_torch()
        obs_size = check_int("obs_size", obs_size, 1, 2**40)
        if config is not None and not isinstance(config, DQNConfig):
            raise ConfigTypeError(f"config must be a DQNConfig, got {type(config).__name__}")
        self.config = c = config or DQNConfig()
        self.obs_size = obs_size
        self.n_branches, self.n_actions, self.discrete = action_branches(action_space)
        if c.item_features and not self.discrete:
            raise ValueError(
                f"agent.item_features={c.item_features} (a per-action set network) needs a "
                f"Discrete action space, got {action_space}; use item_features=0"
            )
        n_inputs, n_outputs = obs_size, self.n_branches * self.n_actions
        self.windows = ObservationHistory(c.history, obs_size) if c.history > 1 else None
        """The observation windows of a recurrent DQN (``history > 1``), else None."""
        self.input_size = obs_size if self.windows is None else self.windows.window_size
        """Entries the network reads per row: an observation, or a flattened window."""
        if c.shared_branches:
            if c.item_features:
                raise ConfigError(
                    "shared_branches and item_features are different network shapes; choose one"
                )
            if obs_size % self.n_branches:
                raise ConfigError(
                    f"shared_branches needs one equal observation block per branch; "
                    f"{obs_size} entries do not split into {self.n_branches} branches (use "
                    "MultiUAV's observation='per_uav', or shared_branches=false)"
                )
            n_inputs = obs_size // self.n_branches + self.n_branches  # block + branch one-hot
            n_outputs = self.n_actions
        if self.windows is None:
            check_dqn_memory(c, obs_size, n_outputs, n_inputs)
        else:
            check_dqn_memory(c, self.input_size, n_outputs, self.windows.frame_size)
            n_inputs = self.input_size
        self.action_space = action_space
        if isinstance(rng, np.random.Generator):
            rng = np.random.SeedSequence(rng.integers(0, 2**63, size=4).tolist())
        seq = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
        init_seq, act_seq, storage_seq = seq.spawn(3)
        self._bitgen = np.random.PCG64(act_seq)
        self.rng = np.random.Generator(self._bitgen)
        self.storage = Storage(c.buffer_capacity, n_twin_domains=1, seed=storage_seq)
        self.nstep = NStepBuffer(c.n_step, c.gamma) if c.n_step > 1 else None
        init = np.random.default_rng(init_seq)
        # a dueling head per branch; the shared network computes one branch's values per row
        dueling = (1 if c.shared_branches else self.n_branches) if c.dueling else 0
        self.online = build_network(torch, n_inputs, c.hidden, n_outputs, init, c.item_features,
                                    dueling_branches=dueling, history=c.history)  # fmt: skip
        self.target = build_network(torch, n_inputs, c.hidden, n_outputs, None, c.item_features,
                                    dueling_branches=dueling, history=c.history)  # fmt: skip
        self._branch_ids = torch.eye(self.n_branches)
        self.target.load_state_dict(self.online.state_dict())
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=c.lr, foreach=True)
        self.iteration = 1
        self.learn_calls = 0
        self.gradient_steps = 0

    @classmethod
    def for_env(
        cls,
        env: gym.Env[Any, Any],
        config: DQNConfig | None = None,
        *,
        rng: np.random.Generator | np.random.SeedSequence | int | None = None,
    ) -> DQN:
        """A DQN sized for ``env``: a ``Box`` observation and a (Multi)Discrete action space.
        With ``shared_branches`` the env must say its observation is one block per branch
        (``env.unwrapped.observation_blocks``, e.g. MultiUAV's ``observation="per_uav"``)."""
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"DQN needs a Box observation space, got {space}")
        blocks = getattr(env.unwrapped, "observation_blocks", None)
        branches = action_branches(env.action_space)[0]
        if config is not None and config.shared_branches and branches > 1 and blocks != branches:
            raise ConfigError(
                f"shared_branches=true needs an observation of one block per action branch "
                f"({branches}); this env's has observation_blocks={blocks} (for MultiUAV set "
                "observation='per_uav')"
            )
        return cls(int(np.prod(space.shape)), env.action_space, config, rng=rng)

    # --- acting ---------------------------------------------------------------------------------
    @property
    def epsilon(self) -> float:
        """Linear decay from ``eps_start`` at iteration 1 to ``eps_end`` after ``eps_decay_steps``."""
        c = self.config
        frac = min(1.0, (self.iteration - 1) / c.eps_decay_steps)
        return c.eps_start + frac * (c.eps_end - c.eps_start)

    def begin_iteration(self, iteration: int) -> None:
        """Set the 1-based physical iteration that drives the exploration schedule."""
        self.iteration = int(iteration)

    def q_values(self, obs: Any) -> NDArray[np.float32]:
        """Per-branch Q values ``(..., branches, actions)`` of one or many observations (of a
        recurrent DQN: flattened windows, :attr:`input_size` entries each)."""
        x = self._obs_tensor(obs)
        with self._torch.no_grad():
            q = self._q(self.online, x).numpy()
        return q[0] if np.ndim(obs) <= 1 else q

    def greedy_batch(self, obs: Any, masks: Any | None = None) -> NDArray[np.int64]:
        """Greedy actions of a batch of observations ``(B, obs_size)`` in one forward pass: the
        same choices as ``act(o, explore=False, mask=m)`` for each row (``masks``: one action
        mask per row, or None where every action is valid), shaped ``(B,)`` for ``Discrete`` and
        ``(B, branches)`` for ``MultiDiscrete``. A recurrent DQN takes windows here
        (:attr:`input_size` entries per row; :meth:`windowed_policy` builds them)."""
        q = self.q_values(np.asarray(obs).reshape(len(obs), -1))
        if masks is not None:
            valid = np.stack([self._branch_mask(m) for m in masks])
            q = np.where(valid, q, -np.inf)
        choice = q.argmax(axis=-1)
        return choice[:, 0] if self.discrete else choice.astype(np.int64)

    def windowed_policy(self) -> Any:
        """For a recurrent DQN, a greedy policy over a batch of twin trajectories that keeps each
        trajectory's window (:meth:`ObservationHistory.greedy_policy`, fresh at the rollout's
        first state), used by :func:`twinrl.twin.greedy_policy`; None without history (then
        :meth:`greedy_batch` serves as it is)."""
        if self.windows is None:
            return None
        return self.windows.greedy_policy(self.greedy_batch)

    def act(self, obs: Any, *, explore: bool, mask: NDArray[np.int8] | None = None) -> Any:
        """Epsilon-greedy if ``explore`` (one uniform decides, then a uniform valid action per
        branch), else the per-branch argmax (first index on ties, no RNG use). Returns an ``int``
        for ``Discrete`` and an int64 array ``(branches,)`` for ``MultiDiscrete``. A recurrent
        DQN acts on the window ``obs`` extends (:mod:`~twinrl.agents.history`)."""
        valid = self._branch_mask(mask)
        if self.windows is not None:  # a recurrent DQN acts on the window that obs extends
            w = self.windows
            obs = (w.for_act(obs) if explore else w.for_greedy(obs)).reshape(-1)
        if explore and self.rng.random() < self.epsilon:
            choice = np.array(
                [self.rng.choice(np.flatnonzero(row)) for row in valid], dtype=np.int64
            )
        else:
            q = self.q_values(obs)
            choice = np.where(valid, q, -np.inf).argmax(axis=-1).astype(np.int64)
        return int(choice[0]) if self.discrete else choice

    def begin_episode(self) -> None:
        """Start an episode for greedy acting: a recurrent DQN's next ``act(explore=False)``
        starts a fresh window (call it after each ``env.reset`` of an evaluation loop; learning
        needs no call, see :mod:`~twinrl.agents.history`). Nothing happens without history."""
        if self.windows is not None:
            self.windows.begin_episode()

    def _branch_mask(self, mask: NDArray[np.int8] | None) -> NDArray[np.bool_]:
        shape = (self.n_branches, self.n_actions)
        if mask is None:
            return np.ones(shape, dtype=bool)
        m = np.asarray(mask)
        if m.size != shape[0] * shape[1]:
            raise ValueError(f"action mask has shape {m.shape}; expected {shape} or its flattening")
        valid = m.reshape(shape).astype(bool)
        if not valid.any(axis=1).all():
            raise ValueError("the action mask allows no action in some branch")
        return valid

    # --- learning -------------------------------------------------------------------------------
    def learn(self, transitions: Transitions) -> dict[str, float]:
        """Store ``transitions`` (physical rows as n-step rows when ``n_step > 1``) and, on every
        ``train_every``-th call with physical data once ``learning_starts`` physical transitions
        are stored, run ``gradient_steps`` updates. Returns loss and mean Q of the last update
        (NaN when none ran) and the exploration rate."""
        if self.windows is not None:  # rows of windows (refuses twin rows: no history)
            transitions = self.windows.rows(transitions)
        physical = np.asarray(transitions.source) == PHYSICAL
        self._store(transitions, physical)
        stats = {"loss": math.nan, "q_mean": math.nan, "epsilon": self.epsilon}
        if not physical.any():
            return stats
        self.learn_calls += 1
        if (
            self.learn_calls % self.config.train_every == 0
            and self.storage.sizes[PHYSICAL] >= self.config.learning_starts
        ):
            for _ in range(self.config.gradient_steps):
                stats.update(self.update(self.storage.sample(self.config.batch_size, self._mix())))
        return stats

    def _store(self, t: Transitions, physical: NDArray[np.bool_]) -> None:
        twin = Transitions(*(None if x is None else np.asarray(x)[~physical] for x in t))  # type: ignore[arg-type]
        if len(twin):
            pooled = np.ones(len(twin), dtype=np.int64)  # every twin domain -> storage domain 1
            self.storage.add(Transitions(*twin[:6], source=pooled, discount=twin.discount))
        if not physical.any():
            return
        phys = Transitions(*(None if x is None else np.asarray(x)[physical] for x in t))  # type: ignore[arg-type]
        if self.nstep is None:
            self.storage.add(phys)
            return
        for i in range(len(phys)):
            mask = None if phys.next_mask is None else phys.next_mask[i]
            row = (phys.obs[i], phys.action[i], phys.reward[i], phys.next_obs[i])
            self._store_rows(self.nstep.push((*row, bool(phys.terminated[i]), mask)))

    def _store_rows(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.storage.add(rows_to_transitions(rows, rows[0][5] is not None))

    def _mix(self) -> dict[int | str, float]:
        share = self.config.twin_share
        if share > 0 and self.storage.sizes[1] > 0:
            return {PHYSICAL: 1.0 - share, TWIN: share}
        return {PHYSICAL: 1.0}

    def td_target(self, batch: Transitions) -> torch.Tensor:
        """``y = r + d (1 - terminated) mean_b Q_target_b(s', argmax_a Q_online_b(s', a))`` (the
        sum over branches with ``head="sum"``) with ``d`` the row's discount (``gamma`` where none
        is given); plain max if not ``double``.
        Invalid next actions (``next_mask``) are never picked; a branch with none adds 0."""
        torch = self._torch
        with torch.no_grad():
            next_obs = self._obs_tensor(batch.next_obs)
            q_target = self._q(self.target, next_obs)
            chooser = self._q(self.online, next_obs) if self.config.double else q_target
            valid = self._next_valid(batch, q_target.shape)
            best = chooser.masked_fill(~valid, -math.inf).argmax(dim=-1, keepdim=True)
            value = q_target.gather(-1, best).squeeze(-1)
            value = self._joint(torch.where(valid.any(dim=-1), value, torch.zeros_like(value)))
            discount = np.full(len(batch), self.config.gamma)
            if batch.discount is not None:
                given = np.asarray(batch.discount, dtype=np.float64)
                discount = np.where(np.isnan(given), discount, given)
            alive = 1.0 - np.asarray(batch.terminated, dtype=np.float64)
            bootstrap = torch.as_tensor((discount * alive).astype(np.float32))
            reward = torch.as_tensor(np.asarray(batch.reward, dtype=np.float32))
            return reward + bootstrap * value

    def update(self, batch: Transitions) -> dict[str, float]:
        """One gradient step on ``batch``: Huber loss between every branch's ``Q_b(s, a_b)`` and the
        shared target, averaged over branches and rows (``head="sum"``: between
        ``sum_b Q_b(s, a_b)`` and the target); hard target copy every ``target_update``. The
        reported ``q_mean`` is the mean of what was regressed."""
        torch, c = self._torch, self.config
        y = self.td_target(batch)
        q = self._q(self.online, self._obs_tensor(batch.obs))
        action = torch.as_tensor(np.asarray(batch.action, dtype=np.int64).reshape(len(batch), -1))
        q_taken = q.gather(-1, action[..., None]).squeeze(-1)
        if c.head == "sum":  # VDN: the sum of the branches' utilities regresses on y
            q_taken = q_taken.sum(dim=-1)
            loss = torch.nn.functional.huber_loss(q_taken, y, delta=c.huber_delta)
        else:  # action branching: every branch regresses on y
            loss = torch.nn.functional.huber_loss(
                q_taken, y[:, None].expand_as(q_taken), delta=c.huber_delta
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if math.isfinite(c.grad_clip):
            torch.nn.utils.clip_grad_norm_(self.online.parameters(), c.grad_clip)
        self.optimizer.step()
        self.gradient_steps += 1
        if self.gradient_steps % c.target_update == 0:
            self.target.load_state_dict(self.online.state_dict())
        return {"loss": float(loss.item()), "q_mean": float(q_taken.mean().item())}

    def _joint(self, per_branch: torch.Tensor) -> torch.Tensor:
        """The joint value from per-branch values ``(batch, branches)``: their mean or sum."""
        return per_branch.sum(dim=-1) if self.config.head == "sum" else per_branch.mean(dim=-1)

    def _q(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Per-branch values ``(batch, branches, actions)``; with ``shared_branches`` the one
        network reads each branch's observation block beside the branch's one-hot."""
        shape = (x.shape[0], self.n_branches, self.n_actions)
        if not self.config.shared_branches:
            return net(x).view(shape)
        blocks = x.view(x.shape[0], self.n_branches, -1)
        ids = self._branch_ids.expand(x.shape[0], -1, -1)
        return net(self._torch.cat([blocks, ids], dim=-1)).view(shape)

    def _obs_tensor(self, obs: Any) -> torch.Tensor:
        x = np.asarray(obs, dtype=np.float32)
        x = x.reshape(1, -1) if x.ndim <= 1 else x.reshape(x.shape[0], -1)
        if x.shape[1] != self.input_size:
            what = "observation" if self.windows is None else "window (history x (obs + flag))"
            raise ValueError(f"{what} has {x.shape[1]} entries, this DQN takes {self.input_size}")
        return self._torch.from_numpy(np.ascontiguousarray(x))

    def _next_valid(self, batch: Transitions, shape: Any) -> torch.Tensor:
        if batch.next_mask is None:
            return self._torch.ones(tuple(shape), dtype=self._torch.bool)
        mask = np.asarray(batch.next_mask).reshape(tuple(shape)).astype(bool)
        return self._torch.from_numpy(mask)

    # --- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, NDArray[Any]]:
        """Arrays only: ``online.<param>``, ``target.<param>``, Adam moments
        ``adam.exp_avg.<param>`` / ``adam.exp_avg_sq.<param>`` and ``adam.step``, the counters and
        the exploration RNG state ``rng``. The replay storage is saved by :meth:`save`."""
        out: dict[str, NDArray[Any]] = {}
        for prefix, net in (("online", self.online), ("target", self.target)):
            for name, p in net.state_dict().items():
                out[f"{prefix}.{name}"] = p.detach().numpy().copy()
        step = 0
        for name, p in self.online.named_parameters():
            state = self.optimizer.state.get(p, {})
            for moment in ("exp_avg", "exp_avg_sq"):
                value = state.get(moment)
                out[f"adam.{moment}.{name}"] = (
                    np.zeros(tuple(p.shape), np.float32) if value is None else value.numpy().copy()
                )
            if "step" in state:
                step = int(float(state["step"]))
        out["adam.step"] = np.array(step, dtype=np.int64)
        for counter in ("iteration", "learn_calls", "gradient_steps"):
            out[counter] = np.array(getattr(self, counter), dtype=np.int64)
        out["rng"] = pcg64_to_array(dict(self._bitgen.state))
        return out

    def load_state_dict(self, state: Mapping[str, NDArray[Any]], *, validate: bool = True) -> None:
        """Restore :meth:`state_dict` output.

        Args:
            state: the arrays to load (the keys of :meth:`state_dict`, no more, no fewer).
            validate: check the state first (the default). ``False`` skips the checks for a state
                the caller built from a DQN's own ``state_dict()`` in memory.

        Raises:
            CheckpointError: a key is missing or extra, an entry has another shape or dtype kind,
                a weight or Adam moment holds NaN/inf, a counter is negative or not an integer, or
                the RNG state is invalid; the message names the key, and nothing is changed then.
        """
        torch = self._torch
        if validate:
            expected = {key: (v.shape, state_kind(v.dtype)) for key, v in self.state_dict().items()}
            state = check_state_dict(state, expected, owner="DQN", counters=COUNTERS)
            rng_state = checked_rng_state(state["rng"], "DQN")
        else:
            rng_state = pcg64_from_array(np.asarray(state["rng"]))
        with torch.no_grad():
            for prefix, net in (("online", self.online), ("target", self.target)):
                for name, p in net.state_dict().items():
                    p.copy_(torch.from_numpy(np.asarray(state[f"{prefix}.{name}"], np.float32)))
        step = int(state["adam.step"])
        self.optimizer.state.clear()
        if step > 0:
            for name, p in self.online.named_parameters():
                self.optimizer.state[p] = {
                    "step": torch.tensor(float(step)),
                    **{
                        m: torch.from_numpy(np.array(state[f"adam.{m}.{name}"], np.float32))
                        for m in ("exp_avg", "exp_avg_sq")
                    },
                }
        for counter in ("iteration", "learn_calls", "gradient_steps"):
            setattr(self, counter, int(state[counter]))
        self._bitgen.state = rng_state

    def manifest(self) -> dict[str, Any]:
        """The checkpoint manifest of this agent (:func:`twinrl.checkpoint.manifest_for`):
        algorithm ``"dqn"``, the hash of ``asdict(config)``, a flat ``Box`` of ``obs_size``
        entries and the action space. :meth:`load` refuses a file whose manifest differs."""
        observation = gym.spaces.Box(-np.inf, np.inf, shape=(self.obs_size,), dtype=np.float32)
        config = asdict(self.config)
        if config["history"] == 1:  # the manifest of a DQN without history is the one before it
            del config["history"]
        return manifest_for("dqn", config, observation, self.action_space)

    def full_state_dict(self) -> dict[str, NDArray[Any]]:
        """Everything training needs to go on exactly: :meth:`state_dict`, the replay storage
        (``replay.*``) and the pending n-step rows (``pending.*``). Its float entries are finite
        except :data:`NONFINITE` (NaN there means "the learner's gamma", see Storage)."""
        arrays = dict(self.state_dict())
        arrays.update({f"replay.{k}": v for k, v in self.storage.state_dict().items()})
        arrays.update(pending_arrays(list(self.nstep.pending) if self.nstep is not None else []))
        if self.windows is not None:
            arrays.update(self.windows.state_dict())
        return arrays

    def load_full_state_dict(self, arrays: Mapping[str, NDArray[Any]]) -> None:
        """Restore :meth:`full_state_dict` output, everything checked before the agent changes.

        Raises:
            CheckpointError: a state this agent cannot take (see :meth:`load_state_dict`,
                :meth:`Storage.load_state_dict` and the pending rows' sizes); the agent is
                unchanged then.
        """
        own = ("replay.", "pending.", *(("history.",) if self.windows is not None else ()))
        state = {k: v for k, v in arrays.items() if not k.startswith(own)}
        windows = {k: v for k, v in arrays.items() if k.startswith("history.")}
        replay = {k[len("replay.") :]: v for k, v in arrays.items() if k.startswith("replay.")}
        pending = pending_rows(
            {k: v for k, v in arrays.items() if k.startswith("pending.")},
            n_step=self.nstep is not None,
            obs_size=self.input_size,
            n_branches=self.n_branches,
            n_actions=self.n_actions,
            discrete=self.discrete,
        )
        storage = Storage(self.storage.capacity, self.storage.n_domains - 1)
        if replay:
            storage.load_state_dict(replay)  # checked before this agent changes
        if self.windows is not None:
            history = ObservationHistory(self.windows.history, self.obs_size)
            history.load_state_dict(windows)  # checked before this agent changes
        self.load_state_dict(state)
        if self.windows is not None:
            self.windows = history
        self.storage = storage if replay else self.storage
        if self.nstep is not None:
            self.nstep.pending.clear()
            self.nstep.pending.extend(pending)

    def save(self, path: str | Path) -> None:
        """Write :meth:`full_state_dict` as a checkpoint (:func:`twinrl.checkpoint.save_checkpoint`:
        atomic, checksummed, with :meth:`manifest`), so :meth:`load` resumes training exactly. The
        file is written at ``path`` as given.

        Raises:
            CheckpointError: a weight holds NaN/inf (training diverged), or the file cannot be
                written.
        """
        manifest = {**self.manifest(), "allow_nonfinite": list(self.NONFINITE)}
        save_checkpoint(path, self.full_state_dict(), manifest)

    def load(self, path: str | Path) -> None:
        """Restore a :meth:`save` file (:func:`twinrl.checkpoint.load_checkpoint`, no pickle).

        Raises:
            CheckpointError: the file is missing, damaged or not finite, was written by another
                run (its manifest differs from :meth:`manifest`: another config or spaces), or
                holds a state this agent cannot take; the agent is unchanged then.
        """
        arrays, _ = load_checkpoint(path, expect=self.manifest())
        self.load_full_state_dict(arrays)
