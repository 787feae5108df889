"""Retrieval evaluation: exact cosine k-nearest neighbours, Recall@K, MAP@R and R-Precision, and a
k-NN classifier.

Everything is computed in blocks, so memory stays bounded, never the full ``n x n`` matrix
(60k x 60k on SOP would be 14 GB in float32): against a gallery, one block of ``chunk_size``
queries x the gallery at a time; a set against itself (self excluded), two square tiles
(a block of the similarity matrix and its transpose) and at most ``MERGE_EVERY x k``
candidates per row, computing only the tiles on and above the diagonal (the matrix is
symmetric: half the matrix product, see ``_knn_self``). Both give, bit for bit, the
similarities of one plain matrix product of the whole set (BLAS computes each dot product in
the same order whatever block holds it).

Tie rule (used everywhere in this module): neighbours are ranked by decreasing cosine
similarity and, among exactly equal similarities, the lower gallery index ranks first. It is
the order of a stable descending sort of each similarity row. ``torch.topk`` alone leaves the
order of ties unspecified, so rows whose top-k+1 similarities contain a tie are re-ranked with
a stable sort (rare on real embeddings, every row on heavily duplicated ones); in the self
protocol this is done per tile, and the tiles' candidates are merged under the same rule.

faiss (``IndexFlatIP``, checked by experiment on faiss 1.15.1) agrees with this rule only in
part: its heap keeps the first-seen (lowest-index) item for k = 1, and for k > 1 when the tied
group at the boundary is the group of highest similarity (e.g. exact duplicates of the query),
but it returns tied items in decreasing index order, and when a lower-similarity tied group
straddles the k boundary it may keep later indices instead of earlier ones (seen with +-0.5
vectors in d=4: of the items at similarity 0.5, faiss kept ids 114-125 and dropped 24-36). The
tests compare with faiss only where its choice is the same as ours and with a plain sorting
loop everywhere.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

import torch
import torch.nn.functional as F

# Byte budget of one similarity chunk (chunk rows x gallery size x element size).
DEFAULT_CHUNK_BYTES = 64 * 2**20
# Self protocol: tiles whose candidates a block row holds before merging them (each merge is a
# small parallel sort; holding all would make the memory grow with N^2 / tile side).
MERGE_EVERY = 8


def _as_embeddings(x: torch.Tensor, name: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"{name} must be a 2D tensor (n, dim), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got NaN or inf")
    return x


def _as_labels(y: torch.Tensor, n: int, name: str) -> torch.Tensor:
    y = torch.as_tensor(y)
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must be a 1D tensor of length {n}, got shape {tuple(y.shape)}")
    return y


def _chunk_rows(n_gallery: int, element_size: int, chunk_size: int | None) -> int:
    if chunk_size is None:
        return max(1, DEFAULT_CHUNK_BYTES // (n_gallery * element_size))
    _check_chunk_size(chunk_size)
    return chunk_size


def _tile_side(element_size: int, chunk_size: int | None) -> int:
    """Side of the square similarity tiles of the self protocol: two tiles (a block and its
    transposed copy) fit the byte budget."""
    if chunk_size is None:
        return max(1, math.isqrt(DEFAULT_CHUNK_BYTES // (2 * element_size)))
    _check_chunk_size(chunk_size)
    return chunk_size


def _check_chunk_size(chunk_size) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")


def _check_k(k: int, n_candidates: int) -> None:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if k > n_candidates:
        raise ValueError(f"k must be <= the number of gallery candidates {n_candidates}, got {k}")


def _topk_tie_rule(sims: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of each row under the module's tie rule (descending, lower index first)."""
    n_cols = sims.shape[1]
    width = min(k + 1, n_cols)  # one extra value to see a tie straddling the k boundary
    values, indices = torch.topk(sims, width, dim=1, largest=True, sorted=True)
    tied = (values[:, 1:] == values[:, :-1]).any(dim=1)
    if tied.any():
        rows = tied.nonzero().squeeze(1)
        v, i = torch.sort(sims[rows], dim=1, descending=True, stable=True)
        values[rows], indices[rows] = v[:, :width], i[:, :width]
    return values[:, :k], indices[:, :k]


def _blocks(n: int, side: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of ``ceil(n / side)`` blocks of near-equal size covering ``0..n``
    (near-equal, so that no block is a sliver: see ``_knn_self``)."""
    count = -(-n // side)
    bounds = [i * n // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _first_k(
    lists: list[tuple[torch.Tensor, torch.Tensor]], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first k, under the tie rule, of candidate lists (values, indices) of the same rows.
    Each list is in tie-rule order and every index in a list is below every index in the next,
    so a stable descending sort of the concatenated values is the tie rule's order."""
    if len(lists) == 1:
        return lists[0]
    values, indices = torch.cat([v for v, _ in lists], 1), torch.cat([i for _, i in lists], 1)
    values, order = torch.sort(values, dim=1, descending=True, stable=True)
    return values[:, :k], indices.gather(1, order[:, :k])


def _knn_self(q: torch.Tensor, k: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """k-NN of ``q`` (normalised) against itself, self excluded, by square tiles.

    The similarity matrix is symmetric, so only the tiles on and above the diagonal are
    computed (about half the matrix product of a row-by-row search): tile (I, J) gives block
    I's candidates among columns J and, transposed, block J's among columns I. Each row keeps
    its candidates, the first k of each tile under the tie rule, in increasing column order,
    and they are merged at the end (every ``MERGE_EVERY`` tiles on large inputs). The
    product of a tile equals, bit for bit, the same rows and columns of a row-by-row product
    (BLAS computes each dot product in the same order whatever block it is in; a transposed
    tile holds the same dot products with their factors swapped), except for slivers of a few
    rows that BLAS may compute as matrix-vector products, which near-equal blocks avoid.
    """
    blocks = _blocks(q.shape[0], side)
    longest = max(stop - start for start, stop in blocks)
    # two preallocated tiles: a fresh tensor per tile would fault its pages in every time
    tile, flipped = q.new_empty(longest * longest), q.new_empty(longest * longest)
    held: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in blocks]

    def add(block: int, sims: torch.Tensor, col0: int) -> None:
        v, i = _topk_tie_rule(sims, k)
        held[block].append((v, i + col0))
        if len(held[block]) == MERGE_EVERY:  # bounds the candidates a row holds
            held[block] = [_first_k(held[block], k)]

    for bi, (i0, i1) in enumerate(blocks):
        for bj in range(bi, len(blocks)):
            j0, j1 = blocks[bj]
            sims = tile[: (i1 - i0) * (j1 - j0)].view(i1 - i0, j1 - j0)
            torch.mm(q[i0:i1], q[j0:j1].T, out=sims)
            if bi == bj:
                sims.fill_diagonal_(float("-inf"))
            add(bi, sims, j0)
            if bj != bi:
                add(bj, flipped[: sims.numel()].view(j1 - j0, i1 - i0).copy_(sims.T), i0)
    first = [_first_k(lists, k) for lists in held]
    return torch.cat([v for v, _ in first]), torch.cat([i for _, i in first])


def knn(
    queries: torch.Tensor,
    k: int,
    gallery: torch.Tensor | None = None,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact cosine k-NN: ``(similarities, gallery indices)``, each ``(n_queries, k)``.

    ``gallery=None`` searches the queries against themselves with each query's own row
    excluded, by square tiles of at most ``chunk_size`` rows and columns (default: two tiles in
    a 64 MiB budget), using the symmetry of the similarities (``_knn_self``). With a gallery,
    ``chunk_size`` is the number of query rows per similarity block (default: from a 64 MiB
    budget). Both sides are L2-normalised here. Rows are ordered by the tie rule of the module
    docstring.
    """
    q = _as_embeddings(queries, "queries")
    exclude_self = gallery is None
    g = q if exclude_self else _as_embeddings(gallery, "gallery")
    if g.shape[1] != q.shape[1]:
        raise ValueError(f"gallery dim must equal queries dim {q.shape[1]}, got {g.shape[1]}")
    dtype = torch.promote_types(q.dtype, g.dtype)
    q = F.normalize(q.to(dtype), dim=1)
    g = q if exclude_self else F.normalize(g.to(device=q.device, dtype=dtype), dim=1)
    _check_k(k, g.shape[0] - int(exclude_self))
    if exclude_self:
        return _knn_self(q, k, _tile_side(q.element_size(), chunk_size))
    rows = _chunk_rows(g.shape[0], q.element_size(), chunk_size)
    block = q.new_empty(min(rows, q.shape[0]) * g.shape[0])  # reused: see _knn_self
    out_v, out_i = [], []
    for start in range(0, q.shape[0], rows):
        chunk = q[start : start + rows]
        sims = block[: chunk.shape[0] * g.shape[0]].view(chunk.shape[0], g.shape[0])
        v, i = _topk_tie_rule(torch.mm(chunk, g.T, out=sims), k)
        out_v.append(v)
        out_i.append(i)
    return torch.cat(out_v), torch.cat(out_i)


def recall_at_k(
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    ks: Iterable[int],
    gallery: torch.Tensor | None = None,
    gallery_labels: torch.Tensor | None = None,
    chunk_size: int | None = None,
) -> dict[int, float]:
    """Recall@K in percent: share of queries with a same-label item among their K nearest.

    Protocols: ``gallery=None`` is the query set against itself, self excluded (SOP, CIFAR);
    otherwise queries against the gallery (In-Shop, DeepFashion2). Cosine similarity, exact,
    chunked; ties are broken by the lower gallery index (module docstring).
    """
    ks = list(ks)
    if not ks:
        raise ValueError("ks must name at least one k, got an empty sequence")
    if (gallery is None) != (gallery_labels is None):
        raise ValueError("gallery and gallery_labels must be given together or both be None")
    q = _as_embeddings(queries, "queries")
    q_labels = _as_labels(query_labels, q.shape[0], "query_labels")
    if gallery is None:
        g_labels = q_labels
    else:
        g = _as_embeddings(gallery, "gallery")
        g_labels = _as_labels(gallery_labels, g.shape[0], "gallery_labels")
    n_candidates = q.shape[0] - 1 if gallery is None else g_labels.shape[0]
    for k in ks:
        _check_k(k, n_candidates)
    _, idx = knn(q, max(ks), gallery=gallery, chunk_size=chunk_size)
    match = g_labels.to(idx.device)[idx] == q_labels.to(idx.device).unsqueeze(1)
    hits_upto = match.cummax(dim=1).values  # hits_upto[:, k-1]: a match among the first k
    n = q.shape[0]
    return {int(k): 100.0 * hits_upto[:, k - 1].sum().item() / n for k in ks}


# MAP@R and R-Precision need each query's first R neighbours, R = the other items of its class in
# the reference set, so the one search of ``retrieval_metrics`` takes k = the largest R (and at
# least max(ks)): the cost grows with the largest class, never with the set. Its result is
# n_queries x k similarities and indices (12 bytes each; the self protocol holds up to
# MERGE_EVERY such lists per block while merging its tiles). R_CAP bounds k: a reference set with
# a class larger than that gets NaN for both rather than a search that grows with the class. The
# largest classes of the registered datasets, the 1,000 test images per class of CIFAR-10 and
# Fashion-MNIST (R = 999, 120 MB of result for their 10,000 queries), stay under it.
R_CAP = 1024


def retrieval_metrics(
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    ks: Iterable[int],
    gallery: torch.Tensor | None = None,
    gallery_labels: torch.Tensor | None = None,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """``recall@K`` for each K in ``ks``, ``map@r`` and ``r_precision``, all in percent, from one
    exact search (``knn``); protocols and tie rule as ``recall_at_k``.

    Recall@K equals ``recall_at_k``'s bit for bit: the search is longer (k = the largest R), but
    under the tie rule the first max(ks) neighbours of a longer search are those of the shorter
    one (the same similarities, the same total order), and Recall@K reads only them.

    MAP@R and R-Precision as pytorch-metric-learning's ``AccuracyCalculator`` defines them (its
    defaults: the mean over queries, not per class): R = the number of items of the query's
    class in the reference set (the query itself excluded in the self protocol); R-Precision =
    the share of same-class items among the first R neighbours; MAP@R = (1/R) x the sum, over
    the ranks i <= R holding a same-class item, of the precision at i. Queries with R = 0 are
    left out of both means (NaN when every query has R = 0), and both are NaN when the largest
    R exceeds ``R_CAP``.
    """
    ks = list(ks)
    if not ks:
        raise ValueError("ks must name at least one k, got an empty sequence")
    if (gallery is None) != (gallery_labels is None):
        raise ValueError("gallery and gallery_labels must be given together or both be None")
    q = _as_embeddings(queries, "queries")
    q_labels = _as_labels(query_labels, q.shape[0], "query_labels")
    if gallery is None:
        g_labels = q_labels
    else:
        g = _as_embeddings(gallery, "gallery")
        g_labels = _as_labels(gallery_labels, g.shape[0], "gallery_labels")
    n_candidates = q.shape[0] - 1 if gallery is None else g_labels.shape[0]
    for k in ks:
        _check_k(k, n_candidates)
    r = _class_sizes(q_labels, g_labels) - int(gallery is None)
    r_max = int(r.max().item())
    k_recall = max(ks)
    k_search = max(k_recall, min(r_max, R_CAP))
    _, idx = knn(q, k_search, gallery=gallery, chunk_size=chunk_size)
    q_dev, g_dev = q_labels.to(idx.device), g_labels.to(idx.device)
    match = g_dev[idx] == q_dev.unsqueeze(1)
    hits_upto = match[:, :k_recall].cummax(dim=1).values  # a match among the first k
    n = q.shape[0]
    out = {f"recall@{int(k)}": 100.0 * hits_upto[:, k - 1].sum().item() / n for k in ks}
    out["map@r"], out["r_precision"] = _map_at_r(match, r.to(idx.device), r_max)
    return out


def _class_sizes(q_labels: torch.Tensor, g_labels: torch.Tensor) -> torch.Tensor:
    """For each query, the number of reference items with its label (0 where none has it)."""
    g = g_labels.to(q_labels.device)
    values, counts = torch.unique(g, return_counts=True)  # sorted values
    at = torch.searchsorted(values, q_labels.to(values.dtype)).clamp(max=len(values) - 1)
    return torch.where(values[at] == q_labels, counts[at], torch.zeros_like(counts[at]))


def _map_at_r(match: torch.Tensor, r: torch.Tensor, r_max: int) -> tuple[float, float]:
    """(MAP@R, R-Precision) in percent from the neighbours' matches (``match``: n x k, k >= the
    largest R unless it exceeds R_CAP) and each query's R."""
    nan = float("nan")
    if r_max > R_CAP or not (r > 0).any():
        return nan, nan
    match, r = match[r > 0, :r_max], r[r > 0]
    rank = torch.arange(1, r_max + 1, device=match.device)
    relevant = match & (rank.unsqueeze(0) <= r.unsqueeze(1))  # a match within the first R
    hits = relevant.cumsum(dim=1)
    precision = (hits * relevant).to(torch.float64) / rank  # precision at each relevant rank
    average = precision.sum(dim=1) / r
    r_precision = relevant.sum(dim=1).to(torch.float64) / r
    return 100.0 * average.mean().item(), 100.0 * r_precision.mean().item()


def knn_accuracy(
    train_emb: torch.Tensor,
    train_labels: torch.Tensor,
    test_emb: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int | None = None,
) -> float:
    """Weighted k-NN top-1 accuracy in percent, the MoCo training monitor.

    Each test embedding takes its k nearest training embeddings (cosine, tie rule above); each
    neighbour votes for its label with weight exp(similarity / temperature); the class with the
    largest total wins (among equal totals, the lowest class id). Labels are non-negative ints.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    train = _as_embeddings(train_emb, "train_emb")
    test = _as_embeddings(test_emb, "test_emb")
    y_train = _as_labels(train_labels, train.shape[0], "train_labels").long()
    y_test = _as_labels(test_labels, test.shape[0], "test_labels").long()
    if min(y_train.min().item(), y_test.min().item()) < 0:
        raise ValueError("train_labels and test_labels must be non-negative class ids")
    sims, idx = knn(test, k, gallery=train, chunk_size=chunk_size)
    n_classes = int(max(y_train.max().item(), y_test.max().item())) + 1
    weights = (sims / temperature).exp()
    scores = torch.zeros(test.shape[0], n_classes, dtype=weights.dtype, device=weights.device)
    scores.scatter_add_(1, y_train.to(idx.device)[idx], weights)
    pred = scores.argmax(dim=1)  # first maximal index: lowest class id on equal scores
    return 100.0 * (pred == y_test.to(pred.device)).float().mean().item()


__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "R_CAP",
    "knn",
    "knn_accuracy",
    "recall_at_k",
    "retrieval_metrics",
]
