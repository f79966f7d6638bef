"""Make the README's "See inside" pictures from a real run of `minialbert inspect` on the demo checkpoint.

    python scripts/make_inspect_screenshot.py [DIR]      # default: docs/ (the README's pictures)

1. writes the random-weight demo checkpoint (scripts/make_demo_checkpoint.py: albert-base-v2's
   shape with a 6,000-piece vocabulary, one layer shared by 12 calls) and, for the comparison, the same shape with
   sharing="none" (12 separate layers, same initialisation scheme);
2. runs the inspect report on one sentence, overlaying the unshared model's Figure 1;
3. opens report.html in headless Chromium (playwright + Debian's /usr/bin/chromium) and
   screenshots its attention section (grid and large view): docs/inspect_report.png; copies the matplotlib Figure 1 to
   docs/inspect_figure1.png. Prints the Figure 1 numbers.

Needs no network. Both models have random weights: the pictures show what the tool draws,
not what a trained ALBERT does.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = "The quick brown fox jumps over the lazy dog."
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def unshared_twin(demo: Path, out: Path) -> None:
    """The demo's shape with 12 separate layers, initialised like make_demo_checkpoint.py does."""
    import torch

    import minialbert

    config = minialbert.AlbertConfig.from_json(demo / "config.json").replace(sharing="none")
    torch.manual_seed(0)
    model = minialbert.AlbertForPreTraining(config)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, config.initializer_range)
    model.save_pretrained(out)
    shutil.copy(demo / "spiece.model", out / "spiece.model")


def screenshot(html: Path, png: Path) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1200, "height": 900}, device_scale_factor=1)
        try:
            page = context.new_page()
            page.goto(html.as_uri())
            page.wait_for_function("document.querySelectorAll('#grid canvas.cell').length > 0")
            page.locator("#grid canvas.cell").nth(5 * 12 + 3).click()  # open layer call 6, head 3 below
            page.locator("#lines-left span").nth(4).hover()  # one query token's lines, highlighted
            # page coordinates (the click scrolled the page): from the attention heading to the large view's end
            top, bottom = page.evaluate("""() => {
                const y = (el) => el.getBoundingClientRect().top + window.scrollY;
                const big = document.querySelector('.big');
                return [y(document.getElementById('attention')) - 8, y(big) + big.getBoundingClientRect().height + 8];
            }""")
            page.screenshot(path=str(png), full_page=True, clip={"x": 0, "y": top, "width": 1200, "height": bottom - top})
        finally:
            context.close()
    from PIL import Image  # comes with matplotlib; a 256-colour palette makes the PNG about half as big

    Image.open(png).convert("RGB").quantize(colors=256).save(png, optimize=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("docs", nargs="?", default=str(ROOT / "docs"), metavar="DIR",
                    help="where inspect_report.png and inspect_figure1.png go (default: %(default)s)")
    docs = Path(ap.parse_args(argv).docs)
    sys.path.insert(0, str(ROOT))  # run from a checkout
    from minialbert.inspect import make_report

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        demo, unshared = tmp / "demo-albert", tmp / "demo-albert-unshared"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_checkpoint.py"), str(demo)], check=True)
        unshared_twin(demo, unshared)
        report, _ = make_report(str(demo), TEXT, tmp / "report", name="demo-albert (1 layer, 12 calls)",
                                compare={"same shape, sharing=none (12 layers)": str(unshared)})
        docs.mkdir(parents=True, exist_ok=True)
        screenshot(tmp / "report" / "report.html", docs / "inspect_report.png")
        shutil.copyfile(tmp / "report" / "figure1.png", docs / "inspect_figure1.png")
        for f in [report.figure1, *report.compare]:
            print(f.model)
            print("  l2:   ", " ".join(f"{v:.2f}" for v in f.l2))
            print("  angle:", " ".join(f"{v:.2f}" for v in f.angle))
    print(f"wrote {docs / 'inspect_report.png'} and {docs / 'inspect_figure1.png'}")


if __name__ == "__main__":
    main()
