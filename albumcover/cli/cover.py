"""``albumcover cover SONG...``: tag each song, write its prompt, paint covers, and release them
(lettering, export, check, embed: :mod:`albumcover.cli.release`) when asked."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..ear.audio import AudioError
from ..ear.tagger import DEFAULT_MODEL, MODELS, Tagger
from ..files import atomic_path, check_writable_dir
from ..paint.checkpoints import is_single_file
from ..paint.defaults import CPU_FAST_STEPS, CPU_MODEL, GPU_MODEL, paint_defaults
from ..paint.dtypes import AUTO, DTYPE_NAMES, parse_dtype
from ..paint.families import load_budget
from ..paint.generator import (
    MAX_GUIDANCE,
    MAX_IMAGES,
    MAX_SEED,
    MAX_SIZE,
    MAX_STEPS,
    MIN_SIZE,
    CoverGenerator,
    FastPath,
    GenerationSettings,
    GeneratorError,
)
from ..paint.ovengine import ENGINES
from ..pipeline import describe_song, make_covers
from ..prompts import (
    CATEGORIES,
    CLIP_MAX_TOKENS,
    DEFAULT_NEGATIVE_PROMPT,
    DEFAULT_STYLE,
    STYLES,
    SongInfo,
)
from ..recipe import DEFAULT_RECIPE, CaptionRecipe, RecipeError, check_served_recipe, load_recipe
from . import PROG
from .argtypes import choice, float_in, int_in
from .release import (
    _album_release,
    _releasing,
    add_release_arguments,
    check_release_arguments,
    release,
    run_release_only,
)
from .songs import album_tracks, track_song


def add_cover_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "cover",
        help="paint album covers for a song, or for every track of an album folder",
        description="Tag each song, write its prompt from the tags and the metadata, print it, "
        "and paint covers with a Stable Diffusion checkpoint (PNG files in --out). A folder "
        "is an album: one prompt per track from its tags (title, else the file name; artist, "
        "date, genre), as the training captions are written; flags override the tags.",
    )
    parser.add_argument("audio", nargs="+", metavar="AUDIO_OR_FOLDER")
    parser.add_argument("--title", default="", help="song title (single files only)")
    parser.add_argument("--artist", default="")
    parser.add_argument("--date", default="", help='release date, e.g. "2024" or "2024-05-01"')
    parser.add_argument(
        "--category",
        default="",
        type=choice(CATEGORIES),
        help=f"genre category (default: inferred from the audio); one of: {', '.join(CATEGORIES)}",
    )
    parser.add_argument(
        "--style",
        default=None,
        choices=sorted(STYLES),
        help=f"prompt style (default: the model's caption recipe, else {DEFAULT_STYLE})",
    )
    parser.add_argument("--prompt", default=None, help="use this prompt instead of writing one")
    parser.add_argument("--prompt-only", action="store_true", help="print prompts, paint nothing")
    parser.add_argument(
        "--n",
        type=int_in(1, MAX_IMAGES),
        default=4,
        help=f"covers per song (1-{MAX_IMAGES})",
    )
    parser.add_argument("--out", default="covers", metavar="DIR", help="default: ./covers")
    parser.add_argument(
        "--model",
        default=None,
        help="Hub id, local diffusers folder, or one .safetensors checkpoint (SD 1.x/2.x, SDXL, "
        f"SD 3, FLUX, ...); default (as the app's) {CPU_MODEL} without a GPU, {GPU_MODEL} "
        "with one",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="BASE_MODEL",
        help="for a single-file --model: the base model (folder or Hub id) whose configs it "
        "uses, e.g. stabilityai/stable-diffusion-xl-base-1.0 (default: inferred from the file)",
    )
    parser.add_argument("--lora", default=None, help="optional LoRA weights (folder or Hub id)")
    parser.add_argument(
        "--vae", default=None, help="paint with this VAE (e.g. madebyollin/sdxl-vae-fp16-fix)"
    )
    parser.add_argument(
        "--fast",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="few-step path: a distilled LoRA fused on top of the model (a fine-tune included) "
        "with its own sampler, no guidance: Hyper-SD at 1-2 steps, LCM-LoRA at 4+ (--steps "
        "picks it). Default: on without a GPU (2 steps), off with one; a LoRA that cannot be "
        "loaded falls back to the model's own sampler with a warning",
    )
    parser.add_argument(
        "--fast-lora",
        default=None,
        metavar="LORA",
        help="the few-step LoRA: folder, .safetensors file or Hub id (default: the model "
        "family's for --steps); 'none' for a checkpoint that is already distilled",
    )
    parser.add_argument(
        "--fast-vae",
        default=None,
        metavar="VAE",
        help="fast path: decode with this tiny autoencoder (e.g. madebyollin/taesd for SD 1.x, "
        "madebyollin/taesdxl for SDXL): a decode ~10x cheaper on a CPU (default: TAESD for "
        "the default model without a GPU)",
    )
    parser.add_argument(
        "--steps",
        type=int_in(1, MAX_STEPS),
        default=None,
        help=f"default: the model family's (25), or the fast path's ({CPU_FAST_STEPS} without a "
        "GPU, else 4); with the fast path they pick its LoRA (1, 2: Hyper-SD; 4+: LCM-LoRA)",
    )
    parser.add_argument(
        "--dtype",
        default=AUTO,
        type=choice((AUTO, *DTYPE_NAMES)),
        help="the weights' type: auto (bfloat16 on a CPU with AVX512_BF16 or AMX, float16 on "
        "CUDA, else float32), bfloat16, float32 or float16",
    )
    parser.add_argument(
        "--guidance",
        type=float_in(0.0, MAX_GUIDANCE),
        default=None,
        help="default: the family's",
    )
    parser.add_argument(
        "--seed",
        type=int_in(0, MAX_SEED),
        default=None,
        help="default: random; with --n > 1 the covers get seed, seed+1, ... (wrapping to 0)",
    )
    parser.add_argument(
        "--size",
        type=int_in(MIN_SIZE, MAX_SIZE, multiple=8),
        default=None,
        help="pixels (square); default: the model's native size (512 SD 1.x, 1024 SDXL)",
    )
    parser.add_argument("--negative-prompt", default=None)
    parser.add_argument(
        "--no-safety-checker", action="store_true", help="remove the checkpoint's safety checker"
    )
    parser.add_argument(
        "--tagger",
        default=None,
        choices=MODELS,
        help="tagger of the prompt tags (default: the model's caption recipe, else "
        f"{DEFAULT_MODEL})",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if any)")
    add_engine_argument(parser)
    add_release_arguments(parser)
    parser.set_defaults(func=run_cover)
    return parser


def add_engine_argument(parser: argparse.ArgumentParser) -> None:
    """--engine: what runs the denoiser (shared by cover and kit)."""
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="what runs the UNet: auto (OpenVINO on a CPU in bfloat16 where installed, "
        "converted once per model and cached; else torch), torch or openvino",
    )


def _cover_songs(args: argparse.Namespace) -> list:
    """(audio path, SongInfo) for every song named on the command line."""

    songs = []
    for name in args.audio:
        path = Path(name)
        song = SongInfo(
            title=args.title, artist=args.artist, date=args.date, category=args.category
        )
        if path.is_dir() and _releasing(args):
            songs.append(_album_release(path, args))
        elif path.is_dir():
            if args.title:
                raise ValueError(
                    f"--title names one song, but {path} is a folder: each track's title is read "
                    "from its tags or file name"
                )
            tracks = album_tracks(path)
            if not tracks:
                raise ValueError(f"{path}: no audio files in this folder")
            songs += [(t, track_song(t, song)) for t in tracks]
        else:
            songs.append((path, song))
    return songs


def _settings(args: argparse.Namespace, generator=None):
    """The GenerationSettings the flags ask for, on top of the model family's defaults."""

    overrides = dict(seed=args.seed, num_images=args.n)
    if args.negative_prompt is not None:
        overrides["negative_prompt"] = args.negative_prompt
    else:
        overrides["negative_prompt"] = DEFAULT_NEGATIVE_PROMPT
    for flag, name in (("steps", "steps"), ("guidance", "guidance_scale")):
        if getattr(args, flag) is not None:
            overrides[name] = getattr(args, flag)
    if args.size is not None:
        overrides.update(width=args.size, height=args.size)
    if generator is None:
        return GenerationSettings(**overrides).validate()
    return generator.default_settings(**overrides).validate()


def _recipe(args: argparse.Namespace):
    """The served model's caption recipe (its defaults when it has none), checked against the
    --tagger / --style asked for."""

    try:
        recipe = load_recipe(args.model)
    except (OSError, ValueError) as e:  # unreadable recipe file, bad repo id
        raise ValueError(f"cannot read the caption recipe of --model {args.model!r}: {e}") from e
    if recipe is None:
        return CaptionRecipe.for_style(
            args.style or DEFAULT_RECIPE.style, caption_tagger=args.tagger or DEFAULT_MODEL
        )
    for warning in check_served_recipe(recipe, caption_tagger=args.tagger, style=args.style):
        print(f"{PROG} cover: warning: {warning}", file=sys.stderr)
    return recipe


def _prompt_only_budget(args: argparse.Namespace, recipe):
    """With --prompt-only nothing is painted, but the prompts should still be cut where the
    model cuts them: the model's tokenizers alone (no weights), from --model, else --config or
    the recipe's base model for a single file. None (prompts not cut) when unreachable."""

    source = args.model if not is_single_file(args.model) else args.config or recipe.base_model
    if source is None:
        return None
    try:
        return load_budget(source)
    except Exception as e:  # offline, no such repo, no tokenizer: prompts are printed uncut
        logging.getLogger(__name__).warning(
            "prompts not counted: no tokenizer in %s (%s)", source, e
        )
        return None


def _apply_defaults(args: argparse.Namespace) -> None:
    """--model, --fast and --fast-vae from the one default the app shares
    (:func:`albumcover.paint.defaults.paint_defaults`), for this machine's device."""
    from ..paint.dtypes import pick_device

    device = args.device or pick_device()
    defaults = paint_defaults(str(device).startswith("cuda"), args.model, args.fast, args.engine)
    args.model, args.fast, args.engine = defaults.model, defaults.fast, defaults.engine
    args.default_fast_steps = defaults.fast_steps
    args.default_vae = defaults.vae
    if args.fast_vae is None:
        args.fast_vae = defaults.fast_vae


def _fast_path(args: argparse.Namespace):
    """The FastPath the flags ask for (None: --no-fast); --steps picks its LoRA."""
    if not args.fast:
        return None
    steps = args.steps or args.default_fast_steps
    return FastPath.from_option(args.fast_lora, args.fast_vae, steps)


def run_cover(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
        check_release_arguments(args)
        songs = _cover_songs(args)
        if args.prompt is not None and not args.prompt.strip():
            raise ValueError("--prompt is empty")
        for flag in ("fast_lora", "fast_vae"):
            if getattr(args, flag) is not None and args.fast is False:
                raise ValueError(f"--{flag.replace('_', '-')} does not apply with --no-fast")
        dtype = parse_dtype(args.dtype)
        _apply_defaults(args)
        if args.config is not None and not str(args.model).lower().endswith(
            (".safetensors", ".ckpt")
        ):
            raise ValueError("--config only applies to a single-file --model (.safetensors)")
        recipe = _recipe(args)
    except (ValueError, RecipeError) as e:
        print(f"{PROG} cover: error: {e}", file=sys.stderr)
        return 2
    out = None
    if not args.prompt_only:  # before minutes of model loading and tagging, not after
        try:
            out = check_writable_dir(args.out, "--out")
        except ValueError as e:
            print(f"{PROG} cover: error: {e}", file=sys.stderr)
            return 2
    if args.image is not None:
        return run_release_only(args, songs)
    generator = None
    try:
        if not args.prompt_only:
            generator = CoverGenerator.from_pretrained(
                args.model,
                lora=args.lora,
                device=args.device,
                dtype=dtype,
                safety_checker=not args.no_safety_checker,
                config=args.config,
                vae=args.vae or args.default_vae,
                fast=_fast_path(args),
                fast_fallback=True,
                engine=args.engine,
            )
            settings = _settings(args, generator)
            _tell_setup(generator)
        tagger = Tagger.load(recipe.caption_tagger, device=args.device)
        genre_tagger = (
            None if args.category else Tagger.load(recipe.genre_tagger, device=args.device)
        )
    except (GeneratorError, ValueError, RuntimeError) as e:
        print(f"{PROG} cover: error: {e}", file=sys.stderr)
        return 1
    budget = generator.budget if generator is not None else _prompt_only_budget(args, recipe)
    if generator is not None:
        _tell_cuts(generator, args.prompt, settings.negative_prompt)
    status = 0
    for path, song, *album in songs:  # album: [(folder, tracks)] for a whole-album release
        try:
            description = describe_song(
                path,
                song,
                tagger,
                genre_tagger,
                recipe=recipe,
                count_tokens=budget.count if budget else None,
                max_tokens=budget.max_tokens if budget else CLIP_MAX_TOKENS,
            )
        except (AudioError, ValueError) as e:
            print(f"{PROG} cover: {e}", file=sys.stderr)
            status = 1
            continue
        prompt = args.prompt if args.prompt is not None else description.prompt
        print(f"{path}: {prompt}", flush=True)
        if args.prompt is None and description.cut:
            cut = "; ".join(description.cut)
            print(f"  (shortened to the model's token budget; left out: {cut})", flush=True)
        if generator is None:
            continue
        try:
            covers = make_covers(
                prompt, generator, settings, allow_empty_prompt=recipe.unconditional
            )
        except (GeneratorError, ValueError) as e:
            print(f"{PROG} cover: {path}: {e}", file=sys.stderr)
            status = 1
            continue
        stem = album[0][0].name if album else path.stem
        for cover in covers:
            target = out / f"{stem}-{cover.seed}.png"
            with atomic_path(target) as tmp:  # a kill mid-write leaves no half PNG
                cover.image.save(tmp, format="PNG")
            print(f"  wrote {target}", flush=True)
        if _releasing(args):  # the first painting is the one released
            status = max(status, release(covers[0].image, path, song, args, *album))
    return status


def _tell_setup(generator, command: str = "cover") -> None:
    """Print the generator's notes (e.g. the fast path's fallback) as warnings on stderr, under
    ``command``'s name; how it paints (dtype, sampler) is logged by the loader (--verbose)."""
    for note in generator.notes:
        print(f"{PROG} {command}: warning: {note}", file=sys.stderr, flush=True)


def _tell_cuts(generator, prompt: str | None, negative_prompt: str) -> None:
    """Print what the text encoder's token budget drops from the user's own texts."""
    for flag, text in (("--prompt", prompt), ("--negative-prompt", negative_prompt)):
        cut = generator.fit(text).cut if text else ""
        if cut:
            print(
                f"{PROG} cover: warning: {flag} is longer than the model reads "
                f"({generator.max_tokens} tokens); ignored: {cut!r}",
                file=sys.stderr,
            )
