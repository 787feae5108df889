"""MoCo's data: two augmented views of each image (bench/engine/moco)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from bench.config import RunConfig
from bench.engine.data import Split, stratified_subset
from common import UserError
from data_prep import ManifestDataset

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)


# ----- data: two views of each image -----------------------------------------------------------
def tensor_views(x: torch.Tensor) -> torch.Tensor:
    """One random view per uint8 image (N, C, H, W) -> normalised float: random resized crop
    (area 0.2-1, aspect 3/4-4/3) with horizontal flip as one affine resampling, then brightness
    and contrast x U(0.6, 1.4) with p = 0.8 and Gaussian noise (std 0.03). Uses torch's RNG."""
    n = len(x)
    area = torch.empty(n).uniform_(0.2, 1.0)
    ratio = torch.empty(n).uniform_(np.log(3 / 4), np.log(4 / 3)).exp()
    w, h = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    tx, ty = (torch.rand(n) * 2 - 1) * (1 - w), (torch.rand(n) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * flip, tx, h, ty
    img = x.float() / 255.0
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    jitter = (torch.rand(n, 1, 1, 1) < 0.8).float()
    bright = 1 + jitter * torch.empty(n, 1, 1, 1).uniform_(-0.4, 0.4)
    contrast = 1 + jitter * torch.empty(n, 1, 1, 1).uniform_(-0.4, 0.4)
    mean = img.mean(dim=(1, 2, 3), keepdim=True)
    img = ((img - mean) * contrast + mean) * bright + 0.03 * torch.randn_like(img)
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

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of (query views, key views): a uniform shuffle, full batches only."""
        b = self.cfg.batch_size
        if self.tensor:
            order = torch.randperm(self.n)
            for s in range(0, self.n - b + 1, b):
                x = self.pixels[order[s : s + b]]
                yield tensor_views(x), tensor_views(x)
            return
        loader = DataLoader(
            self.train, batch_size=b, shuffle=True, drop_last=True, num_workers=self.cfg.num_workers
        )
        for (xq, xk), _, _ in loader:
            yield xq, xk
