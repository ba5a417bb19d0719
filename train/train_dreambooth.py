"""DreamBooth for Stable Diffusion (SD 1.x/2.x or SDXL): one prompt for a folder of images,
optionally with prior preservation.

    python -m train.train_dreambooth \\
        --pretrained_model_name_or_path stabilityai/stable-diffusion-xl-base-1.0 \\
        --instance_data_dir covers/ana --instance_prompt "cover album by sks artist" \\
        --with_prior_preservation --class_data_dir class/covers --class_prompt "cover album" \\
        --output_dir outputs/db-ana --use_lora --rank 8 --max_train_steps 800

Missing class images (up to ``--num_class_images``) are painted by the base model. Everything
else (LoRA, checkpoints and resume, validation through the app's generator, model card, push) is
the shared core in ``train.finetune``. Covers with their own captions are
``python -m train.train_text_to_image --train_data_dir``; the old
``python -m train.train_dreambooth --train_data_dir ...`` still runs that, with a notice.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import torch

from albumcover.files import atomic_path, check_writable_dir
from albumcover.recipe import DEFAULT_RECIPE

from . import train_text_to_image
from .finetune.checkpoints import (  # noqa: F401  (the names this module has always offered)
    find_latest_checkpoint,
    list_checkpoints,
    remove_stale_temp,
)
from .finetune.export import OUTPUT_INFO  # noqa: F401
from .finetune.family import TrainingError  # noqa: F401
from .finetune.models import load_part
from .finetune.options import add_caption_flags, build_parser, check_args, check_dreambooth_args
from .finetune.trainer import TrainResult, run_training, weight_dtype
from .finetune.validation import free_memory
from .imagefolder import list_images, read_image_folder

logger = logging.getLogger(__name__)

PROG = "python -m train.train_dreambooth"
MOVED = (
    "--train_data_dir (covers with their own captions) is now "
    "`python -m train.train_text_to_image` with the same flags; running it for you"
)


def parse_args(input_args: list[str] | None = None) -> argparse.Namespace:
    """Parse the flags; impossible combinations raise ValueError before any model loads.

    With ``--train_data_dir`` (the command before the split) the flags are parsed, and later
    run, as ``train.train_text_to_image``'s, after a FutureWarning saying so.
    """
    p = build_parser(PROG, __doc__.split("\n\n")[0], "dreambooth")
    g = p.add_argument_group("data (DreamBooth)")
    g.add_argument("--instance_data_dir", help="a folder of images")
    g.add_argument("--instance_prompt", help="their prompt")
    g.add_argument("--with_prior_preservation", action="store_true", help="add a class prior loss")
    g.add_argument("--class_data_dir", help="class images (missing ones are generated)")
    g.add_argument("--class_prompt", help="prompt of the class images")
    g.add_argument("--num_class_images", type=int, default=100, help="class images wanted")
    g.add_argument("--sample_batch_size", type=int, default=4, help="class image render batch")
    g.add_argument("--class_inference_steps", type=int, default=50, help="class image steps")
    g.add_argument("--prior_loss_weight", type=float, default=1.0)
    add_caption_flags(g, hidden=True)  # the old command line: see MOVED
    args = p.parse_args(input_args)
    if args.train_data_dir is not None:
        if args.instance_data_dir is not None:
            raise ValueError(
                "--train_data_dir (captioned covers: `python -m train.train_text_to_image`) and "
                "--instance_data_dir (DreamBooth) are two modes: give one of them"
            )
        if args.instance_prompt:
            raise ValueError(
                "--instance_prompt needs --instance_data_dir (DreamBooth); with --train_data_dir "
                "each cover trains on its own caption"
            )
        if args.with_prior_preservation:
            raise ValueError("--with_prior_preservation (DreamBooth) needs --instance_data_dir")
        warnings.warn(MOVED, FutureWarning, stacklevel=2)
        return train_text_to_image.parse_args(input_args)
    if args.caption_mode is not None:
        raise ValueError("--caption_mode is for --train_data_dir (train.train_text_to_image)")
    check_dreambooth_args(args)
    args.caption_mode = "prompt"  # every image is trained on --instance_prompt as given
    return check_args(args)


def generate_class_images(args, accelerator, family) -> list:
    """Fill ``--class_data_dir`` up to ``--num_class_images`` with base-model renders (main
    process only; written atomically), then return the class examples."""
    if accelerator.is_main_process:
        _paint_missing(args, accelerator)
    accelerator.wait_for_everyone()
    return read_image_folder(
        args.class_data_dir, args.class_prompt, "--class_data_dir", limit=args.num_class_images
    )


def missing_class_images(args) -> int:
    """How many class images ``--class_data_dir`` lacks (it may not exist yet)."""
    folder = Path(args.class_data_dir)
    have = len(list_images(folder)) if folder.is_dir() else 0
    return max(0, args.num_class_images - have)


def _paint_missing(args, accelerator) -> None:
    from diffusers import AutoPipelineForText2Image

    folder = Path(args.class_data_dir)
    missing = missing_class_images(args)
    if not missing:
        return
    check_writable_dir(folder, "--class_data_dir")
    have = args.num_class_images - missing
    logger.info("generating %d class images for %r in %s", missing, args.class_prompt, folder)
    cuda = accelerator.device.type == "cuda"  # half precision only where it is fast
    dtype = weight_dtype(accelerator.mixed_precision) if cuda else torch.float32
    pipe = load_part(
        "pipeline",
        AutoPipelineForText2Image.from_pretrained,
        args.pretrained_model_name_or_path,
        revision=args.revision,
        variant=args.variant,
        dtype=dtype,
    )
    pipe.to(accelerator.device)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(args.seed + have)
    index = have
    for start in range(0, missing, args.sample_batch_size):
        count = min(args.sample_batch_size, missing - start)
        images = pipe(
            [args.class_prompt] * count,
            num_inference_steps=args.class_inference_steps,
            height=args.resolution,
            width=args.resolution,
            generator=generator,
        ).images
        for image in images:
            while (folder / f"class-{index:05d}.png").exists():
                index += 1
            with atomic_path(folder / f"class-{index:05d}.png") as tmp:  # never half an image
                image.save(tmp, format="PNG")
    del pipe
    free_memory()


def main(args: argparse.Namespace) -> TrainResult:
    """Train as ``args`` say (see :func:`parse_args`); write the output and maybe push it.

    Raises:
        DatasetError: a broken image folder (before any model loads).
        OutputDirError: --output_dir is unwritable or holds another run.
        TrainingError: an unloadable model or an incompatible checkpoint.
        PushError: the push failed; the local output is complete.
    """
    if args.kind == "text_to_image":  # the old command line (see parse_args)
        return train_text_to_image.main(args)

    def read_data():
        examples = read_image_folder(
            args.instance_data_dir, args.instance_prompt, "--instance_data_dir"
        )
        if args.with_prior_preservation and missing_class_images(args):
            check_writable_dir(args.class_data_dir, "--class_data_dir")  # before the base loads
        return examples, DEFAULT_RECIPE.with_base_model(args.pretrained_model_name_or_path)

    classes = generate_class_images if args.with_prior_preservation else None
    return run_training(args, read_data, classes)


def cli(argv: list[str] | None = None) -> int:
    """``python -m train.train_dreambooth``: 0 on success, 1 on a failed run, 2 on bad flags."""
    return train_text_to_image.cli(argv, parse=parse_args, run=main)


if __name__ == "__main__":
    sys.exit(cli())
