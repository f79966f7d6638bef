"""Screenshot a page of the built documentation site in headless Chromium (playwright + Debian's chromium).

    mkdocs build --strict && python scripts/make_docs_screenshot.py site/learn/albert/index.html docs/learn_page.png

Waits until KaTeX has typeset the equations (when the page has any), then captures the top
`--height` pixels of the page. Needs the [test] extra (playwright) and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("page", type=Path, help="an HTML file of the built site")
    parser.add_argument("output", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1500)
    parser.add_argument("--height", type=int, default=2200)
    parser.add_argument("--anchor", default=None, help="the id of a heading to scroll to first")
    parser.add_argument("--browser", default="/usr/bin/chromium")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.browser, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.page.resolve().as_uri())
        page.wait_for_load_state("load")
        if page.locator(".arithmatex").count():  # equations on the page: wait until KaTeX has typeset them
            page.wait_for_selector(".katex", timeout=30_000)
        if args.anchor:
            page.evaluate("id => document.getElementById(id).scrollIntoView()", args.anchor)
            page.wait_for_timeout(300)
        page.screenshot(path=str(args.output), full_page=False)
        browser.close()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
