"""The dataset build: tag and caption every usable track of a music library and write the
``imagefolder`` (``python -m train.build_dataset`` is its command).

Each track is tagged and captioned by :func:`albumcover.pipeline.describe_patches`, the same path
the app takes, so training prompts read exactly like the prompts users get. The output is a
diffusers ``imagefolder``: ``train/`` and ``validation/``, each a ``metadata.jsonl`` (one row per
track) beside the covers (one PNG per album, shared by its tracks). Albums never straddle the
split.

Re-running is cheap and safe: tagger outputs are cached per file (path, size, mtime) in
``OUTPUT_DIR/.cache``, every file is replaced atomically, and unchanged files are not rewritten.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from tqdm.auto import tqdm

from albumcover.ear.audio import AudioError
from albumcover.prompts import CLIP_MAX_TOKENS, DEFAULT_STYLE, STYLES
from albumcover.recipe import (
    DEFAULT_TAGGER,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP,
    GENRE_PATCHES,
    GENRE_TAGGER,
)

from .batching import default_batch_tracks, tag_in_batches, track_requests
from .captions import _cache_answers, _describe, _Taggers, caption_recipe
from .covers import MIN_COVER_PX, _assign_covers, _png_renderer
from .files import _row, _split_covers, _write_card, _write_dataset
from .shards import check_shard_args, fingerprint, shard_of, write_shard
from .summary import BAD_AUDIO, NO_TAGS, SPLITS, BuildSummary, Skipped
from .tagcache import TagCache
from .tracks import _collect_folder, _collect_manifest
from .workers import map_patches

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
    min_cover_px: int = MIN_COVER_PX,
) -> BuildSummary:
    """Tag, caption and write every usable track of a music folder or manifest.

    Args:
        output_dir: the dataset folder (created; an existing build there is updated in place).
        audio_dir / manifest: exactly one source of tracks (see :mod:`train.dataset.library`).
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
            runs the taggers (:mod:`.workers`); 0 does everything here. Same output.
        num_shards, shard_index: build only the albums of shard ``shard_index`` of
            ``num_shards`` into a shard folder, merged later (:mod:`.shards`).
        batch_tracks: tracks whose patches each tagger hears in one call (:mod:`.batching`;
            None: 16 when the taggers run on CUDA, else 1). Same output.
        min_cover_px: covers under this many pixels on their short side are skipped (reason
            "tiny cover"); lower it to take them (those under
            :data:`~train.dataset.covers.MIN_COVER_PX` are still noted in the summary).

    Returns:
        A :class:`BuildSummary`. Nothing is written when no track is usable.

    Raises:
        LibraryError: the audio folder or manifest cannot be read at all.
    """

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
    covers = _assign_covers(tracks, output_dir, resolution, summary, min_cover_px)

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
