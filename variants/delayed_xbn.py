"""Delayed XBN: plain XBM for the first ``delay_epochs`` main-phase epochs, XBN after
(thesis 4.3.3).

Epochs are 0-based: with the default 15, epochs 0..14 are plain XBM and normalisation starts at
epoch 15, the first LR decay of the paper's schedule.
"""

from .registry import register
from .xbn import XBN


@register("delayed_xbn")
class DelayedXBN(XBN):
    TITLE = "Delayed XBN"
    COLOUR = "#e69f00"
    MARKER = "<"
    PROTOCOL_OPTIONS = frozenset({"delay_epochs"})
    DEFAULT_DELAY = 15
