"""Cover datasets in the imagefolder layout, and the condition vocabularies of the GAN baselines.

A split is a folder holding ``metadata.jsonl`` (one JSON object per line with at least
``file_name`` and ``text``; ``category`` too for category conditioning) and the images it names.
Rows and images are read by ``train.imagefolder`` (``read_metadata``, ``split_dir``: re-exported
here), as for SD training. Images are decoded once, cropped and kept in memory as uint8: the GAN
baselines train at 64 or 128 px, where even tens of thousands of covers fit in a few hundred MB.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ..imagefolder import (
    DatasetError,
    Example,
    open_rgb,
    read_metadata,
    split_dir,
    square_crop,
)
from .model import PAD_INDEX

__all__ = [  # the imagefolder names are re-exported: older imports keep working
    "PAD",
    "UNK",
    "CoverRecord",
    "DatasetError",
    "Vocabulary",
    "category_vocabulary",
    "collate_conditions",
    "encode_condition",
    "known_categories",
    "load_images",
    "read_metadata",
    "split_dir",
    "tokenize",
]

logger = logging.getLogger(__name__)

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters/digits, inner apostrophes kept ("don't")


# A dataset row, as every trainer and the evaluation read it (``train.imagefolder``).
CoverRecord = Example


def load_images(records: Sequence[Example], resolution: int) -> torch.Tensor:
    """All records' images, centre-cropped squares (``train.imagefolder.square_crop``, as SD
    training and the evaluation crop), as one (N, 3, resolution, resolution) uint8 tensor."""
    array = np.stack(
        [np.asarray(square_crop(open_rgb(r.image, r.where), resolution)[0]) for r in records]
    )
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


def category_vocabulary(records: Sequence[Example]) -> Vocabulary:
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
