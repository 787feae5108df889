"""PC-XBN: per-class normalisation of the memory (thesis 4.3.1, eq. 4.3).

A class with more than one sample in both the memory and the batch is adapted with its own
statistics mixed with the batch's by ``lambda_mu`` and ``lambda_sigma``; every other class
(absent from the batch, or with a single sample on either side) gets global XBN when
``normalize_absent`` (the thesis' choice, the default) or is left as it is.

``std_correction`` (0: population, the default; 1: unbiased) applies to every std, per class
and global. The thesis does not say which it used; over 2-4 samples per class they differ by up
to sqrt(2). A class with a single sample on either side is never adapted per class (it has no
unbiased std), under either convention: it takes the global path above.
"""

from .base import MemoryBase
from .options import Option
from .registry import register
from .stats import grouped_transform
from .xbn import STD_CORRECTION


@register("pc_xbn")
class PerClassXBN(MemoryBase):
    TITLE = "PC-XBN"
    FAMILY = "per-class"
    COLOUR = "#882255"
    MARKER = "X"
    NORMALISING = True
    OPTIONS = {
        # thesis eq. 4.3: weights of a convex mix of batch and class statistics (table 5.14
        # sweeps both over 0..1); outside [0, 1] the mix extrapolates past both
        "lambda_mu": Option(float, 0.5, ge=0.0, le=1.0, why="a convex weight, thesis eq. 4.3"),
        "lambda_sigma": Option(float, 1.0, ge=0.0, le=1.0, why="a convex weight, thesis eq. 4.3"),
        "normalize_absent": Option(bool, True, why="global XBN for classes without statistics"),
        "std_correction": STD_CORRECTION,
    }

    def groups(self, labels, superclasses):
        return labels

    def adapt(
        self, memory, memory_labels, batch, batch_labels, memory_superclasses, batch_superclasses
    ):
        return grouped_transform(  # thesis eq. 4.3 / 4.4
            memory,
            self.groups(memory_labels, memory_superclasses),
            batch,
            self.groups(batch_labels, batch_superclasses),
            self.lambda_mu,
            self.lambda_sigma,
            self.normalize_absent,
            self.std_correction,
        )
