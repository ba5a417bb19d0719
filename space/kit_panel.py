"""The release kit panel: the art-track video, the Spotify Canvas (previewed looping), the social
post and story, made from the song and a cover. UI wiring only (the work is in albumcover.kit).

Named API endpoint: ``/kit``. Its values are checked by :mod:`space.checks` like every other
endpoint's; the texts follow the lettering's rules and are refused in its words.

Files: the kit is written into a temporary folder of this request, each file is handed to gradio's
cache through the output component that shows it (so the cache's sweep, ``delete_cache``, owns
it from then on), and the folder is removed before the handler returns: a request keeps nothing
outside gradio's swept cache, whether it succeeds or fails.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import gradio as gr

from albumcover.ear.audio import AudioError
from albumcover.kit.bundle import KIT_ITEMS, make_kit, parse_items
from albumcover.kit.canvas import DEFAULT_SECONDS, MAX_SECONDS, MIN_SECONDS
from albumcover.kit.compose import load_cover

from . import checks, memory
from .checks import refuse
from .release_panel import file_stem, picked_cover

log = logging.getLogger("albumcover.app")

MAX_LINE_CHARS = 200  # the date line, as the page's other text fields
_WHAT = {"video": "art track", "canvas": "Canvas", "social": "post and story"}


def _items(field: str, value) -> list[str]:
    """Some of :data:`KIT_ITEMS`, as a list of their names (at least one)."""
    rule = f"{field} must be a non-empty list of some of {', '.join(KIT_ITEMS)}"
    if not isinstance(value, list) or not value:
        raise refuse(f"{rule}; got {checks.show(value)}")
    try:
        parse_items(value)
    except ValueError as e:
        raise refuse(f"{rule}; got {checks.show(value)}") from e
    return value


def build_kit_panel(*, audio, title, artist, release_date, gallery, generated, max_song_seconds):
    """Add the release kit panel to the open Blocks. ``audio``, ``title``, ``artist``: the page's
    song fields; ``release_date`` fills the date line; ``gallery`` and ``generated`` (the
    Generate event) pick the cover, as the release panel does; ``max_song_seconds``: the app's
    cap on songs (longer ones are cut there, with a warning)."""

    def kit(
        song,
        cover,
        title,
        artist,
        date_line="",
        items=list(KIT_ITEMS),  # noqa: B006 (gradio reads the default; never mutated)
        canvas_seconds=DEFAULT_SECONDS,
        progress=gr.Progress(),
    ):
        if not song:
            raise refuse("song: upload the song first (mp3, wav, flac, ogg, ...)")
        if not cover:
            raise refuse(
                "cover: choose a cover first (Generate, then pick one in the gallery, or upload "
                "one, e.g. the export)"
            )
        try:
            picture = load_cover(cover)
        except ValueError as e:  # KitError: says the file's name, not the server's path
            raise refuse(str(e)) from e

        def tell(item, done, total):
            progress((done, total), desc=f"making the {_WHAT[item]}", unit="steps")

        with tempfile.TemporaryDirectory(prefix="albumcover-kit-") as folder:
            try:
                made = make_kit(
                    song,
                    picture,
                    folder,
                    stem=file_stem(Path(song).stem, "song"),
                    title=title,
                    artist=artist,
                    date_line=date_line,
                    only=items,
                    canvas_seconds=canvas_seconds,
                    max_duration=max_song_seconds,
                    progress=tell,
                )
            except AudioError as e:  # name the upload, not the server's temporary path
                raise refuse(f"{Path(e.path).name}: {e.reason}") from e
            except ValueError as e:  # LetteringError, KitError: the field and the rule
                raise refuse(str(e)) from e
            for note in made.notes:
                gr.Warning(note)
            # into gradio's cache, owned (and swept) by the component that shows each file
            shown = {}
            for item, component in (("video", art_track), ("canvas", canvas)):
                for path in made.files.get(item, []):
                    shown[item] = component.move_resource_to_block_cache(path)
            post_path, story_path = made.files.get("social", [None, None])
            shown["post"] = post.move_resource_to_block_cache(post_path)
            shown["story"] = story.move_resource_to_block_cache(story_path)
            files = [downloads.move_resource_to_block_cache(p) for p in made.paths()]
        lines = [f"{Path(p).name}" for p in files] + made.notes
        log.info("kit: %s", ", ".join(Path(p).name for p in files))
        return (
            shown.get("video"),
            shown.get("canvas"),
            shown["post"],
            shown["story"],
            files,
            "\n".join(lines),
        )

    # decodes the song and a cover: one of the image slots, and memory handed back after
    kit = memory.release_after(memory.bounded(kit))

    # folded: the step after the release, and its empty previews would double the page's length
    with gr.Accordion("Release kit: art-track video, Spotify Canvas, post and story", open=False):
        with gr.Row():
            with gr.Column():
                # the file as uploaded (image_mode None): the kit checks its size from the
                # header and brings it to sRGB itself
                kit_cover = gr.Image(
                    type="filepath",
                    image_mode=None,
                    label="Cover for the kit (pick one in the gallery, or upload the export)",
                    sources=["upload"],
                    elem_id="kit-cover",
                )
                checks.uploaded_path(kit_cover)  # read by the one decoder, in the handler
                date_line = gr.Textbox(
                    label="Date line (post and story)",
                    placeholder="Out 1 May 2026",
                    max_length=MAX_LINE_CHARS,
                    elem_id="kit-date",
                )
                items = gr.CheckboxGroup(
                    [("Art-track video (YouTube)", "video"), ("Canvas (Spotify)", "canvas")]
                    + [("Post and story", "social")],
                    value=list(KIT_ITEMS),
                    label="Kit items",
                    elem_id="kit-items",
                )
                seconds = gr.Slider(
                    MIN_SECONDS, MAX_SECONDS, value=DEFAULT_SECONDS, step=1, label="Canvas seconds"
                )
                make_btn = gr.Button("Make the kit", variant="primary", elem_id="kit")
            with gr.Column():
                canvas = gr.Video(
                    label="Canvas (loops)",
                    height=520,  # a phone-sized 9:16 preview, not a column-wide one
                    autoplay=True,
                    loop=True,
                    interactive=False,
                    elem_id="kit-canvas",
                )
                art_track = gr.Video(label="Art track", interactive=False, elem_id="kit-art-track")
        with gr.Row():
            post = gr.Image(
                type="filepath", label="Post (1080 x 1080)", interactive=False, elem_id="kit-post"
            )
            story = gr.Image(
                type="filepath", label="Story (1080 x 1920)", interactive=False, elem_id="kit-story"
            )
        downloads = gr.File(
            label="The kit (download)",
            file_count="multiple",
            interactive=False,
            elem_id="kit-files",
        )
        report = gr.Textbox(label="Made", lines=2, interactive=False, elem_id="kit-report")
    checks.rule(items, _items)

    make_btn.click(
        kit,
        [audio, kit_cover, title, artist, date_line, items, seconds],
        [art_track, canvas, post, story, downloads, report],
        api_name="kit",
    )
    release_date.change(lambda d: d, release_date, date_line, api_visibility="private")

    gallery.select(picked_cover, gallery, kit_cover, api_visibility="private")

    def first(images):
        image = images[0] if images else None
        return image[0] if isinstance(image, (tuple, list)) else image

    generated.success(first, gallery, kit_cover, api_visibility="private")
