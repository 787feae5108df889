"""Array images resized once at load (Omniglot's 105 px drawings to the cpu profile's 28 px)."""

from __future__ import annotations

import math

import numpy as np
import torch

from bench.engine.data import resize_pixels


def _area_loop(image: np.ndarray, size: int) -> np.ndarray:
    """Each output pixel: the mean of the input rows/columns floor(i*H/s) .. ceil((i+1)*H/s)-1
    (adaptive average pooling, written as a plain loop), rounded half to even as torch does."""
    h, w = image.shape
    out = np.zeros((size, size))
    for i in range(size):
        r0, r1 = (i * h) // size, math.ceil((i + 1) * h / size)
        for j in range(size):
            c0, c1 = (j * w) // size, math.ceil((j + 1) * w / size)
            out[i, j] = image[r0:r1, c0:c1].astype(np.float64).mean()
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def test_same_size_is_untouched():
    x = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    assert resize_pixels(x, 28) is x


def test_block_means_by_hand():
    x = torch.tensor([[10, 20, 0, 0], [30, 40, 0, 255], [1, 1, 5, 5], [1, 1, 5, 6]])
    got = resize_pixels(x.to(torch.uint8)[None, None], 2)[0, 0]
    # (10+20+30+40)/4 = 25; (0+0+0+255)/4 = 63.75 -> 64; 1; (5+5+5+6)/4 = 5.25 -> 5
    assert got.tolist() == [[25, 64], [1, 5]]


def test_omniglot_size_against_a_plain_loop():
    rng = np.random.default_rng(0)
    images = (rng.random((4, 105, 105)) < 0.1).astype(np.uint8) * 255  # one-bit strokes
    got = resize_pixels(torch.from_numpy(images)[:, None], 28)
    assert got.dtype == torch.uint8 and got.shape == (4, 1, 28, 28)
    for k in range(4):
        want = _area_loop(images[k], 28)
        # float32 sums may put an exact .5 on either side of the rounding: at most 1 apart
        assert np.abs(got[k, 0].numpy().astype(int) - want.astype(int)).max() <= 1
        assert (got[k, 0].numpy() == want).mean() > 0.99
