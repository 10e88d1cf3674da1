"""Draw Figure 1 of Tensor Programs V from a finished ``initlab reproduce mup-transfer`` run:
``python scripts/make_mup_figure.py runs/mup-transfer-full docs/mup-transfer.png``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from initlab.lab.reproductions.mup_transfer import figure


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    results = json.loads((Path(argv[0]) / "results.json").read_text())["results"]
    fig = figure(results)
    fig.savefig(argv[1], dpi=90, bbox_inches="tight")
    print(f"written {argv[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
