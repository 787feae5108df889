"""SC-XBN: PC-XBN at the superclass level (thesis 4.3.2, eq. 4.4), same lambdas.

Needs ``superclasses=`` on every call; the memory keeps them in ``superclass_memory``. Where a
dataset has no superclass labels the trainer supplies k-means superclasses (thesis 6.1.1).
"""

from .pc_xbn import PerClassXBN
from .registry import register


@register("sc_xbn")
class SuperClassXBN(PerClassXBN):
    TITLE = "SC-XBN"
    COLOUR = "#999933"
    MARKER = "*"
    NEEDS_SUPERCLASS = True

    def groups(self, labels, superclasses):
        return superclasses
