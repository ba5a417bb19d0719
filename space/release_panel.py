"""The release panel: letter the chosen cover, export it at 3000 px, check it, and write it
into the song. UI wiring only (the work is in albumcover.release and albumcover.songfile).

Named API endpoints: ``/letter`` (a fast preview), ``/export`` (the distributor file and its
check report) and ``/embed`` (the song with the cover). Their values are checked by
:mod:`space.checks` like every other endpoint's; the lettering and export fields follow the
library's rules and say them as the library does, so a field gets the same message from the app
and from the CLI.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from albumcover.images import MAX_PIXELS, ImageError, read_image
from albumcover.release.check import check_cover
from albumcover.release.export import (
    DEFAULT_SIZE,
    FORMATS,
    MAX_EXPORT_SIZE,
    MIN_EXPORT_SIZE,
    ExportSettings,
    export_cover,
)
from albumcover.release.fonts import FONT_NAMES
from albumcover.release.lettering import LAYOUTS, letter_cover, parse_color
from albumcover.songfile.embed import embed_cover
from albumcover.songfile.tags import SongFileError

from . import checks, memory
from .checks import refuse

log = logging.getLogger("albumcover.app")

PREVIEW_SIZE = 1024  # pixels: the preview is lettered at this size (relative layout, same look)
UPSCALE_GPU_SECONDS = 60  # what ZeroGPU reserves for an export with the diffusion upscaler


def _option(allowed: tuple[str, ...]) -> checks.Rule:
    """A lettering or export option: one of ``allowed``, null for the first (the default)."""

    def check(field: str, value):
        if value is None:
            return allowed[0]
        if not isinstance(value, str) or value not in allowed:
            raise refuse(f"{field} must be one of {', '.join(allowed)}; got {value!r}")
        return value

    return check


def _color(field: str, value) -> str:
    """A colour as the lettering takes it (null: auto); anything but text is read as its text,
    as gradio's Textbox would, so the message is the lettering's own."""
    value = "auto" if value is None else value if isinstance(value, str) else str(value)
    try:
        parse_color(value)
    except ValueError as e:
        raise refuse(str(e)) from e
    return value


def _export_size(field: str, value) -> int:
    """Pixels per side; typed sizes come as text (the Dropdown takes custom values)."""
    rule = f"{field} must be a whole number of pixels in [{MIN_EXPORT_SIZE}, {MAX_EXPORT_SIZE}]"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        raise refuse(f"{rule}; got {value!r}")
    if not math.isfinite(value) or value != int(value):
        raise refuse(f"{rule}; got {value!r}")
    if not MIN_EXPORT_SIZE <= value <= MAX_EXPORT_SIZE:
        raise refuse(f"{rule}; got {value!r}")
    return int(value)


def _open(cover: str | None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The chosen cover file through the one decoder (as the CLI's --image and the library read
    it), within the pixel budget; a refusal names the upload (not the server's path)."""
    if cover is None:
        raise refuse(
            "cover: choose a cover first (Generate, then pick one in the gallery, or upload one)"
        )
    try:
        return read_image(cover, max_pixels=max_pixels, name=f"cover {Path(cover).name}")
    except ImageError as e:
        raise refuse(str(e)) from e


def _details(done) -> dict:
    return {
        "layout": done.layout,
        "font": done.font,
        "color": "#{:02x}{:02x}{:02x}".format(*done.color),
        "contrast": done.contrast,
        "backing": done.backing,
        "title_size": done.title_size,
        "artist_size": done.artist_size,
        "dropped": done.dropped,
    }


# colour words for the lettering's details: the nearest of these (sRGB), said as a musician would
_COLOR_WORDS = {
    "white": (255, 255, 255), "light grey": (192, 192, 192), "grey": (128, 128, 128),
    "dark grey": (64, 64, 64), "black": (0, 0, 0), "red": (220, 40, 40),
    "dark red": (130, 20, 20), "orange": (240, 140, 30), "yellow": (240, 220, 50),
    "cream": (245, 235, 200), "green": (50, 170, 70), "dark green": (20, 90, 40),
    "teal": (30, 150, 150), "light blue": (140, 190, 240), "blue": (40, 90, 220),
    "navy": (20, 30, 100), "purple": (130, 50, 170), "pink": (240, 130, 190),
    "brown": (120, 75, 40), "beige": (215, 195, 160),
}  # fmt: skip
_BACKING_WORDS = {
    "band": "on a translucent band",
    "blurred band": "on a blurred, translucent band",
    "outline": "with an outline",
    "none": "straight on the picture",
}


def color_word(hex_color: str) -> str:
    """The nearest colour word for ``#rrggbb`` (e.g. "white", "dark red")."""
    rgb = tuple(int(hex_color.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return min(_COLOR_WORDS, key=lambda w: math.dist(_COLOR_WORDS[w], rgb))


def describe_lettering(details: dict | None) -> str:
    """The lettering's details in words, for the page: "bottom, serif, white on a translucent
    band, contrast 6.1:1 (readable from 4.5:1)", plus the font sizes and any left-out characters."""
    if not details:
        return ""
    color = details.get("color", "#ffffff")
    backing = _BACKING_WORDS.get(details.get("backing"), details.get("backing"))
    words = (
        f"**Lettering:** {details.get('layout')}, {details.get('font')}, "
        f"{color_word(color)} ({color}) {backing}, "
        f"contrast {details.get('contrast', 0):.1f}:1 (readable from 4.5:1)"
    )
    if details.get("title_size"):
        words += f"; title {details['title_size']} px, artist {details.get('artist_size')} px"
    words += " at 1024 px."
    if details.get("dropped"):
        words += f" No installed font has “{details['dropped']}”: left out."
    return words


@dataclass
class ReleasePanel:
    """What :func:`build_release_panel` built that the page reuses: ``letter`` (the /letter
    handler: cover file or file object, title, artist -> lettered image, details) and
    ``outputs``, the components a finished example fills (cover, lettering title and artist,
    preview, details, details in words)."""

    letter: Callable
    outputs: list


def file_stem(text: str, fallback: str) -> str:
    """A served file's name from user ``text`` (a title, an upload's name): word characters,
    hyphens and spaces only, at most 80 of them; ``fallback`` when nothing is left."""
    stem = re.sub(r"[^\w\- ]+", "", text).strip()[:80]
    return stem or fallback


def picked_cover(images, evt: gr.SelectData):
    """The gallery item the user clicked (its image, without the caption), for a cover input;
    no change when nothing is picked."""
    if not images or evt.index is None:
        return gr.update()
    item = images[evt.index]
    return item[0] if isinstance(item, (tuple, list)) else item


def _served(component: gr.components.Component, path: Path) -> str:
    """``path`` copied into gradio's cache as ``component``'s file, which the page's
    ``delete_cache`` sweeps (and deletes at shutdown); the caller deletes its own copy."""
    return component.move_resource_to_block_cache(path)


def build_release_panel(
    *,
    audio,
    title,
    artist,
    gallery,
    generated,
    upscaler=None,
    gpu=None,
    max_pixels: int = MAX_PIXELS,
):
    """Add the release panel to the open Blocks. ``audio``, ``title``, ``artist``: the page's
    song fields (the song /embed writes into, the lettering's first title and artist);
    ``generated``: the Generate event (its ``.success`` picks the first painting); ``upscaler``: a
    DiffusionUpscaler or None (Lanczos); ``gpu``: ``spaces.GPU``-like, for the export when an
    upscaler runs on a GPU; ``max_pixels``: the pixel budget of a cover (and of the cover file
    /embed takes), read from its header before decoding.

    Nothing is kept per request outside gradio's cache: the export and the song with its cover
    are written in a temporary folder, copied into the cache (swept by the page's
    ``delete_cache``) and the folder removed before the handler returns."""

    def letter(cover, title, artist, layout="auto", font="auto", color="auto"):
        image = _open(cover, max_pixels)
        if image.size != (PREVIEW_SIZE, PREVIEW_SIZE) and image.width == image.height:
            image = image.resize((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.LANCZOS)
        try:
            done = letter_cover(image, title, artist, layout=layout, font=font, color=color)
        except ValueError as e:
            raise refuse(str(e)) from e
        return done.image, _details(done)

    def export(
        cover,
        title,
        artist,
        layout="auto",
        font="auto",
        color="auto",
        size=DEFAULT_SIZE,
        file_format="jpeg",
        progress=gr.Progress(),
    ):
        progress(0.1, desc=f"lettering and enlarging to {size} px")
        settings = ExportSettings(size=size, format=file_format)
        options = dict(title=title, artist=artist, layout=layout, font=font, color=color)
        try:
            image = _open(cover, max_pixels)
            result = export_cover(image, settings=settings, upscaler=upscaler, **options)
        except ValueError as e:
            raise refuse(str(e)) from e
        del image
        name = f"{file_stem(title, 'cover')}{result.suffix}"
        progress(0.8, desc="checking it against the stores' rules")
        report = check_cover(result.data, max_bytes=settings.max_bytes, name=name)
        with tempfile.TemporaryDirectory(prefix="albumcover-export-") as folder:
            served = _served(export_file, result.save(Path(folder) / name))
        lines = [report.summary(), f"upscaler: {result.upscaler}"]
        if result.lettering is not None:
            done = result.lettering
            lines.append(
                f"lettering: {done.layout}, {done.font}, contrast {done.contrast:.1f}:1"
                + (f" ({done.backing})" if done.backing != "none" else "")
            )
            if done.dropped:
                lines.append(f"no installed font has {done.dropped!r}: left out")
        log.info("export %s: %s", name, "pass" if report.passed else "fail")
        return served, "\n".join(lines)

    def embed(song, cover_file):
        if not song:
            raise refuse("song: upload the song to write the cover into (mp3, flac, m4a, ...)")
        if not cover_file:
            raise refuse("cover_file: press Export first (or send a JPEG/PNG cover file)")
        source, cover = Path(song), Path(cover_file)
        with tempfile.TemporaryDirectory(prefix="albumcover-song-") as folder:
            out = Path(folder) / source.name
            try:  # a copy: the upload is never modified
                embed_cover(source, cover, out, max_pixels=max_pixels)
            except SongFileError as e:  # say the uploads' names, not the server's temp paths
                message = str(e).replace(str(source.parent) + "/", "")
                raise refuse(message.replace(str(cover.parent) + "/", "")) from e
            return _served(song_file, out)

    if gpu is not None and upscaler is not None:
        export = gpu(duration=UPSCALE_GPU_SECONDS)(export)
    # all three decode images (and /embed a song): at most memory.IMAGE_SLOTS run at once, and
    # freed memory goes back after each request
    letter, export, embed = (
        memory.release_after(memory.bounded(fn)) for fn in (letter, export, embed)
    )

    with gr.Accordion("Release: lettering, 3000-px export, the cover in the song", open=True):
        with gr.Row():
            with gr.Column(min_width=240):
                # the file as uploaded (ICC profile, 16 bits, CMYK...), undecoded: the handlers
                # read it with the one decoder, within the pixel budget
                chosen = gr.Image(
                    type="filepath",
                    label="Cover to release (click one above, or upload)",
                    sources=["upload"],
                    height=260,
                    elem_id="chosen",
                )
                checks.uploaded_path(chosen)
                with gr.Row():
                    letter_title = gr.Textbox(label="Title on the cover", elem_id="letter-title")
                    letter_artist = gr.Textbox(label="Artist on the cover", elem_id="letter-artist")
                with gr.Row():
                    layout = gr.Dropdown(list(LAYOUTS), value="auto", label="Layout")
                    font = gr.Dropdown(list(FONT_NAMES), value="auto", label="Font")
                    color = gr.Textbox("auto", label="Colour (auto, #rrggbb, a name)")
                letter_btn = gr.Button("Letter the cover", elem_id="letter")
            with gr.Column(min_width=240):
                preview = gr.Image(
                    label="Lettered preview",
                    format="png",
                    interactive=False,
                    height=260,
                    elem_id="lettered",
                )
                words = gr.Markdown(elem_id="letter-info")
                # the /letter API's second value (a dict); the page shows it in words above
                details = gr.JSON(label="Lettering", visible=False, elem_id="letter-details")
        with gr.Row():
            size = gr.Dropdown(
                [DEFAULT_SIZE, 2000, 1400, MIN_EXPORT_SIZE],
                value=DEFAULT_SIZE,
                label="Export size (px)",
                allow_custom_value=True,  # any size in range, typed
            )
            file_format = gr.Dropdown(list(FORMATS), value="jpeg", label="Format")
        with gr.Row():
            export_btn = gr.Button("Export for release", variant="primary", elem_id="export")
            embed_btn = gr.Button("Put the cover in the song", elem_id="embed")
        with gr.Row():
            export_file = gr.File(
                label="Export (the cover file)", interactive=False, height=90, elem_id="export-file"
            )
            checks.uploaded_path(export_file)  # /embed's cover file: its path, no temp copy
            song_file = gr.File(
                label="Song with the cover", interactive=False, height=90, elem_id="song-file"
            )
        report = gr.Textbox(
            label="Distributor check", lines=5, interactive=False, elem_id="check-report"
        )
    # the library's rules for these fields, said as the library says them
    checks.rule(layout, _option(LAYOUTS))
    checks.rule(font, _option(FONT_NAMES))
    checks.rule(color, _color)
    checks.rule(size, _export_size)
    checks.rule(file_format, _option(FORMATS))

    lettering = [chosen, letter_title, letter_artist, layout, font, color]
    letter_btn.click(letter, lettering, [preview, details], api_name="letter")
    # re-letter on every choice, without repainting (private: /letter is the API)
    for control in (layout, font):
        control.change(letter, lettering, [preview, details], api_visibility="private")
    for box in (letter_title, letter_artist, color):
        box.submit(letter, lettering, [preview, details], api_visibility="private")
    export_btn.click(
        export, [*lettering, size, file_format], [export_file, report], api_name="export"
    )
    embed_btn.click(embed, [audio, export_file], song_file, api_name="embed")

    gallery.select(picked_cover, gallery, chosen, api_visibility="private")

    def first(images, title_text, artist_text):
        image = images[0] if images else None
        image = image[0] if isinstance(image, (tuple, list)) else image
        return image, title_text, artist_text

    picked = generated.success(
        first,
        [gallery, title, artist],
        [chosen, letter_title, letter_artist],
        api_visibility="private",
    )
    picked.success(letter, lettering, [preview, details], api_visibility="private")
    details.change(describe_lettering, details, words, api_visibility="private", queue=False)
    return ReleasePanel(letter, [chosen, letter_title, letter_artist, preview, details, words])
