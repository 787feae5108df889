"""Pure statistics of the memory variants: tensors in, tensors out, no state.

Every statistic is per dimension and a population moment (correction=0); every division is
guarded by ``EPS``.
"""

from __future__ import annotations

import torch

EPS = 1e-8


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and population standard deviation of ``x`` (N, d)."""
    return x.mean(dim=0), x.std(dim=0, correction=0)


def xbn_transform(
    z: torch.Tensor,
    mu_r: torch.Tensor,
    sd_r: torch.Tensor,
    mu_b: torch.Tensor,
    sd_b: torch.Tensor,
) -> torch.Tensor:
    """z' = (z - E[R]) / sigma[R] * sigma[B] + E[B]   # paper eq. 6 (and eq. 23 with Kalman estimates)"""
    return (z - mu_r) / sd_r.clamp_min(EPS) * sd_b + mu_b


def centre_transform(z: torch.Tensor, mu_r: torch.Tensor, mu_b: torch.Tensor) -> torch.Tensor:
    """z' = z - E[R] + E[B]   # thesis eq. 4.5"""
    return z - mu_r + mu_b


def unit_rows(z: torch.Tensor) -> torch.Tensor:
    """Rescale each row to unit L2 norm   # thesis 4.3.5 (scaled XBN)"""
    return z / z.norm(dim=1, keepdim=True).clamp_min(EPS)


def segment_moments(
    x: torch.Tensor, seg: torch.Tensor, n_segments: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Count, mean and population std of the rows of ``x`` in each segment ``seg`` (dense ids).

    Vectorised with ``index_add_`` (two passes, so the variance is not a difference of large
    numbers); segments with no rows get count 0, mean 0 and std 0.
    """
    d = x.shape[1]
    count = torch.bincount(seg, minlength=n_segments).to(x.dtype)
    denom = count.clamp_min(1).unsqueeze(1)
    mean = torch.zeros(n_segments, d, dtype=x.dtype, device=x.device).index_add_(0, seg, x) / denom
    dev2 = (x - mean[seg]).pow(2)
    var = torch.zeros(n_segments, d, dtype=x.dtype, device=x.device).index_add_(0, seg, dev2) / denom
    return count, mean, var.sqrt()


def grouped_transform(
    r: torch.Tensor,
    group_r: torch.Tensor,
    b: torch.Tensor,
    group_b: torch.Tensor,
    lambda_mu: float,
    lambda_sigma: float,
    normalize_absent: bool,
) -> torch.Tensor:
    """Per-group (class or superclass) adaptation of the memory ``r`` to the batch ``b``.

    For a memory row z of group i that has more than one sample in both R and B   # thesis 4.3.1
        z' = (z - E[R^i]) / sigma[R^i] * (ls sigma[B] + (1 - ls) sigma[B^i])
             + (lm E[B] + (1 - lm) E[B^i])                                        # thesis eq. 4.3
    (eq. 4.4 for superclasses, with the same lambdas, thesis 4.3.2). Rows of every other group
    get global XBN (paper eq. 6) when ``normalize_absent``, else are left as they are.
    """
    keys, inverse = torch.unique(torch.cat([group_r, group_b]), return_inverse=True)
    seg_r, seg_b = inverse[: len(group_r)], inverse[len(group_r):]
    n = len(keys)
    count_r, mean_r, std_r = segment_moments(r, seg_r, n)
    count_b, mean_b, std_b = segment_moments(b, seg_b, n)
    mu_b, sd_b = moments(b)
    target_sd = lambda_sigma * sd_b + (1.0 - lambda_sigma) * std_b
    target_mu = lambda_mu * mu_b + (1.0 - lambda_mu) * mean_b
    per_group = (r - mean_r[seg_r]) / std_r[seg_r].clamp_min(EPS) * target_sd[seg_r] + target_mu[seg_r]
    eligible = ((count_r > 1) & (count_b > 1))[seg_r].unsqueeze(1)
    if normalize_absent:
        mu_r, sd_r = moments(r)
        fallback = xbn_transform(r, mu_r, sd_r, mu_b, sd_b)
    else:
        fallback = r
    return torch.where(eligible, per_group, fallback)


def kalman_gain(p_pred: float, r: float, batch_size: int) -> float:
    """K = P / (P + R) with measurement noise R = r / |B|   # paper eq. 20 and section 3.2.1"""
    meas = r / batch_size
    return p_pred / (p_pred + meas) if p_pred + meas > 0 else 1.0


def kalman_update(u: torch.Tensor, v: torch.Tensor, gain: float) -> torch.Tensor:
    """u_k = u_{k-1} + K (v_k - u_{k-1})   # paper eq. 21 (static state model, eq. 18)"""
    return u + gain * (v - u)
