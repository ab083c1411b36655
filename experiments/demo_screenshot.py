"""Screenshot of `rar demo` for the README: start the demo on a run, hold a short conversation
in headless Chromium, save a small PNG.

    python experiments/demo_screenshot.py --run runs/quickstart --out docs/demo.png

Needs the `demo` extra and Debian's chromium + chromium-driver (see rar/demo/browser.py).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from rar.demo.browser import DemoPage, chromium_driver, free_port, start_demo, wait_for_http

TURNS = (
    'I loved "Heat" and The Dark Knight. What should I watch next?',
    "Something darker, like The Silence of the Lambs?",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="run directory or quickstart directory")
    parser.add_argument("--corpus", default=None)
    parser.add_argument("--out", default="docs/demo.png")
    parser.add_argument("--width", type=int, default=1100, help="width of the saved PNG")
    parser.add_argument("--turn", action="append", default=None, help="a user turn (repeatable)")
    parser.add_argument(
        "--draft",
        default='And "The Thing"?',
        help="typed but not sent: shows the chips and the did-you-mean choice",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rar-demo-shot-"))
    port = free_port()
    log = work / "demo.log"
    extra = ["--corpus", args.corpus] if args.corpus else []
    server = start_demo(
        ["--run", args.run, "--port", str(port), "--k", "5", *extra],
        cwd=Path.cwd(),
        log=log,
    )
    driver = None
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, server, timeout=600, log=log)
        driver = chromium_driver(width=1400, height=1750)
        page = DemoPage(driver, url)
        page.open()
        for n, text in enumerate(args.turn or TURNS, 1):
            page.type(text)
            page.wait_chips(1)
            page.send()
            page.wait_turn(n)
        if args.draft:
            page.type(args.draft)
            page.wait_chips(1)
        raw = page.screenshot(work / "raw.png")
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=30)

    from PIL import Image

    image = Image.open(raw).convert("RGB")
    height = round(image.height * args.width / image.width)
    image = image.resize((args.width, height), Image.LANCZOS)
    image = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, optimize=True)
    print(f"{out}: {out.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
