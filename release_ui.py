"""The app's release panel: letter the chosen cover, export it at 3000 px, check it, and write it
into the song. UI wiring only (the work is in albumcover.release and albumcover.songfile); kept
beside app.py so app.py stays a thin page.

Named API endpoints (documented in the README): ``/letter`` (a fast preview), ``/export`` (the
distributor file and its check report) and ``/embed`` (the song with the cover). Every field is
validated here, and a bad value gets a message naming the field and what is allowed.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from pathlib import Path

import gradio as gr
from PIL import Image

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

log = logging.getLogger("albumcover.app")

PREVIEW_SIZE = 1024  # pixels: the preview is lettered at this size (relative layout, same look)


def _error(message: str) -> gr.Error:
    return gr.Error(message, print_exception=False)


def _naming_unreadable(component, field: str):
    """Make an upload PIL cannot open an error that names ``field``: gradio's own preprocessing
    raises a bare PIL exception there, which clients see as an anonymous failure. (Wrapping the
    instance's method, not subclassing: gradio writes a .pyi beside any module that subclasses
    a component.)"""
    original = component.preprocess

    def preprocess(payload):
        try:
            return original(payload)
        except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for broken files
            raise _error(f"{field}: not a readable image ({e})") from e

    component.preprocess = preprocess
    return component


def _image(cover) -> Image.Image:
    if cover is None:
        raise _error(
            "cover: choose a cover first (Generate, then pick one in the gallery, or upload one)"
        )
    if isinstance(cover, (str, Path)):
        try:
            with Image.open(cover) as image:
                image.load()
                return image.copy()
        except OSError as e:
            raise _error(f"cover: not a readable image ({e})") from e
    if not isinstance(cover, Image.Image):
        raise _error(f"cover must be an image, got {type(cover).__name__}")
    return cover


def _text(name: str, value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _error(f"{name} must be text, got {type(value).__name__} {value!r}")
    return value


def _pick(name: str, value, allowed) -> str:
    if value is None:
        value = allowed[0]
    if not isinstance(value, str) or value not in allowed:
        raise _error(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _size(value) -> int:
    rule = f"size must be a whole number of pixels in [{MIN_EXPORT_SIZE}, {MAX_EXPORT_SIZE}]"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _error(f"{rule}; got {value!r}")
    if not math.isfinite(value) or value != int(value):
        raise _error(f"{rule}; got {value!r}")
    if not MIN_EXPORT_SIZE <= value <= MAX_EXPORT_SIZE:
        raise _error(f"{rule}; got {value!r}")
    return int(value)


def _options(title, artist, layout, font, color) -> dict:
    options = dict(
        title=_text("title", title),
        artist=_text("artist", artist),
        layout=_pick("layout", layout, LAYOUTS),
        font=_pick("font", font, FONT_NAMES),
        color="auto" if color is None else _text("color", color),
    )
    try:
        parse_color(options["color"])
    except ValueError as e:
        raise _error(str(e)) from e
    return options


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


def _file_stem(title: str) -> str:
    stem = re.sub(r"[^\w\- ]+", "", title).strip()[:80]
    return stem or "cover"


def build_release_panel(*, audio, title, artist, gallery, generated, upscaler=None, gpu=None):
    """Add the release panel to the open Blocks. ``generated``: the Generate event (its
    ``.then`` picks the first painting); ``upscaler``: a DiffusionUpscaler or None (Lanczos);
    ``gpu``: the spaces.GPU decorator for the export when an upscaler runs on a GPU."""

    def letter(cover, title, artist, layout="auto", font="auto", color="auto"):
        options = _options(title, artist, layout, font, color)
        image = _image(cover).convert("RGB")
        if image.size != (PREVIEW_SIZE, PREVIEW_SIZE) and image.width == image.height:
            image = image.resize((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.LANCZOS)
        try:
            done = letter_cover(
                image,
                options["title"],
                options["artist"],
                layout=options["layout"],
                font=options["font"],
                color=options["color"],
            )
        except ValueError as e:
            raise _error(str(e)) from e
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
    ):
        options = _options(title, artist, layout, font, color)
        settings = ExportSettings(size=_size(size), format=_pick("format", file_format, FORMATS))
        image = _image(cover)
        try:
            result = export_cover(image, settings=settings, upscaler=upscaler, **options)
        except ValueError as e:
            raise _error(str(e)) from e
        folder = Path(tempfile.mkdtemp(prefix="albumcover-export-"))
        target = result.save(folder / f"{_file_stem(options['title'])}{result.suffix}")
        report = check_cover(target, max_bytes=settings.max_bytes, name=target.name)
        lines = [report.summary(), f"upscaler: {result.upscaler}"]
        if result.lettering is not None:
            done = result.lettering
            lines.append(
                f"lettering: {done.layout}, {done.font}, contrast {done.contrast:.1f}:1"
                + (f" ({done.backing})" if done.backing != "none" else "")
            )
            if done.dropped:
                lines.append(f"no installed font has {done.dropped!r}: left out")
        log.info("export %s: %s", target.name, "pass" if report.passed else "fail")
        return str(target), "\n".join(lines)

    def embed(song, cover_file):
        from albumcover.songfile.embed import embed_cover
        from albumcover.songfile.tags import SongFileError

        if not song:
            raise _error("song: upload the song to write the cover into (mp3, flac, m4a, ...)")
        if not cover_file:
            raise _error("cover_file: press Export first (or send a JPEG/PNG cover file)")
        if not isinstance(song, str) or not isinstance(cover_file, str):
            raise _error("song and cover_file must be files")
        source = Path(song)
        out = Path(tempfile.mkdtemp(prefix="albumcover-song-")) / source.name
        try:
            embed_cover(source, cover_file, out)  # a copy: the upload is never modified
        except SongFileError as e:  # say the upload's name, not the server's temp path
            raise _error(str(e).replace(str(source.parent) + "/", "")) from e
        return str(out)

    export_fn = gpu(export) if (gpu is not None and upscaler is not None) else export

    with gr.Accordion("Release: lettering, 3000-px export, the cover in the song", open=True):
        with gr.Row():
            with gr.Column():
                # the file as uploaded (ICC profile, CMYK...): the export converts it properly
                chosen = gr.Image(
                    type="filepath",
                    label="Cover to release (pick one in the gallery, or upload)",
                    sources=["upload"],
                    elem_id="chosen",
                )
                _naming_unreadable(chosen, "cover")
                letter_title = gr.Textbox(label="Lettering: title", elem_id="letter-title")
                letter_artist = gr.Textbox(label="Lettering: artist", elem_id="letter-artist")
                with gr.Row():
                    # custom values reach the handler, which names the field in its error
                    # (gradio's own choice check would not)
                    layout = gr.Dropdown(
                        list(LAYOUTS), value="auto", label="Layout", allow_custom_value=True
                    )
                    font = gr.Dropdown(
                        list(FONT_NAMES), value="auto", label="Font", allow_custom_value=True
                    )
                    color = gr.Textbox("auto", label="Colour (auto, #rrggbb, a name)")
                letter_btn = gr.Button("Letter", elem_id="letter")
            with gr.Column():
                preview = gr.Image(
                    label="Lettered preview", format="png", interactive=False, elem_id="lettered"
                )
                details = gr.JSON(label="Lettering", elem_id="letter-info")
        with gr.Row():
            size = gr.Dropdown(
                [DEFAULT_SIZE, 2000, 1400, MIN_EXPORT_SIZE],
                value=DEFAULT_SIZE,
                label="Export size (px)",
                allow_custom_value=True,
            )
            file_format = gr.Dropdown(
                list(FORMATS), value="jpeg", label="Format", allow_custom_value=True
            )
            export_btn = gr.Button("Export", variant="primary", elem_id="export")
            embed_btn = gr.Button("Song with cover", elem_id="embed")
        with gr.Row():
            export_file = gr.File(label="Export (download)", elem_id="export-file")
            song_file = gr.File(label="Song with the cover (download)", elem_id="song-file")
        report = gr.Textbox(label="Distributor check", lines=5, elem_id="check-report")

    lettering = [chosen, letter_title, letter_artist, layout, font, color]
    letter_btn.click(letter, lettering, [preview, details], api_name="letter")
    # re-letter on every choice, without repainting (private: /letter is the API)
    for control in (layout, font):
        control.change(letter, lettering, [preview, details], api_visibility="private")
    for box in (letter_title, letter_artist, color):
        box.submit(letter, lettering, [preview, details], api_visibility="private")
    export_btn.click(
        export_fn, [*lettering, size, file_format], [export_file, report], api_name="export"
    )
    embed_btn.click(embed, [audio, export_file], song_file, api_name="embed")

    def pick(images, evt: gr.SelectData):
        if not images or evt.index is None:
            return gr.update()
        item = images[evt.index]
        return item[0] if isinstance(item, (tuple, list)) else item

    gallery.select(pick, gallery, chosen, api_visibility="private")

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
