"""The book's one figure style, so every chapter's plots read the same way.

Chapters call :func:`use_course_style` in their hidden preamble cell and then use
plain matplotlib. A reader who has learnt how one figure is laid out (where the
numbers are, which colour means "ours") can read every other figure without a
legend hunt, and a maintainer changes the look of the whole book in one place.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.container import BarContainer

# Okabe and Ito's palette: distinguishable under the common colour-vision
# deficiencies and in greyscale print. The first colour is the book's default, so a
# single-series figure always looks the same; comparisons take the next ones in order.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # green
    "#CC79A7",  # pink
    "#56B4E9",  # sky blue
    "#D55E00",  # vermilion
    "#F0E442",  # yellow
    "#000000",  # black
)


def use_course_style() -> None:
    """Set matplotlib's defaults to the book's style for the rest of the session.

    Sizes are chosen for figures read on a laptop screen at the book's text width:
    labels as large as the body text, no top and right frame lines (they carry no
    data), a faint grid to read values off, and a layout engine that keeps long tick
    labels from being cut off.
    """
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 3.6),
            "figure.dpi": 110,
            "savefig.dpi": 150,
            "figure.constrained_layout.use": True,
            "font.size": 11,
            "axes.titlesize": 12,
            "axes.titleweight": "bold",
            "axes.titlelocation": "left",
            "axes.labelsize": 11,
            "xtick.labelsize": 10,
            "ytick.labelsize": 10,
            "legend.fontsize": 10,
            "legend.frameon": False,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": "#DDDDDD",
            "grid.linewidth": 0.8,
            "axes.axisbelow": True,
            "axes.prop_cycle": mpl.cycler(color=PALETTE),
            "lines.linewidth": 2.0,
        }
    )


def bar(
    ax: Axes,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    fmt: str = "{:,.2f}",
    color: str | Sequence[str] = PALETTE[0],
    horizontal: bool = True,
) -> BarContainer:
    """Draw one bar per label and write each value at the end of its bar.

    Horizontal by default because the book's labels are phrases ("one month,
    partition filter"), which stay readable on the y axis instead of being rotated.
    The first label is drawn at the top, in reading order. Printing the value saves
    the reader from estimating it against a grid, which matters when the figure is
    the evidence for a claim in the text.
    """
    labels = list(labels)
    values = [float(v) for v in values]
    if len(labels) != len(values):
        raise ValueError(
            f"bar() got {len(labels)} labels but {len(values)} values; pass one value per label"
        )
    if horizontal:
        bars = ax.barh(labels, values, color=color)
        # Axes that share a y axis share its direction: invert it only once.
        if not ax.yaxis_inverted():
            ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
    else:
        bars = ax.bar(labels, values, color=color)
        ax.grid(axis="x", visible=False)
    ax.bar_label(bars, labels=[fmt.format(v) for v in values], padding=3, fontsize=10)
    # Leave room for the printed values past the longest bar.
    if horizontal:
        ax.margins(x=0.18)
    else:
        ax.margins(y=0.15)
    return bars
