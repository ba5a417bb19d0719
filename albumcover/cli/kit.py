"""``albumcover kit SONG... --cover COVER --out DIR``: the release kit of each song (the art-track
video, the Spotify Canvas, the social post and story; :mod:`albumcover.kit`).

Without ``--cover`` one cover is painted first, as ``cover`` paints it (the model flags are
``cover``'s own). A folder is an album: one kit per track, all sharing the album's cover.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..ear.audio import DEFAULT_MAX_DURATION, AudioError
from ..ear.tagger import Tagger
from ..files import OutputDirError, atomic_path, check_writable_dir
from ..kit.bundle import KIT_ITEMS, make_kit, parse_items
from ..kit.canvas import DEFAULT_SECONDS, MAX_SECONDS, MIN_SECONDS, SIZES
from ..kit.compose import load_cover
from ..paint.defaults import CPU_MODEL, GPU_MODEL
from ..paint.dtypes import AUTO, DTYPE_NAMES, parse_dtype
from ..paint.generator import MAX_SEED, MAX_SIZE, MAX_STEPS, MIN_SIZE, CoverGenerator
from ..pipeline import describe_song, make_covers
from ..prompts import CATEGORIES, SongInfo
from ..release.text import clean_text
from ..songfile.tags import SongFileError, read_song_tags
from . import PROG
from .argtypes import choice, float_in, int_in
from .cover import (
    _apply_defaults,
    _fast_path,
    _recipe,
    _settings,
    _tell_setup,
    add_engine_argument,
)
from .songs import album_tracks, track_song


def add_kit_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "kit",
        help="the release kit: an art-track video, a Spotify Canvas, a social post and story",
        description="Write DIR/<song>-art-track.mp4 (1920x1080, the cover over the whole song, "
        "for YouTube), DIR/<song>-canvas.mp4 (a 9:16 silent loop pulsing on the beats of the "
        "song's loudest stretch, for Spotify), DIR/<song>-post.jpg (1080x1080) and "
        "DIR/<song>-story.jpg (1080x1920). A folder is an album: one kit per track, sharing "
        "one cover. Without --cover, one is painted first (the model flags as in `cover`).",
    )
    parser.add_argument("audio", nargs="+", metavar="SONG_OR_FOLDER")
    parser.add_argument("--cover", default=None, metavar="PICTURE", help="a square picture")
    parser.add_argument("--title", default="", help="default: the title tag, else the file name")
    parser.add_argument("--artist", default="", help="default: the artist tag")
    parser.add_argument("--date", default="", help='the release-date line, e.g. "Out 1 May 2026"')
    parser.add_argument("--out", default="kit", metavar="DIR", help="default: ./kit")
    parser.add_argument(
        "--only",
        default=None,
        metavar="ITEMS",
        help=f"comma-separated, some of {','.join(KIT_ITEMS)} (default: all)",
    )
    parser.add_argument(
        "--canvas-seconds",
        type=int_in(MIN_SECONDS, MAX_SECONDS),
        default=DEFAULT_SECONDS,
        help=f"the Canvas loop's length ({MIN_SECONDS}-{MAX_SECONDS}, default {DEFAULT_SECONDS})",
    )
    parser.add_argument(
        "--canvas-width",
        type=int,
        choices=sorted(SIZES),
        default=720,
        help="720 (720x1280) or 1080 (1080x1920); default 720",
    )
    parser.add_argument(
        "--max-seconds",
        type=float_in(3, 36000),
        default=DEFAULT_MAX_DURATION,
        help=f"songs are cut here, with a warning (default {DEFAULT_MAX_DURATION:g}, the app's)",
    )
    paint = parser.add_argument_group("painting (without --cover)")
    paint.add_argument(
        "--model",
        default=None,
        help=f"as for `cover` (default, as the app's: {CPU_MODEL} without a GPU, {GPU_MODEL} "
        "with one)",
    )
    paint.add_argument("--lora", default=None)
    paint.add_argument(
        "--fast",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the few-step path, as for `cover` (default: on without a GPU)",
    )
    paint.add_argument(
        "--dtype",
        default=AUTO,
        type=choice((AUTO, *DTYPE_NAMES)),
        help="the weights' type, as for `cover` (default: auto)",
    )
    paint.add_argument("--steps", type=int_in(1, MAX_STEPS), default=None)
    paint.add_argument("--seed", type=int_in(0, MAX_SEED), default=None)
    paint.add_argument("--size", type=int_in(MIN_SIZE, MAX_SIZE, multiple=8), default=None)
    paint.add_argument("--category", default="", type=choice(CATEGORIES), help="default: heard")
    paint.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if any)")
    add_engine_argument(paint)
    # what `cover`'s helpers read that the kit does not offer: one painting, the defaults
    parser.set_defaults(
        func=run_kit,
        style=None,
        tagger=None,
        n=1,
        negative_prompt=None,
        guidance=None,
        fast_lora=None,
        fast_vae=None,
    )
    return parser


def _jobs(args) -> list[tuple[Path, str, str, Path | None]]:
    """(song, title, artist, album folder or None) for every song named."""
    jobs = []
    for name in args.audio:
        path = Path(name)
        if path.is_dir():
            tracks = album_tracks(path)
            if not tracks:
                raise ValueError(f"{path}: no audio files in this folder")
            if args.title:
                raise ValueError(
                    f"--title names one song, but {path} is a folder: each track's title is "
                    "read from its tags or file name"
                )
            for track in tracks:
                info = track_song(track, SongInfo(artist=args.artist))
                jobs.append((track, info.title, info.artist, path))
            continue
        title, artist = args.title, args.artist
        if not (title and artist):
            try:
                tags = read_song_tags(path)
                title, artist = title or tags.title, artist or tags.artist
            except SongFileError:  # not a song file at all: decoding will say so
                pass
        jobs.append((path, title or path.stem, artist, None))
    return jobs


def _paint(args, song: Path, album: Path | None, title: str, artist: str, out: Path):
    """One cover painted for ``song`` (an album's first track, for the album) as `cover` paints
    it; also written to ``out`` as <name>-cover.png. Returns the PIL image."""
    if getattr(args, "_models", None) is None:  # loaded once for every song of the run
        _apply_defaults(args)  # the model and fast path the app and `cover` default to
        recipe = _recipe(args)
        generator = CoverGenerator.from_pretrained(
            args.model,
            lora=args.lora,
            device=args.device,
            dtype=parse_dtype(args.dtype),
            fast=_fast_path(args),
            fast_fallback=True,
            engine=args.engine,
        )
        _tell_setup(generator, "kit")
        tagger = Tagger.load(recipe.caption_tagger, device=args.device)
        genre = None if args.category else Tagger.load(recipe.genre_tagger, device=args.device)
        args._models = recipe, generator, tagger, genre
    recipe, generator, tagger, genre = args._models
    info = SongInfo(album.name if album else title, artist, args.date, args.category)
    description = describe_song(
        song,
        info,
        tagger,
        genre,
        recipe=recipe,
        count_tokens=generator.budget.count,
        max_tokens=generator.budget.max_tokens,
    )
    print(f"{song}: {description.prompt}", flush=True)
    settings = _settings(args, generator)
    cover = make_covers(
        description.prompt, generator, settings, allow_empty_prompt=recipe.unconditional
    )[0]
    target = out / f"{album.name if album else song.stem}-cover.png"
    with atomic_path(target) as tmp:
        cover.image.save(tmp, format="PNG")
    print(f"  wrote {target}", flush=True)
    return cover.image


def run_kit(args: argparse.Namespace) -> int:
    try:  # usage errors, before any song is decoded or model loaded
        items = parse_items(args.only)
        for field, text in (("--title", args.title), ("--artist", args.artist)):
            clean_text(field, text)
        clean_text("--date", args.date)
        cover = load_cover(args.cover) if args.cover is not None else None
        jobs = _jobs(args)
        out = check_writable_dir(args.out, "--out")
    except (ValueError, OutputDirError) as e:  # KitError, LetteringError, no tracks
        print(f"{PROG} kit: error: {e}", file=sys.stderr)
        return 2
    status = 0
    covers = {}  # album folder -> its painted cover, shared by its tracks
    for song, title, artist, album in jobs:
        try:
            picture = cover if cover is not None else covers.get(album)
            if picture is None:
                picture = _paint(args, song, album, title, artist, out)
                if album is not None:
                    covers[album] = picture
            kit = make_kit(
                song,
                picture,
                out,
                title=title,
                artist=artist,
                date_line=args.date,
                only=items,
                canvas_seconds=args.canvas_seconds,
                canvas_width=args.canvas_width,
                max_duration=args.max_seconds,
            )
        except AudioError as e:  # names the song and the reason
            print(f"{PROG} kit: {e}", file=sys.stderr)
            status = 1
            continue
        except (ValueError, RuntimeError) as e:  # a failed encode or painting
            print(f"{PROG} kit: {song}: {e}", file=sys.stderr)
            status = 1
            continue
        for note in kit.notes:
            print(f"{PROG} kit: warning: {note}", file=sys.stderr)
        for path in kit.paths():
            print(f"  wrote {path}", flush=True)
    return status
