"""Refresh the screenshots in docs/: the compare report of `initlab demo` and the doctor's page,
as headless Chromium shows them at 1280 px (the top of each page: the verdict and what follows).

    python scripts/make_screenshots.py            # writes docs/compare-report.png, docs/doctor-page.png

Needs Debian's chromium + chromium-driver and selenium (pip install '.[browser]'). The runs go to
a temporary folder; nothing under runs/ is touched.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 1280


def driver(height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chrome = shutil.which("chromium") or shutil.which("google-chrome")
    drv_bin = shutil.which("chromedriver")
    if not chrome or not drv_bin:
        sys.exit("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              f"--window-size={WIDTH},{height}"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(drv_bin), options=opts)


def shoot(html: Path, png: Path, height: int) -> None:
    drv = driver(height)
    try:
        drv.set_window_size(WIDTH, height)
        drv.get(html.resolve().as_uri())
        drv.save_screenshot(str(png))
    finally:
        drv.quit()
    print(f"wrote {png.relative_to(ROOT)}")


def compare_page(tmp: Path) -> Path:
    from initlab.cli import main

    out = tmp / "demo"
    if main(["demo", "--out", str(out), "--quiet"]) != 0:
        sys.exit("initlab demo failed")
    return out / "report.html"


def doctor_page(tmp: Path) -> Path:
    import torch
    from torch import nn

    import initlab
    from initlab.diagnostics.html import write_doctor_html

    # the demo's network under PyTorch's default init: the doctor's classic finding
    model = nn.Sequential(*[m for _ in range(10) for m in (nn.Linear(64, 64), nn.Tanh())],
                          nn.Linear(64, 10))
    initlab.apply(model, "torch_default", seed=0)
    batch = torch.randn(512, 64, generator=torch.Generator().manual_seed(0))
    report = initlab.doctor(model, batch)
    return write_doctor_html(report, tmp / "doctor.html",
                             command="initlab doctor models.py:build --input-shape 64 "
                                     "--html doctor.html")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--height", type=int, default=1500, help="pixels of each page captured")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        shoot(compare_page(tmp), ROOT / "docs" / "compare-report.png", args.height)
        shoot(doctor_page(tmp), ROOT / "docs" / "doctor-page.png", args.height)


if __name__ == "__main__":
    main()
