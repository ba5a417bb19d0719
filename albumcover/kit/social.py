"""The social formats that announce a release: a 1080 x 1080 post and a 1080 x 1920 story, the
cover with the title, the artist and an optional release-date line set by the lettering engine.

The post is the cover itself, the title and artist lettered where its art is calm in its upper
part, the date line in a strip along the bottom. The story shows the same lettered cover clear of
the top and bottom 250 px (where Instagram and TikTok draw their own controls), on its blurred
backdrop, with the date line under it. Each text is lettered in its own area: they never overlap.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

from ..files import write_atomic
from ..release.export import srgb_profile
from ..release.lettering import letter_cover
from ..release.text import clean_text
from .compose import backdrop, check_cover_image, letter_line, lettered

POST = (1080, 1080)
STORY = (1080, 1920)
STORY_SAFE = 250  # px at the top and bottom of a story that the apps cover with their controls
STORY_COVER = 864  # px: the story's cover, 80 % of its width
DATE_STRIP = 200  # px: the post's bottom strip for the date line
JPEG_QUALITY = 92


def _texts(title, artist, date_line) -> tuple[str, str, str]:
    """The three texts checked as the lettering checks them (LetteringError names the field)."""
    return clean_text("title", title), clean_text("artist", artist), clean_text("date", date_line)


def render_post(
    cover: Image.Image, title: str = "", artist: str = "", date_line: str = ""
) -> Image.Image:
    """The 1080 x 1080 post (RGB): ``cover`` (square) with ``title`` and ``artist``, and
    ``date_line`` (e.g. "Out 1 May 2026") in a strip along the bottom when given."""
    title, artist, date_line = _texts(title, artist, date_line)
    cover = check_cover_image(cover)
    side = POST[0]
    if not date_line:
        return lettered(cover, side, title, artist)
    image = lettered(cover, side, "", "")
    upper = (0, 0, side, side - DATE_STRIP)
    if title or artist:
        image.paste(letter_cover(image.crop(upper), title, artist).image, (0, 0))
    return letter_line(image, (0, side - DATE_STRIP, side, side), date_line)


def render_story(
    cover: Image.Image, title: str = "", artist: str = "", date_line: str = ""
) -> Image.Image:
    """The 1080 x 1920 story (RGB): ``cover`` lettered with ``title`` and ``artist`` as the post
    is, 864 px wide below the top safe zone on its blurred backdrop, ``date_line`` under it."""
    title, artist, date_line = _texts(title, artist, date_line)
    cover = check_cover_image(cover)
    width, height = STORY
    image = backdrop(cover, STORY)
    top = STORY_SAFE + 20
    image.paste(lettered(cover, STORY_COVER, title, artist), ((width - STORY_COVER) // 2, top))
    # the date line's area: under the cover, above the bottom safe zone, as tall as it is wide
    # enough for the lettering's sizes (relative to the area's short side) to read
    below = top + STORY_COVER + 20
    return letter_line(image, (0, below, width, height - STORY_SAFE), date_line)


def save_jpeg(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write ``image`` as a baseline sRGB JPEG (quality :data:`JPEG_QUALITY`, 4:4:4 so coloured
    lettering stays crisp), atomically; returns the path."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, subsampling=0, icc_profile=srgb_profile())
    write_atomic(path, buffer.getvalue())
    return Path(path)
