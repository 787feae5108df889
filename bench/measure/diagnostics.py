"""Embedding-space diagnostics logged every epoch: drift, distances, superclass top-k.

Pure functions: tensors in, Python numbers out. Distances are Euclidean on the embeddings as
given (no normalisation here: the trainer passes the model's L2-normalised outputs).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable

import torch

# Byte budget of one distance block in inter_distance (rows x n x element size).
DEFAULT_CHUNK_BYTES = 64 * 2**20


def _as_embeddings(x: torch.Tensor, name: str, min_rows: int = 1) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"{name} must be a 2D tensor (n, dim), got shape {tuple(x.shape)}")
    if x.shape[0] < min_rows or x.shape[1] == 0:
        raise ValueError(
            f"{name} must have at least {min_rows} row(s) and 1 column, got shape {tuple(x.shape)}"
        )
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _dense_ids(labels: torch.Tensor, n: int, name: str) -> tuple[torch.Tensor, int]:
    """Map arbitrary label values to 0..C-1; returns (ids, C)."""
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(
            f"{name} must be a 1D tensor of length {n}, got shape {tuple(labels.shape)}"
        )
    uniq, ids = torch.unique(labels, return_inverse=True)
    return ids, uniq.shape[0]


def group_means(emb: torch.Tensor, ids: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Mean row of ``emb`` (N, d) per group ``ids`` (N,; dense 0..n_groups-1): (n_groups, d).

    torch's own segment reduction (``index_reduce_`` with "mean", the sum in row order divided
    by the count), so the metrics depend on no module of the memory package; a group with no
    rows gets 0. ``index_reduce_`` is marked beta in torch and says so once per process; the
    warning is silenced here, and tests/bench/test_diagnostics.py checks it against a loop."""
    out = torch.zeros(n_groups, emb.shape[1], dtype=emb.dtype, device=emb.device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="index_reduce", category=UserWarning)
        return out.index_reduce_(0, ids.to(emb.device), emb, "mean", include_self=False)


def drift(z_now: torch.Tensor, z_prev: torch.Tensor) -> tuple[float, float]:
    """Feature drift over a fixed probe batch: (mean, max) of D over its samples.

    D(x, k, dk) = ||z^k - z^(k - dk)||_2 (paper eq. 5; thesis eq. 3.5), where ``z_now`` holds
    z^k and ``z_prev`` z^(k - dk) for the same images, row by row.
    """
    a = _as_embeddings(z_now, "z_now").double()
    b = _as_embeddings(z_prev, "z_prev").double()
    if a.shape != b.shape:
        raise ValueError(
            f"z_now and z_prev must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    d = torch.linalg.vector_norm(a - b.to(a.device), dim=1)
    return d.mean().item(), d.max().item()


def inter_distance(
    emb: torch.Tensor,
    max_points: int | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
) -> float:
    """Average Euclidean distance between distinct embeddings, over all pairs i < j.

    mean_{i<j} ||e_i - e_j||_2 (thesis section 5, "average distance between embeddings").
    Computed in row blocks (``chunk_size`` rows, default from a 64 MiB budget), so memory stays
    O(chunk_size x N). The cost is O(N^2 dim): with ``max_points`` set and N larger, the average
    is taken over the pairs of a uniform random subset of ``max_points`` embeddings, drawn with
    a ``torch.Generator`` seeded with ``seed`` (the same subset for the same N and seed, so
    epochs stay comparable).
    """
    x = _as_embeddings(emb, "emb", min_rows=2)
    if max_points is not None:
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
            raise ValueError(f"max_points must be an int >= 2 or None, got {max_points!r}")
        if x.shape[0] > max_points:
            gen = torch.Generator().manual_seed(seed)
            keep = torch.randperm(x.shape[0], generator=gen)[:max_points]
            x = x[keep.to(x.device)]
    n = x.shape[0]
    if chunk_size is None:
        rows = max(1, DEFAULT_CHUNK_BYTES // (n * x.element_size()))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    else:
        rows = chunk_size
    # torch's own choice for cdist(x[block], x) (the product form above 25 points), fixed, so
    # that a block's distances do not depend on how many columns it has
    mode = "use_mm_for_euclid_dist" if n > 25 else "donot_use_mm_for_euclid_dist"
    total = torch.zeros((), dtype=torch.float64, device=x.device)  # N^2 terms: sum in float64
    for start in range(0, n, rows):
        # only the columns >= start: the pairs i < j of these rows (half the product); each
        # row's pairs, row after row, in one array, whose float64 sum is the same whatever
        # the block shape, unlike a masked select (slow) or a sum of the lower-triangle zeros
        block = torch.cdist(x[start : start + rows], x[start:], compute_mode=mode)
        pairs = torch.cat([block[r, r + 1 :] for r in range(block.shape[0])])
        total += pairs.sum(dtype=torch.float64)
    return (total / (n * (n - 1) / 2)).item()


def intra_distance(emb: torch.Tensor, labels: torch.Tensor) -> float:
    """Average distance of each embedding to its class mean, averaged over embeddings.

    (1/N) sum_i ||e_i - mu_{y_i}||_2 with mu_c the mean of class c's embeddings (thesis
    section 5, "average distance from an embedding's class mean"). A singleton class adds 0.
    """
    x = _as_embeddings(emb, "emb").double()
    ids, n_classes = _dense_ids(labels, x.shape[0], "labels")
    means = group_means(x, ids, n_classes)
    return torch.linalg.vector_norm(x - means[ids.to(x.device)], dim=1).mean().item()


def superclass_topk(
    emb: torch.Tensor, superclasses: torch.Tensor, ks: Iterable[int] = (1, 2, 3, 4, 5)
) -> dict[int, float]:
    """Percent of embeddings whose own superclass mean is among their k nearest superclass means.

    Thesis table 5.16. Superclass means are the means of the given embeddings per superclass;
    distances are Euclidean. Ranking rule: a mean ranks before the own mean when strictly closer,
    or equally close with a lower superclass id (the tie rule of bench.evaluate). A k larger than
    the number of superclasses S is clipped to S (so it gives 100%); the result keeps the
    requested k as its key.
    """
    x = _as_embeddings(emb, "emb").double()
    ids, n_super = _dense_ids(superclasses, x.shape[0], "superclasses")
    ks = list(ks)
    if not ks:
        raise ValueError("ks must name at least one k, got an empty sequence")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
    ids = ids.to(x.device)
    # direct differences, not the matmul expansion, so that equal distances compare equal
    dist = torch.cdist(x, group_means(x, ids, n_super), compute_mode="donot_use_mm_for_euclid_dist")
    own = dist.gather(1, ids.unsqueeze(1))
    lower_id = torch.arange(n_super, device=x.device).unsqueeze(0) < ids.unsqueeze(1)
    rank = ((dist < own) | ((dist == own) & lower_id)).sum(dim=1)  # 0 = nearest
    n = x.shape[0]
    return {k: 100.0 * (rank < min(k, n_super)).sum().item() / n for k in ks}


__all__ = ["drift", "inter_distance", "intra_distance", "superclass_topk"]
