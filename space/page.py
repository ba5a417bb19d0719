"""The page: the song, its metadata and analysis on the left (with songs to click); the prompt,
Generate, the covers and the release panel on the right, so one screen shows the song, the
prompt and the covers. UI wiring only; every decision about tags, prompts and images lives in
the library (:mod:`albumcover.pipeline`), every ZeroGPU decision in :mod:`space.zerogpu`.

Named API endpoints: ``/analyze`` and ``/generate`` here, ``/letter``, ``/export`` and ``/embed``
in :mod:`space.release_panel`, ``/kit`` in :mod:`space.kit_panel`. Every value they take is
checked by :mod:`space.checks` before a handler runs, so the handlers only say what is missing
(no song, no prompt, no model).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from albumcover.ear.audio import AudioError, load_audio_capped
from albumcover.ear.tagger import Tagger
from albumcover.images import MAX_PIXELS
from albumcover.paint.generator import (
    MAX_SEED,
    MIN_SIZE,
    Cover,
    CoverGenerator,
    GenerationSettings,
    GeneratorError,
)
from albumcover.pipeline import describe_song, make_covers
from albumcover.prompts import (
    CATEGORIES,
    CLIP_MAX_TOKENS,
    DEFAULT_NEGATIVE_PROMPT,
    STYLES,
    SongInfo,
)
from albumcover.recipe import DEFAULT_RECIPE, CaptionRecipe

from . import checks, memory, zerogpu
from .checks import refuse
from .examples import ExampleSong
from .kit_panel import build_kit_panel
from .release_panel import build_release_panel, describe_lettering
from .taggram import TAGGRAM_ROWS, draw_taggram

log = logging.getLogger("albumcover.app")

AUTO_CATEGORY = "auto (from the audio)"
MAX_FIELD_CHARS = 200  # title, artist, date: longer is a paste accident, not a song title
MAX_PROMPT_CHARS = 2000
# MAX_SEED (from the generator): seeds are 32-bit, the range every client can send exactly;
# the seeds of several variations wrap past it to 0, so each one shown can be typed back.
EXAMPLE_SEED = 7  # the songs to click paint with a fixed seed: the same covers for everyone
# The header stays short; an empty download box is a line, not a drop zone's 260 px.
CSS = """
#intro p { margin: 0; }
#intro h1 { margin: 0 0 .2em 0; font-size: 1.6em; }
#export-file .empty, #song-file .empty { min-height: 72px; height: 72px; }
@media (max-width: 640px) {  /* a phone: two covers side by side are ~150 px tall, not 350 */
  #gallery, #gallery .grid-wrap { height: auto !important; max-height: 350px; }
}
"""


def no_gpu(duration, size=None) -> Callable[[Callable], Callable]:
    """The ``gpu`` decorator where there is no ZeroGPU: leaves the function as it is."""
    return lambda fn: fn


def _minutes(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _example_index(count: int) -> checks.Rule:
    """A click on a song to click: its index, 0 to ``count`` - 1."""

    def check(field: str, value):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < count:
            raise refuse(
                f"example must be a song's index, 0 to {count - 1}; got {checks.show(value)}"
            )
        return value

    return check


def _caption(cover: Cover) -> str:
    return f"seed {cover.seed}" + (" (blanked by the safety checker)" if cover.nsfw else "")


def build_demo(
    tagger: Tagger,
    genre_tagger: Tagger | None,
    generator: CoverGenerator | Exception,
    *,
    model: str,
    image_size: int | None = None,
    recipe: CaptionRecipe | None = None,
    notes: tuple[str, ...] = (),
    upscaler=None,
    max_song_seconds: float,
    gpu: Callable = no_gpu,
    examples: list[tuple[ExampleSong, Path]] = (),
    max_pixels: int = MAX_PIXELS,
) -> gr.Blocks:
    """The Blocks UI around loaded models; ``generator`` may be the error that stopped it loading,
    in which case Analyze still works and Generate says what went wrong and how to fix it.

    Sizes, steps and guidance default to the loaded model family's (the fast path's steps when
    on; ``image_size`` None: the family's size); ``recipe`` is the served model's caption recipe
    (None: it has none, the defaults are used and every style is offered); ``notes`` are start-up
    warnings shown on the page; ``upscaler`` a DiffusionUpscaler for the export or None;
    ``gpu``: ``spaces.GPU``-like, ``gpu(duration=..., size=...)`` decorates what runs on the GPU
    (the duration and size computed per request by :mod:`space.zerogpu`); ``examples``: songs
    to click with their local files (:func:`space.examples.fetch_examples`; none: no row);
    ``max_pixels``: the pixel budget of an uploaded cover (the release panel's)."""
    loaded = isinstance(generator, CoverGenerator)
    count_tokens = generator.count_tokens if loaded else None
    max_tokens = generator.max_tokens if loaded else CLIP_MAX_TOKENS
    defaults = generator.default_settings() if loaded else GenerationSettings()
    image_size = image_size or defaults.width
    max_ui_size = max(generator.family.max_size if loaded else 1024, image_size)
    max_steps = max(100, defaults.steps)
    styles = [recipe.style] if recipe is not None else list(STYLES)
    recipe = recipe or DEFAULT_RECIPE

    # ZeroGPU: what each painting asks for, from the request (space.zerogpu)
    tiny_vae = loaded and generator.fast is not None and bool(generator.fast.vae)
    costs = zerogpu.GpuCosts.for_family(generator.family, tiny_vae) if loaded else None
    weights = zerogpu.model_bytes(generator.pipeline) if loaded else 0

    def paint_seconds(prompt, settings, progress) -> int:
        # a duration function gets the painting's own arguments (spaces.GPU's contract)
        return zerogpu.gpu_duration(settings, costs) if loaded else 10

    def analyze(audio, title, artist, release_date, category=AUTO_CATEGORY, style=styles[0]):
        if not audio:
            raise refuse("Upload a song first (mp3, wav, flac, ogg, ...).")
        song = SongInfo(
            title=title.strip(),
            artist=artist.strip(),
            date=release_date.strip(),
            category="" if category == AUTO_CATEGORY else category,
        )
        try:
            signal, full_length = load_audio_capped(audio, max_duration=max_song_seconds)
            description = describe_song(
                signal,
                song,
                tagger,
                genre_tagger,
                style=style,
                recipe=recipe,
                count_tokens=count_tokens,
                max_tokens=max_tokens,
            )
        except AudioError as e:  # name the upload, not the server's temporary path
            raise refuse(f"{Path(e.path).name}: {e.reason}") from e
        except ValueError as e:
            raise refuse(str(e)) from e
        if full_length is not None:
            length = f" of {_minutes(full_length)}" if full_length > 0 else ""
            cap = _minutes(max_song_seconds)
            gr.Warning(
                f"{Path(audio).name} is longer than {cap}: only its first {cap}{length} "
                "were heard (the rest does not shape the prompt)."
            )
        if description.cut:
            gr.Warning(
                "The prompt was shortened to what the image model reads; left out: "
                + "; ".join(description.cut)
            )
        scores = description.tags.scores
        top = dict(sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:TAGGRAM_ROWS])
        return top, description.prompt, description.category, draw_taggram(description.tags)

    def paint(prompt: str, settings: GenerationSettings, progress) -> list[Cover]:
        n, w, h, steps = settings.num_images, settings.width, settings.height, settings.steps
        log.info("painting %d cover(s), %dx%d, %d steps: %r", n, w, h, steps, prompt)
        try:
            return make_covers(
                prompt,
                generator,
                settings,
                allow_empty_prompt=recipe.unconditional,
                progress=lambda step, total: progress((step, total), desc="painting", unit="steps"),
            )
        except (GeneratorError, ValueError) as e:
            raise refuse(f"Generation failed: {e}") from e

    def on_gpu(size: str) -> Callable:
        # one decorated function per GPU size (spaces.GPU fixes the size per function)
        def paint_on_gpu(prompt: str, settings: GenerationSettings, progress) -> list[Cover]:
            return paint(prompt, settings, progress)

        return gpu(duration=paint_seconds, size=size)(paint_on_gpu)

    painters = {size: on_gpu(size) for size in zerogpu.GPU_GIB}

    def generate(
        prompt,
        negative_prompt=DEFAULT_NEGATIVE_PROMPT,
        steps=defaults.steps,
        guidance_scale=defaults.guidance_scale,
        seed=0,
        randomize_seed=True,
        num_images=2,
        width=image_size,
        height=image_size,
        progress=gr.Progress(),
    ):
        prompt = prompt.strip()
        if not prompt and not recipe.unconditional:
            raise refuse("The prompt is empty: press Analyze to write one, or type your own.")
        if not loaded:
            raise refuse(
                f"Generate is unavailable: the image model {model!r} did not load when the app "
                f"started ({generator}). Restart the app with ALBUMCOVER_MODEL=/path/to/folder "
                "(a local diffusers folder) to use a model on disk."
            )
        if seed is None and not randomize_seed:
            raise refuse("Enter a seed, or tick 'Randomize seed'.")
        # space.checks has checked each value as sent; the settings are validated (and both texts
        # fitted to the text encoder's budget) once, by the generator
        settings = GenerationSettings(
            steps=steps,
            guidance_scale=guidance_scale,
            seed=None if randomize_seed else seed,
            num_images=num_images,
            width=width,
            height=height,
            negative_prompt=negative_prompt.strip(),
        )
        covers = painters[zerogpu.gpu_size(weights, settings)](prompt, settings, progress)
        # what the fitting left out (the same for every cover): a toast in the UI, a log
        # message over the API
        cuts = {"prompt": covers[0].prompt_cut, "negative prompt": covers[0].negative_cut}
        for what, cut in cuts.items():
            if cut:
                gr.Warning(f"The {what} is longer than the image model reads; it ignores: “{cut}”")
        return [(cover.image, _caption(cover)) for cover in covers]

    with gr.Blocks(
        title="albumcover",
        analytics_enabled=False,
        delete_cache=(memory.CACHE_SWEEP_S, memory.CACHE_MAX_AGE_S),
    ) as demo:
        gr.Markdown(
            "# albumcover\nA song in, album covers out: **Analyze** hears its genre, mood and "
            "instruments and writes a prompt you can edit; **Generate** paints covers from it; "
            "**Release** letters one and exports it at 3000 px.",
            elem_id="intro",
        )
        if not loaded:
            gr.Markdown(
                f"**Generate is unavailable:** the image model `{model}` did not load "
                f"({generator}). Set `ALBUMCOVER_MODEL=/path/to/folder` and restart."
            )
        for note in notes:
            gr.Markdown(f"**Note:** {note}")
        if recipe.unconditional:
            gr.Markdown(
                "**Note:** this model was fine-tuned without captions (caption mode `none`): "
                "Analyze leaves the prompt empty and Generate paints from nothing but the model."
            )
        with gr.Row(equal_height=False):
            # the song: its file, metadata and what Analyze heard
            with gr.Column(scale=5, min_width=300):
                audio = gr.Audio(type="filepath", sources=["upload"], label="Song", elem_id="song")
                with gr.Row():
                    title = gr.Textbox(label="Title", max_length=MAX_FIELD_CHARS, elem_id="title")
                    artist = gr.Textbox(
                        label="Artist", max_length=MAX_FIELD_CHARS, elem_id="artist"
                    )
                with gr.Row():
                    release_date = gr.Textbox(
                        label="Release date",
                        placeholder="2024 or 2024-05-01",
                        max_length=MAX_FIELD_CHARS,
                    )
                    category = gr.Dropdown(
                        [AUTO_CATEGORY, *CATEGORIES], value=AUTO_CATEGORY, label="Category"
                    )
                analyze_btn = gr.Button("Analyze the song", variant="primary", elem_id="analyze")
                # the songs to click go here, under the form, once their outputs exist
                examples_slot = gr.Column(min_width=0)
                with gr.Accordion("What Analyze heard", open=True):
                    inferred = gr.Textbox(
                        label="Category used", interactive=False, elem_id="category"
                    )
                    tags = gr.Label(
                        num_top_classes=TAGGRAM_ROWS,
                        label="Tags",
                        show_heading=False,
                        elem_id="tags",
                    )
                    with gr.Accordion("Taggram: the tags over time", open=False):
                        taggram = gr.Image(
                            label="Taggram (tags over time)", format="png", interactive=False
                        )
            # the covers: prompt, Generate, the paintings, then the release step
            with gr.Column(scale=7, min_width=300):
                prompt = gr.Textbox(
                    label="Prompt (written by Analyze; edit freely)",
                    lines=3,
                    max_length=MAX_PROMPT_CHARS,
                    elem_id="prompt",
                )
                generate_btn = gr.Button("Generate covers", variant="primary", elem_id="generate")
                gallery = gr.Gallery(
                    label="Covers (click one to letter it)",
                    format="png",
                    columns=2,
                    height=350,
                    object_fit="contain",
                    interactive=False,
                    elem_id="gallery",
                )
                with gr.Accordion("Advanced settings", open=False):
                    style = gr.Dropdown(
                        styles,
                        value=styles[0],
                        label="Prompt style"
                        + (" (the model's caption recipe)" if len(styles) == 1 else ""),
                        interactive=len(styles) > 1,
                    )
                    negative = gr.Textbox(
                        DEFAULT_NEGATIVE_PROMPT,
                        label="Negative prompt",
                        max_length=MAX_PROMPT_CHARS,
                    )
                    with gr.Row():
                        steps = gr.Slider(
                            1, max_steps, value=defaults.steps, step=1, label="Steps",
                            elem_id="steps",
                        )  # fmt: skip
                        guidance = gr.Slider(
                            0.0, 20.0, value=defaults.guidance_scale, step=0.5,
                            label="Guidance scale",
                        )  # fmt: skip
                        num_images = gr.Slider(1, 4, value=2, step=1, label="Variations")
                    with gr.Row():
                        seed = gr.Number(
                            0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed",
                            interactive=False,
                        )  # fmt: skip
                        randomize = gr.Checkbox(True, label="Randomize seed")
                    with gr.Row():
                        width = gr.Slider(
                            MIN_SIZE, max_ui_size, value=image_size, step=8, label="Width",
                            elem_id="width",
                        )  # fmt: skip
                        height = gr.Slider(
                            MIN_SIZE, max_ui_size, value=image_size, step=8, label="Height"
                        )
                generated = generate_btn.click(
                    memory.release_after(generate),
                    [prompt, negative, steps, guidance, seed, randomize, num_images, width, height],
                    gallery,
                    api_name="generate",
                )
                release = build_release_panel(
                    audio=audio,
                    title=title,
                    artist=artist,
                    gallery=gallery,
                    generated=generated,
                    upscaler=upscaler,
                    gpu=gpu,
                    max_pixels=max_pixels,
                )
                build_kit_panel(  # the release kit: art track, Canvas, post and story (/kit)
                    audio=audio,
                    title=title,
                    artist=artist,
                    release_date=release_date,
                    gallery=gallery,
                    generated=generated,
                    max_song_seconds=max_song_seconds,
                )

        # both decode (audio, images): freed memory goes back to the system after each request
        analyze_btn.click(
            memory.release_after(analyze),
            [audio, title, artist, release_date, category, style],
            [tags, prompt, inferred, taggram],
            api_name="analyze",
        )
        if examples:

            def run_example(song, title, artist, release_date):
                """A song to click, all the way: analysed, two covers painted with a fixed
                seed, the first one lettered (gradio caches the result at first use)."""
                top, text, used, picture = analyze(song, title, artist, release_date)
                covers = generate(
                    text, seed=EXAMPLE_SEED, randomize_seed=False, progress=lambda *a, **k: None
                )
                # the release panel reads covers as files (the one decoder, as an upload is
                # read); a folder of this call's own, gone when it returns
                with tempfile.TemporaryDirectory(prefix="albumcover-example-") as folder:
                    first = Path(folder) / "cover.png"
                    covers[0][0].save(first, format="PNG")
                    lettered, details = release.letter(str(first), title, artist)
                words = describe_lettering(details)
                release_values = [covers[0][0], title, artist, lettered, details, words]
                return [top, text, used, picture, covers, *release_values]

            with examples_slot:
                songs = gr.Examples(
                    [[str(path), s.title, s.artist, s.date] for s, path in examples],
                    [audio, title, artist, release_date],
                    [tags, prompt, inferred, taggram, gallery, *release.outputs],
                    fn=memory.release_after(run_example),
                    cache_examples=True,
                    cache_mode="lazy",
                    example_labels=[f"{s.genre}: {s.title}" for s, _ in examples],
                    label="Songs to click (analysed and painted once, then shown at once)",
                    api_visibility="private",
                )
                gr.Markdown(
                    "<small>" + "<br>".join(s.attribution() for s, _ in examples) + "</small>",
                    elem_id="example-credits",
                )
            checks.rule(songs.dataset, _example_index(len(examples)))
        # a UI nicety, not an API endpoint
        randomize.change(
            lambda on: gr.update(interactive=not on),
            randomize,
            seed,
            api_visibility="private",
            queue=False,
        )
    return checks.guard(demo)
