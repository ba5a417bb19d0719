"""Build the (cover, prompt) training set from a music library whose files carry their cover art.

    python -m train.build_dataset --audio_dir ~/Music --output_dir data/covers
    python -m train.build_dataset --manifest jamendo/manifest.jsonl --output_dir data/covers
    python -m train.build_dataset ... --num_workers 4 (decode in 4 processes)
    python -m train.build_dataset ... --batch_tracks 16 (16 tracks per tagger call; CUDA's default)
    python -m train.build_dataset ... --num_shards K --shard_index i, then ... merge (train.shards)

Each track is tagged and captioned by :func:`albumcover.pipeline.describe_song`, the same path the
app takes, so training prompts read exactly like the prompts users get. The output is a diffusers
``imagefolder``: ``train/`` and ``validation/``, each a ``metadata.jsonl`` (one row per track)
beside the covers (one PNG per album, shared by its tracks). Albums never straddle the split.

Re-running is cheap and safe: tagger outputs are cached per file (path, size, mtime) in
``OUTPUT_DIR/.cache``, every file is replaced atomically, and unchanged files are not rewritten.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from albumcover.cli.argtypes import int_in
from albumcover.ear.audio import AudioError
from albumcover.ear.tagger import MODELS, resolve_device
from albumcover.files import check_writable_dir
from albumcover.paint.families import load_budget
from albumcover.prompts import CLIP_MAX_TOKENS, DEFAULT_STYLE, STYLES
from albumcover.recipe import (
    DEFAULT_TAGGER,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP,
    GENRE_PATCHES,
    GENRE_TAGGER,
    RecipeError,
    read_recipe,
)
from train.build_summary import (
    BAD_AUDIO,
    BAD_COVER,
    BAD_ROW,
    NO_COVER,
    NO_TAGS,
    SPLITS,
    BuildSummary,
    Skipped,
)
from train.captions import _cache_answers, _describe, _Taggers, caption_recipe
from train.covers import _assign_covers, _png_renderer, square_cover
from train.dataset_files import _row, _split_covers, _write_card, _write_dataset
from train.library import LibraryError
from train.push import PushError, add_hub_arguments, check_hub_args, push_folder
from train.tagcache import TagCache
from train.tracks import Track, _collect_folder, _collect_manifest

# What callers import from here; the parts live in the modules above, named after their domain.
__all__ = [
    "BAD_AUDIO",
    "BAD_COVER",
    "BAD_ROW",
    "CACHE_DIR",
    "GENRE_MODELS",
    "NO_COVER",
    "NO_TAGS",
    "SPLITS",
    "BuildSummary",
    "PushError",
    "Skipped",
    "TagCache",
    "Track",
    "build_dataset",
    "caption_recipe",
    "main",
    "parse_args",
    "push_to_hub",
    "square_cover",
]

CACHE_DIR = ".cache"
GENRE_MODELS = (GENRE_TAGGER, "MSD_vgg")  # the taggers with genre labels infer_category reads


def build_dataset(
    output_dir: str | Path,
    *,
    audio_dir: str | Path | None = None,
    manifest: str | Path | None = None,
    resolution: int = 512,
    validation_split: float = 0.1,
    seed: int = 0,
    model: str = DEFAULT_TAGGER,
    genre_model: str = GENRE_TAGGER,
    genre_patches: int | None = GENRE_PATCHES,
    style: str | None = None,
    top: int = DEFAULT_TOP,
    threshold: float = DEFAULT_THRESHOLD,
    count_tokens=None,
    max_tokens: int = CLIP_MAX_TOKENS,
    base_model: str | None = None,
    device: str | None = None,
    tagger=None,
    genre_tagger=None,
    progress: bool = True,
    num_workers: int = 0,
    num_shards: int = 1,
    shard_index: int = 0,
    batch_tracks: int | None = None,
) -> BuildSummary:
    """Tag, caption and write every usable track of a music folder or manifest.

    Args:
        output_dir: the dataset folder (created; an existing build there is updated in place).
        audio_dir / manifest: exactly one source of tracks (see :mod:`train.library`).
        resolution: side of the square PNG covers, in pixels.
        validation_split: fraction of albums (not tracks) held out, in [0, 1).
        seed: orders albums for the split; the same seed gives the same split.
        model, genre_model: tagger names; the genre tagger loads only when a track needs its
            category inferred. ``tagger`` / ``genre_tagger`` pass already loaded ones.
        genre_patches: how many patches, spread over a track, the genre tagger hears (None:
            all); recorded in the caption recipe, so the app infers categories the same way.
        style, top, threshold, count_tokens, max_tokens: forwarded to describe_song; pass the
            budget of the base model you will fine-tune (``--tokenizer``,
            :func:`albumcover.paint.families.load_budget`) so long captions are cut exactly where
            the app cuts them; without a counter captions are not cut.
        base_model: the model whose tokenizer counted (recorded in the caption recipe).
        progress: show a tqdm progress bar.
        num_workers: processes that decode tracks and compute their features while this one
            runs the taggers (:mod:`train.workers`); 0 does everything here. Same output.
        num_shards, shard_index: build only the albums of shard ``shard_index`` of
            ``num_shards`` into a shard folder, merged later (:mod:`train.shards`).
        batch_tracks: tracks whose patches each tagger hears in one call (:mod:`train.batching`;
            None: 16 when the taggers run on CUDA, else 1). Same output.

    Returns:
        A :class:`BuildSummary`. Nothing is written when no track is usable.

    Raises:
        LibraryError: the audio folder or manifest cannot be read at all.
    """

    from train.batching import default_batch_tracks, tag_in_batches, track_requests
    from train.shards import check_shard_args, fingerprint, shard_of, write_shard
    from train.workers import map_patches

    if (audio_dir is None) == (manifest is None):
        raise ValueError("give exactly one of audio_dir and manifest")
    style = style or DEFAULT_STYLE
    if style not in STYLES:
        raise ValueError(f"unknown prompt style {style!r}; choose one of {', '.join(STYLES)}")
    check_shard_args(num_shards, shard_index)
    if batch_tracks is not None and (
        isinstance(batch_tracks, bool) or not isinstance(batch_tracks, int) or batch_tracks < 1
    ):
        raise ValueError(f"batch_tracks must be None or a whole number >= 1, got {batch_tracks!r}")
    output_dir = Path(output_dir)
    summary = BuildSummary(output_dir)
    if audio_dir is not None:
        tracks = _collect_folder(Path(audio_dir))
    else:
        tracks = _collect_manifest(Path(manifest), summary)
    library = fingerprint([t.source for t in tracks])
    if num_shards > 1:
        summary.shard = f"{shard_index} of {num_shards}"
        tracks = [t for t in tracks if shard_of(t.album_key, num_shards) == shard_index]
    summary.tag_notes += [(t.source, note) for t in tracks for note in t.tags.notes]
    covers = _assign_covers(tracks, output_dir, resolution, summary)

    taggers = _Taggers(model, genre_model, device, tagger, genre_tagger, genre_patches)
    if batch_tracks is None:
        batch_tracks = default_batch_tracks(taggers.device_type)
    recipe = caption_recipe(
        style, taggers.model, taggers.genre_model, top, threshold, base_model, genre_patches
    )
    cache = TagCache(output_dir / CACHE_DIR / "tags")
    described = []
    usable = [t for t in tracks if t.source in covers]
    decoded_tracks = map_patches(
        usable,
        lambda t: None if _cache_answers(t, taggers, cache) else t.audio,
        num_workers,
        prefetch=batch_tracks,  # the workers decode the next batch while this one is tagged
    )
    if batch_tracks > 1:
        tagged_tracks = tag_in_batches(
            decoded_tracks,
            lambda t, patches: track_requests(t, patches, taggers, cache, genre_patches),
            batch_tracks,
            top=recipe.top,
        )
    else:  # one track at a time: each tagger called per track by describe_patches itself
        tagged_tracks = ((t, decoded, {}) for t, decoded in decoded_tracks)
    # closing(): an error or a kill in the loop shuts the worker processes down right away
    with contextlib.closing(decoded_tracks):
        for track, decoded, tagged in tqdm(
            tagged_tracks, total=len(usable), desc="Tagging", unit="track", disable=not progress
        ):
            try:
                description, fresh = _describe(
                    track,
                    taggers,
                    cache,
                    decoded,
                    tagged,
                    recipe=recipe,
                    count_tokens=count_tokens,
                    max_tokens=max_tokens,
                )
            except AudioError as e:
                summary.skipped.append(Skipped(track.source, BAD_AUDIO, str(e)))
                continue
            summary.tagged += fresh
            summary.cached += not fresh
            if not description.tag_names:
                detail = f"no tag scored {threshold} or more; silent or very quiet?"
                summary.skipped.append(Skipped(track.source, NO_TAGS, detail))
                continue
            described.append((track, description))

    render_png = _png_renderer(covers, resolution)
    if num_shards > 1:  # one shard: its rows unsplit, split at merge time over all albums
        shard_rows = [_row(t, d, covers[t.source][0], taggers.model) for t, d in described]
        summary.unsplit = len(shard_rows)
        summary.images = len({r["file_name"] for r in shard_rows})
        options = {
            "resolution": resolution,
            "validation_split": validation_split,
            "seed": seed,
            "model": taggers.model,
            "genre_model": taggers.genre_model,
            "genre_patches": genre_patches,
            "style": style,
            "top": top,
            "threshold": threshold,
            "base_model": base_model,
        }
        write_shard(
            output_dir,
            index=shard_index,
            num_shards=num_shards,
            library=library,
            options=options,
            rows=shard_rows,
            render_png=render_png,
            summary=summary,
        )
        return summary
    if not described:
        return summary
    split_of = _split_covers(
        sorted({covers[t.source][0] for t, _ in described}), validation_split, seed
    )
    rows: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for track, description in described:
        cover_id, _ = covers[track.source]
        rows[split_of[cover_id]].append(_row(track, description, cover_id, taggers.model))
    _write_dataset(output_dir, rows, render_png, summary)
    _write_card(output_dir, summary, taggers.model, style, resolution)
    recipe.save(output_dir)
    return summary


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
        from train.shards import merge_main

        sys.exit(merge_main(sys.argv[2:]))
    sys.exit(main(parse_args()))
