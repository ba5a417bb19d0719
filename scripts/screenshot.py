"""Take docs/images/app.png: the app as a user sees it after Analyze.

Offline: the app serves a tiny random image model (tests/tiny_models.py; Analyze does not paint)
and hears the shared 30 s clip (../shared/audio/) with the real Musicnn taggers; Debian's
Chromium, driven by playwright, uploads it, fills in the form and presses Analyze.

    .venv/bin/python scripts/screenshot.py [--out PNG] [--width 1280] [--height 1280]
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import tiny_models  # noqa: E402
from tests.app_server import AppServer  # noqa: E402

# The prompt's words as whole tokens, as CLIP's real vocabulary has them: the tiny tokenizer
# spells any other word byte by byte and would cut the prompt short, which SD 1.5 does not.
PROMPT_WORDS = (
    "blues", "titled", "night", "drive", "released", "ana", "following", "guitar", "piano",
    "fast", "country", "classical", "strings", "vocals", "vocal", "solo", "drums", "no",
)  # fmt: skip

TIMEOUT_MS = 300_000
CLIP = ROOT.parent / "shared" / "audio" / "TRWJAZW128F42760DD_test.mp3"  # as in tests/conftest.py
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package, as in tests/space/test_browser.py
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "app.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1280, help="crop the page to this height")
    args = parser.parse_args()

    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory(prefix="albumcover-screenshot-") as tmp:
        tmp = Path(tmp)
        tiny_models.WHOLE_WORDS += PROMPT_WORDS
        model = tiny_models.save_tiny_sd(tmp / "tiny_sd")
        env = dict(
            ALBUMCOVER_MODEL=str(model),
            ALBUMCOVER_IMAGE_SIZE=str(tiny_models.IMAGE_SIZE),
            XDG_CACHE_HOME=str(tmp / "cache"),
        )
        with AppServer(tmp, **env) as server, sync_playwright() as p:
            server.wait()
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": args.width, "height": args.height})
                page.set_default_timeout(TIMEOUT_MS)
                page.goto(server.url)
                page.locator("#song input[type=file]").set_input_files(str(CLIP))
                page.locator("#title").get_by_role("textbox").fill("Night Drive")
                page.locator("#artist").get_by_role("textbox").fill("Ana")
                page.get_by_label("Release date").fill("2024")
                page.locator("#analyze").click()
                prompt = page.locator("#prompt").get_by_role("textbox")
                expect(prompt).to_have_value(re.compile("Night Drive"), timeout=TIMEOUT_MS)
                page.wait_for_timeout(1500)  # let the taggram image fade in
                png = page.screenshot(full_page=True)
            finally:
                browser.close()

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.crop((0, 0, image.width, min(image.height, args.height)))
    image = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT)  # a small PNG
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    print(f"{args.out}: {image.width} x {image.height}, {args.out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
