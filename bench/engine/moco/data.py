"""MoCo's data: two augmented views of each image (bench/engine/moco).

With ``augment_draws="keyed"`` both views of a sample are drawn from (run seed, key) alone
(bench/engine/draws.py): the query view first, then the key view, from one generator per
sample (tensor path) or from the key-seeded global generators around the PIL transform (loader
path); ``"global"`` draws as before keys, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from bench.config import RunConfig
from bench.engine.data import Split, stratified_subset
from bench.engine.draws import NO_KEY, KeyedDataset, generators, pack
from common import UserError
from data_prep import ManifestDataset

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


# ----- data: two views of each image -----------------------------------------------------------
LOG_RATIO = (float(np.log(3 / 4)), float(np.log(4 / 3)))  # the crop's log aspect ratio


class ViewDraws(NamedTuple):
    """The random numbers of one view of n images: the crop's area and log aspect ratio, the
    uniforms of its offsets, flip and jitter, the brightness and contrast offsets, the noise."""

    area: torch.Tensor  # (n,) U(0.2, 1)
    log_ratio: torch.Tensor  # (n,) U(LOG_RATIO)
    u_tx: torch.Tensor  # (n,) U(0, 1) each, below too
    u_ty: torch.Tensor
    u_flip: torch.Tensor
    u_jitter: torch.Tensor  # (n, 1, 1, 1)
    bright: torch.Tensor  # (n, 1, 1, 1) U(-0.4, 0.4)
    contrast: torch.Tensor  # (n, 1, 1, 1) U(-0.4, 0.4)
    noise: torch.Tensor  # the image's shape, N(0, 1)

    @classmethod
    def from_global(cls, shape: torch.Size) -> ViewDraws:
        """From torch's global generator, in the order and with the calls of the code before
        keys (bit for bit)."""
        n, cell = shape[0], (shape[0], 1, 1, 1)
        area = torch.empty(n).uniform_(0.2, 1.0)
        log_ratio = torch.empty(n).uniform_(*LOG_RATIO)
        u_tx, u_ty, u_flip, u_jitter = torch.rand(n), torch.rand(n), torch.rand(n), torch.rand(cell)
        bright, contrast = (
            torch.empty(cell).uniform_(-0.4, 0.4),
            torch.empty(cell).uniform_(-0.4, 0.4),
        )
        return cls(
            area, log_ratio, u_tx, u_ty, u_flip, u_jitter, bright, contrast, torch.randn(shape)
        )

    @classmethod
    def from_generators(cls, gens: list[torch.Generator], shape: torch.Size) -> ViewDraws:
        """Image i's numbers from ``gens[i]`` alone (8 uniforms, then its noise), so that its
        view does not depend on the other images of the batch; each generator advances."""
        u = torch.stack([torch.rand(8, generator=g) for g in gens])
        noise = torch.stack([torch.randn(shape[1:], generator=g) for g in gens])
        lo, hi = LOG_RATIO
        cell = (len(gens), 1, 1, 1)
        return cls(
            0.2 + 0.8 * u[:, 0],
            lo + (hi - lo) * u[:, 1],
            u[:, 2],
            u[:, 3],
            u[:, 4],
            u[:, 5].reshape(cell),
            (-0.4 + 0.8 * u[:, 6]).reshape(cell),
            (-0.4 + 0.8 * u[:, 7]).reshape(cell),
            noise,
        )


def tensor_views(x: torch.Tensor, gens: list[torch.Generator] | None = None) -> torch.Tensor:
    """One random view per uint8 image (N, C, H, W) -> normalised float: random resized crop
    (area 0.2-1, aspect 3/4-4/3) with horizontal flip as one affine resampling, then brightness
    and contrast x U(0.6, 1.4) with p = 0.8 and Gaussian noise (std 0.03). Draws from torch's
    global generator, or from ``gens[i]`` for image i (``ViewDraws``)."""
    n = len(x)
    shape = torch.Size((n, *x.shape[1:]))
    d = ViewDraws.from_global(shape) if gens is None else ViewDraws.from_generators(gens, shape)
    area, ratio = d.area, d.log_ratio.exp()
    w, h = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    tx, ty = (d.u_tx * 2 - 1) * (1 - w), (d.u_ty * 2 - 1) * (1 - h)
    flip = torch.where(d.u_flip < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * flip, tx, h, ty
    img = x.float() / 255.0
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    jitter = (d.u_jitter < 0.8).float()
    bright, contrast = 1 + jitter * d.bright, 1 + jitter * d.contrast
    mean = img.mean(dim=(1, 2, 3), keepdim=True)
    img = ((img - mean) * contrast + mean) * bright + 0.03 * d.noise
    return (img.clamp(0, 1) - 0.5) / 0.5


def _to_rgb(image):  # module level, so that DataLoader workers can pickle it
    return image.convert("RGB")


class TwoViews:
    """A PIL transform returning two independent views (query, key) of one image."""

    def __init__(self, transform) -> None:
        self.transform = transform

    def __call__(self, image):
        return self.transform(image), self.transform(image)


def pil_transforms(cfg: RunConfig):
    """MoCo's CIFAR transforms (PML's example): train and eval, RGB, CIFAR normalisation."""
    from torchvision import transforms as T

    norm = [T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)]
    rgb = T.Lambda(_to_rgb)
    train = T.Compose(
        [
            rgb,
            T.RandomResizedCrop(cfg.image_size),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            *norm,
        ]
    )
    return TwoViews(train), T.Compose([rgb, T.Resize(cfg.image_size), *norm])


class _Indexed(Dataset):
    """``(dataset[i], i)``: the positions of a shuffled DataLoader's items (global draws)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[Any, int]:
        return self.dataset[i], i


class MocoBatch(NamedTuple):
    """One batch of two views, and what re-creates it (``MocoData.views(idx, keys)``)."""

    xq: torch.Tensor  # query views
    xk: torch.Tensor  # key views
    idx: torch.Tensor  # positions in MocoData.train
    keys: torch.Tensor  # augmentation keys (bench/engine/draws.py); NO_KEY with global draws


class MocoData:
    """The training subset as two-view batches, and the train/test splits for the k-NN monitor.

    ``augment="moco_tensor"``: array datasets held as uint8 tensors, views made by
    ``tensor_views`` (fast on a CPU); ``augment="moco"``: PIL transforms and a DataLoader."""

    def __init__(self, cfg: RunConfig, data_dir: str) -> None:
        if cfg.augment not in ("moco", "moco_tensor"):
            raise UserError(
                f"a MoCo run needs augment 'moco' or 'moco_tensor', got {cfg.augment!r}"
            )
        self.cfg = cfg
        full = ManifestDataset(cfg.dataset, data_dir, "train")
        subset = stratified_subset(full.labels, cfg.train_per_class)
        self.tensor = cfg.augment == "moco_tensor"
        train_tf, eval_tf = (None, None) if self.tensor else pil_transforms(cfg)
        self.train = ManifestDataset(cfg.dataset, data_dir, "train", train_tf, subset)
        splits = [
            ManifestDataset(cfg.dataset, data_dir, "train", eval_tf, subset),
            ManifestDataset(cfg.dataset, data_dir, "test", eval_tf),
        ]
        if self.tensor:
            if self.train.array is None or self.train.array.shape[1] != cfg.image_size:
                raise UserError(
                    f"augment 'moco_tensor' needs an array dataset at "
                    f"{cfg.image_size} px; {cfg.dataset} is not"
                )
            self.pixels = self._pixels(self.train)
            self.in_chans = self.pixels.shape[1]
        self.eval_train, self.eval_test = (
            Split(ds, self._pixels(ds) if self.tensor else None) for ds in splits
        )
        if not self.tensor:
            self.in_chans = 3
        self.n = len(self.train)

    @staticmethod
    def _pixels(ds: ManifestDataset) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(ds.array))
        return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)

    @staticmethod
    def normalise(x: torch.Tensor) -> torch.Tensor:  # the eval path of ``bench.data.embed``
        return (x.float() / 255.0 - 0.5) / 0.5

    def batches(self, epoch: int) -> Iterator[MocoBatch]:
        """One epoch of two-view batches: a uniform shuffle (torch's global generator, seeded
        every epoch), full batches only; ``epoch`` is the key epoch (main epochs 0, 1, ...)."""
        cfg, b = self.cfg, self.cfg.batch_size
        if cfg.augment_draws == "global" and not self.tensor:
            yield from self._global_loader()
            return
        order = torch.randperm(self.n)
        n = self.n - self.n % b
        keyed = cfg.augment_draws == "keyed"
        keys = pack(epoch, torch.arange(n)) if keyed else torch.full((n,), NO_KEY)
        if self.tensor:
            for s in range(0, n, b):
                idx, k = order[s : s + b], keys[s : s + b]
                yield MocoBatch(*self._tensor_views(idx, k), idx, k)
            return
        loader = DataLoader(
            KeyedDataset(self.train, cfg.seed),
            batch_size=b,
            sampler=list(zip(order[:n].tolist(), keys.tolist())),
            drop_last=True,
            num_workers=cfg.num_workers,
            generator=torch.Generator().manual_seed(0),  # worker seeds: every item reseeds
        )
        for s, ((xq, xk), _, _) in zip(range(0, n, b), loader):
            yield MocoBatch(xq, xk, order[s : s + b], keys[s : s + b])

    def _global_loader(self) -> Iterator[MocoBatch]:
        """The loader path as before keys (a shuffled DataLoader), bit for bit."""
        loader = DataLoader(
            _Indexed(self.train),
            batch_size=self.cfg.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.cfg.num_workers,
        )
        for ((xq, xk), _, _), idx in loader:
            yield MocoBatch(xq, xk, idx, torch.full_like(idx, NO_KEY))

    def _tensor_views(self, idx: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.pixels[idx]
        if self.cfg.augment_draws == "global":
            return tensor_views(x), tensor_views(x)
        gens = generators(self.cfg.seed, keys)
        return tensor_views(x, gens), tensor_views(x, gens)  # the key view: the next draws

    def views(self, idx: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exactly the (query, key) views of ``MocoBatch`` for the samples ``idx`` drawn with
        ``keys``; the caller's generators do not move."""
        idx, keys = torch.as_tensor(idx, dtype=torch.long), torch.as_tensor(keys, dtype=torch.long)
        if self.cfg.augment_draws == "global" or (keys == NO_KEY).any():
            raise ValueError(
                "the views of a batch drawn without keys (augment_draws='global') cannot be "
                "re-created (run with augment_draws='keyed')"
            )
        if self.tensor:
            xq, xk = self._tensor_views(idx, keys)
            return xq, xk
        ds = KeyedDataset(self.train, self.cfg.seed)
        pairs = [ds[(i, k)][0] for i, k in zip(idx.tolist(), keys.tolist())]
        return torch.stack([q for q, _ in pairs]), torch.stack([k for _, k in pairs])
