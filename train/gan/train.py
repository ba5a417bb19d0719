"""One training loop for the three GAN baselines (unconditional, category, prompt).

    python -m train.gan --condition prompt --train_data_dir data/covers \\
        --output_dir out/gan-prompt --resolution 64 --train_batch_size 128 --num_train_epochs 25

Reads ``TRAIN_DATA_DIR/train/metadata.jsonl`` (the imagefolder written by
``python -m train.build_dataset``). Writes ``checkpoint-<step>.pt`` + ``latest`` every
``--checkpointing_steps`` and at the end, and a fixed-noise grid ``samples/step-<step>.png`` every
``--sample_steps``. Resuming (``--resume_from_checkpoint latest``) continues at the saved step with
the saved optimizer, noise and data-order state, so an interrupted run ends where a straight one
would. An ``--output_dir`` that holds another run is refused unless resumed or
``--overwrite_output_dir`` (``train.outputs``).
"""

from __future__ import annotations

import argparse
import logging
import math
import random
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

from albumcover.files import atomic_path, write_atomic

from ..imagefolder import DatasetError, read_metadata
from ..outputs import prepare_output_dir
from .checkpoint import (
    LATEST,
    CheckpointError,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from .data import (
    Vocabulary,
    category_vocabulary,
    collate_conditions,
    encode_condition,
    load_images,
)
from .model import BAG_MODES, CONDITIONS, RESOLUTIONS, GanConfig, build_models
from .sample import make_grid, to_uint8

logger = logging.getLogger(__name__)

AMP_DTYPES = {"no": None, "fp16": torch.float16, "bf16": torch.bfloat16}
# flags that define the networks: a resumed run must use the checkpoint's values
ARCHITECTURE = ("condition", "resolution", "latent_dim", "g_features", "d_features", "embed_dim")


def parse_args(input_args: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a DCGAN cover baseline.")
    parser.add_argument("--condition", required=True, choices=CONDITIONS)
    parser.add_argument("--train_data_dir", required=True, help="imagefolder dataset (train/)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--resolution", type=int, default=64, choices=RESOLUTIONS)
    parser.add_argument("--train_batch_size", type=int, default=128)
    parser.add_argument("--max_train_steps", type=int, default=None, help="overrides epochs")
    parser.add_argument("--num_train_epochs", type=int, default=25)
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (DCGAN: 0.5)")
    parser.add_argument("--latent_dim", type=int, default=100)
    parser.add_argument("--g_features", type=int, default=64, help="generator width (ngf)")
    parser.add_argument("--d_features", type=int, default=64, help="discriminator width (ndf)")
    parser.add_argument("--embed_dim", type=int, default=64, help="condition width fed to G")
    parser.add_argument(
        "--bag_mode",
        choices=BAG_MODES,
        default=None,
        help="how prompt word embeddings combine (default sum, as in the study)",
    )
    parser.add_argument("--vocab_min_count", type=int, default=None, help="default 2")
    parser.add_argument("--vocab_max_size", type=int, default=None, help="default 10000")
    parser.add_argument("--seed", type=int, default=None, help="default: random, recorded")
    parser.add_argument("--checkpointing_steps", type=int, default=500)
    parser.add_argument(
        "--resume_from_checkpoint",
        default=None,
        help="a checkpoint path, or 'latest' (the newest in --output_dir; fresh start if none)",
    )
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="replace another run found in --output_dir (without it, such a folder is refused)",
    )
    parser.add_argument("--mixed_precision", choices=tuple(AMP_DTYPES), default="no")
    parser.add_argument("--sample_steps", type=int, default=500, help="fixed-noise grid period")
    parser.add_argument("--num_sample_images", type=int, default=16)
    parser.add_argument("--logging_steps", type=int, default=50)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1... (default: auto)")
    args = parser.parse_args(input_args)

    positive = (
        "train_batch_size",
        "num_train_epochs",
        "latent_dim",
        "g_features",
        "d_features",
        "embed_dim",
        "checkpointing_steps",
        "sample_steps",
        "num_sample_images",
        "logging_steps",
    )
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.max_train_steps is not None and args.max_train_steps < 1:
        parser.error(f"--max_train_steps must be >= 1, got {args.max_train_steps}")
    if args.train_batch_size < 2:
        parser.error("--train_batch_size must be >= 2 (BatchNorm needs more than one image)")
    if not args.learning_rate > 0:
        parser.error(f"--learning_rate must be > 0, got {args.learning_rate}")
    if not 0 <= args.beta1 < 1:
        parser.error(f"--beta1 must be in [0, 1), got {args.beta1}")
    if args.condition != "prompt":
        for flag in ("bag_mode", "vocab_min_count", "vocab_max_size"):
            if getattr(args, flag) is not None:
                parser.error(f"--{flag} only applies to --condition prompt")
    args.bag_mode = args.bag_mode or "sum"
    args.vocab_min_count = 2 if args.vocab_min_count is None else args.vocab_min_count
    args.vocab_max_size = 10000 if args.vocab_max_size is None else args.vocab_max_size
    if args.vocab_min_count < 1:
        parser.error(f"--vocab_min_count must be >= 1, got {args.vocab_min_count}")
    if args.vocab_max_size < 3:
        parser.error(f"--vocab_max_size must be >= 3 (<pad>, <unk>, 1 word): {args.vocab_max_size}")
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(args.device)
    except RuntimeError as e:
        parser.error(f"--device {args.device!r}: {e}")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device} asked for, but CUDA is not available")
    if args.mixed_precision == "fp16" and device.type != "cuda":
        parser.error("--mixed_precision fp16 needs a CUDA device (use bf16 on CPU)")
    return args


class GanTrainer:
    """Generator, discriminator, their Adam optimizers and AMP scalers; one ``step`` per batch."""

    def __init__(
        self,
        config: GanConfig,
        *,
        learning_rate: float = 2e-4,
        beta1: float = 0.5,
        device: str | torch.device = "cpu",
        mixed_precision: str = "no",
    ):
        self.config = config
        self.device = torch.device(device)
        self.generator, self.discriminator = build_models(config)
        self.generator.to(self.device)
        self.discriminator.to(self.device)
        adam = dict(lr=learning_rate, betas=(beta1, 0.999))
        self.opt_g = torch.optim.Adam(self.generator.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), **adam)
        self.amp_dtype = AMP_DTYPES[mixed_precision]
        # fp16 needs loss scaling; one scaler per optimizer since the two steps are sequential
        fp16 = self.amp_dtype is torch.float16
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.loss = nn.BCEWithLogitsLoss()

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def step(self, real: torch.Tensor, cond: torch.Tensor | None, z: torch.Tensor) -> dict:
        """One discriminator and one generator update (non-saturating GAN loss).

        Args:
            real: (B, 3, R, R) uint8 images.
            cond: None, (B,) category ids or (B, tokens) padded word ids.
            z: (B, latent_dim) float noise.
        Returns: {"loss_d", "loss_g", "d_real", "d_fake"} as floats (d_* are mean probabilities).
        """
        real = real.to(self.device, non_blocking=True).float().div_(127.5).sub_(1)
        z = z.to(self.device, non_blocking=True)
        cond = None if cond is None else cond.to(self.device, non_blocking=True)
        ones = torch.ones(real.shape[0], device=self.device)
        zeros = torch.zeros_like(ones)
        self.generator.train()
        self.discriminator.train()

        with self._autocast():
            fake = self.generator(z, cond)
            real_logits = self.discriminator(real, cond)
            fake_logits = self.discriminator(fake.detach(), cond)
            loss_d = self.loss(real_logits.float(), ones) + self.loss(fake_logits.float(), zeros)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss_d).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()

        with self._autocast():
            loss_g = self.loss(self.discriminator(fake, cond).float(), ones)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss_g).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()

        return {
            "loss_d": loss_d.item(),
            "loss_g": loss_g.item(),
            "d_real": torch.sigmoid(real_logits.float()).mean().item(),
            "d_fake": torch.sigmoid(fake_logits.float()).mean().item(),
        }

    @torch.no_grad()
    def sample(self, z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """Generator output in eval mode (BatchNorm running statistics), (N, 3, R, R) in [-1, 1]."""
        self.generator.eval()
        cond = None if cond is None else cond.to(self.device)
        return self.generator(z.to(self.device), cond).float()

    def state_dict(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if state.get("scaler_g"):
            self.scaler_g.load_state_dict(state["scaler_g"])
        if state.get("scaler_d"):
            self.scaler_d.load_state_dict(state["scaler_d"])

    def set_hyperparameters(self, learning_rate: float, beta1: float) -> None:
        for optimizer in (self.opt_g, self.opt_d):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
                group["betas"] = (beta1, group["betas"][1])


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The image order of one epoch: a function of (seed, epoch) only, so a resumed run sees the
    same batches as an uninterrupted one."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def _rng_state(noise: torch.Generator) -> dict:
    numpy_state = np.random.get_state(legacy=False)
    return {
        "noise": noise.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
    }


def _set_rng_state(state: dict, noise: torch.Generator) -> None:
    noise.set_state(state["noise"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )


def _find_resume(args: argparse.Namespace) -> Path | None:
    """The checkpoint file ``--resume_from_checkpoint`` names (None: a fresh start)."""
    if args.resume_from_checkpoint is None:
        return None
    if args.resume_from_checkpoint == LATEST:
        pointer = Path(args.output_dir) / LATEST
        if not pointer.exists():
            logger.info("no checkpoint in %s yet: starting a fresh run", args.output_dir)
            return None
        return resolve_checkpoint(pointer)
    return resolve_checkpoint(args.resume_from_checkpoint)


def _check_resume(args: argparse.Namespace, config: GanConfig, path: str) -> None:
    wanted = {name: getattr(args, name) for name in ARCHITECTURE}
    if config.condition == "prompt":
        wanted["bag_mode"] = args.bag_mode
    for name, value in wanted.items():
        if getattr(config, name) != value:
            raise CheckpointError(
                f"--{name} {value} differs from the checkpoint's {getattr(config, name)} "
                f"({path}); resume with the flags it was trained with"
            )


def _sample_conditions(condition: str, records, n: int) -> list[str]:
    """Captions/categories for the fixed-noise grid: the first ``n`` distinct ones, cycled."""
    if condition == "none":
        return [""] * n
    values = [r.caption if condition == "prompt" else r.category for r in records]
    distinct = list(dict.fromkeys(values))
    return [distinct[i % len(distinct)] for i in range(n)]


def main(args: argparse.Namespace) -> Path:
    """Train; return the path of the final checkpoint.

    Raises:
        OutputDirError: --output_dir is unwritable or holds another run (before anything loads;
            nothing of that run is touched).
        DatasetError, CheckpointError: a broken dataset or checkpoint, named in the message.
    """
    output_dir = Path(args.output_dir)
    resume_path = _find_resume(args)
    prepare_output_dir(
        output_dir,
        resume=resume_path,
        overwrite=args.overwrite_output_dir,
        what="GAN training",
    )
    resume = None if resume_path is None else load_checkpoint(resume_path)
    records = read_metadata(args.train_data_dir, split="train")
    if resume is not None:
        config = GanConfig.from_dict(resume["config"])
        _check_resume(args, config, resume["path"])
        vocab = Vocabulary(resume["vocab"]) if resume.get("vocab") else None
        seed = resume["seed"]
    else:
        if args.condition == "category":
            vocab = category_vocabulary(records)
        elif args.condition == "prompt":
            vocab = Vocabulary.from_texts(
                (r.caption for r in records),
                min_count=args.vocab_min_count,
                max_size=args.vocab_max_size,
            )
        else:
            vocab = None
        config = GanConfig(
            condition=args.condition,
            resolution=args.resolution,
            latent_dim=args.latent_dim,
            g_features=args.g_features,
            d_features=args.d_features,
            embed_dim=args.embed_dim,
            num_embeddings=len(vocab) if vocab is not None else 0,
            bag_mode=args.bag_mode,
        )
        seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    if vocab is not None:
        logger.info("%s vocabulary: %d entries", config.condition, len(vocab))
    if config.condition == "category":
        unknown = sum(r.category not in vocab for r in records)
        if unknown:
            logger.warning(
                "%d of %d covers have no known category: trained as <unk>", unknown, len(records)
            )

    batch = args.train_batch_size
    steps_per_epoch = len(records) // batch  # drop the last partial batch (BatchNorm, AMP)
    if steps_per_epoch == 0:
        raise DatasetError(
            f"{records[0].metadata} has {len(records)} images, fewer than one batch of {batch}"
        )
    max_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    images = load_images(records, config.resolution)
    conditions = [
        encode_condition(config.condition, vocab, text=r.caption, category=r.category)
        for r in records
    ]

    torch.manual_seed(seed)  # weight init; a resumed run overwrites weights and RNG states
    trainer = GanTrainer(
        config,
        learning_rate=args.learning_rate,
        beta1=args.beta1,
        device=args.device,
        mixed_precision=args.mixed_precision,
    )
    noise = torch.Generator().manual_seed(seed)
    step = 0
    if resume is not None:
        trainer.load_state_dict(resume)
        trainer.set_hyperparameters(args.learning_rate, args.beta1)
        _set_rng_state(resume["rng"], noise)
        step = resume["step"]
        logger.info("resumed from %s at step %d", resume["path"], step)
        if step >= max_steps:
            logger.info("checkpoint is already at --max_train_steps %d: nothing to do", max_steps)
            return Path(resume["path"])

    # the grid's noise and conditions depend on the seed only, so grids line up across resumes
    grid_texts = _sample_conditions(config.condition, records, args.num_sample_images)
    grid_z = torch.randn(
        args.num_sample_images, config.latent_dim, generator=torch.Generator().manual_seed(seed + 1)
    )
    grid_cond = collate_conditions(
        config.condition,
        [encode_condition(config.condition, vocab, text=t, category=t) for t in grid_texts],
    )
    samples_dir = output_dir / "samples"
    samples_dir.mkdir(parents=True, exist_ok=True)
    if config.conditional:
        write_atomic(samples_dir / "conditions.txt", "\n".join(grid_texts) + "\n")

    def save_grid() -> None:
        with atomic_path(samples_dir / f"step-{step}.png") as path:
            make_grid(to_uint8(trainer.sample(grid_z, grid_cond))).save(path, format="PNG")

    def save() -> Path:
        state = {
            **trainer.state_dict(),
            "config": config.to_dict(),
            "vocab": vocab.tokens if vocab is not None else None,
            "step": step,
            "seed": seed,
            "rng": _rng_state(noise),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        }
        path = save_checkpoint(state, output_dir)
        logger.info("saved %s", path)
        return path

    logger.info(
        "training %s GAN: %d images, %d steps/epoch, steps %d -> %d, device %s, seed %d",
        config.condition,
        len(records),
        steps_per_epoch,
        step,
        max_steps,
        trainer.device,
        seed,
    )
    saved_at = None
    while step < max_steps:
        epoch, position = divmod(step, steps_per_epoch)
        index = epoch_order(seed, epoch, len(records))[position * batch : (position + 1) * batch]
        cond = collate_conditions(config.condition, [conditions[i] for i in index])
        z = torch.randn(batch, config.latent_dim, generator=noise)
        losses = trainer.step(images[torch.from_numpy(index)], cond, z)
        step += 1
        if not all(math.isfinite(v) for v in losses.values()):
            raise RuntimeError(f"GAN training diverged at step {step}: {losses}")
        if step % args.logging_steps == 0 or step == max_steps:
            logger.info(
                "step %d/%d epoch %d: loss_d %.4f loss_g %.4f D(x) %.3f D(G(z)) %.3f",
                step,
                max_steps,
                epoch,
                *losses.values(),
            )
        if step % args.sample_steps == 0:
            save_grid()
        if step % args.checkpointing_steps == 0:
            last = save()
            saved_at = step
    if step % args.sample_steps:
        save_grid()
    if saved_at != step:
        last = save()
    return last
