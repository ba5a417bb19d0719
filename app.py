"""albumcover's Gradio app (a Hugging Face Space): a song in, album covers out.

The app only wires the UI to :mod:`albumcover.pipeline`; every decision about tags, prompts and
images lives in the library. Configuration comes from environment variables, read once here:

    ALBUMCOVER_MODEL           Hub id, local diffusers folder or .safetensors file of the image
                               model (default: SDXL base 1.0 with a GPU, SD 1.5 without)
    ALBUMCOVER_CONFIG          for a single-file model: its base model (folder or Hub id)
    ALBUMCOVER_LORA            optional LoRA weights (folder or Hub id) loaded on top of it
    ALBUMCOVER_VAE             optional VAE to paint with (default for SDXL on a GPU: the
                               fp16-fix VAE)
    ALBUMCOVER_FAST            "1"/"0": few-step LCM sampler (default on without a GPU)
    ALBUMCOVER_FAST_LORA       the fast path's LoRA (default: the family's LCM-LoRA; "none" for
                               an already distilled checkpoint)
    ALBUMCOVER_FAST_VAE        the fast path's tiny autoencoder, e.g. madebyollin/taesd (default:
                               TAESD for the default SD 1.5 on a CPU, else the model's own VAE)
    ALBUMCOVER_TAGGER          Musicnn model whose tags go into the prompt (default: the model's
                               caption recipe, else MTT_musicnn); contradicting the recipe is
                               refused at start-up
    ALBUMCOVER_SAFETY_CHECKER  "1"/"0": keep or drop the NSFW safety checker (default on)
    ALBUMCOVER_IMAGE_SIZE      default width and height of the covers in pixels (default: the
                               model's native size: 512 SD 1.x, 1024 SDXL)
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
from albumcover.ear.audio import DEFAULT_MAX_DURATION, SAMPLE_RATE, AudioError, load_audio_capped
from albumcover.ear.features import HOP_LENGTH, PATCH_FRAMES
from albumcover.ear.tagger import Tagger
from albumcover.paint.generator import (
    MAX_SEED,
    MAX_SIZE,
    MIN_SIZE,
    Cover,
    CoverGenerator,
    FastPath,
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
from albumcover.recipe import (
    DEFAULT_RECIPE,
    CaptionRecipe,
    RecipeError,
    check_served_recipe,
    load_recipe,
)
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


def _has_gpu() -> bool:
    """A CUDA GPU now, or ZeroGPU's, which exists only inside @spaces.GPU calls."""
    if os.environ.get("SPACES_ZERO_GPU"):
        return True
    import torch

    return torch.cuda.is_available()


GPU_MODEL = "stabilityai/stable-diffusion-xl-base-1.0"
GPU_VAE = "madebyollin/sdxl-vae-fp16-fix"  # SDXL's own VAE overflows in float16
CPU_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
HAS_GPU = _has_gpu()
MODEL = os.environ.get("ALBUMCOVER_MODEL", "").strip() or (GPU_MODEL if HAS_GPU else CPU_MODEL)
CONFIG = os.environ.get("ALBUMCOVER_CONFIG", "").strip() or None
LORA = os.environ.get("ALBUMCOVER_LORA", "").strip() or None
VAE = os.environ.get("ALBUMCOVER_VAE", "").strip() or (
    GPU_VAE if HAS_GPU and MODEL == GPU_MODEL else None
)
FAST = _env_flag("ALBUMCOVER_FAST", not HAS_GPU)
FAST_LORA = os.environ.get("ALBUMCOVER_FAST_LORA", "").strip() or None
CPU_FAST_VAE = "madebyollin/taesd"  # on a CPU the full VAE's decode costs ~2 UNet passes
FAST_VAE = os.environ.get("ALBUMCOVER_FAST_VAE", "").strip() or (
    CPU_FAST_VAE if FAST and not HAS_GPU and MODEL == CPU_MODEL else None
)
TAGGER = os.environ.get("ALBUMCOVER_TAGGER", "").strip() or None  # None: the model's recipe
SAFETY_CHECKER = _env_flag("ALBUMCOVER_SAFETY_CHECKER", True)
IMAGE_SIZE = _env_int("ALBUMCOVER_IMAGE_SIZE", 0, minimum=MIN_SIZE, maximum=MAX_SIZE, multiple=8)
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


def gpu(duration):
    """``spaces.GPU(duration=...)`` on a Space (ZeroGPU sizes its request by it); a no-op
    elsewhere."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def load_generator(
    model: str,
    lora: str | None = None,
    safety_checker: bool = True,
    *,
    config: str | None = None,
    vae: str | None = None,
    fast: bool = False,
    fast_lora: str | None = None,
    fast_vae: str | None = None,
) -> CoverGenerator | GeneratorError:
    """The image model, or the error that stopped it loading (the app then runs without it)."""
    fast_path = FastPath.from_option(fast_lora, fast_vae) if fast else None
    try:
        return CoverGenerator.from_pretrained(
            model,
            lora=lora,
            safety_checker=safety_checker,
            config=config,
            vae=vae,
            fast=fast_path,
        )
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
    image_size: int | None = IMAGE_SIZE or None,
    recipe: CaptionRecipe | None = None,
    notes: tuple[str, ...] = (),
    upscaler=None,
    max_song_seconds: float = MAX_SONG_SECONDS,
) -> gr.Blocks:
    """The Blocks UI around loaded models; ``generator`` may be the error that stopped it loading,
    in which case Analyze still works and Generate says what went wrong and how to fix it.

    Sizes, steps and guidance default to the loaded model family's (the fast path's steps when
    on); ``recipe`` is the served model's caption recipe (None: it has none, the defaults are
    used and every style is offered); ``notes`` are start-up warnings shown on the page."""
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

    @gpu(duration=paint_seconds)
    def paint(prompt: str, settings: GenerationSettings, progress):
        n, w, h, steps = settings.num_images, settings.width, settings.height, settings.steps
        log.info("painting %d cover(s), %dx%d, %d steps: %r", n, w, h, steps, prompt)
        try:
            covers = make_covers(
                prompt,
                generator,
                settings,
                allow_empty_prompt=recipe.unconditional,
                progress=lambda step, total: progress((step, total), desc="painting", unit="steps"),
            )
        except (GeneratorError, ValueError) as e:
            raise gr.Error(f"Generation failed: {e}") from e
        return [(cover.image, _caption(cover)) for cover in covers]

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
        prompt = _check_field("prompt", prompt, MAX_PROMPT_CHARS)
        if not prompt and not recipe.unconditional:
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
            cut = generator.fit(text).cut  # the text encoder reads only max_tokens
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
    from albumcover.release.export import DiffusionUpscaler, ExportError

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

    # The served model's caption recipe decides how prompts are written; a setting that
    # contradicts it is refused here, before anything heavy loads.
    try:
        recipe = load_recipe(MODEL)
        notes = check_served_recipe(recipe, caption_tagger=TAGGER) if recipe else []
    except RecipeError as e:
        raise SystemExit(f"ALBUMCOVER_TAGGER / ALBUMCOVER_MODEL: {e}") from e
    for note in notes:
        log.warning("caption recipe of %s: %s", MODEL, note)
    served = recipe or CaptionRecipe.for_style(
        caption_tagger=TAGGER or DEFAULT_RECIPE.caption_tagger
    )
    log.info("prompts for %s: %s", MODEL, served.to_json().replace("\n", " "))
    # Models load once at start-up, outside the GPU function, as ZeroGPU wants. The taggers stay
    # on the CPU (a 30 s song takes well under a second there): on ZeroGPU a GPU exists only
    # inside @spaces.GPU functions, and Analyze should not queue for one.
    name = served.caption_tagger
    try:
        tagger = Tagger.load(name, device="cpu")
        genre_name = served.genre_tagger
        genre_tagger = tagger if name == genre_name else Tagger.load(genre_name, device="cpu")
    except (ValueError, RuntimeError) as e:  # unknown name, unreadable or unreachable weights
        raise SystemExit(f"cannot load the Musicnn tagger {name}: {e}") from e
    generator = load_generator(
        MODEL,
        LORA,
        SAFETY_CHECKER,
        config=CONFIG,
        vae=VAE,
        fast=FAST,
        fast_lora=FAST_LORA,
        fast_vae=FAST_VAE,
    )
    demo = build_demo(
        tagger,
        genre_tagger,
        generator,
        recipe=recipe,
        notes=tuple(notes),
        upscaler=load_upscaler(UPSCALER),
    )
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
