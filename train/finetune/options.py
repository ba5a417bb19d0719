"""Command-line flags of the two fine-tuning entry points (diffusers' own flag names).

:func:`build_parser` adds the flags both share; each entry point adds its data flags and calls
:func:`check_args`, which rejects impossible combinations with a ValueError before any model loads.
"""

from __future__ import annotations

import argparse
import importlib.util
import warnings
from pathlib import Path

import torch

from albumcover.recipe import CAPTION_MODES

from ..push import add_hub_arguments, check_hub_args
from .checkpoints import resolve_checkpoint

LR_SCHEDULERS = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
)
# Every flag of both entry points, with its value when the entry point lacks it, so the trainer
# and the model card read one namespace shape.
OTHER_DEFAULTS = {
    "train_data_dir": None,
    "image_column": "file_name",
    "caption_column": "text",
    "category_column": "category",
    "caption_mode": None,
    "instance_data_dir": None,
    "instance_prompt": None,
    "with_prior_preservation": False,
    "class_data_dir": None,
    "class_prompt": None,
    "num_class_images": 100,
    "sample_batch_size": 4,
    "class_inference_steps": 50,
    "prior_loss_weight": 1.0,
}


def build_parser(prog: str, description: str, kind: str) -> argparse.ArgumentParser:
    """The parser with every shared flag; ``kind`` ("text_to_image" | "dreambooth") is stored
    in ``args.kind``. The caller adds its data group."""
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.set_defaults(kind=kind, **OTHER_DEFAULTS)
    g = p.add_argument_group("model")
    g.add_argument(
        "--pretrained_model_name_or_path",
        required=True,
        help="base SD 1.x/2.x or SDXL pipeline (Hub id or folder); the family is read from it",
    )
    g.add_argument(
        "--pretrained_vae_model_name_or_path",
        help="another VAE, e.g. madebyollin/sdxl-vae-fp16-fix (SDXL's own overflows in fp16)",
    )
    g.add_argument("--revision", help="Hub revision of the base model")
    g.add_argument("--variant", help="weight variant of the base model, e.g. fp16")

    g = p.add_argument_group("images")
    g.add_argument(
        "--resolution", type=int, help="training image side, pixels (default: the base model's: "
        "512 SD 1.x, 768 SD 2.x, 1024 SDXL)"
    )  # fmt: skip
    g.add_argument("--center_crop", action="store_true", help="centre crop, not a random crop")
    g.add_argument("--random_flip", action="store_true", help="flip half the images")
    g.add_argument("--dataloader_num_workers", type=int, default=0, help="0: main process")

    g = p.add_argument_group("training")
    g.add_argument("--output_dir", default="sd-albumcover-model")
    g.add_argument("--seed", type=int, help="default: a random one, logged and checkpointed")
    g.add_argument("--train_batch_size", type=int, default=4, help="batch size per device")
    g.add_argument("--num_train_epochs", type=int, default=1)
    g.add_argument("--max_train_steps", type=int, help="optimizer steps; overrides epochs")
    g.add_argument("--gradient_accumulation_steps", type=int, default=1)
    g.add_argument("--gradient_checkpointing", action="store_true", help="less memory, slower")
    g.add_argument("--learning_rate", type=float, help="default 5e-6, or 1e-4 with --use_lora")
    g.add_argument("--scale_lr", action="store_true", help="x batch x accumulation x processes")
    g.add_argument("--lr_scheduler", default="constant", choices=LR_SCHEDULERS)
    g.add_argument("--lr_warmup_steps", type=int, default=0)
    g.add_argument("--lr_num_cycles", type=int, default=1, help="for cosine_with_restarts")
    g.add_argument("--lr_power", type=float, default=1.0, help="for polynomial")
    g.add_argument("--use_8bit_adam", action="store_true", help="bitsandbytes AdamW8bit")
    g.add_argument("--adam_beta1", type=float, default=0.9)
    g.add_argument("--adam_beta2", type=float, default=0.999)
    g.add_argument("--adam_weight_decay", type=float, default=1e-2)
    g.add_argument("--adam_epsilon", type=float, default=1e-8)
    g.add_argument("--max_grad_norm", type=float, default=1.0, help="gradient clipping")
    g.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), help="default: accelerate")
    g.add_argument("--snr_gamma", type=float, help="Min-SNR loss weighting (5.0 recommended)")
    g.add_argument("--noise_offset", type=float, default=0.0, help="~0.1: darker/brighter covers")
    g.add_argument("--use_ema", action="store_true", help="save an EMA of the UNet (full only)")
    g.add_argument(
        "--train_text_encoder",
        action="store_true",
        help="also train the text encoder(s) (both for SDXL; as LoRA with --use_lora)",
    )
    g.add_argument("--use_lora", action="store_true", help="train LoRA adapters, not the UNet")
    g.add_argument("--rank", type=int, help="LoRA rank (default 4)")

    g = p.add_argument_group("checkpoints")
    g.add_argument("--checkpointing_steps", type=int, default=500, help="save state every N steps")
    g.add_argument("--checkpoints_total_limit", type=int, help="keep the newest N checkpoints")
    g.add_argument("--resume_from_checkpoint", help="checkpoint folder (or name), or `latest`")
    g.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="replace another run found in --output_dir (without it, such a folder is refused)",
    )

    g = p.add_argument_group("validation (painted like the app: its scheduler, negative prompt)")
    g.add_argument(
        "--validation_prompt",
        help="painted every --validation_steps and at the end (--caption_mode none: the empty "
        "prompt is painted, as the app serves such a model; any text turns validation on)",
    )
    g.add_argument("--num_validation_images", type=int, default=4, help="images per grid")
    g.add_argument("--validation_steps", type=int, default=100)
    g.add_argument("--validation_inference_steps", type=int, default=25, help="denoising steps")
    g.add_argument("--report_to", default="none", choices=("none", "tensorboard", "wandb"))
    g.add_argument("--logging_dir", default="logs", help="tracker folder in --output_dir")

    add_hub_arguments(p.add_argument_group("hub (token: HF_TOKEN or `hf auth login`)"))
    return p


def add_caption_flags(g, hidden: bool = False) -> None:
    """The captioned imagefolder's flags (``hidden``: accepted but not shown in --help)."""

    def text(message: str) -> str:
        return argparse.SUPPRESS if hidden else message

    g.add_argument("--train_data_dir", help=text("imagefolder root (or its train/)"))
    g.add_argument("--image_column", default="file_name", help=text("metadata.jsonl image column"))
    g.add_argument("--caption_column", default="text", help=text("metadata.jsonl prompt column"))
    g.add_argument(
        "--category_column", default="category", help=text("for --caption_mode category")
    )
    g.add_argument(
        "--caption_mode",
        choices=CAPTION_MODES,
        help=text(
            "prompt: each cover's full caption; category: only `cover album of {category} song`; "
            "none: empty captions (an unconditional fine-tune). Default: the dataset recipe's"
        ),
    )


def _positive(args, names, low, strict=True) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and not (value >= low if strict else value > low):
            op = ">=" if strict else ">"
            raise ValueError(f"--{name} must be {op} {low}, got {value}")


def check_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fill derived defaults (rank, learning rate, Hub id) and raise ValueError naming the flag
    of the first impossible setting. Returns ``args``."""
    check_hub_args(args, default_repo=Path(args.output_dir).resolve().name)
    if args.rank is not None and not args.use_lora:
        raise ValueError(f"--rank {args.rank} needs --use_lora")
    if args.use_lora:
        args.rank = 4 if args.rank is None else args.rank
        if args.rank < 1:
            raise ValueError(f"--rank must be >= 1, got {args.rank}")
    if args.use_ema and args.use_lora:
        raise ValueError("--use_ema is for a full fine-tune; it does not apply to --use_lora")
    if args.resolution is not None and (args.resolution < 8 or args.resolution % 8):
        raise ValueError(
            f"--resolution must be a positive multiple of 8 (the VAE's downsampling), "
            f"got {args.resolution}"
        )
    _positive(
        args,
        (
            "train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
            "checkpointing_steps", "validation_steps", "validation_inference_steps",
            "num_class_images", "sample_batch_size", "class_inference_steps", "lr_num_cycles",
            "max_train_steps", "checkpoints_total_limit",
        ),
        1,
    )  # fmt: skip
    _positive(args, ("lr_warmup_steps", "dataloader_num_workers", "num_validation_images"), 0)
    if args.learning_rate is None:
        args.learning_rate = 1e-4 if args.use_lora else 5e-6
    _positive(args, ("learning_rate", "max_grad_norm", "adam_epsilon", "snr_gamma"), 0, False)
    for name in ("noise_offset", "prior_loss_weight", "adam_weight_decay"):
        if not getattr(args, name) >= 0:
            raise ValueError(f"--{name} must be >= 0, got {getattr(args, name)}")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed must be in [0, 2**32), got {args.seed}")
    if args.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise ValueError("--mixed_precision fp16 needs a CUDA GPU; on CPU use bf16 or no")
    if args.use_8bit_adam and importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("--use_8bit_adam needs bitsandbytes (CUDA): `pip install bitsandbytes`")
    if args.report_to != "none" and importlib.util.find_spec(args.report_to) is None:
        raise ValueError(
            f"--report_to {args.report_to} needs the {args.report_to} package: "
            f"`pip install {args.report_to}`"
        )
    if args.resume_from_checkpoint not in (None, "latest"):
        resolve_checkpoint(args.resume_from_checkpoint, args.output_dir)  # raises if unusable
    return args


def check_dreambooth_args(args: argparse.Namespace) -> None:
    """The DreamBooth data flags: instance folder + prompt, and prior preservation's needs."""
    if args.instance_data_dir is not None and not args.instance_prompt:
        raise ValueError("--instance_data_dir needs --instance_prompt")
    if args.instance_prompt and args.instance_data_dir is None:
        raise ValueError("--instance_prompt needs --instance_data_dir")
    if args.instance_data_dir is None:
        raise ValueError(
            "give --instance_data_dir and --instance_prompt (DreamBooth: one prompt for a "
            "folder of images); for covers with their own prompts give --train_data_dir to "
            "`python -m train.train_text_to_image`"
        )
    if args.with_prior_preservation:
        if not args.class_data_dir:
            raise ValueError("--with_prior_preservation needs --class_data_dir")
        if not args.class_prompt:
            raise ValueError("--with_prior_preservation needs --class_prompt")
    elif args.class_data_dir or args.class_prompt:
        warnings.warn(
            "--class_data_dir/--class_prompt are unused without --with_prior_preservation",
            stacklevel=2,
        )
