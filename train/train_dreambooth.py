"""Fine-tune Stable Diffusion 1.x to paint album covers: full UNet, LoRA, or DreamBooth.

Default mode trains on every cover with its own prompt, read from the imagefolder written by
``python -m train.build_dataset`` (``OUT/train/metadata.jsonl`` + images; column ``text``)::

    python -m train.train_dreambooth \\
        --pretrained_model_name_or_path stable-diffusion-v1-5/stable-diffusion-v1-5 \\
        --train_data_dir data/covers --output_dir outputs/sd-covers-lora --use_lora --rank 8 \\
        --resolution 512 --train_batch_size 1 --max_train_steps 4000 --mixed_precision fp16

DreamBooth mode trains one prompt on a folder of images (``--instance_data_dir`` +
``--instance_prompt``), optionally with prior preservation (``--with_prior_preservation
--class_prompt --class_data_dir``; missing class images are generated with the base model).

Runs as ``python -m train.train_dreambooth`` or ``accelerate launch -m train.train_dreambooth``.
Checkpoints (``output_dir/checkpoint-<step>``, written to a temp folder and renamed, so a kill
mid-save never leaves a broken one) hold model, optimizer, LR scheduler, EMA and RNG state;
``--resume_from_checkpoint latest`` continues at the same step. The output loads straight into
``albumcover.generator.CoverGenerator.from_pretrained``: full mode writes a diffusers pipeline
folder, LoRA mode ``pytorch_lora_weights.safetensors`` for the base model named in
``albumcover_training.json`` and the model card.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import random
import re
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .imagefolder import (
    CoverDataset,
    DatasetError,
    EpochShuffle,
    collate,
    list_images,
    read_image_folder,
    read_metadata,
)
from .model_card import write_model_card
from .outputs import OutputDirError, prepare_output_dir
from .push import PushError, push_folder

logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "training_state.json"  # written last into a checkpoint: its presence marks it complete
OUTPUT_INFO = "albumcover_training.json"
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
UNET_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
# Settings that decide what a checkpoint holds: resuming with other values cannot load it.
RESUME_KEYS = ("use_lora", "rank", "train_text_encoder", "use_ema", "use_8bit_adam", "grad_scaler")
LR_SCHEDULERS = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
)


class TrainingError(RuntimeError):
    """Training cannot start or continue (unloadable model, incompatible checkpoint, ...)."""


# --------------------------------------------------------------------------- command line


def parse_args(input_args: list[str] | None = None) -> argparse.Namespace:
    """Parse the flags; impossible combinations raise ValueError before any model loads."""
    p = argparse.ArgumentParser(
        prog="python -m train.train_dreambooth",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("model")
    g.add_argument("--pretrained_model_name_or_path", required=True, help="base SD 1.x pipeline")
    g.add_argument("--revision", help="Hub revision of the base model")
    g.add_argument("--variant", help="weight variant of the base model, e.g. fp16")

    g = p.add_argument_group("data (captioned imagefolder, or DreamBooth folders)")
    g.add_argument("--train_data_dir", help="imagefolder root (or its train/) with metadata.jsonl")
    g.add_argument("--image_column", default="file_name", help="metadata.jsonl image column")
    g.add_argument("--caption_column", default="text", help="metadata.jsonl prompt column")
    g.add_argument("--instance_data_dir", help="DreamBooth: a folder of images")
    g.add_argument("--instance_prompt", help="DreamBooth: their prompt")
    g.add_argument("--with_prior_preservation", action="store_true", help="add a class prior loss")
    g.add_argument("--class_data_dir", help="class images (missing ones are generated)")
    g.add_argument("--class_prompt", help="prompt of the class images")
    g.add_argument("--num_class_images", type=int, default=100, help="class images wanted")
    g.add_argument("--sample_batch_size", type=int, default=4, help="class image render batch")
    g.add_argument("--class_inference_steps", type=int, default=50, help="class image steps")
    g.add_argument("--prior_loss_weight", type=float, default=1.0)
    g.add_argument("--resolution", type=int, default=512, help="training image side, pixels")
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
    g.add_argument("--train_text_encoder", action="store_true", help="(as a LoRA with --use_lora)")
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

    g = p.add_argument_group("validation and logging")
    g.add_argument("--validation_prompt", help="rendered every --validation_steps and at the end")
    g.add_argument("--num_validation_images", type=int, default=4)
    g.add_argument("--validation_steps", type=int, default=100)
    g.add_argument("--validation_inference_steps", type=int, default=25, help="denoising steps")
    g.add_argument("--report_to", default="none", choices=("none", "tensorboard", "wandb"))
    g.add_argument("--logging_dir", default="logs", help="tracker folder in --output_dir")

    g = p.add_argument_group("hub (token: HF_TOKEN or `hf auth login`)")
    g.add_argument("--push_to_hub", action="store_true", help="upload the output at the end")
    g.add_argument("--hub_model_id", help="user/name (default: the output folder's name)")
    g.add_argument("--hub_private_repo", action="store_true")
    g.add_argument("--hub_token", help=argparse.SUPPRESS)  # refused: see _check_args

    args = p.parse_args(input_args)
    _check_args(args)
    return args


def _check_args(args: argparse.Namespace) -> None:
    if args.hub_token is not None:
        raise ValueError(
            "--hub_token is refused: a token on the command line leaks into shell history and "
            "process lists. Run `hf auth login` or set HF_TOKEN instead."
        )
    if args.train_data_dir is None and args.instance_data_dir is None:
        raise ValueError(
            "give --train_data_dir (covers with their prompts in metadata.jsonl) or "
            "--instance_data_dir with --instance_prompt (DreamBooth)"
        )
    if args.train_data_dir is not None and args.instance_data_dir is not None:
        raise ValueError("--train_data_dir and --instance_data_dir are two modes: give one of them")
    if args.instance_data_dir is not None and not args.instance_prompt:
        raise ValueError("--instance_data_dir needs --instance_prompt")
    if args.instance_prompt and args.instance_data_dir is None:
        raise ValueError("--instance_prompt needs --instance_data_dir")
    if args.with_prior_preservation:
        if args.instance_data_dir is None:
            raise ValueError("--with_prior_preservation (DreamBooth) needs --instance_data_dir")
        if not args.class_data_dir:
            raise ValueError("--with_prior_preservation needs --class_data_dir")
        if not args.class_prompt:
            raise ValueError("--with_prior_preservation needs --class_prompt")
    elif args.class_data_dir or args.class_prompt:
        warnings.warn(
            "--class_data_dir/--class_prompt are unused without --with_prior_preservation",
            stacklevel=2,
        )
    if args.rank is not None and not args.use_lora:
        raise ValueError(f"--rank {args.rank} needs --use_lora")
    if args.use_lora:
        args.rank = 4 if args.rank is None else args.rank
        if args.rank < 1:
            raise ValueError(f"--rank must be >= 1, got {args.rank}")
    if args.use_ema and args.use_lora:
        raise ValueError("--use_ema is for a full fine-tune; it does not apply to --use_lora")
    if args.resolution < 8 or args.resolution % 8:
        raise ValueError(
            f"--resolution must be a positive multiple of 8 (the VAE's downsampling), "
            f"got {args.resolution}"
        )
    positive = (
        "train_batch_size",
        "gradient_accumulation_steps",
        "num_train_epochs",
        "checkpointing_steps",
        "validation_steps",
        "validation_inference_steps",
        "num_class_images",
        "sample_batch_size",
        "class_inference_steps",
        "lr_num_cycles",
    )
    for name in positive:
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    for name in ("max_train_steps", "checkpoints_total_limit"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    for name in ("lr_warmup_steps", "dataloader_num_workers", "num_validation_images"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name} must be >= 0, got {getattr(args, name)}")
    if args.learning_rate is None:
        args.learning_rate = 1e-4 if args.use_lora else 5e-6
    for name in ("learning_rate", "max_grad_norm", "adam_epsilon"):
        if not getattr(args, name) > 0:
            raise ValueError(f"--{name} must be > 0, got {getattr(args, name)}")
    for name in ("noise_offset", "prior_loss_weight", "adam_weight_decay"):
        if not getattr(args, name) >= 0:
            raise ValueError(f"--{name} must be >= 0, got {getattr(args, name)}")
    if args.snr_gamma is not None and not args.snr_gamma > 0:
        raise ValueError(f"--snr_gamma must be > 0, got {args.snr_gamma}")
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
    if args.push_to_hub and args.hub_model_id is None:
        args.hub_model_id = Path(args.output_dir).resolve().name


# --------------------------------------------------------------------------- checkpoints


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``output_dir`` as (step, path), oldest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = []
    for path in output_dir.iterdir():
        match = CHECKPOINT_RE.match(path.name)
        if match and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def find_latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step (numerically: 10 is newer than 9), or None."""
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1][1] if checkpoints else None


def resolve_checkpoint(value: str, output_dir: str | Path) -> Path | None:
    """``latest`` -> the newest checkpoint or None; a path or a name in ``output_dir`` -> it.

    Raises:
        ValueError: the named checkpoint does not exist or is incomplete.
    """
    if value == "latest":
        return find_latest_checkpoint(output_dir)
    path = Path(value)
    if not path.is_dir() and not path.is_absolute():
        path = Path(output_dir) / value
    if not path.is_dir():
        raise ValueError(
            f"--resume_from_checkpoint {value}: no such checkpoint folder "
            f"(looked in . and {output_dir})"
        )
    if not (path / STATE_FILE).is_file():
        raise ValueError(
            f"--resume_from_checkpoint {value}: {path} has no {STATE_FILE}; it is "
            "not a complete checkpoint of this script"
        )
    return path


def read_checkpoint_state(path: Path) -> dict:
    try:
        return json.loads((path / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise TrainingError(f"cannot read {path / STATE_FILE}: {e}") from e


def save_checkpoint(accelerator, output_dir: Path, step: int, state: dict, limit: int | None):
    """Save the full training state to ``output_dir/checkpoint-<step>`` atomically, then prune.

    The state goes to a hidden temp folder first; :data:`STATE_FILE` is written last and the
    folder renamed, so a run killed mid-save leaves the previous checkpoints as they were.
    """
    final = output_dir / f"checkpoint-{step}"
    tmp = output_dir / f".tmp-checkpoint-{step}"
    shutil.rmtree(tmp, ignore_errors=True)
    accelerator.save_state(str(tmp))
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))
    if final.exists():  # an older run reached the same step: swap, never leave neither
        old = output_dir / f".tmp-old-checkpoint-{step}"
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)
    logger.info("saved checkpoint %s", final)
    if limit is not None:
        for _, path in list_checkpoints(output_dir)[:-limit]:
            shutil.rmtree(path)
            logger.info("removed old checkpoint %s (--checkpoints_total_limit %d)", path, limit)
    return final


def remove_stale_temp(output_dir: Path) -> None:
    """Delete half-written checkpoints left by a killed run."""
    for path in output_dir.glob(".tmp-*checkpoint-*"):
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- models


def _load(what: str, loader, *args, **kwargs):
    try:
        return loader(*args, **kwargs)
    except (OSError, ValueError) as e:
        raise TrainingError(f"cannot load the {what} of {args[0]!r}: {e}") from e


def generate_class_images(args, accelerator, dtype: torch.dtype) -> None:
    """Fill ``--class_data_dir`` up to ``--num_class_images`` with base-model renders."""
    from diffusers import StableDiffusionPipeline

    folder = Path(args.class_data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    have = len(list_images(folder))
    missing = args.num_class_images - have
    if missing <= 0:
        return
    logger.info("generating %d class images for %r in %s", missing, args.class_prompt, folder)
    pipe = _load(
        "pipeline",
        StableDiffusionPipeline.from_pretrained,
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
            tmp = folder / f".class-{index:05d}.png.tmp"
            image.save(tmp, format="PNG")
            tmp.rename(folder / f"class-{index:05d}.png")  # never a half-written image
    del pipe
    _free_memory()


def _free_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _weight_dtype(mixed_precision: str) -> torch.dtype:
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision, torch.float32)


# --------------------------------------------------------------------------- loss


def diffusion_loss(
    model_pred: torch.Tensor,
    target: torch.Tensor,
    timesteps: torch.Tensor,
    noise_scheduler,
    *,
    snr_gamma: float | None = None,
    num_prior: int = 0,
    prior_loss_weight: float = 1.0,
) -> torch.Tensor:
    """MSE between prediction and target, (B, C, H, W) each, with optional Min-SNR weighting.

    The last ``num_prior`` items are prior-preservation (class) items: their mean loss is added
    with weight ``prior_loss_weight``.
    """
    from diffusers.training_utils import compute_snr

    per_item = (model_pred.float() - target.float()).pow(2).mean(dim=(1, 2, 3))
    if snr_gamma is not None:
        # Min-SNR-gamma (Hang et al. 2023): clamp the SNR weight so easy, low-noise timesteps do
        # not dominate; divided by SNR (epsilon) or SNR + 1 (v) to weight the model's own target.
        snr = compute_snr(noise_scheduler, timesteps)
        weight = torch.clamp(snr, max=snr_gamma)
        if noise_scheduler.config.prediction_type == "v_prediction":
            weight = weight / (snr + 1)
        else:
            weight = weight / snr
        per_item = per_item * weight
    if num_prior:
        instance, prior = per_item[:-num_prior], per_item[-num_prior:]
        return instance.mean() + prior_loss_weight * prior.mean()
    return per_item.mean()


# --------------------------------------------------------------------------- main


@dataclass
class TrainResult:
    """What a run did: final step, where it resumed from, the repo URL when pushed."""

    global_step: int
    output_dir: Path
    resumed_from: Path | None = None
    resumed_step: int = 0
    hub_url: str | None = None


def main(args: argparse.Namespace) -> TrainResult:
    """Train as ``args`` say (see :func:`parse_args`); write the output and maybe push it.

    Raises:
        DatasetError: a broken dataset file (before any model loads).
        OutputDirError: --output_dir is unwritable or holds another run (checked before any
            model loads; nothing of the other run is touched).
        TrainingError: an unloadable model or an incompatible checkpoint.
        PushError: the push failed; the local output is complete.
    """
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
    )
    output_dir = Path(args.output_dir)
    checkpoint = None
    checkpoint_state: dict = {}
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(args.resume_from_checkpoint, output_dir)
        if checkpoint is None:
            logger.info("no checkpoint in %s: starting a new run", output_dir)
        else:
            checkpoint_state = read_checkpoint_state(checkpoint)
    # Before any model loads: an unwritable folder, or one holding another run, fails in one line.
    prepare_output_dir(
        output_dir,
        resume=checkpoint,
        overwrite=args.overwrite_output_dir,
        what="SD fine-tuning",
    )
    seed = args.seed
    if checkpoint_state:
        if seed is not None and seed != checkpoint_state["seed"]:
            raise TrainingError(
                f"{checkpoint} was trained with --seed {checkpoint_state['seed']};"
                f" resume with that seed (or without --seed), not {seed}"
            )
        seed = checkpoint_state["seed"]
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
        logger.info("--seed not given: using %d", seed)
    args.seed = seed

    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(
            project_dir=str(output_dir), logging_dir=str(output_dir / args.logging_dir)
        ),
    )
    args.mixed_precision = accelerator.mixed_precision  # resolved (flag or accelerate config)
    if accelerator.mixed_precision == "fp16" and accelerator.device.type == "cpu":
        raise TrainingError("fp16 mixed precision needs a GPU; use bf16 or no on CPU")
    if not accelerator.is_local_main_process:
        logging.getLogger().setLevel(logging.WARNING)
    settings = {
        "use_lora": args.use_lora,
        "rank": args.rank,
        "train_text_encoder": args.train_text_encoder,
        "use_ema": args.use_ema,
        "use_8bit_adam": args.use_8bit_adam,
        "grad_scaler": accelerator.mixed_precision == "fp16",
    }
    if checkpoint_state:
        for key in RESUME_KEYS:
            if checkpoint_state["settings"].get(key) != settings[key]:
                raise TrainingError(
                    f"{checkpoint} was saved with {key}={checkpoint_state['settings'].get(key)!r}"
                    f" but this run has {key}={settings[key]!r}: resume with the same settings"
                )
        if checkpoint_state["base_model"] != args.pretrained_model_name_or_path:
            logger.warning(
                "%s was trained from %s, resuming on %s",
                checkpoint,
                checkpoint_state["base_model"],
                args.pretrained_model_name_or_path,
            )

    if args.push_to_hub and accelerator.is_main_process:
        from huggingface_hub import get_token

        if get_token() is None:
            logger.warning(
                "--push_to_hub: no Hugging Face token found, so the push after training will "
                "fail (the local output stays). Run `hf auth login` or set HF_TOKEN first."
            )

    # Data first: a broken dataset fails in seconds, not after the models load.
    if args.train_data_dir is not None:
        examples = read_metadata(args.train_data_dir, args.image_column, args.caption_column)
    else:
        examples = read_image_folder(
            args.instance_data_dir, args.instance_prompt, "--instance_data_dir"
        )
    set_seed(seed)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp(output_dir)
        if args.with_prior_preservation:
            cuda = accelerator.device.type == "cuda"  # half precision only where it is fast
            dtype = _weight_dtype(accelerator.mixed_precision) if cuda else torch.float32
            generate_class_images(args, accelerator, dtype)
    accelerator.wait_for_everyone()
    class_examples = None
    if args.with_prior_preservation:
        class_examples = read_image_folder(
            args.class_data_dir, args.class_prompt, "--class_data_dir", limit=args.num_class_images
        )

    trainer = Trainer(args, accelerator, examples, class_examples, settings)
    return trainer.run(checkpoint, checkpoint_state)


class Trainer:
    """Models, optimizer, data and loop of one run, set up for ``accelerator`` from ``args``.

    :func:`main` drives it with :meth:`run`; ``benchmarks/bench_train.py`` times :meth:`train_step`
    on the same prepared objects. ``settings`` (the :data:`RESUME_KEYS` values) go into checkpoints.
    """

    def __init__(self, args, accelerator, examples, class_examples, settings):
        self.args, self.accelerator, self.settings = args, accelerator, settings
        self.examples, self.class_examples = examples, class_examples
        self.output_dir = Path(args.output_dir)
        self.weight_dtype = _weight_dtype(accelerator.mixed_precision)
        self.validation_images: list[Path] = []
        self._load_models()
        self._build_optimizer_and_data()

    # ---- setup

    def _load_models(self) -> None:
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        args, device, dtype = self.args, self.accelerator.device, self.weight_dtype
        base = args.pretrained_model_name_or_path
        common = {"revision": args.revision}
        self.tokenizer = _load(
            "tokenizer", CLIPTokenizer.from_pretrained, base, subfolder="tokenizer", **common
        )
        self.noise_scheduler = _load(
            "scheduler", DDPMScheduler.from_pretrained, base, subfolder="scheduler", **common
        )
        common["variant"] = args.variant
        # Frozen weights only run forward: load them in the mixed-precision dtype to save memory.
        # Trained weights stay float32 (autocast runs the maths in half precision).
        full_text_encoder = args.train_text_encoder and not args.use_lora
        te_dtype = torch.float32 if full_text_encoder else dtype
        unet_dtype = dtype if args.use_lora else torch.float32
        self.text_encoder = _load(
            "text encoder",
            CLIPTextModel.from_pretrained,
            base,
            subfolder="text_encoder",
            dtype=te_dtype,
            **common,
        ).to(device)
        self.vae = _load(
            "VAE", AutoencoderKL.from_pretrained, base, subfolder="vae", dtype=dtype, **common
        ).to(device)
        self.unet = _load(
            "UNet",
            UNet2DConditionModel.from_pretrained,
            base,
            subfolder="unet",
            dtype=unet_dtype,
            **common,
        ).to(device)
        self.vae.requires_grad_(False)
        self.text_encoder.requires_grad_(full_text_encoder)
        self.unet.requires_grad_(not args.use_lora)

        if args.use_lora:
            from peft import LoraConfig, inject_adapter_in_model

            def lora(targets):
                # gaussian A, zero B: training starts exactly at the base model
                return LoraConfig(
                    r=args.rank,
                    lora_alpha=args.rank,
                    target_modules=targets,
                    init_lora_weights="gaussian",
                )

            self.unet.add_adapter(lora(UNET_LORA_TARGETS))
            if args.train_text_encoder:
                # What diffusers' add_adapter does for the UNet, through peft's public API:
                # transformers' own add_adapter demands peft >= 0.22, newer than our pin.
                config = lora(TEXT_LORA_TARGETS)
                inject_adapter_in_model(config, self.text_encoder, adapter_name="default")
                self.text_encoder.peft_config = {"default": config}  # read by get_peft_*
            for model in self._trained_models():
                for param in model.parameters():
                    if param.requires_grad:
                        param.data = param.data.float()
            self.accelerator.register_save_state_pre_hook(self._save_lora_state)
            self.accelerator.register_load_state_pre_hook(self._load_lora_state)
        if args.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            if args.train_text_encoder:
                self.text_encoder.gradient_checkpointing_enable()
        self.ema = None
        if args.use_ema:
            from diffusers.training_utils import EMAModel

            self.ema = EMAModel(
                self.unet.parameters(),
                model_cls=UNet2DConditionModel,
                model_config=self.unet.config,
            )
            self.ema.to(device)
            self.accelerator.register_for_checkpointing(self.ema)

    def _trained_models(self) -> list[torch.nn.Module]:
        return [self.unet] + ([self.text_encoder] if self.args.train_text_encoder else [])

    def _unwrap(self, model):
        return self.accelerator.unwrap_model(model)

    def _lora_name(self, model) -> str:
        from diffusers import UNet2DConditionModel

        return "unet" if isinstance(self._unwrap(model), UNet2DConditionModel) else "text_encoder"

    def _save_lora_state(self, models, weights, folder) -> None:
        # Checkpoints of a LoRA run hold the adapters only, not a copy of the frozen base model.
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        for model in models:
            state = get_peft_model_state_dict(self._unwrap(model))
            state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
            save_file(state, Path(folder) / f"{self._lora_name(model)}_lora.safetensors")
        weights.clear()

    def _load_lora_state(self, models, folder) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        while models:
            model = models.pop()
            path = Path(folder) / f"{self._lora_name(model)}_lora.safetensors"
            result = set_peft_model_state_dict(self._unwrap(model), load_file(path))
            unexpected = getattr(result, "unexpected_keys", None)
            if unexpected:
                raise TrainingError(f"{path} does not fit this model: {unexpected[:3]} ...")

    def _build_optimizer_and_data(self) -> None:
        from diffusers.optimization import get_scheduler

        args, accelerator = self.args, self.accelerator
        if args.scale_lr:
            args.learning_rate *= (
                args.train_batch_size * args.gradient_accumulation_steps * accelerator.num_processes
            )
        if args.use_8bit_adam:
            import bitsandbytes

            optimizer_cls = bitsandbytes.optim.AdamW8bit
        else:
            optimizer_cls = torch.optim.AdamW
        self.params = [p for m in self._trained_models() for p in m.parameters() if p.requires_grad]
        optimizer = optimizer_cls(
            self.params,
            lr=args.learning_rate,
            betas=(args.adam_beta1, args.adam_beta2),
            weight_decay=args.adam_weight_decay,
            eps=args.adam_epsilon,
        )

        self.dataset = CoverDataset(
            self.examples,
            self.tokenizer,
            args.resolution,
            center_crop=args.center_crop,
            random_flip=args.random_flip,
            seed=args.seed,
            class_examples=self.class_examples,
        )
        self.sampler = EpochShuffle(len(self.dataset), args.seed)
        dataloader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=args.train_batch_size,
            sampler=self.sampler,
            collate_fn=collate,
            num_workers=args.dataloader_num_workers,
            # its own generator: creating a DataLoader iterator then leaves the global RNG alone
            generator=torch.Generator().manual_seed(args.seed),
        )
        steps_per_epoch = math.ceil(len(dataloader) / args.gradient_accumulation_steps)
        if args.max_train_steps is None:
            args.max_train_steps = args.num_train_epochs * steps_per_epoch
        lr_scheduler = get_scheduler(
            args.lr_scheduler,
            optimizer=optimizer,
            num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
            num_training_steps=args.max_train_steps * accelerator.num_processes,
            num_cycles=args.lr_num_cycles,
            power=args.lr_power,
        )
        prepared = accelerator.prepare(*self._trained_models(), optimizer, dataloader, lr_scheduler)
        self.unet = prepared[0]
        if args.train_text_encoder:
            self.text_encoder = prepared[1]
        self.optimizer, self.dataloader, self.lr_scheduler = prepared[-3:]
        self.steps_per_epoch = math.ceil(len(self.dataloader) / args.gradient_accumulation_steps)
        self.num_epochs = math.ceil(args.max_train_steps / self.steps_per_epoch)

    # ---- training

    def run(self, checkpoint: Path | None, checkpoint_state: dict) -> TrainResult:
        from tqdm.auto import tqdm

        args, accelerator = self.args, self.accelerator
        if args.report_to != "none":
            config = {
                k: v if isinstance(v, (int, float, str, bool)) else str(v)
                for k, v in vars(args).items()
            }
            accelerator.init_trackers("albumcover-sd", config=config)
        result = TrainResult(global_step=0, output_dir=self.output_dir)
        if checkpoint is not None:
            accelerator.load_state(str(checkpoint))
            result.resumed_from = checkpoint
            result.global_step = result.resumed_step = checkpoint_state["global_step"]
            logger.info("resumed from %s at step %d", checkpoint, result.global_step)
        logger.info(
            "training %s on %d images for %d steps (%d epochs, batch %d x %d accumulation "
            "x %d processes)",
            "LoRA" if args.use_lora else "the full UNet",
            len(self.dataset),
            args.max_train_steps,
            self.num_epochs,
            args.train_batch_size,
            args.gradient_accumulation_steps,
            accelerator.num_processes,
        )

        step = result.global_step
        progress = tqdm(
            range(args.max_train_steps),
            initial=step,
            desc="steps",
            disable=not accelerator.is_local_main_process,
        )
        first_epoch = step // self.steps_per_epoch
        skip_batches = (step % self.steps_per_epoch) * args.gradient_accumulation_steps
        for epoch in range(first_epoch, self.num_epochs):
            if step >= args.max_train_steps:
                break
            for model in self._trained_models():
                model.train()
            self.dataset.set_epoch(epoch)
            self.dataloader.set_epoch(epoch)
            batches = self.dataloader
            if epoch == first_epoch and skip_batches:
                batches = accelerator.skip_first_batches(self.dataloader, skip_batches)
            for batch in batches:
                with accelerator.accumulate(*self._trained_models()):
                    loss = self.train_step(batch)
                if not accelerator.sync_gradients:
                    continue
                step += 1
                progress.update(1)
                if self.ema is not None:
                    self.ema.step(self.unet.parameters())
                logs = {"loss": loss.detach().item(), "lr": self.lr_scheduler.get_last_lr()[0]}
                progress.set_postfix(**logs)
                accelerator.log(logs, step=step)
                if accelerator.is_main_process:
                    if step % args.checkpointing_steps == 0:
                        state = {
                            "global_step": step,
                            "seed": args.seed,
                            "base_model": args.pretrained_model_name_or_path,
                            "settings": self.settings,
                        }
                        save_checkpoint(
                            accelerator, self.output_dir, step, state, args.checkpoints_total_limit
                        )
                    if (
                        args.validation_prompt
                        and step % args.validation_steps == 0
                        and step < args.max_train_steps
                    ):
                        self._validate_training(step)
                if step >= args.max_train_steps:
                    break
        progress.close()
        result.global_step = step
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            self._save_output(step)
            if args.validation_prompt and args.num_validation_images:
                self._validate_output(step)
            write_model_card(
                args,
                self.output_dir,
                global_step=step,
                captions=[e.caption for e in self.examples],
                validation_images=self.validation_images,
                num_examples=len(self.examples),
            )
        accelerator.end_training()
        if args.push_to_hub and accelerator.is_main_process:
            result.hub_url = push_folder(
                self.output_dir, args.hub_model_id, private=args.hub_private_repo or None
            )
            logger.info("pushed %s to %s", self.output_dir, result.hub_url)
        return result

    def train_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One forward/backward pass on ``batch`` (from ``self.dataloader``) and, when gradients
        sync, an optimizer step; call inside ``accelerator.accumulate``. Returns the loss."""
        args, accelerator = self.args, self.accelerator
        pixels = batch["pixel_values"].to(accelerator.device, dtype=self.weight_dtype)
        with torch.no_grad():
            latents = self.vae.encode(pixels).latent_dist.sample()
            latents = latents * self.vae.config.scaling_factor
        noise = torch.randn_like(latents)
        if args.noise_offset:
            # a per-channel constant shift teaches the model to change the mean brightness
            noise += args.noise_offset * torch.randn(
                latents.shape[0], latents.shape[1], 1, 1, device=latents.device
            )
        timesteps = torch.randint(
            0,
            self.noise_scheduler.config.num_train_timesteps,
            (latents.shape[0],),
            device=latents.device,
        ).long()
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        with torch.set_grad_enabled(args.train_text_encoder):
            hidden = self.text_encoder(
                batch["input_ids"].to(accelerator.device), return_dict=False
            )[0]
        prediction_type = self.noise_scheduler.config.prediction_type
        if prediction_type == "epsilon":
            target = noise
        elif prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            raise TrainingError(
                f"unsupported prediction_type {prediction_type!r} in the "
                "base model's scheduler config"
            )
        model_pred = self.unet(noisy, timesteps, hidden, return_dict=False)[0]
        loss = diffusion_loss(
            model_pred,
            target,
            timesteps,
            self.noise_scheduler,
            snr_gamma=args.snr_gamma,
            num_prior=latents.shape[0] // 2 if args.with_prior_preservation else 0,
            prior_loss_weight=args.prior_loss_weight,
        )
        accelerator.backward(loss)
        if accelerator.sync_gradients:
            accelerator.clip_grad_norm_(self.params, args.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss

    # ---- validation and output

    def _render(self, pipe, step: int) -> None:
        args, accelerator = self.args, self.accelerator
        pipe.set_progress_bar_config(disable=True)
        generator = torch.Generator().manual_seed(args.seed)
        folder = self.output_dir / "validation" / f"step-{step}"
        folder.mkdir(parents=True, exist_ok=True)
        images, paths = [], []
        with torch.no_grad(), accelerator.autocast():
            for i in range(args.num_validation_images):
                image = pipe(
                    args.validation_prompt,
                    num_inference_steps=args.validation_inference_steps,
                    generator=generator,
                    height=args.resolution,
                    width=args.resolution,
                ).images[0]
                images.append(image)
                paths.append(folder / f"{i:02d}.png")
                image.save(paths[-1])
        self.validation_images = paths
        logger.info("validation images: %s", folder)
        for tracker in accelerator.trackers:
            if tracker.name == "tensorboard":
                tracker.writer.add_images(
                    "validation",
                    np.stack([np.asarray(im) for im in images]),
                    step,
                    dataformats="NHWC",
                )
            elif tracker.name == "wandb":
                import wandb

                tracker.log(
                    {
                        "validation": [
                            wandb.Image(im, caption=args.validation_prompt) for im in images
                        ]
                    },
                    step=step,
                )

    def _validate_training(self, step: int) -> None:
        from diffusers import StableDiffusionPipeline

        args = self.args
        if self.ema is not None:  # render what the output will hold: the EMA weights
            self.ema.store(self.unet.parameters())
            self.ema.copy_to(self.unet.parameters())
        pipe = StableDiffusionPipeline.from_pretrained(
            args.pretrained_model_name_or_path,
            unet=self._unwrap(self.unet),
            text_encoder=self._unwrap(self.text_encoder),
            vae=self.vae,
            tokenizer=self.tokenizer,
            safety_checker=None,
            requires_safety_checker=False,
            revision=args.revision,
            variant=args.variant,
            dtype=self.weight_dtype,
        )
        self._render(pipe, step)
        del pipe
        if self.ema is not None:
            self.ema.restore(self.unet.parameters())
        _free_memory()

    def _save_output(self, step: int) -> None:
        from diffusers import StableDiffusionPipeline

        args = self.args
        unet = self._unwrap(self.unet)
        text_encoder = self._unwrap(self.text_encoder)
        info = {
            "kind": "lora" if args.use_lora else "full",
            "base_model": args.pretrained_model_name_or_path,
            "revision": args.revision,
            "global_step": step,
            "resolution": args.resolution,
        }
        if args.use_lora:
            from diffusers.utils import convert_state_dict_to_diffusers
            from peft import get_peft_model_state_dict

            def layers(model):
                return convert_state_dict_to_diffusers(get_peft_model_state_dict(model))

            StableDiffusionPipeline.save_lora_weights(
                self.output_dir,
                unet_lora_layers=layers(unet),
                text_encoder_lora_layers=layers(text_encoder) if args.train_text_encoder else None,
                unet_lora_adapter_metadata=unet.peft_config["default"].to_dict(),
                text_encoder_lora_adapter_metadata=(
                    text_encoder.peft_config["default"].to_dict()
                    if args.train_text_encoder
                    else None
                ),
            )
            info.update(
                weight_name=LORA_WEIGHTS,
                rank=args.rank,
                lora_alpha=args.rank,
                train_text_encoder=args.train_text_encoder,
            )
        else:
            if self.ema is not None:
                self.ema.copy_to(unet.parameters())
            extra = {"text_encoder": text_encoder} if args.train_text_encoder else {}
            pipe = StableDiffusionPipeline.from_pretrained(
                args.pretrained_model_name_or_path,
                unet=unet,
                revision=args.revision,
                variant=args.variant,
                **extra,
            )
            pipe.save_pretrained(self.output_dir)
            del pipe
            info.update(use_ema=args.use_ema, train_text_encoder=args.train_text_encoder)
        (self.output_dir / OUTPUT_INFO).write_text(json.dumps(info, indent=2) + "\n")
        logger.info("saved the %s model to %s", info["kind"], self.output_dir)

    def _validate_output(self, step: int) -> None:
        """Render from the files just written, so the final images prove the output loads."""
        from diffusers import StableDiffusionPipeline

        args = self.args
        if args.use_lora:
            pipe = StableDiffusionPipeline.from_pretrained(
                args.pretrained_model_name_or_path,
                revision=args.revision,
                variant=args.variant,
                dtype=self.weight_dtype,
                safety_checker=None,
                requires_safety_checker=False,
            )
            pipe.load_lora_weights(self.output_dir, weight_name=LORA_WEIGHTS)
        else:
            pipe = StableDiffusionPipeline.from_pretrained(
                self.output_dir,
                dtype=self.weight_dtype,
                safety_checker=None,
                requires_safety_checker=False,
            )
        pipe.to(self.accelerator.device)
        self._render(pipe, step)
        del pipe
        _free_memory()


def cli(argv: list[str] | None = None) -> int:
    """``python -m train.train_dreambooth``: 0 on success, 1 on a failed run, 2 on bad flags."""
    try:
        args = parse_args(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        main(args)
    except (DatasetError, TrainingError, PushError, OutputDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
