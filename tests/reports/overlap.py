"""Texts of a drawn figure that overlap each other or leave the canvas (for every figure test)."""

from __future__ import annotations

import itertools

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text


def _drawn_texts(fig):
    """(text, window extent) of every non-empty text that is drawn; tick labels outside the
    axis limits or on a switched-off panel are laid out but not drawn, so they are left out."""
    FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    hidden = set()
    for ax in fig.axes:
        if not ax.axison:  # an unused panel: nothing of its axes is drawn
            hidden |= {id(t) for t in ax.get_xticklabels() + ax.get_yticklabels()}
            continue
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        hidden |= {id(t) for t in ax.get_xticklabels() if not x0 <= t.get_position()[0] <= x1}
        hidden |= {id(t) for t in ax.get_yticklabels() if not y0 <= t.get_position()[1] <= y1}
    texts = [
        t for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and id(t) not in hidden
    ]  # fmt: skip
    return [(t.get_text(), t.get_window_extent(renderer)) for t in texts]


def text_overlaps(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes overlap, and (text, "outside") for a text that leaves
    the canvas; [] for a readable figure."""
    boxes = _drawn_texts(fig)
    bad = [
        (a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2)
        if ba.width and bb.width and ba.overlaps(bb)
    ]  # fmt: skip
    width, height = fig.bbox.width, fig.bbox.height
    bad += [
        (t, "outside") for t, box in boxes
        if box.x0 < 0 or box.x1 > width + 1 or box.y0 < 0 or box.y1 > height + 1
    ]  # fmt: skip
    return bad
