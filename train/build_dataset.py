"""Build the (cover, prompt) training set from a music library whose files carry their cover art.

    python -m train.build_dataset --audio_dir ~/Music --output_dir data/covers
    python -m train.build_dataset --manifest jamendo/manifest.jsonl --output_dir data/covers
    python -m train.build_dataset ... --num_workers 4 (decode in 4 processes)
    python -m train.build_dataset ... --batch_tracks 16 (16 tracks per tagger call; CUDA's default)
    python -m train.build_dataset ... --num_shards K --shard_index i, then ... merge
    (train.dataset.shards)

The command: its flags, the tokenizer that counts caption tokens, the closing summary and the
optional push. The build itself is :func:`train.dataset.build.build_dataset` (tracks, covers,
captions, tag cache, workers, batches, shards, the written files: see :mod:`train.dataset`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from albumcover.cli.argtypes import int_in
from albumcover.ear.tagger import MODELS, resolve_device
from albumcover.files import check_writable_dir
from albumcover.paint.families import load_budget
from albumcover.prompts import CLIP_MAX_TOKENS, STYLES
from albumcover.recipe import (
    DEFAULT_TAGGER,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP,
    GENRE_PATCHES,
    GENRE_TAGGER,
    RecipeError,
    read_recipe,
)

from .dataset.build import GENRE_MODELS, build_dataset
from .dataset.covers import MIN_COVER_PX
from .dataset.library import LibraryError
from .dataset.shards import merge_main
from .push import PushError, add_hub_arguments, check_hub_args, push_folder


def push_to_hub(
    output_dir: str | Path, repo_id: str, *, private: bool = False, endpoint: str | None = None
) -> str:
    """Upload the dataset folder (without its cache) as a Hub dataset repo; returns its URL.

    The project's one upload path (``train.push.push_folder``); the token is huggingface_hub's
    (HF_TOKEN or `hf auth login`), never printed.

    Raises:
        PushError: no network, no or bad token, no permission; the message says what to do.
    """
    return push_folder(
        output_dir,
        repo_id,
        repo_type="dataset",
        private=private or None,
        endpoint=endpoint,
        commit_message="Upload album cover dataset (train.build_dataset)",
    )


def parse_args(input_args: Sequence[str] | None = None) -> argparse.Namespace:
    """The command's flags (``sys.argv`` when None), checked before any work: a bad one exits 2
    with a one-line error."""
    parser = argparse.ArgumentParser(
        prog="python -m train.build_dataset",
        description="Build an imagefolder (cover, prompt) dataset from a music library.",
    )
    source = parser.add_argument_group("source (exactly one)")
    source.add_argument("--audio_dir", type=Path, help="music folder, walked recursively")
    source.add_argument(
        "--manifest",
        type=Path,
        help="CSV or JSONL with columns audio, image, title, artist, date, category "
        "(optional album, license); paths relative to the manifest",
    )
    parser.add_argument("--output_dir", type=Path, required=True, help="the dataset folder")
    parser.add_argument("--resolution", type=int, default=512, help="cover side in pixels")
    parser.add_argument(
        "--validation_split", type=float, default=0.1, help="fraction of albums held out"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the album split")
    parser.add_argument("--model", default=DEFAULT_TAGGER, help="tagger for the prompt tags")
    parser.add_argument(
        "--genre_model",
        default=GENRE_TAGGER,
        choices=GENRE_MODELS,
        help="tagger that infers a category when the file has no usable genre",
    )
    parser.add_argument(
        "--genre_patches",
        type=int_in(0),
        default=GENRE_PATCHES,
        help="3 s patches, spread over a track, the genre tagger hears (0: every patch); "
        "recorded in the caption recipe",
    )
    parser.add_argument("--style", default=None, help="prompt style (albumcover.prompts.STYLES)")
    parser.add_argument(
        "--top", type=int, default=DEFAULT_TOP, help="at most this many tags per prompt"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="minimum mean score of a prompt tag",
    )
    parser.add_argument(
        "--tokenizer",
        default=None,
        metavar="MODEL",
        help="count prompt tokens with this base model's tokenizer(s) (Hub id or folder, e.g. "
        "the model you fine-tune; default: the base model of the dataset's caption recipe, "
        "else captions are not cut)",
    )
    parser.add_argument("--device", default=None, help="torch device for the taggers")
    parser.add_argument(
        "--num_workers",
        type=int,
        default=0,
        help="processes that decode and compute features while the taggers run (0: none)",
    )
    parser.add_argument(
        "--batch_tracks",
        type=int_in(1, 256),
        default=None,
        metavar="N",
        help="tracks each tagger hears in one call (default: 16 when the taggers run on CUDA, "
        "else 1: on a CPU batches buy nothing)",
    )
    parser.add_argument(
        "--num_shards", type=int, default=1, help="split the library into this many shards"
    )
    parser.add_argument(
        "--shard_index",
        type=int,
        default=None,
        help="build only this shard (0 .. num_shards - 1) into --output_dir; join the shards "
        "with `python -m train.build_dataset merge`",
    )
    parser.add_argument(
        "--min_cover_px",
        type=int_in(1, 100_000),
        default=MIN_COVER_PX,
        metavar="PX",
        help=f"covers under this many pixels on their short side are skipped (default "
        f"{MIN_COVER_PX}; lower it to take thumbnails, still noted in the summary)",
    )
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    add_hub_arguments(parser)  # --push_to_hub --hub_model_id user/name [--hub_private_repo]
    args = parser.parse_args(input_args)

    if (args.audio_dir is None) == (args.manifest is None):
        parser.error("give exactly one of --audio_dir and --manifest")
    if args.audio_dir is not None and not args.audio_dir.is_dir():
        parser.error(f"--audio_dir {args.audio_dir} is not a folder")
    if args.manifest is not None:
        if not args.manifest.is_file():
            parser.error(f"--manifest {args.manifest} is not a file")
        if args.manifest.suffix.lower() not in (".csv", ".jsonl"):
            parser.error(f"--manifest {args.manifest} must be a .csv or .jsonl file")
    if args.output_dir.exists() and not args.output_dir.is_dir():
        parser.error(f"--output_dir {args.output_dir} exists and is not a folder")
    source_dir = args.audio_dir if args.audio_dir is not None else args.manifest.parent
    if args.output_dir.resolve() == source_dir.resolve():
        parser.error("--output_dir must not be the music folder itself")
    if args.resolution <= 0 or args.resolution % 8:
        parser.error(f"--resolution must be a positive multiple of 8, got {args.resolution}")
    if not 0 <= args.validation_split < 1:
        parser.error(f"--validation_split must be in [0, 1), got {args.validation_split}")
    if args.top < 1:
        parser.error(f"--top must be at least 1, got {args.top}")
    if not 0 <= args.threshold <= 1:
        parser.error(f"--threshold must be in [0, 1], got {args.threshold}")
    try:
        check_hub_args(args, default_repo=args.output_dir.resolve().name)
    except ValueError as e:
        parser.error(str(e))
    if args.num_workers < 0:
        parser.error(f"--num_workers must be 0 or more, got {args.num_workers}")
    if args.num_shards < 1:
        parser.error(f"--num_shards must be at least 1, got {args.num_shards}")
    if args.num_shards > 1 and args.shard_index is None:
        parser.error("--num_shards needs --shard_index (which shard this command builds)")
    if args.shard_index is not None and not 0 <= args.shard_index < args.num_shards:
        parser.error(
            f"--shard_index must be in [0, {args.num_shards - 1}] with --num_shards "
            f"{args.num_shards}, got {args.shard_index}"
        )
    if args.num_shards > 1 and args.push_to_hub:
        parser.error("--push_to_hub pushes a whole dataset: merge the shards, then push")

    if args.style is not None and args.style not in STYLES:
        parser.error(f"--style must be one of {', '.join(STYLES)}, got {args.style!r}")

    if args.model not in MODELS:
        parser.error(f"--model must be one of {', '.join(MODELS)}, got {args.model!r}")
    if args.device is not None:
        try:  # e.g. --device cuda where torch sees no GPU: say so before any work
            resolve_device(args.device)
        except ValueError as e:
            parser.error(f"--device: {e}")
    try:  # last, once the flags are known good: before any tokenizer or tagger loads
        check_writable_dir(args.output_dir, "--output_dir")
    except ValueError as e:
        parser.error(str(e))
    return args


def main(args: argparse.Namespace) -> int:
    """Build (and optionally push) the dataset; returns the process exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    count_tokens, max_tokens, tokenizer = None, CLIP_MAX_TOKENS, args.tokenizer
    if tokenizer is None and args.output_dir.is_dir():  # a rebuild counts as the first build did
        try:
            previous = read_recipe(args.output_dir)
        except RecipeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        tokenizer = previous.base_model if previous is not None else None
    if tokenizer:
        try:
            budget = load_budget(tokenizer)
        except (OSError, ValueError) as e:  # no such folder or repo, not a tokenizer, offline
            print(f"error: cannot load a tokenizer from {tokenizer!r}: {e}", file=sys.stderr)
            return 1
        count_tokens, max_tokens = budget.count, budget.max_tokens
    try:
        summary = build_dataset(
            args.output_dir,
            audio_dir=args.audio_dir,
            manifest=args.manifest,
            resolution=args.resolution,
            validation_split=args.validation_split,
            seed=args.seed,
            model=args.model,
            genre_model=args.genre_model,
            genre_patches=args.genre_patches or None,
            style=args.style,
            top=args.top,
            threshold=args.threshold,
            count_tokens=count_tokens,
            max_tokens=max_tokens,
            base_model=tokenizer,
            device=args.device,
            progress=not args.no_progress,
            num_workers=args.num_workers,
            batch_tracks=args.batch_tracks,
            num_shards=args.num_shards,
            shard_index=args.shard_index or 0,
            min_cover_px=args.min_cover_px,
        )
    except LibraryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(summary.format())
    if summary.total_rows == 0 and not summary.shard:  # an empty shard is still a shard
        print("error: no usable track; nothing was written", file=sys.stderr)
        return 1
    if args.push_to_hub:
        try:  # the token is huggingface_hub's to read (HF_TOKEN or the login); never printed
            url = push_to_hub(
                args.output_dir,
                args.hub_model_id,
                private=args.hub_private_repo,
                endpoint=os.environ.get("HF_ENDPOINT") or None,
            )
        except PushError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"Pushed to {url}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["merge"]:
        sys.exit(merge_main(sys.argv[2:]))
    sys.exit(main(parse_args()))
