"""What the trainer needs from a prepared dataset: the training subset, batches, eval sets.

Two paths: array datasets (CIFAR, Fashion-MNIST) without timm augmentation are held as one
uint8 tensor and batched by index (fast on a CPU); everything else goes through
``ManifestDataset`` with timm's transforms and a DataLoader.

Augmentation draws (``RunConfig.augment_draws``): ``"keyed"`` draws each sample's augmentation
from (run seed, key), key = (epoch, position in the epoch's sampler order) (bench/engine/draws.py),
so ``Data.images(idx, keys)`` re-creates any batch exactly and the batches are the same for any
number of loader workers; ``"global"`` draws from the global generators as every run before
entry tracking did (kept bit for bit, and runnable; its batches cannot be re-created).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from pytorch_metric_learning.samplers import MPerClassSampler
from torch.utils.data import DataLoader

from bench.config import RunConfig
from bench.engine.draws import NO_KEY, KeyedDataset, flips, pack
from common import UserError
from data_prep import ManifestDataset, get_source, load_manifest

SUBSET_SEED = 0  # the training subset is the same for every seed: seeds vary training only


def stratified_subset(
    labels: np.ndarray, per_class: int | None, seed: int = SUBSET_SEED
) -> np.ndarray:
    """Sorted indices of at most ``per_class`` items of each class, drawn with a fixed seed."""
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    taken = np.zeros(labels.max() + 1, dtype=np.int64)
    keep = []
    for i in order:  # one pass over the items, not over classes
        if taken[labels[i]] < per_class:
            taken[labels[i]] += 1
            keep.append(i)
    return np.sort(np.array(keep, dtype=np.int64))


def _to_rgb(img):
    return img.convert("RGB")


def _transforms(cfg: RunConfig, training: bool):
    from timm.data import create_transform
    from torchvision import transforms as T

    kw: dict[str, Any] = {"input_size": cfg.image_size, "is_training": training}
    if training and cfg.augment == "randaugment":  # the paper's timm train transform
        kw.update(auto_augment="rand-m9-mstd0.5", re_prob=0.2)
    elif training:
        kw.update(no_aug=cfg.augment == "none")
    return T.Compose([_to_rgb, create_transform(**kw)])


def resize_pixels(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images (N, C, H, W) at ``size`` x ``size``: unchanged at that size, else area
    averaging (each output pixel the mean of the input area it covers; deterministic on CPU),
    rounded back to uint8, once at load, so training and evaluation see the same pixels."""
    if x.shape[-2:] == (size, size):
        return x
    out = torch.nn.functional.interpolate(x.float(), size=(size, size), mode="area")
    return out.round_().clamp_(0, 255).to(torch.uint8)


@dataclass
class Split:
    """An evaluation split: tensors for the fast path, or a dataset for the loader path."""

    dataset: ManifestDataset
    pixels: torch.Tensor | None

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor(self.dataset.labels)

    @property
    def superclasses(self) -> torch.Tensor:
        return torch.tensor(self.dataset.superclasses)


class Batch(NamedTuple):
    """One training batch, and what re-creates it (``Data.images(idx, keys)``)."""

    x: torch.Tensor  # normalised, augmented images (batch, C, H, W)
    y: torch.Tensor  # labels
    sc: torch.Tensor  # superclass ids (-1: none)
    idx: torch.Tensor  # positions in Data.train
    keys: torch.Tensor  # augmentation keys (bench/engine/draws.py); NO_KEY with global draws


class Data:
    """The training subset and the evaluation splits of one run."""

    def __init__(self, cfg: RunConfig, data_dir: str) -> None:
        self.cfg, self.data_dir = cfg, data_dir
        manifest = load_manifest(cfg.dataset, data_dir)
        full = ManifestDataset(cfg.dataset, data_dir, "train")
        self.subset = stratified_subset(full.labels, cfg.train_per_class)
        raw = full.array
        # array images at the run's size, or resized once at load where the source allows it
        # (Omniglot's 105 px drawings: bench/engine/data.py ``resize_pixels``)
        self.fast = (
            raw is not None
            and cfg.augment in ("flip", "none")
            and not cfg.pretrained
            and (raw.shape[1] == cfg.image_size or get_source(cfg.dataset).resize_on_load)
        )
        train_tf = None if self.fast else _transforms(cfg, True)
        eval_tf = None if self.fast else _transforms(cfg, False)
        self.train = ManifestDataset(cfg.dataset, data_dir, "train", train_tf, self.subset)
        self.train_pixels = self._pixels(self.train) if self.fast else None
        self.in_chans = (1 if raw.ndim == 3 else raw.shape[3]) if self.fast else 3
        splits = set(manifest["split"])
        names = ("query", "gallery") if {"query", "gallery"} <= splits else ("test",)
        self.eval = {
            n: Split(ds, self._pixels(ds) if self.fast else None)
            for n, ds in ((n, ManifestDataset(cfg.dataset, data_dir, n, eval_tf)) for n in names)
        }
        self.labels = np.array(self.train.labels)  # writable copies for torch.from_numpy
        self.superclasses = np.array(self.train.superclasses)

    def check_sizes(self) -> None:
        """Refuse, before anything is written, what the loaded data cannot give: a batch that PML's
        MPerClassSampler cannot draw from the training set (it asserts batch <= the set and
        batch <= m_per_class x its classes) and a Recall@K with K beyond the reference set (the
        test set minus the query itself, or the gallery)."""
        cfg, n = self.cfg, len(self.labels)
        classes = len(np.unique(self.labels))
        if cfg.batch_size > n or cfg.batch_size > cfg.m_per_class * classes:
            raise UserError(
                f"batch_size {cfg.batch_size} cannot be sampled from the training set of "
                f"{cfg.dataset} here: {n} images of {classes} classes (train_per_class "
                f"{cfg.train_per_class}), m_per_class {cfg.m_per_class}; a batch needs at most "
                f"{min(n, cfg.m_per_class * classes)}: lower --batch-size or raise "
                f"--train-per-class"
            )
        name = "test" if "test" in self.eval else "gallery"
        refs = len(self.eval[name].dataset.labels) - (name == "test")
        if max(cfg.eval_ks) > refs:
            raise UserError(
                f"eval_ks {max(cfg.eval_ks)} is larger than the reference set of {cfg.dataset}: "
                f"{refs} images ({'the test set minus the query' if name == 'test' else name}); "
                f"give --eval-ks at most {refs}"
            )

    def train_split(self) -> Split:
        """The training subset as an evaluation split (eval transforms, no augmentation)."""
        if self.fast:
            return Split(self.train, self.train_pixels)
        ds = ManifestDataset(
            self.cfg.dataset, self.data_dir, "train", _transforms(self.cfg, False), self.subset
        )
        return Split(ds, None)

    def _pixels(self, ds: ManifestDataset) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(ds.array))
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
        return resize_pixels(x, self.cfg.image_size)  # uint8, (N, C, H, W)

    @staticmethod
    def normalise(x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255.0 - 0.5) / 0.5

    def sampler(self) -> MPerClassSampler:
        # draws from numpy's global generator: the trainer seeds it every epoch
        return MPerClassSampler(
            self.labels,
            self.cfg.m_per_class,
            self.cfg.batch_size,
            length_before_new_iter=len(self.labels),
        )

    def batches(self, epoch: int) -> Iterator[Batch]:
        """One epoch of batches in MPerClassSampler order, full batches only; ``epoch`` is the
        key epoch (bench/engine/draws.py: main epochs 0, 1, ..., ``warmup_epoch(w)``,
        ``PREFILL_EPOCH``). The sampler draws from numpy's global generator, which the trainer
        seeds every epoch; with keyed draws nothing else is drawn from a global generator."""
        cfg, b = self.cfg, self.cfg.batch_size
        order = torch.tensor(list(iter(self.sampler())), dtype=torch.long)
        n = len(order) - len(order) % b
        order = order[:n]
        keyed = cfg.augment_draws == "keyed"
        keys = pack(epoch, torch.arange(n)) if keyed else torch.full((n,), NO_KEY)
        starts = range(0, n, b)
        if self.fast:
            labels, supers = torch.from_numpy(self.labels), torch.from_numpy(self.superclasses)
            for s in starts:
                idx, k = order[s : s + b], keys[s : s + b]
                yield Batch(self._fast_images(idx, k), labels[idx], supers[idx], idx, k)
            return
        # superclasses by label, so that k-means superclasses (engine/superclasses.py) reach
        # this path
        lookup = torch.full((int(self.labels.max()) + 1,), -1, dtype=torch.long)
        lookup[torch.from_numpy(self.labels)] = torch.from_numpy(self.superclasses)
        for s, (x, y, _) in zip(starts, self._loader(order, keys)):
            yield Batch(x, y, lookup[y], order[s : s + b], keys[s : s + b])

    def _loader(self, order: torch.Tensor, keys: torch.Tensor) -> DataLoader:
        """The loader path's DataLoader over ``order``. Keyed: items are (index, key) pairs
        drawn under their key, and the loader's own base seed comes from a private generator,
        so no global generator moves; global: the DataLoader as before keys (bit for bit)."""
        cfg = self.cfg
        if cfg.augment_draws == "global":
            dataset, sampler, generator = self.train, order.tolist(), None
        else:
            dataset = KeyedDataset(self.train, cfg.seed)
            sampler = list(zip(order.tolist(), keys.tolist()))
            generator = torch.Generator().manual_seed(0)  # worker seeds: every item reseeds
        return DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            sampler=sampler,
            num_workers=cfg.num_workers,
            drop_last=True,
            generator=generator,
        )

    def _fast_images(self, idx: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        x = self.normalise(self.train_pixels[idx])
        if self.cfg.augment == "flip":
            if self.cfg.augment_draws == "global":
                flip = torch.rand(len(idx)) < 0.5  # torch's global generator, as before keys
            else:
                flip = flips(self.cfg.seed, keys)
            x[flip] = x[flip].flip(-1)
        return x

    def images(self, idx: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Exactly the (normalised, augmented) input the training forward saw for the samples
        ``idx`` (positions in ``self.train``) drawn with ``keys`` (``Batch.idx``, ``Batch.keys``),
        in that order; the caller's generators do not move."""
        idx, keys = torch.as_tensor(idx, dtype=torch.long), torch.as_tensor(keys, dtype=torch.long)
        if idx.shape != keys.shape or idx.ndim != 1:
            raise ValueError(
                f"idx and keys must be 1-D of one length, got {tuple(idx.shape)} and "
                f"{tuple(keys.shape)}"
            )
        if self.cfg.augment != "none":  # "none" draws nothing: any key gives the same image
            if self.cfg.augment_draws == "global":
                raise ValueError(
                    "augment_draws='global' drew the augmentation from the global generators: "
                    "its images cannot be re-created (run with augment_draws='keyed')"
                )
            if (keys == NO_KEY).any():
                raise ValueError(f"keys must be augmentation keys, got {NO_KEY} (no key)")
        if self.fast:
            return self._fast_images(idx, keys)
        ds = KeyedDataset(self.train, self.cfg.seed)
        return torch.stack([ds[(i, k)][0] for i, k in zip(idx.tolist(), keys.tolist())])

    def probe(self, n: int) -> torch.Tensor:
        """A fixed probe batch of training images for feature drift (same for every seed)."""
        idx = np.random.default_rng(SUBSET_SEED).choice(
            len(self.labels), size=min(n, len(self.labels)), replace=False
        )
        if self.fast:
            return self.normalise(self.train_pixels[torch.from_numpy(idx)])
        ds = ManifestDataset(
            self.cfg.dataset, self.data_dir, "train", _transforms(self.cfg, False), self.subset[idx]
        )
        return torch.stack([ds[j][0] for j in range(len(ds))])


@torch.no_grad()
def embed(
    model: torch.nn.Module, split: Split, device: torch.device, data: Data, batch_size: int = 512
) -> torch.Tensor:
    """Embeddings of a whole split in eval mode, on the CPU."""
    model.eval()
    out = []
    if split.pixels is not None:
        for s in range(0, len(split.pixels), batch_size):
            out.append(
                model(data.normalise(split.pixels[s : s + batch_size]).to(device)).float().cpu()
            )
    else:
        loader = DataLoader(
            split.dataset, batch_size=batch_size, shuffle=False, num_workers=data.cfg.num_workers
        )
        for x, _, _ in loader:
            out.append(model(x.to(device)).float().cpu())
    return torch.cat(out)
