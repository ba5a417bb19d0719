"""The page: a song in, Analyze (tags, taggram, an editable prompt), Generate (covers), then the
release panel. UI wiring only; every decision about tags, prompts and images lives in the
library (:mod:`albumcover.pipeline`).

Named API endpoints: ``/analyze`` and ``/generate`` here, ``/letter``, ``/export`` and ``/embed``
in :mod:`space.release_panel`. Every value they take is checked by :mod:`space.checks` before a
handler runs, so the handlers only say what is missing (no song, no prompt, no model).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from albumcover.ear.audio import AudioError, load_audio_capped
from albumcover.ear.tagger import Tagger
from albumcover.paint.generator import (
    MAX_SEED,
    MIN_SIZE,
    Cover,
    CoverGenerator,
    GenerationSettings,
    GeneratorError,
    gpu_seconds,
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

from . import checks, memory
from .checks import refuse
from .kit_panel import build_kit_panel
from .release_panel import build_release_panel
from .taggram import TAGGRAM_ROWS, draw_taggram

log = logging.getLogger("albumcover.app")

AUTO_CATEGORY = "auto (from the audio)"
MAX_FIELD_CHARS = 200  # title, artist, date: longer is a paste accident, not a song title
MAX_PROMPT_CHARS = 2000
# MAX_SEED (from the generator): seeds are 32-bit, the range every client can send exactly;
# the seeds of several variations wrap past it to 0, so each one shown can be typed back.


def no_gpu(duration) -> Callable[[Callable], Callable]:
    """The ``gpu`` decorator where there is no ZeroGPU: leaves the function as it is."""
    return lambda fn: fn


def _minutes(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


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
) -> gr.Blocks:
    """The Blocks UI around loaded models; ``generator`` may be the error that stopped it loading,
    in which case Analyze still works and Generate says what went wrong and how to fix it.

    Sizes, steps and guidance default to the loaded model family's (the fast path's steps when
    on; ``image_size`` None: the family's size); ``recipe`` is the served model's caption recipe
    (None: it has none, the defaults are used and every style is offered); ``notes`` are start-up
    warnings shown on the page; ``upscaler`` a DiffusionUpscaler for the export or None;
    ``gpu``: ``spaces.GPU``-like, ``gpu(duration=...)`` decorates what runs on the GPU."""
    loaded = isinstance(generator, CoverGenerator)
    count_tokens = generator.count_tokens if loaded else None
    max_tokens = generator.max_tokens if loaded else CLIP_MAX_TOKENS
    defaults = generator.default_settings() if loaded else GenerationSettings()
    image_size = image_size or defaults.width
    max_ui_size = max(generator.family.max_size if loaded else 1024, image_size)
    max_steps = max(100, defaults.steps)
    styles = [recipe.style] if recipe is not None else list(STYLES)
    recipe = recipe or DEFAULT_RECIPE

    def paint_seconds(prompt, settings, progress) -> int:
        return gpu_seconds(settings, generator.family) if loaded else 10

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

    @gpu(duration=paint_seconds)
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
        covers = paint(prompt, settings, progress)
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
            "# albumcover\nUpload a song: **Analyze** hears its genre, mood and instruments and "
            "writes a prompt you can edit; **Generate** paints album covers from it."
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
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(type="filepath", sources=["upload"], label="Song", elem_id="song")
                title = gr.Textbox(label="Title", max_length=MAX_FIELD_CHARS, elem_id="title")
                artist = gr.Textbox(label="Artist", max_length=MAX_FIELD_CHARS, elem_id="artist")
                release_date = gr.Textbox(
                    label="Release date",
                    placeholder="2024 or 2024-05-01",
                    max_length=MAX_FIELD_CHARS,
                )
                category = gr.Dropdown(
                    [AUTO_CATEGORY, *CATEGORIES], value=AUTO_CATEGORY, label="Category"
                )
                analyze_btn = gr.Button("Analyze", variant="primary", elem_id="analyze")
            with gr.Column():
                tags = gr.Label(num_top_classes=TAGGRAM_ROWS, label="Tags", elem_id="tags")
                inferred = gr.Textbox(label="Category used", interactive=False, elem_id="category")
                taggram = gr.Image(label="Taggram (tags over time)", format="png")
        prompt = gr.Textbox(
            label="Prompt (edit freely)", lines=3, max_length=MAX_PROMPT_CHARS, elem_id="prompt"
        )
        with gr.Accordion("Advanced", open=False):
            style = gr.Dropdown(
                styles,
                value=styles[0],
                label="Prompt style"
                + (" (the model's caption recipe)" if len(styles) == 1 else ""),
                interactive=len(styles) > 1,
            )
            negative = gr.Textbox(
                DEFAULT_NEGATIVE_PROMPT, label="Negative prompt", max_length=MAX_PROMPT_CHARS
            )
            with gr.Row():
                steps = gr.Slider(
                    1, max_steps, value=defaults.steps, step=1, label="Steps", elem_id="steps"
                )
                guidance = gr.Slider(
                    0.0, 20.0, value=defaults.guidance_scale, step=0.5, label="Guidance scale"
                )
                num_images = gr.Slider(1, 4, value=2, step=1, label="Variations")
            with gr.Row():
                seed = gr.Number(
                    0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed", interactive=False
                )
                randomize = gr.Checkbox(True, label="Randomize seed")
                width = gr.Slider(
                    MIN_SIZE, max_ui_size, value=image_size, step=8, label="Width", elem_id="width"
                )
                height = gr.Slider(MIN_SIZE, max_ui_size, value=image_size, step=8, label="Height")
        generate_btn = gr.Button("Generate", variant="primary", elem_id="generate")
        gallery = gr.Gallery(
            label="Covers", format="png", columns=2, height="auto", elem_id="gallery"
        )

        # both decode (audio, images): freed memory goes back to the system after each request
        analyze_btn.click(
            memory.release_after(analyze),
            [audio, title, artist, release_date, category, style],
            [tags, prompt, inferred, taggram],
            api_name="analyze",
        )
        generated = generate_btn.click(
            memory.release_after(generate),
            [prompt, negative, steps, guidance, seed, randomize, num_images, width, height],
            gallery,
            api_name="generate",
        )
        build_release_panel(
            audio=audio,
            title=title,
            artist=artist,
            gallery=gallery,
            generated=generated,
            upscaler=upscaler,
            gpu=gpu,
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
        # a UI nicety, not an API endpoint
        randomize.change(
            lambda on: gr.update(interactive=not on),
            randomize,
            seed,
            api_visibility="private",
            queue=False,
        )
    return checks.guard(demo)
