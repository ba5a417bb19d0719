"""The command line's release step: ``cover ... --letter --embed`` (export, check, embed) and
``check COVER ...``."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from ..images import MAX_PIXELS, ImageError, describe_budget, read_image
from ..prompts import SongInfo
from ..release.check import check_cover
from ..release.export import (
    MAX_EXPORT_SIZE,
    MIN_EXPORT_SIZE,
    DiffusionUpscaler,
    ExportSettings,
    export_cover,
)
from ..release.fonts import FONT_NAMES
from ..release.lettering import LAYOUTS, parse_color
from ..songfile.embed import embed_cover
from ..songfile.tags import SongFileError, read_song_tags
from . import PROG
from .argtypes import float_in, int_in
from .songs import album_tracks


def add_budget_argument(parser, what: str) -> None:
    """``--max-megapixels MP``: the pixel budget of the images a command reads (``what`` it
    does), in megapixels; default the library's (:data:`albumcover.images.MAX_PIXELS`)."""
    parser.add_argument(
        "--max-megapixels",
        type=float_in(0.01, 1000),
        default=MAX_PIXELS / 1e6,
        metavar="MP",
        help=f"{what} (default {describe_budget(MAX_PIXELS)})",
    )


def add_release_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``cover`` flags that turn a painting into a release: export, lettering, embedding."""

    group = parser.add_argument_group(
        "release",
        "write DIR/<song name>.jpg, a distributor-ready export of the first painting, checked; "
        "for a folder, one cover for the album (title/artist from --title/--artist or the "
        "tags), embedded into every track with --embed",
    )
    group.add_argument("--letter", action="store_true", help="set the title and artist on it")
    group.add_argument("--layout", default="auto", choices=LAYOUTS, help="default: auto")
    group.add_argument("--font", default="auto", choices=FONT_NAMES, help="default: auto")
    group.add_argument("--color", default="auto", help="text colour: auto, #rrggbb or a name")
    group.add_argument("--export", action="store_true", help="export without --letter/--embed")
    group.add_argument(
        "--export-size",
        type=int_in(MIN_EXPORT_SIZE, MAX_EXPORT_SIZE),
        default=None,
        metavar="PX",
        help="default 3000",
    )
    group.add_argument("--format", default=None, choices=("jpeg", "png"), help="default: jpeg")
    group.add_argument(
        "--max-mb", type=float_in(0.1, 1000), default=10.0, help="export size limit (default 10)"
    )
    group.add_argument("--embed", action="store_true", help="also write the song with its cover")
    group.add_argument(
        "--in-place", action="store_true", help="with --embed: tag the original files themselves"
    )
    group.add_argument(
        "--image", default=None, metavar="PICTURE", help="release this picture, paint nothing"
    )
    add_budget_argument(group, "the pixel budget of --image, read from its header before decoding")
    group.add_argument(
        "--upscaler",
        default=None,
        metavar="MODEL",
        help="a diffusers x4 upscaler (Hub id or folder, e.g. "
        "stabilityai/stable-diffusion-x4-upscaler; wants a GPU); default: Lanczos",
    )


def _releasing(args) -> bool:
    return bool(
        args.letter
        or args.export
        or args.embed
        or args.export_size is not None
        or args.format is not None
        or args.image is not None
    )


def check_release_arguments(args) -> None:
    """Usage errors found before any model loads (ValueError)."""
    if args.in_place and not args.embed:
        raise ValueError("--in-place only goes with --embed")
    if args.image is not None and not Path(args.image).is_file():
        raise ValueError(f"--image {args.image}: no such file")
    if args.prompt_only and _releasing(args):
        raise ValueError("--prompt-only paints nothing, so there is nothing to release")

    parse_color(args.color)


def _album_release(folder: Path, args):
    """(first track, the album's SongInfo, (folder, tracks)) for one cover for the album."""

    tracks = album_tracks(folder)
    if not tracks:
        raise ValueError(f"{folder}: no audio files in this folder")
    album = artist = date = ""
    for track in tracks:
        try:
            tags = read_song_tags(track)
        except SongFileError:
            continue
        album = album or tags.album
        artist = artist or tags.album_artist or tags.artist
        date = date or tags.date
    album, artist, date = args.title or album, args.artist or artist, args.date or date
    if not album:
        raise ValueError(f"{folder}: no album title in the tracks' tags; give it with --title")
    return tracks[0], SongInfo(album, artist, date, args.category), (folder, tracks)


def _upscaler(args):
    if args.upscaler is None:
        return None
    if getattr(args, "_loaded_upscaler", None) is None:
        args._loaded_upscaler = DiffusionUpscaler.from_pretrained(args.upscaler, args.device)
    return args._loaded_upscaler


def release(image, path: Path, song, args, album=None) -> int:
    """Export ``image`` for ``song`` into ``--out``, check it, embed it with ``--embed``.
    ``album``: (folder, tracks) for a whole-album cover. Returns the exit status (0 or 1)."""

    out = Path(args.out)
    title, artist = song.title, song.artist
    if args.letter and album is None and not (title and artist):
        try:
            tags = read_song_tags(path)
            title, artist = title or tags.title or path.stem, artist or tags.artist
        except SongFileError:
            title = title or path.stem
    settings = ExportSettings(
        size=args.export_size or 3000,
        format=args.format or "jpeg",
        max_bytes=round(args.max_mb * 1_000_000),
    )
    try:
        export = export_cover(
            image,
            title if args.letter else "",
            artist if args.letter else "",
            settings=settings,
            upscaler=_upscaler(args),
            layout=args.layout,
            font=args.font,
            color=args.color,
        )
    except (ValueError, RuntimeError) as e:  # ExportError, LetteringError, a failed upscaler
        print(f"{PROG} cover: {path}: {e}", file=sys.stderr)
        return 1
    name = album[0].name if album else path.stem
    target = export.save(out / f"{name}{export.suffix}")
    print(f"  wrote {target} ({export.size} px {export.format}, upscaler: {export.upscaler})")
    if export.lettering is not None:
        done = export.lettering
        print(
            f"  lettering: {done.layout} layout, {done.font}, colour {done.color}, "
            f"contrast {done.contrast:.1f}:1"
            + (f", backed by a {done.backing}" * (done.backing != "none"))
        )
        if done.dropped:
            print(f"  no installed font has {done.dropped!r}: left out", file=sys.stderr)
    report = check_cover(target, max_bytes=settings.max_bytes)
    print(textwrap.indent(report.summary(), "  "), flush=True)
    status = 0 if report.passed else 1
    if not args.embed:
        return status
    for track in album[1] if album else [path]:
        dest = track if args.in_place else out / track.name
        if not args.in_place and dest.resolve() == track.resolve():
            print(
                f"{PROG} cover: {track}: --out is the song's own folder; give another --out, "
                "or --in-place to tag the original",
                file=sys.stderr,
            )
            status = 1
            continue
        try:
            embed_cover(track, target, dest)
        except SongFileError as e:  # names the file and the reason
            print(f"{PROG} cover: {e}", file=sys.stderr)
            status = 1
            continue
        print(f"  wrote {dest} (cover embedded)", flush=True)
    return status


def max_pixels(megapixels: float) -> int:
    """A ``--max-megapixels`` value as the pixel count the decoder takes."""
    return max(1, round(megapixels * 1e6))


def run_release_only(args, songs) -> int:
    """``cover --image PICTURE``: release a picture already made, for every song."""

    try:  # the one decoder: the same pixels as the app's upload of the same file
        image = read_image(
            args.image, max_pixels=max_pixels(args.max_megapixels), name=f"--image {args.image}"
        )
    except ImageError as e:
        print(f"{PROG} cover: {e}", file=sys.stderr)
        return 1
    status = 0
    for path, song, *album in songs:
        status = max(status, release(image, path, song, args, *album))
    return status


def add_check_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check",
        help="check cover files against what distributors refuse",
        description="Check cover images the way distributors do: square, >= 640 px (3000 "
        "recommended), 8-bit RGB, no alpha, sRGB, JPEG/PNG, under the size limit, and no URL, "
        "@handle, e-mail, price, 'exclusive' or 'limited edition' in the lettering. Exit 0 only "
        "when every file passes.",
    )
    parser.add_argument("covers", nargs="+", metavar="COVER")
    parser.add_argument("--max-mb", type=float_in(0.1, 1000), default=10.0, help="default 10")
    parser.add_argument(
        "--text", default=None, help="the lettering on the covers (default: read from the file)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per file")
    add_budget_argument(parser, "a file declaring more is failed from its header, undecoded")
    parser.set_defaults(func=run_check)
    return parser


def run_check(args: argparse.Namespace) -> int:
    status = 0
    for cover in args.covers:
        report = check_cover(
            cover,
            text=args.text,
            max_bytes=round(args.max_mb * 1_000_000),
            max_pixels=max_pixels(args.max_megapixels),
        )
        print(json.dumps(report.to_dict()) if args.json else report.summary(), flush=True)
        status = status if report.passed else 1
    return status
