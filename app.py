"""albumcover's Gradio app (a Hugging Face Space): a song in, album covers out.

The Space's entry point: it reads its settings from the environment once, here, loads the
models, builds the page (the ``space`` package: UI, release panel, input checks, memory bounds)
and launches it. The settings:

    ALBUMCOVER_MODEL           Hub id, local diffusers folder or .safetensors file of the image
                               model (default: SDXL base 1.0 with a GPU, SD 1.5 without)
    ALBUMCOVER_CONFIG          for a single-file model: its base model (folder or Hub id)
    ALBUMCOVER_LORA            optional LoRA weights (folder or Hub id) loaded on top of it
    ALBUMCOVER_VAE             optional VAE to paint with (default for SDXL on a GPU: the
                               fp16-fix VAE)
    ALBUMCOVER_FAST            "1"/"0": few-step path (default on without a GPU); a LoRA it
                               cannot load falls back to the model's own sampler, with a warning
    ALBUMCOVER_FAST_STEPS      the fast path's steps, which pick its LoRA (default 2 without a
                               GPU: Hyper-SD; 1: Hyper-SD 1-step; 4 or more: LCM-LoRA)
    ALBUMCOVER_FAST_LORA       the fast path's LoRA: folder, .safetensors file or Hub id (default:
                               the family's for those steps; "none" for a distilled checkpoint)
    ALBUMCOVER_FAST_VAE        the fast path's tiny autoencoder, e.g. madebyollin/taesd (default:
                               TAESD for the default SD 1.5 on a CPU, else the model's own VAE)
    ALBUMCOVER_DTYPE           auto, bfloat16 or float32 (float16 on a GPU): the weights' type
                               (default auto: bfloat16 on a CPU with AVX512_BF16/AMX, float16 on
                               CUDA, else float32)
    ALBUMCOVER_ENGINE          what runs the UNet: auto (default without a GPU: OpenVINO on a CPU
                               in bfloat16, converted once per model and cached in the user's
                               cache folder; else torch), torch, or openvino
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
    ALBUMCOVER_MAX_MEGAPIXELS  pixel budget of an uploaded cover, read from its header before
                               it is decoded (default 36: 6000 x 6000, Apple's largest)
    ALBUMCOVER_EXAMPLES        songs to click: unset for the built-in open-licence songs
                               (space/examples.py; none with HF_HUB_OFFLINE=1), a JSON manifest
                               (path or URL), or "none"
    ALBUMCOVER_AOT             "1"/"0": compile the denoiser ahead of time on ZeroGPU (default
                               off; ignored elsewhere)

plus gradio's own GRADIO_SERVER_NAME / GRADIO_SERVER_PORT. Run ``python app.py [--share]``.
"""

from __future__ import annotations

import argparse
import logging
import os

try:  # ZeroGPU hooks torch, so it must come first; elsewhere spaces.GPU is a no-op
    import spaces
except ImportError:  # a plain local install may lack it
    spaces = None

from albumcover.ear.audio import DEFAULT_MAX_DURATION
from albumcover.images import MAX_PIXELS
from albumcover.paint.defaults import paint_defaults
from albumcover.paint.dtypes import parse_dtype
from albumcover.paint.generator import MAX_SIZE, MAX_STEPS, MIN_SIZE
from albumcover.paint.ovengine import ENGINES
from albumcover.recipe import (
    DEFAULT_RECIPE,
    CaptionRecipe,
    RecipeError,
    check_served_recipe,
    load_recipe,
)
from space import memory, zerogpu
from space.examples import DEFAULT_SONGS, ExampleError, default_cache, fetch_examples, read_manifest
from space.models import load_generator, load_taggers, load_upscaler
from space.page import CSS, build_demo, no_gpu

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


def _env_text(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


# ZeroGPU (as the spaces package reads it): a GPU only inside @spaces.GPU calls
ZERO_GPU = os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def _has_gpu() -> bool:
    """A CUDA GPU now, or ZeroGPU's, which exists only inside @spaces.GPU calls."""
    if ZERO_GPU:
        return True
    import torch  # only here: torch loads after spaces (above), and only to ask this

    return torch.cuda.is_available()


HAS_GPU = _has_gpu()
# one default with the CLI's cover (albumcover.paint.defaults): model, fast path, tiny decoder
_PAINT = paint_defaults(
    HAS_GPU, _env_text("ALBUMCOVER_MODEL"), _env_flag("ALBUMCOVER_FAST", not HAS_GPU)
)
MODEL = _PAINT.model
CONFIG = _env_text("ALBUMCOVER_CONFIG")
LORA = _env_text("ALBUMCOVER_LORA")
VAE = _env_text("ALBUMCOVER_VAE") or _PAINT.vae
FAST = _PAINT.fast
FAST_STEPS = _env_int("ALBUMCOVER_FAST_STEPS", _PAINT.fast_steps, minimum=1, maximum=MAX_STEPS)
FAST_LORA = _env_text("ALBUMCOVER_FAST_LORA")
FAST_VAE = _env_text("ALBUMCOVER_FAST_VAE") or _PAINT.fast_vae
ENGINE = (_env_text("ALBUMCOVER_ENGINE") or _PAINT.engine).lower()
if ENGINE not in ENGINES:
    raise SystemExit(f"ALBUMCOVER_ENGINE must be one of {', '.join(ENGINES)}, got {ENGINE!r}")
try:
    DTYPE = parse_dtype(_env_text("ALBUMCOVER_DTYPE"))  # None: the device decides
except ValueError as e:
    raise SystemExit(f"ALBUMCOVER_DTYPE: {e}") from e
TAGGER = _env_text("ALBUMCOVER_TAGGER")  # None: the model's recipe
SAFETY_CHECKER = _env_flag("ALBUMCOVER_SAFETY_CHECKER", True)
IMAGE_SIZE = _env_int("ALBUMCOVER_IMAGE_SIZE", 0, minimum=MIN_SIZE, maximum=MAX_SIZE, multiple=8)
MAX_UPLOAD_MB = _env_int("ALBUMCOVER_MAX_UPLOAD_MB", 50, minimum=1)
QUEUE_SIZE = _env_int("ALBUMCOVER_QUEUE_SIZE", 16, minimum=1)
UPSCALER = _env_text("ALBUMCOVER_UPSCALER")
MAX_SONG_SECONDS = _env_int(
    "ALBUMCOVER_MAX_SONG_SECONDS", int(DEFAULT_MAX_DURATION), minimum=3, maximum=3600
)
MAX_MEGAPIXELS = _env_int(
    "ALBUMCOVER_MAX_MEGAPIXELS", MAX_PIXELS // 1_000_000, minimum=1, maximum=400
)
EXAMPLES = _env_text("ALBUMCOVER_EXAMPLES")  # None: the built-in songs
OFFLINE = _env_flag("HF_HUB_OFFLINE", False)  # nothing from the network: no built-in songs
AOT = _env_flag("ALBUMCOVER_AOT", False)


def gpu(duration, size=None):
    """``spaces.GPU(duration=..., size=...)`` on a Space (ZeroGPU sizes its request by them); a
    no-op elsewhere."""
    return no_gpu(duration) if spaces is None else spaces.GPU(duration=duration, size=size)


def load_examples(source: str | None) -> list:
    """The songs to click with their cached files; none (and a log line) when they are off,
    the manifest is unreadable or nothing could be fetched: the page then has no examples row."""
    if source is not None and source.lower() == "none":
        return []
    if source is None and OFFLINE:
        log.info("HF_HUB_OFFLINE: no songs to click (ALBUMCOVER_EXAMPLES may name local ones)")
        return []
    try:
        songs = DEFAULT_SONGS if source is None else read_manifest(source)
    except ExampleError as e:
        log.warning("ALBUMCOVER_EXAMPLES: %s; no songs to click", e)
        return []
    fetched = fetch_examples(songs, default_cache())
    log.info("songs to click: %d of %d fetched", len(fetched), len(songs))
    return fetched


def _torch_version() -> str:
    import torch  # loaded already (the models); here only to ask its version

    return torch.__version__


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
    memory.limit_malloc_arenas(2)

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
    # Models load once at start-up, outside the GPU function, as ZeroGPU wants.
    try:
        tagger, genre_tagger = load_taggers(served)
    except (ValueError, RuntimeError) as e:  # unknown name, unreadable or unreachable weights
        raise SystemExit(f"cannot load the Musicnn tagger {served.caption_tagger}: {e}") from e
    generator = load_generator(
        MODEL,
        LORA,
        SAFETY_CHECKER,
        config=CONFIG,
        vae=VAE,
        fast=FAST,
        fast_lora=FAST_LORA,
        fast_vae=FAST_VAE,
        fast_steps=FAST_STEPS,
        dtype=DTYPE,
        device=zerogpu.model_device(ZERO_GPU),
        engine=ENGINE,
    )
    if not isinstance(generator, Exception):  # e.g. the fast path fell back: shown on the page
        notes = [*notes, *generator.notes]
    aot, why_not = zerogpu.aot_wanted(AOT, ZERO_GPU, _torch_version())
    if why_not:
        log.warning(why_not)
    if aot and not isinstance(generator, Exception):
        try:  # a failed compile costs speed, not the app
            zerogpu.compile_denoiser(generator, spaces.GPU, generator.default_settings())
            log.info("denoiser compiled ahead of time")
        except Exception as e:
            log.error("ahead-of-time compilation failed, painting eagerly: %s", e)
    demo = build_demo(
        tagger,
        genre_tagger,
        generator,
        model=MODEL,
        image_size=IMAGE_SIZE or None,
        recipe=recipe,
        notes=tuple(notes),
        upscaler=load_upscaler(UPSCALER, has_gpu=HAS_GPU),
        max_song_seconds=MAX_SONG_SECONDS,
        max_pixels=MAX_MEGAPIXELS * 1_000_000,
        gpu=gpu,
        examples=load_examples(EXAMPLES),
    )
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    # host/port None: gradio reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (set on Spaces)
    demo.launch(
        share=args.share,
        server_name=args.host,
        server_port=args.port,
        max_file_size=f"{MAX_UPLOAD_MB}mb",
        css=CSS,
        state_session_capacity=memory.MAX_SESSIONS,
    )


if __name__ == "__main__":
    main()
