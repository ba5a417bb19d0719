"""Command line: ``python -m albumcover SUBCOMMAND ...``.

Each subcommand is one ``add_<name>_parser`` function that registers its arguments and one
``run_<name>(args) -> int`` that does the work; ``main`` dispatches.  Exit status: 0 on success,
1 when some input failed (each failure named on stderr, the rest still processed), 2 for usage
errors (argparse).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys

from .tagger import DEFAULT_MODEL, MODELS

PROG = "albumcover"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from e
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _top(text: str) -> int:
    value = _positive_int(text)
    if value > 50:
        raise argparse.ArgumentTypeError(f"the models have 50 labels, got {value}")
    return value


def _hop_seconds(text: str) -> float:
    from .features import seconds_to_frames

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
        "--batch-size", type=_positive_int, default=16, help="patches per forward pass"
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
    from .audio import AudioError
    from .tagger import Tagger

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Album cover art from a song: Musicnn tags -> Stable Diffusion."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_tag_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format=f"{PROG}: %(levelname)s: %(message)s",
    )
    return args.func(args)
