"""XBN: adapt the memory to the batch's per-dimension mean and std (paper eq. 6)."""

from .base import MemoryBase
from .registry import register
from .stats import moments, xbn_inplace


@register("xbn")
class XBN(MemoryBase):
    NORMALISING = True

    def batch_statistics(self, batch):
        """E[B], sigma[B]; AXBN replaces them with Kalman-filtered estimates."""
        return moments(batch)

    def adapt(
        self, memory, memory_labels, batch, batch_labels, memory_superclasses, batch_superclasses
    ):
        mu_r, sd_r = moments(memory)
        mu_b, sd_b = self.batch_statistics(batch)
        return xbn_inplace(memory, mu_r, sd_r, mu_b, sd_b)  # paper eq. 6 / eq. 23, in place
