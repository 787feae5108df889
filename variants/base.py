"""The shared memory: PML's ``CrossBatchMemory`` with an adaptation hook and a complete state.

Per step (XBN paper, section 3.1): (1) adapt the stored embeddings R with the variant's
normaliser, from statistics of R and of the detached batch B; (2) write R back; (3) enqueue B
(FIFO, oldest out); (4) mine and compute the loss of the batch against the whole memory,
self-comparisons removed, exactly as PML does.

Differences from PML, all deliberate:
- the memory is float32 whenever the embeddings arrive in float32, float16 or bfloat16 (under
  autocast, say), and float64 when they arrive in float64 (PML's own tests, a float64 caller):
  ``compute_dtype(embeddings)``. PML instead casts the memory to the embeddings' dtype on every
  call, so an fp16 step would round the whole memory to fp16. The loss is computed on the
  embeddings in that dtype, so a float64 caller gets a float64 loss and float64 gradients. The
  memory follows the latest call: a float32 call after float64 ones rounds it to float32;
- ``queue_idx``, ``has_been_filled``, the epoch and each variant's own state travel through
  ``state_dict()`` (``get_extra_state``), so a resumed run continues from the same memory;
- ``superclasses=`` is accepted by every variant (used by SC-XBN, ignored elsewhere), so the
  trainer calls every variant the same way;
- ``last_mined`` holds the number of positive and negative pairs mined in the last step;
- each entry knows where it came from: ``index_memory`` (its image's position in the
  caller's training set), ``key_memory`` (its augmentation key) and ``step_memory`` (the value of
  ``enqueue_count``, the 1-based number of enqueue calls, when it was enqueued; its age is
  ``enqueue_count - step_memory``), -1 where unknown (``indices=``/``keys=`` not passed, or a slot
  never written). ``track_raw()`` keeps a copy of every entry as enqueued, never adapted (what
  plain XBM would hold), for measuring what the adaptation changes (``raw_view()``).

A state_dict written before these buffers existed still loads: the missing ones read as -1
(unknown), ``enqueue_count`` as 0, and a tracked raw copy starts as the loaded memory.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pytorch_metric_learning.losses import CrossBatchMemory
from pytorch_metric_learning.utils import loss_and_miner_utils as lmu

from .miners import MINER_DISTANCES, convert_miner
from .options import Option


class MemoryBase(CrossBatchMemory):
    """Plain cross-batch memory; subclasses override ``adapt`` (and rarely ``forward``)."""

    name: ClassVar[str] = "base"
    OPTIONS: ClassVar[dict[str, Option]] = {}  # the variant's own options: default, type, range
    NORMALISING: ClassVar[bool] = False  # adapts the memory, hence understands delay_epochs
    DEFAULT_DELAY: ClassVar[int] = 0
    NEEDS_SUPERCLASS: ClassVar[bool] = False
    TRAINER_ONLY: ClassVar[bool] = False  # needs the trainer's images (no drop-in PML use)
    BEYOND_SOURCES: ClassVar[bool] = False  # in neither paper nor thesis (a bound, not a method)
    # how the report names, groups and draws the variant (reports.figures, reports.claims)
    TITLE: ClassVar[str] = ""  # its name in prose: "XBN", "PC-XBN"
    FAMILY: ClassVar[str] = "memory"  # the forest plot's group: no memory, memory, ...
    COLOUR: ClassVar[str] = ""  # one colour and marker per variant in every figure (Okabe & Ito's
    MARKER: ClassVar[str] = ""  # colour-blind-safe set plus Paul Tol's; xbm grey, no_xbm black)
    USES_MEMORY: ClassVar[bool] = True  # False: memory_ratio is 0 whatever the profile says
    # options the protocol sets per dataset or profile, never per table row or claim: two runs
    # that differ only there are one configuration to a label (reports.load.options_equal)
    PROTOCOL_OPTIONS: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def option_specs(cls) -> dict[str, Option]:
        """Every option this variant understands: the shared ones, then its own."""
        opts = {
            "miner_distance": Option(
                str, None, choices=MINER_DISTANCES, nullable=True, why="None: the given miner's"
            )
        }
        if cls.NORMALISING:
            opts["delay_epochs"] = Option(
                int, cls.DEFAULT_DELAY, ge=0, why="main-phase epochs of plain XBM before adapting"
            )
        opts.update(cls.OPTIONS)
        return opts

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        return {name: spec.default for name, spec in cls.option_specs().items()}

    def __init__(
        self, loss, embedding_size: int, memory_size: int = 1024, miner=None, **options: Any
    ) -> None:
        valid = self.option_defaults()
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)} for variant {self.name!r}; "
                f"valid options: {', '.join(sorted(valid)) or '(none)'}"
            )
        if embedding_size < 1 or memory_size < 1:
            raise ValueError(
                f"embedding_size and memory_size must be >= 1, got {embedding_size}, {memory_size}"
            )
        settings = {**valid, **options}
        if settings["miner_distance"] is not None:
            if settings["miner_distance"] not in MINER_DISTANCES:
                raise ValueError(
                    f"miner_distance must be one of {', '.join(MINER_DISTANCES)}, "
                    f"got {settings['miner_distance']!r}"
                )
            miner = convert_miner(miner, settings["miner_distance"])
        super().__init__(loss, embedding_size, memory_size=memory_size, miner=miner)
        for key, value in settings.items():
            setattr(self, key, value)
        self.epoch = 0
        self.last_mined = (0, 0)
        self.adapted_this_step = False  # whether the last forward adapted the memory
        if self.NEEDS_SUPERCLASS:
            self.register_buffer("superclass_memory", torch.zeros(memory_size, dtype=torch.long))

    def reset_queue(self) -> None:
        """Empty the memory (PML's, called by its ``__init__``) and every record of its entries."""
        super().reset_queue()
        for name in SOURCE_BUFFERS:
            self.register_buffer(name, torch.full((self.memory_size,), -1, dtype=torch.long))
        self.enqueue_count = 0
        if getattr(self, "raw_memory", None) is not None:
            self.raw_memory = torch.zeros_like(self.embedding_memory)

    def track_raw(self) -> None:
        """Keep ``raw_memory``: every entry as enqueued, never adapted (a buffer, so it travels
        in ``state_dict()``: call this before ``load_state_dict``). Starts as the memory now."""
        if getattr(self, "raw_memory", None) is None:
            self.register_buffer("raw_memory", self.embedding_memory.clone())

    @property
    def tracks_raw(self) -> bool:
        return getattr(self, "raw_memory", None) is not None

    def raw_view(self) -> torch.Tensor:
        """``[:num_stored]`` of the entries as enqueued (tracked) or as they are (untracked)."""
        memory = self.raw_memory if self.tracks_raw else self.embedding_memory
        return memory[: self.num_stored]

    # ----- state ---------------------------------------------------------------------------
    def get_extra_state(self) -> dict[str, Any]:
        return {
            "queue_idx": int(self.queue_idx),
            "has_been_filled": bool(self.has_been_filled),
            "epoch": int(self.epoch),
            "enqueue_count": int(self.enqueue_count),
            **self.variant_state(),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.queue_idx = state["queue_idx"]
        self.has_been_filled = state["has_been_filled"]
        self.epoch = state["epoch"]
        self.enqueue_count = state.get("enqueue_count", 0)  # absent in older states: unknown
        self.load_variant_state(state)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # a state_dict from before the entry records: they read as unknown (-1); a raw copy
        # tracked by one side only is started from the loaded memory (old state) or adopted
        for name in SOURCE_BUFFERS:
            state_dict.setdefault(prefix + name, torch.full_like(getattr(self, name), -1))
        if prefix + "raw_memory" in state_dict:
            self.track_raw()
        elif self.tracks_raw and prefix + "embedding_memory" in state_dict:
            state_dict[prefix + "raw_memory"] = state_dict[prefix + "embedding_memory"].clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def variant_state(self) -> dict[str, Any]:
        """Python-side state of a variant (tensors belong in buffers)."""
        return {}

    def load_variant_state(self, state: dict[str, Any]) -> None:
        pass

    def set_epoch(self, epoch: int) -> None:
        """Tell the memory the current (0-based) main-phase epoch; used by the delay."""
        self.epoch = int(epoch)

    @property
    def adapting(self) -> bool:
        """Whether this step adapts the memory: a normalising variant from ``delay_epochs`` on."""
        return self.NORMALISING and self.epoch >= self.delay_epochs

    @property
    def num_stored(self) -> int:
        return self.memory_size if self.has_been_filled else int(self.queue_idx)

    # ----- the step ------------------------------------------------------------------------
    def adapt(
        self,
        memory: torch.Tensor,
        memory_labels: torch.Tensor,
        batch: torch.Tensor,
        batch_labels: torch.Tensor,
        memory_superclasses: torch.Tensor | None,
        batch_superclasses: torch.Tensor | None,
    ) -> torch.Tensor:
        """Return the adapted stored embeddings (same shape as ``memory``); may adapt
        ``memory`` in place and return it."""
        return memory

    def _check(self, embeddings, labels, enqueue_mask, superclasses) -> None:
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_size:
            raise ValueError(
                f"embeddings must have shape (batch_size, {self.embedding_size}), "
                f"got {tuple(embeddings.shape)}"
            )
        if labels.ndim != 1 or len(labels) != len(embeddings):
            raise ValueError(
                f"labels must be a 1D tensor of shape ({len(embeddings)},), "
                f"got {tuple(labels.shape)}"
            )
        queued = len(embeddings) if enqueue_mask is None else int(enqueue_mask.sum())
        if queued > self.memory_size:
            raise ValueError(
                f"memory_size must be >= the number of enqueued embeddings, "
                f"got {self.memory_size} < {queued}"
            )
        if self.NEEDS_SUPERCLASS:
            if superclasses is None:
                raise ValueError(f"variant {self.name!r} needs superclasses=, got None")
            if superclasses.shape != labels.shape:
                raise ValueError(
                    f"superclasses must have the shape of labels {tuple(labels.shape)}, "
                    f"got {tuple(superclasses.shape)}"
                )

    @staticmethod
    def _check_sources(labels, indices, keys) -> None:
        for name, values in (("indices", indices), ("keys", keys)):
            if values is not None and values.shape != labels.shape:
                raise ValueError(
                    f"{name} must have the shape of labels {tuple(labels.shape)}, "
                    f"got {tuple(values.shape)}"
                )

    def _to_device(self, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        # the memory is float32, or float64 for a float64 caller (``compute_dtype``)
        if self.embedding_memory.device != device or self.embedding_memory.dtype != dtype:
            self.embedding_memory = self.embedding_memory.to(device, dtype)
            self.label_memory = self.label_memory.to(device)
            for name in SOURCE_BUFFERS:
                setattr(self, name, getattr(self, name).to(device))
            if self.tracks_raw:
                self.raw_memory = self.raw_memory.to(device, dtype)
            if self.NEEDS_SUPERCLASS:
                self.superclass_memory = self.superclass_memory.to(device)

    def enqueue(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        superclasses: torch.Tensor | None = None,
        indices: torch.Tensor | None = None,
        keys: torch.Tensor | None = None,
    ) -> None:
        """Add detached embeddings to the memory (FIFO), without adaptation or loss.

        Also the way to prefill the memory (DESIGN: memory initialisation ``prefill``).
        ``indices``/``keys``: each embedding's image position and augmentation key (-1: None).
        """
        self._check_sources(labels, indices, keys)
        dtype = compute_dtype(embeddings)
        self._to_device(embeddings.device, dtype)
        labels = labels.to(embeddings.device)
        embeddings = embeddings.detach().to(dtype)
        self.add_to_memory(embeddings, labels, len(embeddings))
        slots = self.curr_batch_idx
        self.enqueue_count += 1
        self.step_memory[slots] = self.enqueue_count
        for memory, values in ((self.index_memory, indices), (self.key_memory, keys)):
            memory[slots] = -1 if values is None else values.to(memory.device, torch.long)
        if self.tracks_raw:
            self.raw_memory[slots] = embeddings
        if self.NEEDS_SUPERCLASS:
            self.superclass_memory[slots] = superclasses.to(embeddings.device)

    def refresh(self) -> bool:
        """Replace stored entries before the step's adaptation (``oracle_xbm``); return whether
        the memory changed. Plain memories never do."""
        return False

    def _adapt_memory(self, batch, batch_labels, batch_superclasses) -> bool:
        n = self.num_stored
        if n == 0 or not self.adapting:
            return False
        sc_mem = self.superclass_memory[:n] if self.NEEDS_SUPERCLASS else None
        with torch.no_grad():
            view = self.embedding_memory[:n]
            out = self.adapt(
                view, self.label_memory[:n], batch, batch_labels, sc_mem, batch_superclasses
            )
            if out is not view:  # a variant may adapt in place and return the view
                view.copy_(out)
        return True

    def forward(
        self,
        embeddings,
        labels,
        indices_tuple=None,
        enqueue_mask=None,
        superclasses=None,
        indices=None,
        keys=None,
    ):
        if indices_tuple is not None and enqueue_mask is not None:
            raise ValueError("indices_tuple and enqueue_mask are mutually exclusive")
        self._check(embeddings, labels, enqueue_mask, superclasses)
        self._check_sources(labels, indices, keys)
        self.reset_stats()
        device = embeddings.device
        self._to_device(device, compute_dtype(embeddings))
        labels = labels.to(device)
        embeddings = embeddings.to(compute_dtype(embeddings))
        if superclasses is not None:
            superclasses = superclasses.to(device)
        queued = (embeddings, labels, superclasses, indices, keys)
        if enqueue_mask is not None:
            enqueue_mask = enqueue_mask.to(device).bool()
            queued = tuple(None if t is None else t[enqueue_mask.to(t.device)] for t in queued)
            embeddings, labels = embeddings[~enqueue_mask], labels[~enqueue_mask]
            remove_self = False
        else:
            remove_self = True
        q_emb, q_lab, q_sc, q_idx, q_keys = queued
        refreshed = self.refresh()
        adapted = self._adapt_memory(q_emb.detach(), q_lab, q_sc)
        self.adapted_this_step = refreshed or adapted
        self.enqueue(q_emb, q_lab, q_sc, indices=q_idx, keys=q_keys)
        n = self.num_stored
        e_mem, l_mem = self.embedding_memory[:n], self.label_memory[:n]
        indices_tuple = self.create_indices_tuple(
            embeddings, labels, e_mem, l_mem, indices_tuple, remove_self
        )
        self.last_mined = _pair_counts(indices_tuple)
        return self.loss(embeddings, labels, indices_tuple, e_mem, l_mem)


def compute_dtype(embeddings: torch.Tensor) -> torch.dtype:
    """The dtype of the memory and of the loss: float64 for float64 embeddings, else float32
    (float16/bfloat16 are widened, so the memory never holds half precision)."""
    return torch.float64 if embeddings.dtype == torch.float64 else torch.float32


SOURCE_BUFFERS = ("index_memory", "key_memory", "step_memory")  # per entry, -1: unknown


def _pair_counts(indices_tuple) -> tuple[int, int]:
    if len(indices_tuple) == 4:
        return len(indices_tuple[0]), len(indices_tuple[2])
    return len(indices_tuple[0]), len(indices_tuple[0])


def minibatch_loss(loss, miner, embeddings, labels):
    """The plain loss of a batch against itself (the reference set is the batch)."""
    indices = miner(embeddings, labels) if miner is not None else lmu.get_all_pairs_indices(labels)
    return loss(embeddings, labels, indices), indices
