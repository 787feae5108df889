"""k-means superclasses for datasets without a label hierarchy (thesis 6.1.1's proposal).

SC-XBN needs superclass ids; CIFAR-10 has none. Its superclasses are then clusters of the class
means of the warmed-up model's training embeddings (k-means, Lloyd's algorithm with k-means++
seeding from a seeded generator).
"""

from __future__ import annotations

import math

import torch


def kmeans(x: torch.Tensor, k: int, seed: int = 0, iters: int = 100) -> torch.Tensor:
    """Cluster ids (N,) of the rows of ``x`` (N, d) into ``k`` clusters; deterministic in seed.

    k-means++ seeding (each next centre drawn with probability proportional to the squared
    distance to the nearest chosen one), then Lloyd iterations until no assignment changes.
    """
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n} (the number of points), got {k}")
    g = torch.Generator().manual_seed(seed)
    x = x.double().cpu()
    centres = [x[torch.randint(n, (1,), generator=g).item()]]
    for _ in range(1, k):
        d2 = torch.cdist(x, torch.stack(centres)).min(dim=1).values.pow(2)
        if d2.sum() <= 0:  # fewer distinct points than k: take any point not yet chosen
            centres.append(x[len(centres)])
            continue
        centres.append(x[torch.multinomial(d2 / d2.sum(), 1, generator=g).item()])
    c = torch.stack(centres)
    assign = torch.full((n,), -1, dtype=torch.long)
    for _ in range(iters):
        new = torch.cdist(x, c).argmin(dim=1)
        if torch.equal(new, assign):
            break
        assign = new
        for j in range(k):  # k is small (a few superclasses); empty clusters keep their centre
            members = x[assign == j]
            if len(members):
                c[j] = members.mean(dim=0)
    return assign


def default_k(n_classes: int) -> int:
    """sqrt(number of classes), at least 2: CIFAR-10 -> 3 superclasses."""
    return max(2, round(math.sqrt(n_classes)))


def class_superclasses(emb: torch.Tensor, labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Superclass id of every class (indexed by label): k-means over the class means."""
    n_classes = int(labels.max()) + 1
    sums = torch.zeros(n_classes, emb.shape[1], dtype=emb.dtype).index_add_(0, labels, emb)
    counts = torch.bincount(labels, minlength=n_classes).clamp_min(1).unsqueeze(1)
    return kmeans(sums / counts, k, seed)
