"""One colour (and one marker) per initialization, the same in every figure and every report.

The colours are Okabe & Ito's colour-blind-safe palette ("Color Universal Design", 2008; also
Wong, "Points of view: Color blindness", Nature Methods 8, 441, 2011), with its yellow darkened
for contrast on white. Known plan names have a fixed colour; other names take the unused colours
in the order given (so a figure with the same set of names always looks the same). A marker per
init doubles the distinction for grey-scale prints.

>>> init_colors(["glorot", "he"])["he"]
'#D55E00'
"""

from __future__ import annotations

# Okabe-Ito (hex), yellow F0E442 darkened to B8A800 for lines on white
BLUE, VERMILLION, GREEN, PURPLE, ORANGE, SKY, BLACK, YELLOW = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#B8A800")
GREY = "#7F7F7F"
PALETTE = (BLUE, VERMILLION, GREEN, PURPLE, ORANGE, SKY, BLACK, YELLOW, GREY)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h")

# plan / init name -> colour. Aliases of one initializer share its colour.
FIXED = {
    "torch_default": GREY, "nielsen_default": GREY,
    "glorot": BLUE, "xavier": BLUE, "xavier_uniform": BLUE, "xavier_normal": BLUE,
    "he": VERMILLION, "kaiming": VERMILLION, "he_normal": VERMILLION, "kaiming_normal": VERMILLION,
    "orthogonal": GREEN,
    "lsuv": PURPLE,
    "critical": ORANGE,
    "lecun": SKY, "small_normal": SKY,
    "zeros": BLACK,
    "large": YELLOW, "nielsen_large": YELLOW,
    "auto": GREEN,
}
# sequential colormap for heatmaps and layer-by-depth curves (perceptually uniform, CVD-safe)
SEQUENTIAL = "cividis"
LAYER_CMAP = "viridis"


def init_colors(names) -> dict[str, str]:
    """``{name: colour}`` for ``names``: the fixed colour of known names, distinct unused
    palette colours (in order) for the others."""
    names = list(dict.fromkeys(names))
    out: dict[str, str] = {}
    used = set()
    for n in names:
        c = FIXED.get(n)
        if c is not None and c not in used:
            out[n] = c
            used.add(c)
    free = [c for c in PALETTE if c not in used]
    for n in names:
        if n not in out:
            out[n] = free.pop(0) if free else PALETTE[len(out) % len(PALETTE)]
    return out


def init_markers(names) -> dict[str, str]:
    """``{name: marker}``, paired with :func:`init_colors`."""
    colors = init_colors(names)
    return {n: MARKERS[PALETTE.index(c) % len(MARKERS)] if c in PALETTE else "o"
            for n, c in colors.items()}
