"""albumcover's Gradio app (a Hugging Face Space): a song in, album covers out.

The app only wires the UI to :mod:`albumcover.pipeline`; every decision about tags, prompts and
images lives in the library. Configuration comes from environment variables, read once here:

    ALBUMCOVER_MODEL           Hub id or local diffusers folder of the image model
    ALBUMCOVER_LORA            optional LoRA weights (folder or Hub id) loaded on top of it
    ALBUMCOVER_TAGGER          Musicnn model whose tags go into the prompt (default MTT_musicnn)
    ALBUMCOVER_SAFETY_CHECKER  "1"/"0": keep or drop the NSFW safety checker (default on)
    ALBUMCOVER_IMAGE_SIZE      default width and height of the covers in pixels (default 512)
    ALBUMCOVER_MAX_UPLOAD_MB   largest accepted upload (default 50)
    ALBUMCOVER_QUEUE_SIZE      requests allowed to wait in the queue (default 16)
    ALBUMCOVER_UPSCALER        diffusers x4 upscaler for the 3000-px export (Hub id or folder,
                               e.g. stabilityai/stable-diffusion-x4-upscaler); used only with a
                               GPU, else (and by default) Lanczos + a light sharpen
    ALBUMCOVER_MAX_SONG_SECONDS  seconds of a song decoded and heard (default 600); the user is
                               told when a longer song is cut

plus gradio's own GRADIO_SERVER_NAME / GRADIO_SERVER_PORT. Run ``python app.py [--share]``.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

try:  # ZeroGPU hooks torch, so it must come first; elsewhere spaces.GPU is a no-op
    import spaces
except ImportError:  # a plain local install may lack it
    spaces = None

import gradio as gr
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import app_inputs as checked
import app_memory
from albumcover.audio import DEFAULT_MAX_DURATION, SAMPLE_RATE, AudioError, load_audio_capped
from albumcover.features import HOP_LENGTH, PATCH_FRAMES
from albumcover.generator import (
    MAX_SEED,
    MIN_SIZE,
    Cover,
    CoverGenerator,
    GenerationSettings,
    GeneratorError,
)
from albumcover.pipeline import describe_song, make_covers
from albumcover.prompts import CATEGORIES, DEFAULT_NEGATIVE_PROMPT, DEFAULT_STYLE, STYLES, SongInfo
from albumcover.tagger import Tagger
from release_ui import build_release_panel

# Headless server: no GUI backend, ever. The taggram is drawn on an explicit Agg canvas (no
# pyplot state shared between request threads); this also covers any pyplot use downstream.
matplotlib.use("Agg")
log = logging.getLogger("albumcover.app")


def _env_int(name: str, default: int, minimum: int, maximum: int = 2**31, multiple: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum or value % multiple:
        rule = f"a whole number in [{minimum}, {maximum}]"
        rule += f", a multiple of {multiple}" if multiple > 1 else ""
        raise SystemExit(f"{name} must be {rule}; got {raw!r}")
    return value


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name} must be 1/true/yes/on or 0/false/no/off, got {raw!r}")


MODEL = (
    os.environ.get("ALBUMCOVER_MODEL", "").strip() or "stable-diffusion-v1-5/stable-diffusion-v1-5"
)
LORA = os.environ.get("ALBUMCOVER_LORA", "").strip() or None
TAGGER = os.environ.get("ALBUMCOVER_TAGGER", "").strip() or "MTT_musicnn"
MAX_UI_SIZE = 1024  # pixels; SD 1.x paints 512, SDXL 1024, larger only wastes a shared GPU
GENRE_TAGGER = "MSD_musicnn"  # its labels are genres: the category is inferred from them
SAFETY_CHECKER = _env_flag("ALBUMCOVER_SAFETY_CHECKER", True)
IMAGE_SIZE = _env_int(
    "ALBUMCOVER_IMAGE_SIZE", 512, minimum=MIN_SIZE, maximum=MAX_UI_SIZE, multiple=8
)
MAX_UPLOAD_MB = _env_int("ALBUMCOVER_MAX_UPLOAD_MB", 50, minimum=1)
QUEUE_SIZE = _env_int("ALBUMCOVER_QUEUE_SIZE", 16, minimum=1)
UPSCALER = os.environ.get("ALBUMCOVER_UPSCALER", "").strip() or None
MAX_SONG_SECONDS = _env_int(
    "ALBUMCOVER_MAX_SONG_SECONDS", int(DEFAULT_MAX_DURATION), minimum=3, maximum=3600
)

AUTO_CATEGORY = "auto (from the audio)"
MAX_FIELD_CHARS = 200  # title, artist, date: longer is a paste accident, not a song title
MAX_PROMPT_CHARS = 2000
TAGGRAM_ROWS = 10
# What the app keeps (README "What is guaranteed"): uploads and painted covers are files in
# gradio's cache, deleted once older than an hour (swept every 15 minutes); per-visitor session
# state for the most recent MAX_SESSIONS visitors only (gradio's default, 10000, grows for good).
CACHE_MAX_AGE_S = 3600
CACHE_SWEEP_S = 900
MAX_SESSIONS = 200
PATCH_SECONDS = PATCH_FRAMES * HOP_LENGTH / SAMPLE_RATE
# MAX_SEED (from the generator): seeds are 32-bit, the range every client can send exactly;
# the seeds of several variations wrap past it to 0, so each one shown can be typed back.

gpu = spaces.GPU if spaces is not None else (lambda fn: fn)


def load_generator(
    model: str, lora: str | None = None, safety_checker: bool = True
) -> CoverGenerator | GeneratorError:
    """The image model, or the error that stopped it loading (the app then runs without it)."""
    try:
        return CoverGenerator.from_pretrained(model, lora=lora, safety_checker=safety_checker)
    except GeneratorError as e:
        log.error("image model %r did not load, Generate is disabled: %s", model, e)
        return e


def _error(message: str) -> gr.Error:
    """A gr.Error whose cause is known (bad input, no model): its message is all the user and
    the server log need, no traceback."""
    return gr.Error(message, print_exception=False)


def _check_field(name: str, text: str | None, limit: int = MAX_FIELD_CHARS) -> str:
    text = (text or "").strip()
    if len(text) > limit:
        raise _error(f"The {name} is {len(text):,} characters long; keep it under {limit}.")
    return text


def _minutes(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def _tell_cut(what: str, cut: str) -> None:
    """Show the user (a toast in the UI, a log message over the API) what the token budget
    dropped from their text."""
    gr.Warning(f"The {what} is longer than the image model reads; it ignores: “{cut}”")


def _caption(cover: Cover) -> str:
    return f"seed {cover.seed}" + (" (blanked by the safety checker)" if cover.nsfw else "")


def draw_taggram(result, rows: int = TAGGRAM_ROWS) -> np.ndarray:
    """The top ``rows`` tags over time as a heatmap: an (H, W, 3) uint8 RGB picture."""
    order = np.argsort(result.taggram.mean(axis=0))[::-1][:rows]
    n_patches = result.taggram.shape[0]
    fig = Figure(figsize=(8, 0.3 * rows + 1.2), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    extent = (0.0, n_patches * PATCH_SECONDS, len(order) - 0.5, -0.5)  # x in seconds
    image = ax.imshow(result.taggram[:, order].T, cmap="magma", vmin=0, vmax=1, extent=extent)
    ax.set_aspect("auto")
    ax.set_yticks(range(len(order)), [result.labels[i] for i in order])
    ax.set_xlabel("time (s)")
    fig.colorbar(image, ax=ax, pad=0.01, label="probability")
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def build_demo(
    tagger: Tagger,
    genre_tagger: Tagger | None,
    generator: CoverGenerator | Exception,
    *,
    model: str = MODEL,
    image_size: int = IMAGE_SIZE,
    upscaler=None,
    max_song_seconds: float = MAX_SONG_SECONDS,
) -> gr.Blocks:
    """The Blocks UI around loaded models; ``generator`` may be the error that stopped it loading,
    in which case Analyze still works and Generate says what went wrong and how to fix it."""
    loaded = isinstance(generator, CoverGenerator)
    count_tokens = generator.count_tokens if loaded else None

    def analyze(audio, title, artist, release_date, category=AUTO_CATEGORY, style=DEFAULT_STYLE):
        if not audio:
            raise _error("Upload a song first (mp3, wav, flac, ogg, ...).")
        song = SongInfo(
            title=_check_field("title", title),
            artist=_check_field("artist", artist),
            date=_check_field("release date", release_date),
            category="" if category in (None, AUTO_CATEGORY) else category,
        )
        try:
            signal, full_length = load_audio_capped(audio, max_duration=max_song_seconds)
            description = describe_song(
                signal, song, tagger, genre_tagger, style=style, count_tokens=count_tokens
            )
        except AudioError as e:  # name the upload, not the server's temporary path
            raise _error(f"{Path(e.path).name}: {e.reason}") from e
        except ValueError as e:
            raise _error(str(e)) from e
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

    @gpu
    def paint(prompt: str, settings: GenerationSettings, progress):
        n, w, h, steps = settings.num_images, settings.width, settings.height, settings.steps
        log.info("painting %d cover(s), %dx%d, %d steps: %r", n, w, h, steps, prompt)
        try:
            covers = make_covers(
                prompt,
                generator,
                settings,
                progress=lambda step, total: progress((step, total), desc="painting", unit="steps"),
            )
        except (GeneratorError, ValueError) as e:
            raise gr.Error(f"Generation failed: {e}") from e
        return [(cover.image, _caption(cover)) for cover in covers]

    def generate(
        prompt,
        negative_prompt=DEFAULT_NEGATIVE_PROMPT,
        steps=25,
        guidance_scale=7.5,
        seed=0,
        randomize_seed=True,
        num_images=2,
        width=image_size,
        height=image_size,
        progress=gr.Progress(),
    ):
        prompt = _check_field("prompt", prompt, MAX_PROMPT_CHARS)
        if not prompt:
            raise _error("The prompt is empty: press Analyze to write one, or type your own.")
        if not loaded:
            raise _error(
                f"Generate is unavailable: the image model {model!r} did not load when the app "
                f"started ({generator}). Restart the app with ALBUMCOVER_MODEL=/path/to/folder "
                "(a local diffusers folder) to use a model on disk."
            )
        if seed is None and not randomize_seed:
            raise _error("Enter a seed, or tick 'Randomize seed'.")
        negative_prompt = _check_field("negative prompt", negative_prompt, MAX_PROMPT_CHARS)
        for what, text in (("prompt", prompt), ("negative prompt", negative_prompt)):
            cut = generator.fit_prompt(text)[1]
            if cut:
                _tell_cut(what, cut)
        settings = GenerationSettings(
            steps=int(steps),
            guidance_scale=float(guidance_scale),
            seed=None if randomize_seed else int(seed),
            num_images=int(num_images),
            width=int(width),
            height=int(height),
            negative_prompt=negative_prompt,
        )
        try:
            settings.validate()
        except ValueError as e:
            raise _error(str(e)) from e
        return paint(prompt, settings, progress)

    with gr.Blocks(
        title="albumcover",
        analytics_enabled=False,
        delete_cache=(CACHE_SWEEP_S, CACHE_MAX_AGE_S),
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
            style = gr.Dropdown(list(STYLES), value=DEFAULT_STYLE, label="Prompt style")
            negative = gr.Textbox(
                DEFAULT_NEGATIVE_PROMPT, label="Negative prompt", max_length=MAX_PROMPT_CHARS
            )
            with gr.Row():
                steps = gr.Slider(1, 100, value=25, step=1, label="Steps", elem_id="steps")
                guidance = gr.Slider(0.0, 20.0, value=7.5, step=0.5, label="Guidance scale")
                num_images = gr.Slider(1, 4, value=2, step=1, label="Variations")
            with gr.Row():
                seed = gr.Number(
                    0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed", interactive=False
                )
                randomize = gr.Checkbox(True, label="Randomize seed")
                width = gr.Slider(MIN_SIZE, MAX_UI_SIZE, value=image_size, step=8, label="Width")
                height = gr.Slider(MIN_SIZE, MAX_UI_SIZE, value=image_size, step=8, label="Height")
        generate_btn = gr.Button("Generate", variant="primary", elem_id="generate")
        gallery = gr.Gallery(
            label="Covers", format="png", columns=2, height="auto", elem_id="gallery"
        )

        analyze_btn.click(
            app_memory.release_after(analyze),
            checked.fields(analyze, [audio, title, artist, release_date, category, style]),
            [tags, prompt, inferred, taggram],
            api_name="analyze",
        )
        generated = generate_btn.click(
            app_memory.release_after(generate),
            checked.fields(
                generate,
                [prompt, negative, steps, guidance, seed, randomize, num_images, width, height],
            ),
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
        # a UI nicety, not an API endpoint
        randomize.change(
            lambda on: gr.update(interactive=not on),
            randomize,
            seed,
            api_visibility="private",
            queue=False,
        )
    return checked.guard_requests(demo)


def load_upscaler(model: str | None):
    """The diffusers x4 upscaler when one is configured and a GPU is here, else None (Lanczos)."""
    if model is None:
        return None
    import torch

    zero_gpu = bool(os.environ.get("SPACES_ZERO_GPU"))  # a GPU only inside @spaces.GPU calls
    if not torch.cuda.is_available() and not zero_gpu:
        log.warning("ALBUMCOVER_UPSCALER=%s needs a GPU; none here, exports use Lanczos", model)
        return None
    from albumcover.export import DiffusionUpscaler, ExportError

    try:
        return DiffusionUpscaler.from_pretrained(model, device="cuda")
    except (ExportError, RuntimeError) as e:
        log.error("upscaler %r did not load, exports use Lanczos: %s", model, e)
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", action="store_true", help="also serve a public gradio.live link")
    parser.add_argument("--port", type=int, help="default: $GRADIO_SERVER_PORT or 7860")
    parser.add_argument("--host", help="default: $GRADIO_SERVER_NAME or 127.0.0.1")
    args = parser.parse_args(argv)
    # the app's own INFO lines (models loaded, covers painted); libraries only from WARNING up,
    # so the log is not one "HTTP Request: GET ..." line (httpx) per gradio start-up check
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("albumcover").setLevel(logging.INFO)
    # before any worker thread exists: each would get a malloc arena of its own (soak benchmark)
    app_memory.limit_malloc_arenas(2)

    # Models load once at start-up, outside the GPU function, as ZeroGPU wants. The taggers stay
    # on the CPU (a 30 s song takes well under a second there): on ZeroGPU a GPU exists only
    # inside @spaces.GPU functions, and Analyze should not queue for one.
    try:
        tagger = Tagger.load(TAGGER, device="cpu")
        genre_tagger = tagger if TAGGER == GENRE_TAGGER else Tagger.load(GENRE_TAGGER, device="cpu")
    except (ValueError, RuntimeError) as e:  # unknown name, unreadable or unreachable weights
        raise SystemExit(f"cannot load the Musicnn tagger (ALBUMCOVER_TAGGER={TAGGER}): {e}") from e
    generator = load_generator(MODEL, LORA, SAFETY_CHECKER)
    demo = build_demo(tagger, genre_tagger, generator, upscaler=load_upscaler(UPSCALER))
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    # host/port None: gradio reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (set on Spaces)
    demo.launch(
        share=args.share,
        server_name=args.host,
        server_port=args.port,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        state_session_capacity=MAX_SESSIONS,
    )


if __name__ == "__main__":
    main()
