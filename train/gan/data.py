"""Cover datasets in the imagefolder layout, and the condition vocabularies of the GAN baselines.

A split is a folder holding ``metadata.jsonl`` (one JSON object per line with at least
``file_name`` and ``text``; ``category`` too for category conditioning) and the images it names.
Images are decoded once, resized and kept in memory as uint8: the GAN baselines train at 64 or
128 px, where even tens of thousands of covers fit in a few hundred MB.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..imagefolder import METADATA, DatasetError, read_example, read_rows
from .model import PAD_INDEX

logger = logging.getLogger(__name__)

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters/digits, inner apostrophes kept ("don't")


@dataclass(frozen=True)
class CoverRecord:
    """One metadata.jsonl row: the image path, its prompt and category, its metadata file, and
    ``where`` (file and line) for error messages."""

    path: Path
    text: str
    category: str
    metadata: Path
    where: str


def split_dir(data_dir: str | Path, split: str = "train") -> Path:
    """The folder of ``split`` in an imagefolder dataset (``data_dir`` itself if it holds the
    metadata file directly)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"dataset folder not found: {data_dir}")
    if (data_dir / split / METADATA).is_file():
        return data_dir / split
    if (data_dir / METADATA).is_file():
        return data_dir
    found = sorted(p.parent.name for p in data_dir.glob(f"*/{METADATA}"))
    raise DatasetError(
        f"no {split}/{METADATA} in {data_dir} (splits found: {', '.join(found) or 'none'})"
    )


def read_metadata(folder: str | Path) -> list[CoverRecord]:
    """Parse ``folder/metadata.jsonl`` into records, checking every row and its image (the rows
    and images are checked by ``train.imagefolder``, as for Stable Diffusion training). An empty or
    missing ``category`` is kept as "" (the dataset builder leaves it empty when no genre
    matched); category models map it to ``<unk>``.

    Raises DatasetError naming the file and line of the first bad row.
    """
    metadata = Path(folder) / METADATA
    records = []
    for where, row in read_rows(metadata):
        example = read_example(row, where, metadata.parent)
        category = row.get("category", "")
        if not isinstance(category, str):
            raise DatasetError(f"{where}: 'category' must be a string, got {category!r}")
        records.append(
            CoverRecord(example.image, example.caption, category.strip(), metadata, where)
        )
    return records


def load_image(record: CoverRecord, resolution: int) -> np.ndarray:
    """The record's image as (resolution, resolution, 3) uint8 RGB, centre-cropped to a square."""
    try:
        with Image.open(record.path) as image:
            image = image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as e:  # PIL flags some broken PNGs as SyntaxError
        raise DatasetError(f"{record.where}: cannot read image {record.path}: {e}") from e
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    image = image.resize((resolution, resolution), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def load_images(records: Sequence[CoverRecord], resolution: int) -> torch.Tensor:
    """All records' images as one (N, 3, resolution, resolution) uint8 tensor."""
    array = np.stack([load_image(r, resolution) for r in records])
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def tokenize(text: str) -> list[str]:
    """Lower-cased words of a caption; punctuation separates words ("lo-fi" -> "lo", "fi")."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """An ordered token list with ``<pad>`` (id 0, prompts only) and ``<unk>`` entries.

    Unknown tokens map to ``<unk>``. The token list is what checkpoints store.
    """

    def __init__(self, tokens: Sequence[str]):
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("vocabulary has duplicate tokens")
        if UNK not in self.index:
            raise ValueError(f"vocabulary needs an {UNK} entry")
        self.unk = self.index[UNK]

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def id(self, token: str) -> int:
        return self.index.get(token, self.unk)

    def encode(self, text: str) -> list[int]:
        """Word ids of a caption (``<unk>`` for unknown words)."""
        return [self.id(t) for t in tokenize(text)]

    @property
    def names(self) -> list[str]:
        """Real entries, special tokens left out."""
        return [t for t in self.tokens if t not in (PAD, UNK)]

    @classmethod
    def from_texts(cls, texts: Iterable[str], *, min_count: int = 1, max_size: int | None = None):
        """Word vocabulary of ``texts``: words seen at least ``min_count`` times, most frequent
        first (ties alphabetical), at most ``max_size`` entries counting ``<pad>``, ``<unk>``."""
        counts = Counter(t for text in texts for t in tokenize(text))
        words = [w for w, c in counts.items() if c >= min_count]
        words.sort(key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - 2)]
        return cls([PAD, UNK, *words])

    @classmethod
    def from_categories(cls, categories: Iterable[str]):
        """Category vocabulary: ``<unk>`` at id 0, then the categories in the order given."""
        seen = dict.fromkeys(c for c in categories if c)
        return cls([UNK, *seen])


def known_categories() -> tuple[str, ...]:
    """The app's category list (``albumcover.prompts.CATEGORIES``), or () where it is missing."""
    try:
        from albumcover.prompts import CATEGORIES
    except ImportError:
        return ()
    return tuple(CATEGORIES)


def category_vocabulary(records: Sequence[CoverRecord]) -> Vocabulary:
    """``<unk>`` + ``albumcover.prompts.CATEGORIES`` (the app's list, so every category the app can
    infer has an embedding), then any other category found in ``records``, sorted."""
    known = known_categories()
    extra = sorted({r.category for r in records} - set(known))
    if extra and known:
        logger.warning("categories not in albumcover.prompts.CATEGORIES, added: %s", extra)
    return Vocabulary.from_categories([*known, *extra])


def encode_condition(
    condition: str, vocab: Vocabulary | None, *, text: str = "", category: str = ""
) -> list[int]:
    """Condition ids of one image: [] (none), [category id], or the caption's word ids."""
    if condition == "none":
        return []
    if vocab is None:
        raise ValueError(f"condition {condition!r} needs a vocabulary")
    if condition == "category":
        return [vocab.id(category)]
    return vocab.encode(text)


def collate_conditions(condition: str, ids: Sequence[Sequence[int]]) -> torch.Tensor | None:
    """Batch condition tensor: None, (B,) category ids, or (B, tokens) word ids padded with
    ``PAD_INDEX`` to the longest caption (at least one column, so an empty caption is a bag of
    padding that embeds to zeros)."""
    if condition == "none":
        return None
    if condition == "category":
        return torch.tensor([i[0] for i in ids], dtype=torch.long)
    width = max(1, max(len(i) for i in ids))
    out = torch.full((len(ids), width), PAD_INDEX, dtype=torch.long)
    for row, seq in enumerate(ids):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out
