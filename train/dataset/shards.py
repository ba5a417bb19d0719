"""Build a music library's dataset as K disjoint shards on any number of machines, then merge.

    python -m train.build_dataset --audio_dir LIB --output_dir shards/0 \
        --num_shards 3 --shard_index 0
    ... (one command per shard: a Slurm array, Ray tasks, Kubernetes jobs)
    python -m train.build_dataset merge --output_dir data/covers shards/0 shards/1 shards/2

Tracks go to shards by a stable hash of their album (:func:`shard_of`), so an album never
splits and every machine computes the same assignment from the library alone. A shard folder
holds ``shard.json`` (its rows, not yet split, the build options and a fingerprint of the whole
library) beside ``covers/`` (the PNGs its rows name) and its own tag cache; ``shard.json`` is
written last, so a shard is complete exactly when it exists (a killed shard build is rerun and
resumes from its tag cache). The merge checks that the shards belong together (same options,
same library, each index once, no track twice), splits the albums with the same seeded rule as
a serial build and writes the dataset with the same writer, so the result is byte for byte what
a single-machine build writes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from albumcover.files import write_atomic
from albumcover.images import ImageError, read_image

from .captions import caption_recipe
from .files import _split_covers, _write_card, _write_dataset
from .summary import SPLITS, BuildSummary, Skipped

SHARD_FILE = "shard.json"
COVERS_DIR = "covers"
FORMAT = 1


class ShardError(ValueError):
    """Shards that cannot be merged (or a shard folder that is not one); the message says why."""


@dataclass(frozen=True)
class Shard:
    folder: Path
    index: int
    num_shards: int
    library: str  # fingerprint of every track the library offered (before the shard filter)
    options: dict
    rows: list[dict]
    skipped: list[dict]
    tagged: int
    cached: int


def check_shard_args(num_shards: int, shard_index: int) -> None:
    """ValueError unless ``0 <= shard_index < num_shards``."""
    for name, value in (("num_shards", num_shards), ("shard_index", shard_index)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}")
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard_index must be in [0, {num_shards - 1}], got {shard_index}")


def shard_of(album_key: Sequence[str], num_shards: int) -> int:
    """The shard (0 .. num_shards - 1) of an album, from a hash of its key: the same on every
    machine, Python version and run (unlike ``hash``), and independent of the other albums."""
    digest = hashlib.sha256(json.dumps(list(album_key)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


def fingerprint(sources: Sequence[str]) -> str:
    """A digest of a library's track list (relative sources): shards of one library share it."""
    text = "\n".join(sorted(sources))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def write_shard(
    folder: Path,
    *,
    index: int,
    num_shards: int,
    library: str,
    options: dict,
    rows: list[dict],
    render_png: Callable[[str], bytes],
    summary,
) -> None:
    """Write a shard: its cover PNGs, then ``shard.json`` (rows sorted by source) last.

    ``render_png(cover_id)`` gives a cover's PNG bytes, as the dataset writer would write them.
    Unchanged files are not rewritten; PNGs no row names any more are removed.
    """

    covers = folder / COVERS_DIR
    names = sorted({row["file_name"] for row in rows})
    for name in names:
        target = covers / name
        if not target.exists():
            summary.written += write_atomic(target, render_png(name[: -len(".png")]))
    if covers.is_dir():
        for stale in covers.iterdir():
            if stale.suffix == ".png" and stale.name not in names:
                stale.unlink()
    manifest = {
        "format": FORMAT,
        "shard_index": index,
        "num_shards": num_shards,
        "library": library,
        "options": options,
        "tagged": summary.tagged,
        "cached": summary.cached,
        "skipped": [
            {"source": s.source, "reason": s.reason, "detail": s.detail} for s in summary.skipped
        ],
        "rows": sorted(rows, key=lambda r: r["source"]),
    }
    # key order kept: rows go back into metadata.jsonl exactly as a serial build writes them
    text = json.dumps(manifest, ensure_ascii=False, indent=1) + "\n"
    summary.written += write_atomic(folder / SHARD_FILE, text)


def read_shard(folder: str | Path) -> Shard:
    """Read and check one shard folder; ShardError names the folder and what is wrong."""
    folder = Path(folder)
    path = folder / SHARD_FILE
    if not path.is_file():
        raise ShardError(
            f"{folder}: no {SHARD_FILE}; not a shard folder, or its build has not finished "
            "(rerun it: it resumes from its tag cache)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ShardError(f"{path}: format {data.get('format')!r}, expected {FORMAT}")
        shard = Shard(
            folder=folder,
            index=int(data["shard_index"]),
            num_shards=int(data["num_shards"]),
            library=str(data["library"]),
            options=dict(data["options"]),
            rows=list(data["rows"]),
            skipped=list(data["skipped"]),
            tagged=int(data["tagged"]),
            cached=int(data["cached"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        if isinstance(e, ShardError):
            raise
        raise ShardError(f"{path}: unreadable shard manifest ({e})") from e
    side = shard.options.get("resolution")
    for name in sorted({row["file_name"] for row in shard.rows}):
        cover = folder / COVERS_DIR / name
        if not cover.is_file():
            raise ShardError(f"{folder}: {COVERS_DIR}/{name} is missing; rebuild this shard")
        try:  # every image the merge takes in is decoded whole: a truncated PNG stops it here
            size = read_image(cover, name=str(cover)).size
        except ImageError as e:
            raise ShardError(f"{e}; rebuild this shard") from e
        if side is not None and size != (side, side):
            raise ShardError(
                f"{cover} is {size[0]} x {size[1]} pixels, not the build's {side} x {side}; "
                "rebuild this shard"
            )
    return shard


def check_compatible(shards: Sequence[Shard]) -> None:
    """ShardError unless the shards are all K shards of one build, each once, disjoint."""
    if not shards:
        raise ShardError("no shard folders given")
    first = shards[0]
    for shard in shards[1:]:
        for what, mine, theirs in (
            ("num_shards", shard.num_shards, first.num_shards),
            ("library", shard.library, first.library),
        ):
            if mine != theirs:
                raise ShardError(
                    f"{shard.folder} has {what} {mine!r} but {first.folder} has {theirs!r}: "
                    "shards of different builds cannot be merged"
                )
        differ = sorted(
            k
            for k in set(shard.options) | set(first.options)
            if shard.options.get(k) != first.options.get(k)
        )
        if differ:
            detail = ", ".join(
                f"{k}={shard.options.get(k)!r} vs {first.options.get(k)!r}" for k in differ
            )
            raise ShardError(
                f"{shard.folder} and {first.folder} were built with different options ({detail})"
            )
    seen: dict[int, Path] = {}
    for shard in shards:
        if shard.index in seen:
            raise ShardError(
                f"shard {shard.index} given twice: {seen[shard.index]} and {shard.folder}"
            )
        seen[shard.index] = shard.folder
    missing = sorted(set(range(first.num_shards)) - set(seen))
    if missing:
        raise ShardError(
            f"missing shard(s) {', '.join(map(str, missing))} of {first.num_shards}; "
            "a merge needs every shard"
        )
    owner: dict[str, Path] = {}
    for shard in shards:
        for row in shard.rows:
            if row["source"] in owner:
                raise ShardError(
                    f"overlapping shards: {row['source']} is in both {owner[row['source']]} "
                    f"and {shard.folder}"
                )
            owner[row["source"]] = shard.folder


def merge_shards(output_dir: str | Path, shard_dirs: Sequence[str | Path]):
    """Join complete shards into one dataset, identical to a serial build of the library.

    Returns the :class:`~train.dataset.summary.BuildSummary` of the merged dataset. Raises
    :class:`ShardError` (nothing written) for shards that do not belong together.
    """
    output_dir = Path(output_dir)
    shards = sorted((read_shard(d) for d in shard_dirs), key=lambda s: s.index)
    check_compatible(shards)
    for shard in shards:
        if output_dir.resolve() == shard.folder.resolve():
            raise ShardError(f"--output_dir {output_dir} is one of the shard folders")
    summary = BuildSummary(output_dir)
    png_of: dict[str, Path] = {}
    rows = []
    for shard in shards:
        summary.tagged += shard.tagged
        summary.cached += shard.cached
        for s in shard.skipped:
            skipped = Skipped(s["source"], s["reason"], s["detail"])
            if skipped not in summary.skipped:  # manifest-level rows: every shard saw them
                summary.skipped.append(skipped)
        for row in shard.rows:
            png_of.setdefault(row["file_name"][: -len(".png")], shard.folder / COVERS_DIR)
            rows.append(row)
    if not rows:
        return summary
    options = shards[0].options
    split_of = _split_covers(sorted(png_of), options["validation_split"], options["seed"])
    by_split: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for row in rows:
        by_split[split_of[row["file_name"][: -len(".png")]]].append(row)
    _write_dataset(output_dir, by_split, lambda c: (png_of[c] / f"{c}.png").read_bytes(), summary)
    _write_card(output_dir, summary, options["model"], options["style"], options["resolution"])
    recipe = caption_recipe(
        options["style"],
        options["model"],
        options["genre_model"],
        options["top"],
        options["threshold"],
        options.get("base_model"),
        options.get("genre_patches"),  # shards built before it existed heard every patch
    )
    recipe.save(output_dir)
    return summary


def merge_main(argv: Sequence[str] | None = None) -> int:
    """``python -m train.build_dataset merge --output_dir OUT SHARD...``; the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m train.build_dataset merge",
        description="Join the shards of a --num_shards build into one dataset.",
    )
    parser.add_argument("--output_dir", type=Path, required=True, help="the merged dataset")
    parser.add_argument("shards", nargs="+", type=Path, help="every shard folder of the build")
    args = parser.parse_args(argv)
    if args.output_dir.exists() and not args.output_dir.is_dir():
        parser.error(f"--output_dir {args.output_dir} exists and is not a folder")
    try:
        summary = merge_shards(args.output_dir, args.shards)
    except ShardError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(summary.format())
    if summary.total_rows == 0:
        print("error: the shards hold no usable track; nothing was written", file=sys.stderr)
        return 1
    return 0
