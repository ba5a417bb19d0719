"""Fine-tune Stable Diffusion (SD 1.x/2.x or SDXL) on album covers with their own captions.

Reads the imagefolder ``python -m train.build_dataset`` writes (``OUT/train/metadata.jsonl`` +
images; columns ``text`` and ``category``) and trains the full UNet or, with ``--use_lora``, LoRA
adapters (``--train_text_encoder``: on the text encoder(s) too)::

    python -m train.train_text_to_image \\
        --pretrained_model_name_or_path stabilityai/stable-diffusion-xl-base-1.0 \\
        --pretrained_vae_model_name_or_path madebyollin/sdxl-vae-fp16-fix \\
        --train_data_dir data/covers --output_dir outputs/sdxl-covers-lora --use_lora --rank 8 \\
        --train_batch_size 1 --gradient_checkpointing --mixed_precision fp16 --max_train_steps 4000

The family is read from the base model; ``--resolution`` defaults to its native size (1024 for
SDXL). ``--caption_mode`` picks what each cover is trained on: its full prompt, only its category
(``cover album of {category} song``) or nothing (an unconditional fine-tune), for the study's
comparison (``python -m train.evaluate``). The dataset's caption recipe (albumcover_recipe.json;
the default recipe when absent) goes into the output with the mode recorded, so the app prompts
the model as it was trained. Checkpoints, resume, validation, model card and push: see
``train.finetune``. DreamBooth (one prompt, prior preservation) is ``python -m
train.train_dreambooth``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from albumcover.recipe import DEFAULT_RECIPE, CaptionRecipe, RecipeError, read_recipe

from .finetune.family import TrainingError
from .finetune.options import add_caption_flags, build_parser, check_args
from .finetune.trainer import TrainResult, run_training
from .imagefolder import DatasetError, Example, find_metadata, read_metadata
from .outputs import OutputDirError
from .push import PushError

logger = logging.getLogger(__name__)

PROG = "python -m train.train_text_to_image"


def parse_args(input_args: list[str] | None = None) -> argparse.Namespace:
    """Parse the flags; impossible combinations raise ValueError before any model loads."""
    p = build_parser(PROG, __doc__.split("\n\n")[0], "text_to_image")
    add_caption_flags(p.add_argument_group("data (a captioned imagefolder)"))
    args = p.parse_args(input_args)
    if args.train_data_dir is None:
        raise ValueError(
            "give --train_data_dir (covers with their prompts in metadata.jsonl, as "
            "`python -m train.build_dataset` writes); for DreamBooth (one prompt for a folder "
            "of images) use `python -m train.train_dreambooth --instance_data_dir`"
        )
    return check_args(args)


def dataset_recipe(data_dir, caption_mode: str | None, base_model: str) -> CaptionRecipe:
    """The recipe of the dataset (its albumcover_recipe.json, beside metadata.jsonl or in the
    dataset root; DEFAULT_RECIPE when it has none) with this run's caption mode and, when the
    dataset names none, the base model whose tokenizer will read the captions."""
    metadata = find_metadata(data_dir)
    try:
        recipe = read_recipe(data_dir) or read_recipe(metadata.parent)
    except RecipeError as e:
        raise DatasetError(str(e)) from e
    if recipe is None:
        logger.info("%s has no caption recipe: using the default one", data_dir)
        recipe = DEFAULT_RECIPE
    if caption_mode is not None:
        recipe = dataclasses.replace(recipe, caption_mode=caption_mode)
    if recipe.base_model is None:
        recipe = recipe.with_base_model(base_model)
    return recipe


def read_examples(args, recipe: CaptionRecipe) -> list[Example]:
    """The training examples, captioned in ``recipe.caption_mode``: every row is checked (image
    and the columns the mode needs) before any model loads."""
    examples = read_metadata(args.train_data_dir, args.image_column, args.caption_column)
    if recipe.caption_mode == "category":
        categories = read_metadata(args.train_data_dir, args.image_column, args.category_column)
        return [
            dataclasses.replace(e, caption=recipe.caption(e.caption, c.caption))
            for e, c in zip(examples, categories, strict=True)
        ]
    return [dataclasses.replace(e, caption=recipe.caption(e.caption, "")) for e in examples]


def main(args: argparse.Namespace) -> TrainResult:
    """Train as ``args`` say (see :func:`parse_args`); write the output and maybe push it.

    Raises:
        DatasetError: a broken dataset file (before any model loads).
        OutputDirError: --output_dir is unwritable or holds another run (before any model loads).
        TrainingError: an unloadable model or an incompatible checkpoint.
        PushError: the push failed; the local output is complete.
    """

    def read_data():
        recipe = dataset_recipe(
            args.train_data_dir, args.caption_mode, args.pretrained_model_name_or_path
        )
        args.caption_mode = recipe.caption_mode
        return read_examples(args, recipe), recipe

    return run_training(args, read_data)


def cli(argv: list[str] | None = None, parse=None, run=None) -> int:
    """The entry point: 0 on success, 1 on a failed run, 2 on bad flags."""
    try:
        args = (parse or parse_args)(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        (run or main)(args)
    except (DatasetError, TrainingError, PushError, OutputDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
