"""Take the app's screenshots in docs/images/: a visitor's first click on a song to click.

Offline: the app serves a tiny random image model (tests/tiny_models.py: its covers are noise at
64 px, shown enlarged) and a local source of songs to click (tests/example_songs.py: the shared
30 s clip of ../shared/audio/ and a synthetic song), heard by the real Musicnn taggers; Debian's
Chromium, driven by playwright, clicks the first song and waits for its lettered cover. Then:

    app.png        the first screen at 1280 x 800 (what a visitor sees without scrolling)
    app-full.png   the whole page at 1280 px wide
    app-phone.png  the whole page at 390 px wide (a phone)

    .venv/bin/python scripts/screenshot.py [--out-dir docs/images]
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
from tests.example_songs import write_example_source  # noqa: E402

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


SHOTS = (  # file, viewport width, height, whole page
    ("app.png", 1280, 800, False),
    ("app-full.png", 1280, 800, True),
    ("app-phone.png", 390, 844, True),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="albumcover-screenshot-") as tmp:
        tmp = Path(tmp)
        tiny_models.WHOLE_WORDS += PROMPT_WORDS
        model = tiny_models.save_tiny_sd(tmp / "tiny_sd")
        env = dict(
            ALBUMCOVER_MODEL=str(model),
            ALBUMCOVER_IMAGE_SIZE=str(tiny_models.IMAGE_SIZE),
            ALBUMCOVER_EXAMPLES=str(write_example_source(tmp / "songs", CLIP)),
            XDG_CACHE_HOME=str(tmp / "cache"),
        )
        with AppServer(tmp, **env) as server, sync_playwright() as p:
            server.wait()
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                for name, width, height, full in SHOTS:
                    png = shoot(browser, server.url, width, height, full)
                    save(png, args.out_dir / name)
            finally:
                browser.close()


def shoot(browser, url: str, width: int, height: int, full: bool) -> bytes:
    """The page at ``width`` x ``height`` after clicking the first song to click."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.locator("#song").scroll_into_view_if_needed()
    page.get_by_text("blues rock: Night Drive").click()
    prompt = page.locator("#prompt").get_by_role("textbox")
    expect(prompt).to_have_value(re.compile("Night Drive"), timeout=TIMEOUT_MS)
    expect(page.locator("#lettered img")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(page.locator("#letter-info")).to_contain_text("contrast", timeout=TIMEOUT_MS)
    # lazy images load once scrolled to
    page.locator("#lettered img").scroll_into_view_if_needed()
    page.locator("#gallery img").first.scroll_into_view_if_needed()
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(1500)  # let the images fade in
    png = page.screenshot(full_page=full)
    page.close()
    return png


def save(png: bytes, out: Path) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT)  # a small PNG
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, optimize=True)
    print(f"{out}: {image.width} x {image.height}, {out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
