"""Storage space: per-domain replay buffers tagged by source, sampled as a mixture (paper 000, II-A).

The paper's storage space keeps "the transition data obtained from the interaction between the
agent and the environment in different digital domains", so that a decision maker can "extract
training data from different data stores" on demand. Here each domain (0 = physical, 1..K = twin
domains) has its own fixed-capacity FIFO buffer, and :meth:`Storage.sample` draws a batch whose
composition follows a stated mixture, e.g. half physical and half twin data.

Discounts: every buffer has a float64 ``discount`` column. A batch added with
``Transitions.discount=None`` (one-step rows, the learner's own gamma) is stored as NaN; a batch with
discounts (k-step rows, ``gamma^k`` each, in [0, 1]) is stored as given. Reading returns
``discount=None`` when every returned row is NaN, so one-step-only users see exactly what they
added; otherwise the array, with NaN in the rows that use the learner's own gamma.

Scenarios: the storage also serves data "according to the characteristics of the current task"
(Section II-A). :meth:`Storage.set_scenario` names the scenario the next transitions come from
(``twinrl.train`` calls it at the start and at every scenario change), each stored transition
keeps it, and ``sample(..., near=scenario)`` weights every stored transition by the similarity of
its scenario to the given one, beside (within the parts of) the fixed mixture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twinrl.checkpoint import check_state_dict
from twinrl.checkpoint.rng import checked_rng_state
from twinrl.contract import PHYSICAL, Scenario, Transitions, pcg64_to_array
from twinrl.errors import CheckpointError
from twinrl.storage.scenarios import ScenarioTags, _decode_scenarios, _encode_scenarios
from twinrl.validation import check_int

MAX_CAPACITY = 10**9
"""Most transitions kept per domain (the memory check refuses what would not fit before that)."""
MAX_DOMAINS = 10**6
"""Most digital domains of one storage."""
TWIN = "twin"
"""Mixture key for the pooled twin domains 1..K (uniform over their stored transitions)."""

_FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "next_mask")


class Storage(ScenarioTags):
    """Replay storage with one FIFO buffer per source domain.

    Buffers are preallocated numpy arrays of shape ``(K + 1, capacity, ...)``; the per-transition
    shapes and dtypes are taken from the first :meth:`add`. When a domain's buffer is full, its
    oldest transitions are overwritten first.

    Args:
        capacity: transitions kept per domain.
        n_twin_domains: K, the number of digital domains; sources are ``0`` (physical) to ``K``.
        seed: seed of the sampling RNG (a PCG64 stream of its own, saved by :meth:`state_dict`).
    """

    def __init__(
        self,
        capacity: int,
        n_twin_domains: int = 0,
        *,
        seed: int | np.random.SeedSequence | None = None,
    ) -> None:
        self.capacity = check_int("capacity", capacity, 1, MAX_CAPACITY)
        self.n_domains = check_int("n_twin_domains", n_twin_domains, 0, MAX_DOMAINS) + 1
        self._bitgen = np.random.PCG64(seed)
        self.rng = np.random.Generator(self._bitgen)
        self._size = np.zeros(self.n_domains, dtype=np.int64)
        self._next = np.zeros(self.n_domains, dtype=np.int64)
        self._arrays: dict[str, NDArray[Any]] | None = None
        self._scenarios: list[Scenario] = []
        self._current = -1  # index in _scenarios of the scenario of the next add; -1: none
        self._stored_as: int | None = None
        self._owner = np.full(self.n_domains, -1, dtype=np.int64)

    # --- provenance -----------------------------------------------------------------------------
    def assign(self, domains: Any, owner: int) -> None:
        """Record that the twin ``domains`` belong to learner ``owner`` (an id >= 0, e.g. a
        :class:`~twinrl.assists.DifferentialTwins` learner's index): the provenance of their
        transitions is then (learner, domain), read back with :meth:`owned_by`."""
        owner = check_int("owner", owner, 0, MAX_DOMAINS)
        ids = np.atleast_1d(np.asarray(domains))
        if ids.size == 0 or not np.issubdtype(ids.dtype, np.integer) or ids.ndim != 1:
            raise ValueError(f"domains must be a non-empty 1-D list of twin domain ids, got {ids}")
        for domain in ids.tolist():
            self._check_domain(domain)
            if domain == PHYSICAL:
                raise ValueError("domain 0 is the physical space; a learner owns twin domains only")
        self._owner[ids] = owner

    @property
    def owners(self) -> NDArray[np.int64]:
        """The learner owning each domain, shape ``(K + 1,)``; -1: none (the physical domain 0,
        and twin domains no learner was assigned)."""
        return self._owner.copy()

    def owned_by(self, owner: int) -> Transitions:
        """Everything stored for the domains of learner ``owner``, domain by domain (ascending),
        oldest first within each; ``source`` names the domain of every row."""
        domains = np.flatnonzero(self._owner == owner)
        if domains.size == 0:
            raise ValueError(f"no domain belongs to learner {owner}; assign() them first")
        orders = [self._order(int(d)) for d in domains]
        ids = np.concatenate([np.full(o.size, d) for o, d in zip(orders, domains, strict=True)])
        return self._gather(ids, np.concatenate(orders))

    # --- sizes ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._size.sum())

    @property
    def sizes(self) -> NDArray[np.int64]:
        """Stored transitions per domain, shape ``(K + 1,)`` (a copy)."""
        return self._size.copy()

    # --- writing --------------------------------------------------------------------------------
    def add(self, transitions: Transitions) -> None:
        """Store a batch, each transition in the buffer of its ``source`` domain, in order."""
        if not isinstance(transitions, Transitions):
            raise TypeError(f"add expects Transitions, got {type(transitions).__name__}")
        batch = self._as_arrays(transitions)
        discount = self._discount_column(transitions)
        source = np.asarray(transitions.source)
        if self._stored_as is not None:
            source = np.full(source.shape, self._stored_as, dtype=np.int64)
        n = source.shape[0]
        if n == 0:
            return
        if not np.issubdtype(source.dtype, np.integer) or source.ndim != 1:
            raise ValueError(
                f"source must be a 1-D integer array, got {source.dtype} {source.shape}"
            )
        if source.min() < 0 or source.max() >= self.n_domains:
            raise ValueError(
                f"source ids must be in [0, {self.n_domains - 1}] (0 = physical, 1..K = twin "
                f"domains); got {sorted(set(source.tolist()))}; raise n_twin_domains"
            )
        arrays = self._allocate(batch)
        for domain in np.unique(source):
            rows = np.flatnonzero(source == domain)[-self.capacity :]  # newer ones win
            slots = (self._next[domain] + np.arange(rows.size)) % self.capacity
            for name, value in batch.items():
                arrays[name][domain, slots] = value[rows]
            arrays["source"][domain, slots] = domain
            arrays["discount"][domain, slots] = discount[rows]
            arrays["scenario"][domain, slots] = self._current
            self._next[domain] = (self._next[domain] + rows.size) % self.capacity
            self._size[domain] = min(self.capacity, self._size[domain] + rows.size)

    def _as_arrays(self, t: Transitions) -> dict[str, NDArray[Any]]:
        n = len(np.asarray(t.source))
        batch: dict[str, NDArray[Any]] = {}
        for name in _FIELDS:
            value = getattr(t, name)
            if value is None:
                continue
            value = np.asarray(value)
            if value.ndim == 0 or value.shape[0] != n:
                raise ValueError(
                    f"Transitions.{name} has shape {value.shape}; every field needs leading "
                    f"axis {n} (the length of source)"
                )
            batch[name] = value
        if not np.issubdtype(batch["action"].dtype, np.integer):
            raise ValueError(f"actions must be integers, got dtype {batch['action'].dtype}")
        return batch

    @staticmethod
    def _discount_column(t: Transitions) -> NDArray[np.float64]:
        n = len(np.asarray(t.source))
        if t.discount is None:
            return np.full(n, np.nan)
        discount = np.asarray(t.discount, dtype=np.float64)
        if discount.shape != (n,):
            raise ValueError(
                f"Transitions.discount has shape {discount.shape}; it needs shape ({n},) (one "
                "bootstrap factor gamma^k per transition) or None"
            )
        given = discount[~np.isnan(discount)]
        if given.size and (given.min() < 0.0 or given.max() > 1.0):
            raise ValueError(
                "Transitions.discount entries must be in [0, 1] (gamma^k) or NaN (the learner's "
                f"gamma), got values in [{given.min()}, {given.max()}]"
            )
        return discount

    def _allocate(self, batch: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
        if self._arrays is None:
            dims = (self.n_domains, self.capacity)
            self._arrays = {
                name: np.zeros((*dims, *v.shape[1:]), dtype=v.dtype) for name, v in batch.items()
            }
            self._arrays["source"] = np.full(dims, -1, dtype=np.int64)
            self._arrays["discount"] = np.full(dims, np.nan)
            self._arrays["scenario"] = np.full(dims, -1, dtype=np.int64)
        stored = set(self._arrays) - {"source", "discount", "scenario"}
        if set(batch) != stored:
            raise ValueError(
                "next_mask must be given in every add or in none (this storage "
                f"{'has' if 'next_mask' in stored else 'has no'} masks)"
            )
        for name, value in batch.items():
            want = self._arrays[name].shape[2:]
            if value.shape[1:] != want:
                raise ValueError(
                    f"Transitions.{name} has per-transition shape {value.shape[1:]}, the storage "
                    f"holds {want}"
                )
        return self._arrays

    # --- reading --------------------------------------------------------------------------------
    def domain(self, domain: int) -> Transitions:
        """Everything stored for one domain, oldest first."""
        self._check_domain(domain)
        order = self._order(domain)
        return self._gather(np.full(order.size, domain), order)

    def _order(self, domain: int) -> NDArray[np.int64]:
        """The slots of ``domain``'s stored transitions, oldest first."""
        size = int(self._size[domain])
        start = (self._next[domain] - size) % self.capacity
        return np.asarray((start + np.arange(size)) % self.capacity, dtype=np.int64)

    def sample(
        self,
        batch_size: int,
        mixture: Mapping[int | str, float] | None = None,
        *,
        near: Scenario | None = None,
        bandwidth: float = 0.1,
    ) -> Transitions:
        """Draw ``batch_size`` transitions (with replacement) in shuffled order.

        ``mixture`` maps domain ids (``0`` = physical) or ``"twin"`` (all twin domains pooled) to
        weights that are >= 0 and sum to 1, e.g. ``{0: 0.5, "twin": 0.5}``. The number drawn from
        each part is multinomial with those weights; within a part, every stored transition is
        equally likely. ``None`` samples uniformly over everything stored.

        ``near`` (scenario-aware sampling): within each part, a stored transition is drawn with
        probability proportional to ``near.similarity(its scenario, bandwidth)`` =
        ``exp(-distance / bandwidth)`` instead of uniformly (see
        :meth:`~twinrl.contract.Scenario.distance`); a transition stored without a scenario
        counts as distance 1.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"batch_size must be a positive int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} is out of range; allowed: an int >= 1")
        parts, weights = self._parts(mixture)
        similarity = None if near is None else self._similarity(near, bandwidth)
        counts = self.rng.multinomial(batch_size, weights)
        domains, slots = [], []
        for part, count in zip(parts, counts, strict=True):
            if count == 0:
                continue
            if similarity is not None:
                d, s = self._weighted(part, int(count), similarity)
                domains.append(d)
                slots.append(s)
                continue
            sizes = self._size[part]
            flat = self.rng.integers(0, sizes.sum(), size=count)
            which = np.searchsorted(np.cumsum(sizes), flat, side="right")
            start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            domains.append(part[which])
            slots.append(flat - start[which])
        order = self.rng.permutation(batch_size)
        return self._gather(np.concatenate(domains)[order], np.concatenate(slots)[order])

    def _parts(
        self, mixture: Mapping[int | str, float] | None
    ) -> tuple[list[NDArray[np.int64]], NDArray[np.float64]]:
        everything = np.arange(self.n_domains)
        items = list(({None: 1.0} if mixture is None else mixture).items())
        if not items:
            raise ValueError("mixture is empty; give weights such as {0: 0.5, 'twin': 0.5}")
        parts: list[NDArray[np.int64]] = []
        weights: list[float] = []
        seen: set[int] = set()
        for key, weight in items:
            if key is None:
                part = everything
            elif key == TWIN:
                if self.n_domains == 1:
                    raise ValueError(
                        "mixture asks for 'twin' data but this storage has no twin domains"
                    )
                part = everything[1:]
            elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
                self._check_domain(int(key))
                part = np.array([int(key)])
            else:
                raise ValueError(f"mixture key {key!r} is not a domain id or 'twin'")
            w = float(weight)
            if not np.isfinite(w) or w < 0:
                raise ValueError(f"mixture weight of {key!r} is {weight!r}; weights must be >= 0")
            if seen & set(part.tolist()):
                raise ValueError(f"mixture key {key!r} overlaps another key (e.g. 1 and 'twin')")
            seen |= set(part.tolist())
            if w > 0 and self._size[part].sum() == 0:
                raise ValueError(
                    f"cannot sample from {'everything' if key is None else repr(key)}: no "
                    "transitions stored there yet; add some first or give it weight 0"
                )
            parts.append(part)
            weights.append(w)
        total = sum(weights)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"mixture weights sum to {total}, they must sum to 1")
        return parts, np.asarray(weights) / total

    def _gather(self, domains: NDArray[np.int64], slots: NDArray[np.int64]) -> Transitions:
        if self._arrays is None:
            raise ValueError("the storage is empty; add transitions first")
        a = self._arrays
        mask = a["next_mask"][domains, slots] if "next_mask" in a else None
        discount = a["discount"][domains, slots]
        return Transitions(
            obs=a["obs"][domains, slots],
            action=a["action"][domains, slots],
            reward=a["reward"][domains, slots],
            next_obs=a["next_obs"][domains, slots],
            terminated=a["terminated"][domains, slots],
            next_mask=mask,
            source=a["source"][domains, slots],
            discount=None if np.isnan(discount).all() else discount,
        )

    def _check_domain(self, domain: int) -> None:
        if not 0 <= domain < self.n_domains:
            raise ValueError(
                f"domain {domain} does not exist; domains are 0 (physical) to {self.n_domains - 1}"
            )

    # --- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, NDArray[Any]]:
        """Every buffer, the per-domain counters and the sampling RNG state, as numpy arrays."""
        out: dict[str, NDArray[Any]] = {
            "capacity": np.array(self.capacity, dtype=np.int64),
            "n_domains": np.array(self.n_domains, dtype=np.int64),
            "size": self._size.copy(),
            "next": self._next.copy(),
            "rng": pcg64_to_array(dict(self._bitgen.state)),
            "owner": self._owner.copy(),
            "scenarios": _encode_scenarios(self._scenarios),
            "current_scenario": np.array(self._current, dtype=np.int64),
        }
        for name, value in (self._arrays or {}).items():
            out[f"buffer.{name}"] = value.copy()
        return out

    def load_state_dict(self, state: Mapping[str, NDArray[Any]]) -> None:
        """Restore :meth:`state_dict` output; capacity and domain count must match.

        A state without ``buffer.discount`` (written before discounts existed) loads as one-step
        rows (NaN discounts); one without ``scenarios``/``buffer.scenario`` (written before
        scenarios existed) as transitions without a scenario.

        Raises:
            CheckpointError: a key is missing or unknown, capacity or domain count differ, an entry
                has another shape or dtype kind, a float buffer holds NaN/inf (``discount``: NaN or
                a value in [0, 1]), a size or write position is out of range, or the RNG state is
                invalid; the message names the key, and nothing is changed then.
        """
        if not isinstance(state, Mapping):
            raise CheckpointError(f"Storage.load_state_dict takes a dict, got {type(state)}")
        missing = {"capacity", "n_domains", "size", "next", "rng"} - set(state)
        if missing:
            raise CheckpointError(
                f"Storage state lacks {sorted(missing)}; pass Storage.state_dict() output"
            )
        for key in ("n_domains", "capacity"):
            value = np.asarray(state[key])
            if value.shape != () or value.dtype.kind not in "iu":
                raise CheckpointError(f"Storage state entry {key!r} must be an integer scalar")
        shape = (int(state["n_domains"]), int(state["capacity"]))
        if shape != (self.n_domains, self.capacity):
            raise CheckpointError(
                f"Storage state is for {shape[0] - 1} twin domains and capacity {shape[1]}; this "
                f"storage has {self.n_domains - 1} and {self.capacity}"
            )
        expected = {
            "capacity": ((), "i"), "n_domains": ((), "i"), "size": ((shape[0],), "i"),
            "next": ((shape[0],), "i"), "rng": ((6,), "i"),
        }  # fmt: skip
        if "owner" in state:  # written before provenance existed: no owners
            expected["owner"] = ((shape[0],), "i")
        scenarios = _decode_scenarios(state.get("scenarios"))
        if "scenarios" in state:
            expected["scenarios"] = ((int(np.size(state["scenarios"])),), "i")
            expected["current_scenario"] = ((), "i")
        given_buffers = [str(k) for k in state if str(k).startswith("buffer.")]
        if given_buffers:
            expected.update(_buffer_spec(state, shape))
            if "buffer.discount" not in state:  # written before discounts existed: one-step
                expected.pop("buffer.discount")
            if "buffer.scenario" not in state:  # written before scenarios existed
                expected.pop("buffer.scenario")
        checked = check_state_dict(
            state, expected, owner="Storage", allow_nonfinite=("buffer.discount",)
        )
        size, next_slot = checked["size"], checked["next"]
        if (size < 0).any() or (size > self.capacity).any():
            raise CheckpointError(
                f"Storage state entry 'size' is {size.tolist()}; each must be in [0, {self.capacity}]"
            )
        if (next_slot < 0).any() or (next_slot >= self.capacity).any():
            raise CheckpointError(
                f"Storage state entry 'next' is {next_slot.tolist()}; each must be in "
                f"[0, {self.capacity - 1}]"
            )
        if size.any() and not given_buffers:
            raise CheckpointError("Storage state has sizes > 0 but no buffer.* arrays")
        discount = checked.get("buffer.discount")
        if discount is not None:
            given = discount[~np.isnan(discount)]
            if given.size and not ((given >= 0.0) & (given <= 1.0)).all():
                raise CheckpointError(
                    "Storage state entry 'buffer.discount' must hold NaN or values in [0, 1] "
                    "(gamma^k)"
                )
        rng_state = checked_rng_state(checked["rng"], "Storage")
        buffers = {
            k[len("buffer.") :]: np.array(v) for k, v in checked.items() if k in given_buffers
        }
        if given_buffers and "discount" not in buffers:
            buffers["discount"] = np.full(shape, np.nan)
        owner = checked.get("owner")
        if owner is not None and ((owner < -1).any() or (owner[0] != -1)):
            raise CheckpointError(
                "Storage state entry 'owner' must hold -1 (no learner; always for the physical "
                "domain 0) or a learner id >= 0"
            )
        if given_buffers and "scenario" not in buffers:
            buffers["scenario"] = np.full(shape, -1, dtype=np.int64)
        current = int(checked.get("current_scenario", np.array(-1)))
        tags = buffers.get("scenario", np.zeros(0, dtype=np.int64))
        if not -1 <= current < len(scenarios) or (
            tags.size and not ((tags >= -1) & (tags < len(scenarios))).all()
        ):
            raise CheckpointError(
                f"Storage state has scenario tags outside [-1, {len(scenarios) - 1}] (the "
                "number of stored scenarios)"
            )
        self._arrays = buffers or None
        self._owner = np.full(shape[0], -1, dtype=np.int64) if owner is None else np.array(owner)
        self._size = np.array(size, dtype=np.int64)
        self._next = np.array(next_slot, dtype=np.int64)
        self._bitgen.state = rng_state
        self._scenarios, self._current = scenarios, current


def _buffer_spec(
    state: Mapping[str, Any], dims: tuple[int, int]
) -> dict[str, tuple[tuple[int, ...], str]]:
    """Expected ``(shape, kinds)`` of every ``buffer.*`` entry: leading axes ``dims``; the
    per-transition shapes of observations, actions and masks are taken from the state (those of
    ``obs`` and ``next_obs`` must agree)."""

    def rows(name: str) -> tuple[int, ...]:
        got = np.shape(state.get(f"buffer.{name}", ()))
        return tuple(got[2:]) if len(got) >= 2 else ()

    obs = rows("obs")
    spec = {
        "obs": ((*dims, *obs), "fib"), "action": ((*dims, *rows("action")), "i"),
        "reward": (dims, "f"), "next_obs": ((*dims, *obs), "fib"), "terminated": (dims, "b"),
        "source": (dims, "i"), "discount": (dims, "f"), "scenario": (dims, "i"),
    }  # fmt: skip
    if "buffer.next_mask" in state:
        spec["next_mask"] = ((*dims, *rows("next_mask")), "ib")
    return {f"buffer.{name}": value for name, value in spec.items()}


__all__ = ["PHYSICAL", "TWIN", "Storage"]
