"""XBN: adapt the memory to the batch's per-dimension mean and std (paper eq. 6).

``std_correction`` picks the std convention of every statistic (0: population, the default and
the default here; 1: unbiased, Bessel's n - 1). Neither paper says which it used; over the
2-4 samples of a class (PC-XBN, SC-XBN) the two differ by up to sqrt(2), over a batch of 64 by
0.8%. A single row has no unbiased std: it gets std 0 under both (variants/stats.py).
"""

from .base import MemoryBase
from .options import Option
from .registry import register
from .stats import moments, xbn_inplace

STD_CORRECTION = Option(
    int,
    0,
    ge=0,
    le=1,
    choices=(0, 1),
    why="0: population std (n), 1: unbiased std (n - 1); the papers do not say which",
)


@register("xbn")
class XBN(MemoryBase):
    TITLE = "XBN"
    FAMILY = "normalised memory"
    COLOUR = "#0072b2"
    MARKER = "^"
    NORMALISING = True
    OPTIONS = {"std_correction": STD_CORRECTION}

    def batch_statistics(self, batch):
        """E[B], sigma[B]; AXBN replaces them with Kalman-filtered estimates."""
        return moments(batch, correction=self.std_correction)

    def adapt(
        self, memory, memory_labels, batch, batch_labels, memory_superclasses, batch_superclasses
    ):
        mu_r, sd_r = moments(memory, correction=self.std_correction)
        mu_b, sd_b = self.batch_statistics(batch)
        return xbn_inplace(memory, mu_r, sd_r, mu_b, sd_b)  # paper eq. 6 / eq. 23, in place
