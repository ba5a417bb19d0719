"""Read an imagefolder of (cover, prompt) pairs, or DreamBooth image folders, as training tensors.

The layout is the one ``python -m train.build_dataset`` writes and
``datasets.load_dataset("imagefolder")`` reads: ``metadata.jsonl`` rows with ``file_name`` (an
image next to it) and ``text`` (its prompt), ``category`` optional. Every file is checked up
front, so a broken dataset fails in seconds with the file and row named, not hours into training.

The one reader (:func:`read_metadata`) and the one square crop (:func:`square_crop`, after
:func:`open_rgb`) of the project: SD fine-tuning, the GAN baselines and evaluation all see a
cover the same way.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
METADATA = "metadata.jsonl"


class DatasetError(ValueError):
    """A dataset file is missing or broken; the message names the file and row."""


@dataclass(frozen=True)
class Example:
    """One training image with its prompt; ``where`` names its row for error messages.

    ``category`` is the row's category ("" when absent or empty: the dataset builder leaves it
    empty when no genre matched); ``metadata`` the metadata.jsonl it came from (None for
    DreamBooth folders).
    """

    image: Path
    caption: str
    where: str
    category: str = ""
    metadata: Path | None = None


def check_image(path: Path, where: str) -> None:
    """Raise DatasetError unless ``path`` is a readable image file."""
    if not path.is_file():
        raise DatasetError(f"{where}: image {path} does not exist")
    try:
        with Image.open(path) as image:
            image.verify()  # reads the whole file and checks it, without decoding pixels
    except (OSError, SyntaxError, ValueError) as e:  # PIL reports some broken files as SyntaxError
        raise DatasetError(f"{where}: cannot read image {path}: {e}") from e


def split_dir(data_dir: str | Path, split: str = "train") -> Path:
    """The folder of ``split`` in an imagefolder dataset: ``data_dir/split`` when it holds a
    metadata.jsonl, else ``data_dir`` itself when it does (a split folder given directly).

    Raises:
        DatasetError: no such folder, or no metadata.jsonl in either place (the message lists the
            splits that are there).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"dataset folder not found: {data_dir}")
    if (data_dir / split / METADATA).is_file():
        return data_dir / split
    if (data_dir / METADATA).is_file():
        return data_dir
    found = sorted(p.parent.name for p in data_dir.glob(f"*/{METADATA}"))
    raise DatasetError(
        f"no {METADATA} in {data_dir / split} or {data_dir} (splits found: "
        f"{', '.join(found) or 'none'}): expected the imagefolder that "
        "`python -m train.build_dataset` writes (metadata.jsonl rows with file_name and text)"
    )


def find_metadata(data_dir: str | Path, split: str = "train") -> Path:
    """The metadata.jsonl of ``split`` in an imagefolder (see :func:`split_dir`)."""
    return split_dir(data_dir, split) / METADATA


def read_rows(metadata: Path) -> Iterator[tuple[str, dict]]:
    """Every non-blank line of a metadata.jsonl as ``(where, row)``: ``where`` names the file and
    line for error messages, ``row`` is the line's JSON object.

    Raises:
        DatasetError: an unreadable file, bad JSON, a line that is not an object, or no rows.
    """
    try:
        lines = metadata.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {metadata}: {e}") from e
    empty = True
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{metadata} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{where}: not valid JSON ({e.msg})") from e
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {type(row).__name__}")
        empty = False
        yield where, row
    if empty:
        raise DatasetError(f"{metadata} has no rows")


def read_example(
    row: dict,
    where: str,
    folder: Path,
    image_column: str = "file_name",
    caption_column: str = "text",
    hint: str = "",
) -> Example:
    """The Example of one metadata row (from ``read_rows``), its image resolved against
    ``folder`` and verified; ``hint`` is appended to the message about a missing field.

    Raises:
        DatasetError: no image/caption field, an empty caption, a non-string category, a missing
            or unreadable image; the message starts with ``where``.
    """
    missing = [c for c in (image_column, caption_column) if c not in row]
    if missing:
        raise DatasetError(
            f"{where}: no {' or '.join(map(repr, missing))} field (the row has {sorted(row)})"
            + (f"; {hint}" if hint else "")
        )
    name, caption = row[image_column], row[caption_column]
    if not isinstance(name, str) or not name.strip():
        raise DatasetError(f"{where}: {image_column!r} must be a file name, got {name!r}")
    if not isinstance(caption, str) or not caption.strip():
        raise DatasetError(
            f"{where}: {caption_column!r} must be a non-empty prompt, got {caption!r}"
        )
    category = row.get("category") or ""
    if not isinstance(category, str):
        raise DatasetError(f"{where}: 'category' must be a string, got {category!r}")
    path = folder / name
    check_image(path, where)
    return Example(path, caption.strip(), where, category.strip(), folder / METADATA)


def read_metadata(
    data_dir: str | Path,
    image_column: str = "file_name",
    caption_column: str = "text",
    split: str = "train",
) -> list[Example]:
    """Read and check every row of the metadata.jsonl of ``split`` (see :func:`split_dir`;
    a split folder itself works too), images resolved and verified.

    Raises:
        DatasetError: a missing file, bad JSON, a row without the image/caption field, an empty
            caption, a missing or unreadable image; the message names the file and line.
    """
    metadata = find_metadata(data_dir, split)
    hint = "see --image_column/--caption_column"
    return [
        read_example(row, where, metadata.parent, image_column, caption_column, hint)
        for where, row in read_rows(metadata)
    ]


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (hidden and temp files skipped)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def read_image_folder(folder: str | Path, prompt: str, flag: str, limit: int | None = None):
    """Every image in ``folder`` (the first ``limit``) paired with ``prompt``, each verified."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{flag} {folder} is not a folder")
    paths = list_images(folder)[:limit]
    if not paths:
        raise DatasetError(f"{flag} {folder} has no images ({', '.join(IMAGE_SUFFIXES)})")
    examples = [Example(path, prompt, f"{flag} image {path.name}") for path in paths]
    for example in examples:
        check_image(example.image, example.where)
    return examples


def open_rgb(path: Path, where: str) -> Image.Image:
    """The image at ``path`` decoded as RGB, turned upright by its EXIF orientation.

    Raises:
        DatasetError: the file cannot be read or decoded; the message starts with ``where``.
    """
    try:
        with Image.open(path) as image:
            return ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, SyntaxError, ValueError) as e:  # PIL flags some broken PNGs as SyntaxError
        raise DatasetError(f"{where}: cannot read image {path}: {e}") from e


def square_crop(
    image: Image.Image,
    resolution: int | None = None,
    *,
    rng: random.Random | None = None,
    random_crop: bool = False,
    flip: bool = False,
) -> tuple[Image.Image, tuple[int, int]]:
    """The square a trainer sees of ``image``: the short side resized to ``resolution`` pixels
    (None: kept), a centre crop (or a random one), maybe mirrored.

    ``random_crop`` and ``flip`` draw from ``rng`` (two ``randint`` calls, then one ``random``),
    so augmentation is a pure function of the rng's seed.

    Returns the ``resolution`` (or short side) square and its top-left corner ``(top, left)`` in
    pixels of the resized image (of the mirrored one when flipped: SDXL's crop conditioning).
    """
    if (random_crop or flip) and rng is None:
        raise ValueError("random_crop and flip need an rng")
    width, height = image.size
    side = min(width, height) if resolution is None else resolution
    scale = side / min(width, height)
    size = (max(side, round(width * scale)), max(side, round(height * scale)))
    if size != image.size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    width, height = image.size
    if random_crop:
        left, top = rng.randint(0, width - side), rng.randint(0, height - side)
    else:
        left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if flip and rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        left = width - side - left  # where this crop lies in the mirrored image
    return image, (top, left)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB image as a (3, H, W) float32 tensor in [-1, 1]."""
    pixels = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


def prepare_image(
    image: Image.Image, resolution: int, rng: random.Random, center_crop: bool, flip: bool
) -> torch.Tensor:
    """:func:`square_crop` to ``resolution`` (centred, or random from ``rng``), maybe flipped.

    Returns a (3, resolution, resolution) float32 tensor in [-1, 1].
    """
    image, _ = square_crop(image, resolution, rng=rng, random_crop=not center_crop, flip=flip)
    return to_tensor(image)


class CoverDataset(torch.utils.data.Dataset):
    """Training pairs as tensors: ``pixel_values`` (3, R, R) in [-1, 1], ``input_ids`` (77,) from
    the first tokenizer (``input_ids_2`` from a second one: SDXL), ``original_size`` (2,) the
    image's (height, width) before resizing and ``crop_top_left`` (2,) (SDXL's size and crop
    conditioning).

    With ``class_examples`` (DreamBooth prior preservation) each item also carries a class pair
    (the same keys prefixed ``class_``). Augmentation (random crop, flip) is a pure function of
    (seed, epoch, index), so a resumed run sees exactly the images an uninterrupted one would,
    without touching the global RNG. ``tokenizer`` is one tokenizer or a sequence of them.
    """

    def __init__(
        self,
        examples,
        tokenizer,
        resolution,
        *,
        center_crop=False,
        random_flip=False,
        seed=0,
        class_examples=None,
    ):
        self.examples = list(examples)
        self.class_examples = list(class_examples or [])
        self.tokenizers = list(tokenizer) if isinstance(tokenizer, list | tuple) else [tokenizer]
        self.resolution = resolution
        self.center_crop = center_crop
        self.random_flip = random_flip
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return max(len(self.examples), len(self.class_examples))

    def _pair(self, example: Example, rng: random.Random) -> dict[str, torch.Tensor]:
        image = open_rgb(example.image, example.where)
        original_size = (image.height, image.width)
        crop, corner = square_crop(
            image, self.resolution, rng=rng, random_crop=not self.center_crop,
            flip=self.random_flip,
        )  # fmt: skip
        item = {
            "pixel_values": to_tensor(crop),
            "original_size": torch.tensor(original_size),
            "crop_top_left": torch.tensor(corner),
        }
        for i, tokenizer in enumerate(self.tokenizers):
            item["input_ids" if i == 0 else f"input_ids_{i + 1}"] = tokenizer(
                example.caption,
                padding="max_length",
                truncation=True,
                max_length=tokenizer.model_max_length,
                return_tensors="pt",
            ).input_ids[0]
        return item

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        item = self._pair(self.examples[index % len(self.examples)], rng)
        if self.class_examples:
            pair = self._pair(self.class_examples[index % len(self.class_examples)], rng)
            item.update({f"class_{key}": value for key, value in pair.items()})
        return item


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack a batch; class pairs (prior preservation) go after the instance pairs."""
    batch = {}
    for key in [key for key in items[0] if not key.startswith("class_")]:
        values = [item[key] for item in items]
        if f"class_{key}" in items[0]:
            values += [item[f"class_{key}"] for item in items]
        batch[key] = torch.stack(values)
    return batch


class EpochShuffle(torch.utils.data.Sampler):
    """A fresh permutation every epoch, a pure function of (seed, epoch) (resumable)."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed((self.seed << 20) + self.epoch)
        yield from torch.randperm(self.size, generator=generator).tolist()
