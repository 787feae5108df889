"""What the trainer needs from a prepared dataset: the training subset, batches, eval sets.

Two paths: array datasets (CIFAR, Fashion-MNIST) without timm augmentation are held as one
uint8 tensor and batched by index (fast on a CPU); everything else goes through
``ManifestDataset`` with timm's transforms and a DataLoader.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pytorch_metric_learning.samplers import MPerClassSampler
from torch.utils.data import DataLoader

from bench.config import RunConfig
from data_prep import ManifestDataset, load_manifest

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


class Data:
    """The training subset and the evaluation splits of one run."""

    def __init__(self, cfg: RunConfig, data_dir: str) -> None:
        self.cfg, self.data_dir = cfg, data_dir
        manifest = load_manifest(cfg.dataset, data_dir)
        full = ManifestDataset(cfg.dataset, data_dir, "train")
        self.subset = stratified_subset(full.labels, cfg.train_per_class)
        raw = full.array
        self.fast = (
            raw is not None
            and cfg.augment in ("flip", "none")
            and not cfg.pretrained
            and raw.shape[1] == cfg.image_size
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

    def train_split(self) -> Split:
        """The training subset as an evaluation split (eval transforms, no augmentation)."""
        if self.fast:
            return Split(self.train, self.train_pixels)
        ds = ManifestDataset(
            self.cfg.dataset, self.data_dir, "train", _transforms(self.cfg, False), self.subset
        )
        return Split(ds, None)

    @staticmethod
    def _pixels(ds: ManifestDataset) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(ds.array))
        x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
        return x  # uint8, (N, C, H, W)

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

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One epoch of (images, labels, superclasses), MPerClassSampler order, full batches."""
        cfg = self.cfg
        if self.fast:
            order = torch.tensor(list(iter(self.sampler())), dtype=torch.long)
            labels, supers = torch.from_numpy(self.labels), torch.from_numpy(self.superclasses)
            for s in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
                idx = order[s : s + cfg.batch_size]
                x = self.normalise(self.train_pixels[idx])
                if cfg.augment == "flip":
                    flip = torch.rand(len(idx)) < 0.5
                    x[flip] = x[flip].flip(-1)
                yield x, labels[idx], supers[idx]
            return
        loader = DataLoader(
            self.train,
            batch_size=cfg.batch_size,
            sampler=self.sampler(),
            num_workers=cfg.num_workers,
            drop_last=True,
        )
        # superclasses by label, so that k-means superclasses (engine/superclasses.py) reach
        # this path
        lookup = torch.full((int(self.labels.max()) + 1,), -1, dtype=torch.long)
        lookup[torch.from_numpy(self.labels)] = torch.from_numpy(self.superclasses)
        for x, y, _ in loader:
            yield x, y, lookup[y]

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
