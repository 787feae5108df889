"""k-means superclasses for datasets without a label hierarchy (thesis 6.1.1's proposal).

SC-XBN needs superclass ids; CIFAR-10 has none. Its superclasses are then clusters of the class
means of the warmed-up model's training embeddings: scikit-learn's ``KMeans`` (k-means++ seeding,
Lloyd iterations) seeded with the run's seed.
"""

from __future__ import annotations

import math

import torch
from sklearn.cluster import KMeans

from bench.measure.diagnostics import group_means

# k-means++ starts; the partition with the lowest inertia is kept. scikit-learn's "auto" would
# make one: the points are a few class means (10 for CIFAR-10), so ten starts cost nothing and
# make the superclasses depend less on one seeding draw.
N_INIT = 10


def kmeans(x: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
    """Cluster ids (N,) of the rows of ``x`` (N, d) into ``k`` clusters; deterministic in seed."""
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n} (the number of points), got {k}")
    km = KMeans(n_clusters=k, init="k-means++", n_init=N_INIT, random_state=seed)
    return torch.from_numpy(km.fit_predict(x.detach().double().cpu().numpy())).long()


def default_k(n_classes: int) -> int:
    """sqrt(number of classes), at least 2: CIFAR-10 -> 3 superclasses."""
    return max(2, round(math.sqrt(n_classes)))


def class_superclasses(emb: torch.Tensor, labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Superclass id of every class (indexed by label): k-means over the class means."""
    return kmeans(group_means(emb, labels, int(labels.max()) + 1), k, seed)
