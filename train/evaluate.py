"""Score cover generators on the held-out split: CLIP-FID, CLIP-KID, CLIP score and retrieval.

    python -m train.evaluate --data_dir data/covers --out results.md \\
        --gan out/gan-none --gan out/gan-category --gan out/gan-prompt \\
        --diffusers runwayml/stable-diffusion-v1-5 \\
        --diffusers runwayml/stable-diffusion-v1-5::out/dreambooth-lora \\
        --diffusers out/sd-category --diffusers out/sd-none

Each model draws ``--num_images_per_prompt`` covers for every held-out row from its own
condition: GANs from the row's prompt, its category, or nothing; fine-tuned diffusion models as
their caption recipe says (``caption_mode`` in albumcover_recipe.json, written by
``train.train_text_to_image --caption_mode prompt|category|none``: the row's prompt, only
``cover album of {category} song``, or an empty prompt without guidance). Every model is compared
with the real held-out covers, and its images with the rows' full prompts, in one table.

There is no InceptionV3 here (it needs torchvision), so FID and KID are computed on CLIP
image embeddings ("CLIP-FID", Kynkäänniemi et al. 2023; clean-fid's CLIP features): the numbers
rank models but are not comparable with published Inception-FID values. Writes a markdown table
(``--out``) and the raw numbers beside it (same name, ``.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from albumcover.files import OutputDirError, atomic_path, check_writable_dir, write_atomic
from albumcover.paint.generator import (
    MAX_IMAGES,
    CoverGenerator,
    GenerationSettings,
    GeneratorError,
)
from albumcover.recipe import DEFAULT_RECIPE, load_recipe

from . import metrics
from .gan.checkpoint import CheckpointError
from .gan.sample import GanSampler
from .imagefolder import DatasetError, open_rgb, read_metadata, square_crop
from .outputs import check_output_file

logger = logging.getLogger(__name__)

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
FID_NOTE = (
    "CLIP-FID / CLIP-KID: Fréchet and kernel distances on CLIP image embeddings (clean-fid's "
    "CLIP features, Kynkäänniemi et al. 2023), not on InceptionV3: they rank models but are not "
    "comparable with published (Inception) FID values. FID is biased upwards when there are fewer "
    "images than embedding dimensions; KID is unbiased and better for small splits."
)


class EvaluationError(RuntimeError):
    """A model or CLIP encoder that could not be loaded or run; the message names it."""


@dataclass(frozen=True)
class ModelSpec:
    """One model to evaluate: a GAN checkpoint, or a diffusers pipeline with an optional LoRA."""

    kind: str  # "gan" | "diffusers"
    path: str
    lora: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "gan":
            return f"GAN {self.path}"
        return f"SD {self.path}" + (f" + LoRA {self.lora}" if self.lora else "")

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.label).strip("_")[:120]


def parse_diffusers_spec(spec: str) -> ModelSpec:
    """``MODEL`` or ``MODEL::LORA`` -> ModelSpec."""
    model, sep, lora = spec.partition("::")
    if not model or (sep and not lora):
        raise ValueError(f"--diffusers expects MODEL or MODEL::LORA, got {spec!r}")
    return ModelSpec("diffusers", model, lora or None)


def parse_args(input_args: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Score cover generators on the held-out split.")
    parser.add_argument("--data_dir", required=True, help="imagefolder dataset")
    parser.add_argument("--split", default="validation")
    parser.add_argument(
        "--gan", action="append", default=[], help="GAN checkpoint or training folder (repeat)"
    )
    parser.add_argument(
        "--diffusers",
        action="append",
        default=[],
        help="diffusers pipeline (Hub id or folder), optionally ::LORA weights (repeat)",
    )
    parser.add_argument("--out", required=True, help="results table (.md); raw numbers to .json")
    parser.add_argument("--num_images_per_prompt", type=int, default=1)
    parser.add_argument("--steps", type=int, default=25, help="diffusion inference steps")
    parser.add_argument("--guidance_scale", type=float, default=7.5)
    parser.add_argument("--resolution", type=int, default=256, help="diffusion image side")
    parser.add_argument(
        "--safety_checker",
        action="store_true",
        help="keep the pipelines' NSFW filter (off by default: its black images skew the scores)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="row i, image k is drawn with seed + i * n + k"
    )
    parser.add_argument("--clip_model", default=DEFAULT_CLIP)
    parser.add_argument("--max_prompts", type=int, default=None, help="first N held-out rows")
    parser.add_argument("--batch_size", type=int, default=32, help="CLIP encoder batch")
    parser.add_argument("--kid_subsets", type=int, default=100)
    parser.add_argument("--images_dir", default=None, help="also save every generated image here")
    parser.add_argument("--device", default=None, help="cpu, cuda... (default: auto)")
    args = parser.parse_args(input_args)

    if not args.gan and not args.diffusers:
        parser.error("nothing to evaluate: give at least one --gan or --diffusers model")
    try:
        args.models = [ModelSpec("gan", p) for p in args.gan] + [
            parse_diffusers_spec(s) for s in args.diffusers
        ]
    except ValueError as e:
        parser.error(str(e))
    if Path(args.out).suffix != ".md":
        parser.error(f"--out must end in .md (the JSON goes beside it), got {args.out}")
    for name in ("num_images_per_prompt", "steps", "batch_size", "kid_subsets"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.max_prompts is not None and args.max_prompts < 2:
        parser.error(f"--max_prompts must be >= 2 (metrics compare sets), got {args.max_prompts}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.diffusers:
        try:  # the pipeline's own limits (steps, guidance, image size), checked before any load
            generation_settings(args, args.seed, 1)
        except ValueError as e:
            parser.error(f"diffusion settings: {e}")
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available")
    return args


class ClipEncoder:
    """CLIP image and text embeddings (the projected ``get_*_features`` outputs, unnormalised)."""

    def __init__(self, name_or_path: str, device: str = "cpu", batch_size: int = 32):
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        try:
            self.model = CLIPModel.from_pretrained(name_or_path).eval().to(device)
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            self.processor = AutoImageProcessor.from_pretrained(name_or_path)
        except (OSError, ValueError) as e:
            raise EvaluationError(f"cannot load CLIP model {name_or_path!r}: {e}") from e
        self.device = device
        self.batch_size = batch_size
        self.max_length = self.model.config.text_config.max_position_embeddings

    @torch.no_grad()
    def images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(n, projection_dim) float64 embeddings of RGB images (resized/cropped to CLIP's size)."""
        out = []
        for i in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[i : i + self.batch_size]]
            pixels = self.processor(images=batch, return_tensors="pt")["pixel_values"]
            features = self.model.get_image_features(pixel_values=pixels.to(self.device))
            out.append(features.pooler_output.double().cpu().numpy())
        return np.concatenate(out)

    @torch.no_grad()
    def texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, projection_dim) float64 embeddings of prompts (truncated to the text encoder's
        context, as torchmetrics' CLIPScore does)."""
        out = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(
                list(texts[i : i + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            features = self.model.get_text_features(
                input_ids=tokens["input_ids"].to(self.device),
                attention_mask=tokens["attention_mask"].to(self.device),
            )
            out.append(features.pooler_output.double().cpu().numpy())
        return np.concatenate(out)


def _load_covers(records) -> list[Image.Image]:
    # the centre square the trainers crop (train.imagefolder), at the cover's own size: what
    # CLIP's processor would cut out of it anyway, for every cover however it is shaped
    return [square_crop(open_rgb(r.image, r.where))[0] for r in records]


def gan_drawer(spec: ModelSpec, args) -> tuple[Callable, str]:
    """(record, index) -> images, from the GAN's own condition for the row; and that condition
    (none, category or prompt)."""

    sampler = GanSampler.from_checkpoint(spec.path, device=args.device)
    condition = sampler.config.condition
    unknown = 0

    def draw(record, index: int) -> list[Image.Image]:
        nonlocal unknown
        kwargs = {}
        if condition == "prompt":
            kwargs["prompt"] = record.caption
        elif condition == "category":
            kwargs["category"] = record.category
            if record.category not in sampler.categories:
                unknown += 1
                if unknown == 1:
                    logger.warning(
                        "%s: held-out category %r unknown: <unk>", spec.path, record.category
                    )
        seed = args.seed + index * args.num_images_per_prompt  # the same seeds diffusion gets
        return sampler.generate(
            n=args.num_images_per_prompt, seed=seed, unknown_category=True, **kwargs
        )

    logger.info("%s: %s GAN at %d px", spec.path, condition, sampler.config.resolution)
    return draw, condition


def generation_settings(args: argparse.Namespace, seed: int, n: int):
    """albumcover GenerationSettings for ``n`` images from ``seed`` (validated)."""

    return GenerationSettings(
        steps=args.steps,
        guidance_scale=args.guidance_scale,
        seed=seed,
        num_images=n,
        width=args.resolution,
        height=args.resolution,
    ).validate()


def model_recipe(spec: ModelSpec):
    """The caption recipe a diffusers model was trained with (the LoRA's, else the model's;
    DEFAULT_RECIPE, full prompts, when it has none)."""

    try:
        return load_recipe(spec.lora or spec.path) or DEFAULT_RECIPE
    # a broken file (RecipeError), a Hub repo that cannot be reached or does not exist: any of
    # them means the mode is unknown, and guessing it would score the model on the wrong prompts
    except Exception as e:
        raise EvaluationError(f"cannot read the caption recipe of {spec.label}: {e}") from e


def diffusers_drawer(spec: ModelSpec, args) -> tuple[Callable, str]:
    """(record, index) -> images via albumcover's CoverGenerator, prompted in the model's caption
    mode; and that mode (prompt, category or none)."""

    recipe = model_recipe(spec)
    unconditional = recipe.caption_mode == "none"
    try:
        generator = CoverGenerator.from_pretrained(
            spec.path, lora=spec.lora, device=args.device, safety_checker=args.safety_checker
        )
    except GeneratorError as e:
        raise EvaluationError(f"cannot load {spec.label}: {e}") from e

    def draw(record, index: int) -> list[Image.Image]:
        prompt = recipe.caption(record.caption, record.category)
        images, first = [], args.seed + index * args.num_images_per_prompt
        while len(images) < args.num_images_per_prompt:  # the pipeline paints <= MAX_IMAGES
            n = min(MAX_IMAGES, args.num_images_per_prompt - len(images))
            settings = generation_settings(args, first + len(images), n)
            if unconditional:
                # trained on empty captions only: guidance against a negative prompt it never
                # saw would only add noise, so sample the model itself (one pass per step)
                settings = replace(settings, guidance_scale=1.0, negative_prompt="")
            covers = generator.generate(prompt, settings, allow_empty_prompt=unconditional)
            images += [cover.image for cover in covers]
        return images

    logger.info("%s: captions in mode %s", spec.label, recipe.caption_mode)
    return draw, recipe.caption_mode


def distribution_scores(real: np.ndarray, images: np.ndarray, kid_subsets: int, seed: int) -> dict:
    """CLIP-FID and CLIP-KID (mean, std) between (m, d) real and (n, d) generated embeddings."""
    kid, kid_std = metrics.kernel_inception_distance(
        real, images, num_subsets=kid_subsets, seed=seed
    )
    return {"fid": metrics.frechet_distance(real, images), "kid": kid, "kid_std": kid_std}


def text_scores(images: np.ndarray, texts: np.ndarray, targets: np.ndarray) -> dict:
    """CLIP score and retrieval of (n, d) image embeddings against (p, d) distinct-prompt
    embeddings, ``targets`` (n,) being each image's prompt index."""
    return {
        "images": len(images),
        "clip_score": metrics.clip_score(images, texts[targets]),
        **metrics.retrieval_scores(images, texts, targets),
    }


def _cell(value, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def format_table(rows: list[dict], header: dict) -> str:
    """Markdown: notes, then one row per model (``label`` + ``score`` keys)."""
    lines = [
        f"# Cover generators on the held-out split ({header['split']})",
        "",
        f"{header['covers']} held-out covers, {header['prompts']} distinct prompts, "
        f"{header['num_images_per_prompt']} image(s) per row; CLIP model `{header['clip_model']}`; "
        f"seed {header['seed']}.",
        "",
        f"- {FID_NOTE}",
        "- CLIP score: 100 x cosine(image, own prompt), averaged (torchmetrics' definition).",
        f"- Retrieval: each image ranks all {header['prompts']} prompts; R@1 = own prompt first "
        f"(chance {1 / header['prompts']:.3f}); ties count against the image.",
        f"- Real covers row: {header['reference']}",
        "",
        "- Condition: what the model drew from: the row's full prompt, only its category, or "
        "nothing (GANs: `--condition`; diffusion models: their recipe's caption mode).",
        "",
        "| model | condition | images | CLIP-FID ↓ | CLIP-KID ↓ | CLIP score ↑ | R@1 ↑ | R@5 ↑ "
        "| mean rank ↓ |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        s = row["score"]
        kid = None if s.get("kid") is None else f"{s['kid']:.4g} ± {s['kid_std']:.2g}"
        lines.append(
            f"| {row['label']} | {row.get('condition', '—')} | {s['images']} | "
            f"{_cell(s.get('fid'), '.4g')} | "
            f"{kid or '—'} | {s['clip_score']:.2f} | {s['r1']:.3f} | {s['r5']:.3f} | "
            f"{s['mean_rank']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _reference_covers(args: argparse.Namespace, n: int) -> list[Image.Image]:
    """Up to ``n`` training covers (seeded sample) to measure how far two real sets of the
    held-out size lie apart; [] when evaluating the train split or it is missing."""
    if args.split == "train":
        return []
    try:
        records = read_metadata(args.data_dir, split="train")
    except DatasetError as e:
        logger.warning("no training covers for the real-covers reference: %s", e)
        return []
    if len(records) < 2:
        return []
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(records), min(n, len(records)), replace=False)
    return _load_covers([records[i] for i in sorted(pick)])


def main(args: argparse.Namespace) -> dict:
    """Evaluate every model; write ``args.out`` and its .json; return the JSON object.

    Raises:
        OutputDirError: ``--out`` or ``--images_dir`` cannot be written (checked first, before
            the dataset, CLIP or any model loads).
        DatasetError, CheckpointError, EvaluationError: the culprit named in the message.
    """
    out = check_output_file(args.out, "--out")
    if args.images_dir:
        check_writable_dir(args.images_dir, "--images_dir")
    records = read_metadata(args.data_dir, split=args.split)
    if args.max_prompts:
        records = records[: args.max_prompts]
    if len(records) < 2:
        raise DatasetError(f"{records[0].metadata}: need at least 2 held-out rows, got 1")
    prompts = list(dict.fromkeys(r.caption for r in records))
    targets = np.array([prompts.index(r.caption) for r in records])
    per_image = np.repeat(targets, args.num_images_per_prompt)

    clip = ClipEncoder(args.clip_model, device=args.device, batch_size=args.batch_size)
    text_features = clip.texts(prompts)
    real_features = clip.images(_load_covers(records))

    real_score = text_scores(real_features, text_features, targets)
    reference = _reference_covers(args, len(records))
    if reference:
        real_score.update(
            distribution_scores(real_features, clip.images(reference), args.kid_subsets, args.seed)
        )
        reference_note = (
            f"CLIP-FID/KID of {len(reference)} training covers against the held-out ones (the "
            "distance between two real sets of this size: a floor for the models); CLIP score "
            "and retrieval of the held-out covers with their own prompts (a ceiling)."
        )
    else:
        reference_note = "CLIP score and retrieval of the held-out covers with their own prompts."
    rows = [
        {"label": "real covers (reference)", "kind": "real", "condition": "—", "score": real_score}
    ]

    for spec in args.models:
        logger.info(
            "drawing %d x %d covers with %s", len(records), args.num_images_per_prompt, spec.label
        )
        drawer = gan_drawer if spec.kind == "gan" else diffusers_drawer
        draw, condition = drawer(spec, args)
        images = []
        for index, record in enumerate(records):
            drawn = draw(record, index)
            if args.images_dir:
                folder = Path(args.images_dir) / spec.slug
                for k, image in enumerate(drawn):
                    with atomic_path(folder / f"{index:05d}-{k}.png") as tmp:
                        image.save(tmp, format="PNG")
            images.extend(drawn)
        features = clip.images(images)
        result = text_scores(features, text_features, per_image)
        result.update(distribution_scores(real_features, features, args.kid_subsets, args.seed))
        rows.append(
            {"label": spec.label, "kind": spec.kind, "path": spec.path, "lora": spec.lora}
            | {"condition": condition, "score": result}
        )
        logger.info("%s: %s", spec.label, result)

    header = {
        "split": args.split,
        "covers": len(records),
        "prompts": len(prompts),
        "num_images_per_prompt": args.num_images_per_prompt,
        "clip_model": args.clip_model,
        "seed": args.seed,
        "reference": reference_note,
    }
    table = format_table(rows, header)
    write_atomic(out, table)
    result = {
        **header,
        "fid_features": "clip-image-embedding",
        "settings": {
            "steps": args.steps,
            "guidance_scale": args.guidance_scale,
            "resolution": args.resolution,
            "kid_subsets": args.kid_subsets,
            "safety_checker": args.safety_checker,
        },
        "rows": rows,
    }
    write_atomic(out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    print(table)
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main(parse_args())
    except (DatasetError, CheckpointError, EvaluationError, OutputDirError) as e:
        sys.exit(f"error: {e}")
