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
import hashlib
import io
import json
import logging
import os
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from albumcover.argtypes import int_in
from albumcover.files import check_writable_dir, write_atomic
from albumcover.prompts import CLIP_MAX_TOKENS
from albumcover.recipe import (
    DEFAULT_TAGGER,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP,
    GENRE_PATCHES,
    GENRE_TAGGER,
    CaptionRecipe,
    read_recipe,
)
from albumcover.songfile import SongTags, match_category, read_front_cover
from train.library import (
    LibraryError,
    find_audio_files,
    find_folder_cover,
    read_manifest,
    read_track,
)
from train.push import PushError, add_hub_arguments, check_hub_args, push_folder

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation")
CACHE_DIR = ".cache"
GENRE_MODELS = (GENRE_TAGGER, "MSD_vgg")  # the taggers with genre labels infer_category reads
_IMAGE_NAME = re.compile(r"^[0-9a-f]{16}\.png$")  # the only images this builder writes (or deletes)
_TEMP_NAME = re.compile(r"^\..+\.tmp$")  # write_atomic's temp files

# Skip reasons, as the closing summary groups them.
NO_COVER = "no cover"
BAD_COVER = "unreadable cover"
BAD_AUDIO = "unreadable audio"
NO_TAGS = "no tags"
BAD_ROW = "bad manifest row"


@dataclass
class Track:
    """One audio file to caption, with its metadata and where its cover comes from."""

    source: str  # path relative to the audio folder (or manifest folder), as written in rows
    audio: Path
    tags: SongTags
    category: str = ""  # one of CATEGORIES, or "" to infer it from the audio
    license: str = ""
    tag_error: str = ""  # why mutagen could not read the file, if it could not
    # Where the cover comes from: the audio file itself (an embedded picture) or an image
    # beside it / named by the manifest. Only the path is kept: a library holds thousands of
    # covers, so their bytes are read when needed, once per album.
    cover: Path | None = None
    cover_embedded: bool = False

    def read_cover(self) -> bytes:
        """The cover's encoded bytes; raises OSError or ValueError (LibraryError, SongFileError)."""
        if not self.cover_embedded:
            return self.cover.read_bytes()
        data = read_front_cover(self.cover)  # only the picture: no tags to clean again
        if data is None:
            raise LibraryError(f"the embedded picture of {self.cover} is gone")
        return data

    @property
    def year(self) -> str:
        """The release year from the date tag, or "" when it has none."""
        year = self.tags.year
        return str(year) if year else ""

    @property
    def album_key(self) -> tuple[str, ...]:
        """Tracks with the same album and album artist share a cover; others stand alone."""
        if not self.tags.album:
            return ("track", self.source)
        artist = self.tags.album_artist or self.tags.artist
        return ("album", artist.casefold().strip(), self.tags.album.casefold().strip())


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str
    detail: str = ""


@dataclass
class BuildSummary:
    """What a build wrote and what it left out."""

    output_dir: Path
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    images: int = 0
    tagged: int = 0  # tracks run through a tagger this time
    cached: int = 0  # tracks whose tagger outputs came from the cache
    written: int = 0  # files created or changed in the output folder
    skipped: list[Skipped] = field(default_factory=list)
    # (source, note): tag text repaired or dropped before captioning (albumcover.tagtext)
    tag_notes: list[tuple[str, str]] = field(default_factory=list)
    shard: str = ""  # "i of K" for one shard of a --num_shards build (its rows are not split)
    unsplit: int = 0  # a shard's rows, split when the shards are merged (train.shards)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values()) + self.unsplit

    def format(self) -> str:
        """A few lines for the terminal: counts, then every skipped file and why."""
        lines = [
            f"Dataset in {self.output_dir}: {self.total_rows} tracks "
            f"(train {self.rows['train']}, validation {self.rows['validation']}), "
            f"{self.images} cover images; {self.written} files written.",
            f"Tagged {self.tagged} tracks, {self.cached} more from the cache.",
        ]
        if self.shard:
            lines[0] = (
                f"Shard {self.shard} in {self.output_dir}: {self.unsplit} tracks (split when "
                f"merged), {self.images} cover images; {self.written} files written."
            )
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)}:")
            for s in sorted(self.skipped, key=lambda s: (s.reason, s.source)):
                lines.append(f"  {s.reason}: {s.source}" + (f" ({s.detail})" if s.detail else ""))
        if self.tag_notes:
            lines.append(f"Tag text repaired or dropped ({len(self.tag_notes)}):")
            lines += [f"  {source}: {note}" for source, note in sorted(self.tag_notes)]
        return "\n".join(lines)


class TagCache:
    """Tagger outputs per audio file (``.npz`` in ``folder``), valid while size and mtime hold."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def get(self, audio: Path, model: str):
        """The :class:`~albumcover.tagger.TagResult` recorded for this file under ``model`` (a
        name :meth:`put` used), or None."""
        from albumcover.tagger import TagResult

        stored = self._load(audio)
        if stored is None or f"{model}.scores" not in stored:
            return None
        labels = [str(label) for label in stored[f"{model}.labels"]]
        scores = dict(zip(labels, stored[f"{model}.scores"].tolist(), strict=True))
        stored_model = stored.get(f"{model}.model")
        return TagResult(
            model=model if stored_model is None else str(stored_model),
            labels=labels,
            taggram=stored[f"{model}.taggram"],
            scores=scores,
            tags=_top_labels(scores, 3),
            features=None,
        )

    def put(self, audio: Path, results: Mapping) -> None:
        """Record tag results for this file, ``{name: TagResult}`` (any number; the name is the
        model's, or says which patches it heard), keeping other names' results."""
        identity = _identity(audio)
        arrays = dict(self._load(audio) or {})
        for name, result in results.items():
            arrays[f"{name}.model"] = np.asarray(result.model)
            arrays[f"{name}.labels"] = np.asarray(result.labels, dtype=str)
            arrays[f"{name}.scores"] = np.asarray(
                [result.scores[label] for label in result.labels], dtype=np.float64
            )
            arrays[f"{name}.taggram"] = np.asarray(result.taggram, dtype=np.float32)
        arrays["identity"] = np.asarray(json.dumps(identity, sort_keys=True))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomic(self._file(audio), buffer.getvalue())

    def _file(self, audio: Path) -> Path:
        digest = hashlib.sha1(str(Path(audio).resolve()).encode()).hexdigest()[:24]
        return self.folder / f"{digest}.npz"

    def _load(self, audio: Path) -> dict[str, np.ndarray] | None:
        path = self._file(audio)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {key: stored[key] for key in stored.files}
            if json.loads(str(arrays["identity"])) != _identity(audio):
                return None  # the file changed since it was tagged
        except (OSError, ValueError, KeyError) as e:
            logger.warning("ignoring an unreadable cache entry %s: %s", path, e)
            return None
        return arrays


class _ReplayTagger:
    """Stands in for a Tagger on a cache hit: answers with the result recorded for the file.

    describe_song then builds the prompt from the recorded scores exactly as from fresh ones.
    """

    def __init__(self, result):
        self.result = result
        self.model_name = result.model
        self.labels = result.labels

    def tag(self, audio, *, top: int = 3, **kwargs):
        return replace(self.result, tags=_top_labels(self.result.scores, top))

    def tag_patches(self, patches, *, top: int = 3, **kwargs):
        return self.tag(patches, top=top)


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
            :func:`albumcover.families.load_budget`) so long captions are cut exactly where the
            app cuts them; without a counter captions are not cut.
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
    from tqdm.auto import tqdm

    from albumcover.audio import AudioError
    from albumcover.prompts import DEFAULT_STYLE, STYLES
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


def caption_recipe(
    style: str,
    model: str,
    genre_model: str,
    top: int,
    threshold: float,
    base_model: str | None,
    genre_patches: int | None,
) -> CaptionRecipe:
    """How a build's captions were written: it travels with the data (and, through training,
    with the model), so the app prompts the model the same way."""
    return CaptionRecipe.for_style(
        style,
        caption_tagger=model,
        genre_tagger=genre_model,
        genre_patches=genre_patches,
        top=top,
        threshold=threshold,
        base_model=base_model,
    )


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


class _Taggers:
    """The caption tagger, and the genre tagger loaded on first need."""

    def __init__(self, model, genre_model, device, tagger, genre_tagger, genre_patches):
        self.model = tagger.model_name if tagger is not None else model
        self.genre_model = genre_tagger.model_name if genre_tagger is not None else genre_model
        # the genre scores depend on the patches heard: cached under a name that says which
        self.genre_key = (
            self.genre_model
            if genre_patches is None
            else f"{self.genre_model}.spread{genre_patches}"
        )
        self._device = device
        self._tagger = tagger
        self._genre_tagger = genre_tagger

    @property
    def device_type(self) -> str:
        """Where the taggers run ("cpu", "cuda"): a given tagger's device, else ``device``,
        else CUDA when available (as Tagger.load picks)."""
        given = self._tagger if self._tagger is not None else self._genre_tagger
        if given is not None:
            return getattr(getattr(given, "device", None), "type", "cpu")
        import torch

        if self._device is None:
            return "cuda" if torch.cuda.is_available() else "cpu"
        try:
            return torch.device(self._device).type
        except (RuntimeError, TypeError, ValueError):
            return "cpu"  # Tagger.load reports the bad device when a tagger is needed

    @property
    def tagger(self):
        if self._tagger is None:
            self._tagger = self._load(self.model)
        return self._tagger

    @property
    def genre_tagger(self):
        if self._genre_tagger is None:
            self._genre_tagger = self._load(self.genre_model)
        return self._genre_tagger

    def _load(self, model: str):
        from albumcover.tagger import DEFAULT_BATCH_SIZE, Tagger
        from train.batching import CUDA_BATCH_SIZE

        # a GPU wants far more patches per forward pass than a CPU's default
        cuda = self.device_type == "cuda"
        size = CUDA_BATCH_SIZE if cuda else DEFAULT_BATCH_SIZE
        return Tagger.load(model, device=self._device, batch_size=size)


def _cache_answers(track: Track, taggers: _Taggers, cache: TagCache) -> bool:
    """Whether the tag cache holds every tagger output this track's caption needs."""
    if cache.get(track.audio, taggers.model) is None:
        return False
    return bool(track.category) or cache.get(track.audio, taggers.genre_key) is not None


def _describe(track: Track, taggers: _Taggers, cache: TagCache, decoded, tagged, **options):
    """Caption one track; returns (SongDescription, whether a tagger ran).

    ``decoded``: the track's :class:`train.workers.Decoded` patches, None when the cache
    answers. ``tagged``: results a batch already tagged for it (:mod:`train.batching`), by
    cache name; the taggers run here for the others. Raises AudioError for a track that could
    not be decoded.
    """
    from albumcover.pipeline import describe_patches
    from albumcover.prompts import SongInfo

    song = SongInfo(
        title=track.tags.title,
        artist=track.tags.artist,
        date=track.tags.date,  # build_prompt writes its year: "released in 2004"
        category=track.category,
    )
    need_genre = not track.category
    tags = cache.get(track.audio, taggers.model)
    genre = cache.get(track.audio, taggers.genre_key) if need_genre else None
    if tags is not None and (genre is not None or not need_genre):
        nothing = np.zeros((0, 0, 0), dtype=np.float32)  # never read: both taggers replay
        replay_genre = _ReplayTagger(genre) if genre is not None else None
        return describe_patches(nothing, song, _ReplayTagger(tags), replay_genre, **options), False

    decoded.raise_error()
    tags = tags if tags is not None else tagged.get(taggers.model)
    tagger = _ReplayTagger(tags) if tags is not None else taggers.tagger
    genre = tagged.get(taggers.genre_key)  # (a cached genre is heard again, as ever)
    genre_tagger = None
    if need_genre:
        genre_tagger = _ReplayTagger(genre) if genre is not None else taggers.genre_tagger
    # decoded once, its patches shared by both taggers
    description = describe_patches(decoded.patches, song, tagger, genre_tagger, **options)
    results = {taggers.model: description.tags}
    if description.genre is not None:
        results[taggers.genre_key] = description.genre
    cache.put(track.audio, results)
    return description, True


def _collect_folder(audio_dir: Path) -> list[Track]:
    tracks = []
    folder_covers: dict[Path, Path | None] = {}
    for path in find_audio_files(audio_dir):
        source = path.relative_to(audio_dir).as_posix()
        try:
            tags, embedded = read_track(path)
        except LibraryError as e:
            # Decoding decides whether it is audio at all; tags are optional.
            logger.info("no tags for %s: %s", path, e)
            tags, embedded, tag_error = SongTags(), None, str(e)
        else:
            tag_error = ""
        if path.parent not in folder_covers:
            folder_covers[path.parent] = find_folder_cover(path.parent)
        tracks.append(
            Track(
                source=source,
                audio=path,
                tags=tags,
                category=match_category(tags.genre),
                cover=path if embedded else folder_covers[path.parent],
                cover_embedded=embedded is not None,
                tag_error=tag_error,
            )
        )
    return tracks


def _collect_manifest(manifest: Path, summary: BuildSummary) -> list[Track]:
    rows, bad = read_manifest(manifest)
    for row in bad:
        summary.skipped.append(Skipped(f"{manifest.name} line {row.line}", BAD_ROW, row.reason))
    base = manifest.resolve().parent
    return [
        Track(
            source=Path(os.path.relpath(row.audio, base)).as_posix(),
            audio=row.audio,
            tags=SongTags(
                title=row.title, artist=row.artist, album=row.album, date=row.date, notes=row.notes
            ),
            category=row.category,
            license=row.license,
            cover=row.image,
        )
        for row in rows
    ]


def _assign_covers(
    tracks: list[Track], output_dir: Path, resolution: int, summary: BuildSummary
) -> dict[str, tuple[str, Callable[[], bytes]]]:
    """Pick one cover per album and check it decodes; returns source -> (cover id, bytes getter).

    The album's cover is its first track's (by path) that has one, so tracks without their own
    cover borrow it. The cover id hashes the image bytes and the resolution, so one image file
    serves every album with that cover, and a rebuild at another size never reuses old files.
    """
    albums: dict[tuple, list[Track]] = defaultdict(list)
    for track in tracks:
        albums[track.album_key].append(track)
    assigned = {}
    for members in albums.values():
        first = next((t for t in members if t.cover is not None), None)
        if first is None:
            for t in members:
                detail = "no embedded picture and no cover/folder/front image beside it"
                if t.tag_error:  # likely no audio at all: say so
                    detail += f"; {t.tag_error}"
                summary.skipped.append(Skipped(t.source, NO_COVER, detail))
            continue
        try:
            data = first.read_cover()
            cover_id = hashlib.sha256(f"{resolution}:".encode() + data).hexdigest()[:16]
            if not any((output_dir / s / f"{cover_id}.png").exists() for s in SPLITS):
                square_cover(data, 8)  # decodes it fully: a broken image fails here
        except (OSError, ValueError) as e:
            where = "embedded picture" if first.cover_embedded else str(first.cover)
            for t in members:
                summary.skipped.append(Skipped(t.source, BAD_COVER, f"{where}: {e}"))
            continue
        for t in members:
            assigned[t.source] = (cover_id, first.read_cover)
    return assigned


def square_cover(data: bytes, resolution: int):
    """Decode an image, center-crop it to a square and resize it (Lanczos) to RGB (res, res).

    Transparent pixels are painted on white. Raises ValueError when the bytes are no image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "P", "PA") and (
                "A" in image.mode or "transparency" in image.info
            ):
                rgba = image.convert("RGBA")
                image = Image.new("RGB", rgba.size, "white")
                image.paste(rgba, mask=rgba.getchannel("A"))
            image = image.convert("RGB")
            return ImageOps.fit(image, (resolution, resolution), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, OSError) as e:
        raise ValueError(f"not a readable image ({e})") from e


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


def _png_renderer(covers, resolution: int) -> Callable[[str], bytes]:
    """cover id -> the PNG bytes the dataset stores for it (square, ``resolution`` px)."""
    readers = {cover_id: read for cover_id, read in covers.values()}

    def render(cover_id: str) -> bytes:
        image = square_cover(readers[cover_id](), resolution)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    return render


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


def _identity(audio: Path) -> dict:
    stat = Path(audio).stat()
    return {"path": str(Path(audio).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _top_labels(scores: dict[str, float], top: int) -> list[str]:
    return sorted(scores, key=lambda label: -scores[label])[:top]


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

    from albumcover.prompts import STYLES

    if args.style is not None and args.style not in STYLES:
        parser.error(f"--style must be one of {', '.join(STYLES)}, got {args.style!r}")
    from albumcover.tagger import MODELS, resolve_device

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
    from albumcover.families import load_budget
    from albumcover.recipe import RecipeError

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
