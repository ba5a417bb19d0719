"""``albumcover tag SONG...``: a pretrained Musicnn's tags for each song, as text or JSON lines."""

from __future__ import annotations

import argparse
import json
import math
import sys

from ..ear.audio import AudioError
from ..ear.features import seconds_to_frames
from ..ear.tagger import DEFAULT_BATCH_SIZE, DEFAULT_MODEL, MODELS, Tagger
from . import PROG
from .argtypes import int_in

_positive_int = int_in(1)


def _top(text: str) -> int:
    value = _positive_int(text)
    if value > 50:
        raise argparse.ArgumentTypeError(f"the models have 50 labels, got {value}")
    return value


def _hop_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from e
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    try:
        seconds_to_frames(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e
    return value


def add_tag_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "tag",
        help="tag songs with a pretrained Musicnn model",
        description="Tag songs (genre, mood, instruments) with a pretrained Musicnn model. "
        "Prints one line per file, or one JSON object per line with --json.",
    )
    parser.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files (mp3, wav, ...)")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, choices=MODELS, help=f"default: {DEFAULT_MODEL}"
    )
    parser.add_argument("--top", type=_top, default=3, help="how many tags to show (default 3)")
    parser.add_argument(
        "--hop",
        type=_hop_seconds,
        default=None,
        metavar="SECONDS",
        help="seconds between 3 s patches (default 3: no overlap)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON lines: file, model, tags, scores (all labels), taggram (per patch)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if any)")
    parser.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"patches per forward pass (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--weights-dir",
        default=None,
        metavar="DIR",
        help="folder with the musicnn checkpoints (default: the installed musicnn package, "
        "else the official wheel, downloaded once)",
    )
    parser.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="where converted weights are cached (default: the user cache folder)",
    )
    parser.set_defaults(func=run_tag)
    return parser


def run_tag(args: argparse.Namespace) -> int:
    try:
        tagger = Tagger.load(
            args.model,
            device=args.device,
            batch_size=args.batch_size,
            weights_dir=args.weights_dir,
            cache_dir=args.cache_dir,
        )
    except (ValueError, RuntimeError) as e:  # bad device, missing or corrupt weights
        print(f"{PROG} tag: error: {e}", file=sys.stderr)
        return 1
    status = 0
    for path in args.audio:
        try:
            result = tagger.tag(path, top=args.top, hop_seconds=args.hop)
        except AudioError as e:  # names the file itself
            print(f"{PROG} tag: {e}", file=sys.stderr)
            status = 1
            continue
        except ValueError as e:
            print(f"{PROG} tag: {path}: {e}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            record = {
                "file": path,
                "model": result.model,
                "tags": result.tags,
                "scores": result.scores,
                "taggram": result.taggram.tolist(),
            }
            print(json.dumps(record), flush=True)
        else:
            tags = ", ".join(f"{tag} ({result.scores[tag]:.2f})" for tag in result.tags)
            print(f"{path}: {tags}", flush=True)
    return status
