"""Render the fairness report of a small synthetic population and screenshot it headless.

Why: a report a regulator signs must be checked by eye as rendered (overlapping
labels, legends over bars, tables running off the page), which no unit test sees.

    python scripts/report_screenshots.py [OUT_DIR]     # or: make report-screenshots

Needs a headless Chromium (Debian: ``apt-get install chromium``; Chinese text in the
page needs a CJK font, ``apt-get install fonts-noto-cjk``). Writes ``fairness.html``
and ``fairness.png`` (1280 px wide, full page) into OUT_DIR (default
``reports/screenshots``) and prints their paths.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("no headless Chromium found: apt-get install chromium (Debian/Ubuntu)")


def screenshot(html: Path, png: Path, height: int) -> Path:
    """Full-width screenshot of a local HTML file (no network, no GPU, no sandbox)."""
    cmd = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--hide-scrollbars", f"--screenshot={png}", f"--window-size=1280,{height}", html.resolve().as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return png


def main(out_dir: str = "reports/screenshots") -> None:
    from village_credit.data import GeneratorConfig, generate_households
    from village_credit.fairness.report import run_fairness

    out = Path(out_dir)
    hh = generate_households(GeneratorConfig(n_households=3000, seed=7))
    from village_credit.registry import data_fingerprint

    identity = {"model": "jinxiang_2022_no_age_cutoff (rules, screenshot example)", "version": "none",
                "run_id": "none", "data_fingerprint": data_fingerprint(hh)}
    res = run_fairness(hh, policies=("jinxiang_2022", "jinxiang_2022_no_age_cutoff"), out_dir=out,
                       n_boot=50, seed=7, min_count=30, identity=identity)
    html = Path(res["html"])
    # the page is long: several viewport-high slices are easier to read than one strip
    for i, height in enumerate((2000, 9000)):
        print(screenshot(html, out / f"fairness_{i}.png", height))
    print(html)


if __name__ == "__main__":
    main(*sys.argv[1:2])
