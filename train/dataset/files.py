"""The files of a built dataset: albums split between train and validation, one metadata row per
track, the cover PNGs and the dataset card, each replaced atomically."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

from albumcover.files import write_atomic

from .summary import SPLITS, BuildSummary
from .tracks import Track

_IMAGE_NAME = re.compile(r"^[0-9a-f]{16}\.png$")  # the only images this builder writes (or deletes)
_TEMP_NAME = re.compile(r"^\..+\.tmp$")  # write_atomic's temp files


def _split_covers(cover_ids: list[str], validation_split: float, seed: int) -> dict[str, str]:
    """Assign each cover (so each album) to a split; deterministic for a seed.

    Covers are ranked by a seeded hash, so adding albums to a library moves few existing ones.
    """
    ranked = sorted(cover_ids, key=lambda c: hashlib.sha256(f"{seed}:{c}".encode()).hexdigest())
    n_val = round(len(ranked) * validation_split)
    if validation_split > 0 and len(ranked) > 1:
        n_val = min(max(n_val, 1), len(ranked) - 1)  # never an empty train set
    return {c: ("validation" if i < n_val else "train") for i, c in enumerate(ranked)}


def _row(track: Track, description, cover_id: str, model: str) -> dict:
    return {
        "file_name": f"{cover_id}.png",
        "text": description.prompt,
        "title": track.tags.title,
        "artist": track.tags.artist,
        "album": track.tags.album,
        "date": track.tags.date,
        "year": int(track.year) if track.year else None,
        "category": description.category,
        "category_inferred": description.category_inferred,
        "tags": list(description.tag_names),
        "scores": {k: round(float(v), 6) for k, v in description.tags.scores.items()},
        "tagger": model,
        "genre": track.tags.genre,
        "license": track.license,
        "source": track.source,
    }


def _write_dataset(
    output_dir: Path,
    rows: dict[str, list[dict]],
    render_png: Callable[[str], bytes],
    summary: BuildSummary,
) -> None:
    """Write images first, then each split's metadata.jsonl, then drop images nothing names.

    ``render_png(cover_id)``: the PNG bytes of a cover. A reader sees the old dataset or the
    new one, never rows pointing at missing images.
    """
    for split in SPLITS:
        folder = output_dir / split
        split_rows = sorted(rows[split], key=lambda r: r["source"])
        names = sorted({r["file_name"] for r in split_rows})
        summary.rows[split] = len(split_rows)
        summary.images += len(names)
        if split_rows:
            folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            target = folder / name
            if not target.exists():
                summary.written += write_atomic(target, render_png(name[:-4]))
        metadata = folder / "metadata.jsonl"
        if split_rows:
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in split_rows)
            summary.written += write_atomic(metadata, text.encode("utf-8"))
        elif metadata.exists():
            metadata.unlink()  # a previous build had this split; now it is empty
        if folder.is_dir():
            for stale in folder.iterdir():
                ours = _IMAGE_NAME.match(stale.name) or _TEMP_NAME.match(stale.name)
                if ours and stale.name not in names:
                    stale.unlink()  # an image no row names, or a temp file of a killed run
            if not any(folder.iterdir()):
                folder.rmdir()


def _write_card(output_dir: Path, summary: BuildSummary, model: str, style: str, res: int) -> None:
    card = f"""---
task_categories:
- text-to-image
tags:
- album-covers
- music
---

# Album covers with prompts

Built by `python -m train.build_dataset` (albumcover): each row is a track, its album cover
({res}x{res} PNG, shared by the album's tracks) and the prompt albumcover writes for it from the
track's metadata and its `{model}` Musicnn tags (prompt style `{style}`).

| split | tracks | covers |
|---|---|---|
| train | {summary.rows["train"]} | {len(_images(output_dir / "train"))} |
| validation | {summary.rows["validation"]} | {len(_images(output_dir / "validation"))} |

Albums never appear in both splits. Covers remain the property of their owners; check each
track's `license` column (filled for Jamendo downloads) before redistributing.
"""
    summary.written += write_atomic(output_dir / "README.md", card.encode("utf-8"))


def _images(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return [p.name for p in folder.iterdir() if _IMAGE_NAME.match(p.name)]
