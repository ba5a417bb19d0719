"""The training core both entry points share: set up a run, train, checkpoint, validate, export.

:func:`run_training` takes checked flags (see ``options``) and a reader of the training examples
and the caption recipe; it resumes from a checkpoint when asked, trains the UNet (full or LoRA,
optionally the text encoder(s)) of an SD 1.x/2.x or SDXL base model, and writes the output.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from albumcover.recipe import CaptionRecipe

from ..imagefolder import CoverDataset, EpochShuffle, collate
from ..model_card import write_model_card
from ..outputs import prepare_output_dir
from ..push import push_folder
from .checkpoints import (
    read_checkpoint_state,
    remove_stale_temp,
    resolve_checkpoint,
    save_checkpoint,
)
from .export import save_output, save_recipe
from .family import Family, TrainingError, detect_family, native_resolution
from .loss import diffusion_loss
from .models import batch_input_ids, encode_text, load_models, time_ids
from .validation import Validator, free_memory

logger = logging.getLogger(__name__)

# Settings that decide what a checkpoint holds: resuming with other values cannot load it.
RESUME_KEYS = (
    "family", "use_lora", "rank", "train_text_encoder", "use_ema", "use_8bit_adam", "grad_scaler",
    "caption_mode",
)  # fmt: skip


@dataclass
class TrainResult:
    """What a run did: final step, where it resumed from, the repo URL when pushed."""

    global_step: int
    output_dir: Path
    resumed_from: Path | None = None
    resumed_step: int = 0
    hub_url: str | None = None


def weight_dtype(mixed_precision: str) -> torch.dtype:
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision, torch.float32)


def run_training(
    args,
    read_data: Callable[[], tuple[list, CaptionRecipe]],
    class_examples: Callable | None = None,
) -> TrainResult:
    """Train as ``args`` say; write the output and the caption recipe into ``args.output_dir``
    and maybe push it.

    ``read_data()`` returns the (already captioned) examples and the recipe; it runs once the
    output folder is known to be usable and before any model loads, so bad input fails in
    seconds. ``class_examples(args, accelerator, family)``, when given, returns the
    prior-preservation examples (DreamBooth), after the seed is set.

    Raises:
        OutputDirError: --output_dir unwritable or holding another run (before anything else).
        DatasetError: from ``read_data``.
        TrainingError: an unloadable model or an incompatible checkpoint.
        PushError: the push failed; the local output is complete.
    """
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed

    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
    )
    output_dir = Path(args.output_dir)
    checkpoint, state = None, {}
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(args.resume_from_checkpoint, output_dir)
        if checkpoint is None:
            logger.info("no checkpoint in %s: starting a new run", output_dir)
        else:
            state = read_checkpoint_state(checkpoint)
    # Before any model loads: an unwritable folder, or one holding another run, fails in one line.
    prepare_output_dir(
        output_dir, resume=checkpoint, overwrite=args.overwrite_output_dir, what="SD fine-tuning"
    )
    examples, recipe = read_data()  # data next: a broken dataset fails before the models load
    family = detect_family(args.pretrained_model_name_or_path, args.revision)
    if args.resolution is None:
        args.resolution = native_resolution(args.pretrained_model_name_or_path, args.revision)
        logger.info("--resolution not given: %d px, the base model's", args.resolution)
    seed = args.seed
    if state:
        if seed is not None and seed != state["seed"]:
            raise TrainingError(
                f"{checkpoint} was trained with --seed {state['seed']};"
                f" resume with that seed (or without --seed), not {seed}"
            )
        seed = state["seed"]
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
        "family": family.name,
        "use_lora": args.use_lora,
        "rank": args.rank,
        "train_text_encoder": args.train_text_encoder,
        "use_ema": args.use_ema,
        "use_8bit_adam": args.use_8bit_adam,
        "grad_scaler": accelerator.mixed_precision == "fp16",
        "caption_mode": args.caption_mode,
    }
    if state:
        for key in RESUME_KEYS:
            saved = state["settings"].get(key, "prompt" if key == "caption_mode" else None)
            if key == "family" and saved is None:
                saved = "sd"  # checkpoints from before SDXL support
            if saved != settings[key]:
                raise TrainingError(
                    f"{checkpoint} was saved with {key}={saved!r} but this run has "
                    f"{key}={settings[key]!r}: resume with the same settings"
                )
        if state["base_model"] != args.pretrained_model_name_or_path:
            logger.warning(
                "%s was trained from %s, resuming on %s",
                checkpoint, state["base_model"], args.pretrained_model_name_or_path,
            )  # fmt: skip
    if args.push_to_hub and accelerator.is_main_process:
        from huggingface_hub import get_token

        if get_token() is None:
            logger.warning(
                "--push_to_hub: no Hugging Face token found, so the push after training will "
                "fail (the local output stays). Run `hf auth login` or set HF_TOKEN first."
            )
    set_seed(seed)
    if accelerator.is_main_process:
        remove_stale_temp(output_dir)
    classes = class_examples(args, accelerator, family) if class_examples else None
    trainer = Trainer(args, accelerator, family, examples, classes, settings)
    return trainer.run(checkpoint, state, recipe)


class Trainer:
    """Models, optimizer, data and loop of one run, set up for ``accelerator`` from ``args``.

    :func:`run_training` drives it with :meth:`run`; ``benchmarks/bench_train.py`` times
    :meth:`train_step` on the same prepared objects. ``settings`` go into checkpoints.
    """

    def __init__(self, args, accelerator, family: Family, examples, class_examples, settings):
        self.args, self.accelerator, self.family, self.settings = (
            args,
            accelerator,
            family,
            settings,
        )
        self.examples, self.class_examples = examples, class_examples
        self.output_dir = Path(args.output_dir)
        self.weight_dtype = weight_dtype(accelerator.mixed_precision)
        self.validator = Validator(args, accelerator, self.output_dir, self.weight_dtype)
        self._load_models()
        self._build_optimizer_and_data()

    # ---- setup

    def _load_models(self) -> None:
        args, accelerator = self.args, self.accelerator
        m = load_models(args, self.family, accelerator.device, self.weight_dtype)
        self.tokenizers, self.text_encoders = m.tokenizers, list(m.text_encoders)
        self.vae, self.unet, self.noise_scheduler = m.vae, m.unet, m.noise_scheduler
        if args.use_lora:
            from .lora import CheckpointHooks, add_adapters

            add_adapters(self.unet, self._trained_encoders(), args.rank)
            CheckpointHooks(accelerator, self._name_of)
        if args.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
            for encoder in self._trained_encoders():
                # transformers 5 renamed it; the old name warns
                enable = getattr(encoder, "activation_checkpointing_enable", None)
                (enable or encoder.gradient_checkpointing_enable)()
        self.ema = None
        if args.use_ema:
            from diffusers import UNet2DConditionModel
            from diffusers.training_utils import EMAModel

            self.ema = EMAModel(
                self.unet.parameters(),
                model_cls=UNet2DConditionModel,
                model_config=self.unet.config,
            )
            self.ema.to(accelerator.device)
            accelerator.register_for_checkpointing(self.ema)

    def _trained_encoders(self) -> list[torch.nn.Module]:
        return self.text_encoders if self.args.train_text_encoder else []

    def _trained_models(self) -> list[torch.nn.Module]:
        return [self.unet, *self._trained_encoders()]

    def _unwrap(self, model):
        return self.accelerator.unwrap_model(model)

    def _name_of(self, model) -> str:
        """ "unet", "text_encoder" or "text_encoder_2": the part ``model`` (maybe wrapped) is."""
        model = self._unwrap(model)
        if model is self._unwrap(self.unet):
            return "unet"
        for name, encoder in zip(self.family.text_encoders, self.text_encoders, strict=True):
            if model is self._unwrap(encoder):
                return name
        raise TrainingError(f"unknown model {type(model).__name__} in a checkpoint hook")

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
            self.tokenizers,
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
        trained = self._trained_models()
        prepared = accelerator.prepare(*trained, optimizer, dataloader, lr_scheduler)
        self.unet = prepared[0]
        if args.train_text_encoder:
            self.text_encoders = list(prepared[1 : len(trained)])
        self.optimizer, self.dataloader, self.lr_scheduler = prepared[-3:]
        self.steps_per_epoch = math.ceil(len(self.dataloader) / args.gradient_accumulation_steps)
        self.num_epochs = math.ceil(args.max_train_steps / self.steps_per_epoch)

    # ---- training

    def run(self, checkpoint: Path | None, state: dict, recipe: CaptionRecipe) -> TrainResult:
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
            result.global_step = result.resumed_step = state["global_step"]
            logger.info("resumed from %s at step %d", checkpoint, result.global_step)
        logger.info(
            "training %s %s on %d images for %d steps (%d epochs, batch %d x %d accumulation "
            "x %d processes), captions: %s",
            self.family.name, "LoRA" if args.use_lora else "the full UNet", len(self.dataset),
            args.max_train_steps, self.num_epochs, args.train_batch_size,
            args.gradient_accumulation_steps, accelerator.num_processes, args.caption_mode,
        )  # fmt: skip

        step = result.global_step
        progress = tqdm(
            range(args.max_train_steps), initial=step, desc="steps",
            disable=not accelerator.is_local_main_process,
        )  # fmt: skip
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
                        saved = {
                            "global_step": step,
                            "seed": args.seed,
                            "base_model": args.pretrained_model_name_or_path,
                            "settings": self.settings,
                        }
                        save_checkpoint(
                            accelerator, self.output_dir, step, saved, args.checkpoints_total_limit
                        )
                    if (
                        args.validation_prompt
                        and args.num_validation_images
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
            self._finish(step, recipe)
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
        pixels = batch["pixel_values"].to(accelerator.device, dtype=self.vae.dtype)
        with torch.no_grad():
            latents = self.vae.encode(pixels).latent_dist.sample()
            latents = (latents * self.vae.config.scaling_factor).to(self.weight_dtype)
        noise = torch.randn_like(latents)
        if args.noise_offset:
            # a per-channel constant shift teaches the model to change the mean brightness
            noise += args.noise_offset * torch.randn(
                latents.shape[0], latents.shape[1], 1, 1, device=latents.device
            )
        timesteps = torch.randint(
            0, self.noise_scheduler.config.num_train_timesteps, (latents.shape[0],),
            device=latents.device,
        ).long()  # fmt: skip
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        with torch.set_grad_enabled(args.train_text_encoder):
            ids = batch_input_ids(batch, self.family)
            hidden, pooled = encode_text(self.family, self.text_encoders, ids)
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
        extra = {}
        if self.family.is_xl:
            ids = time_ids(batch, args.resolution).to(accelerator.device, dtype=hidden.dtype)
            extra["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": ids}
        model_pred = self.unet(noisy, timesteps, hidden, return_dict=False, **extra)[0]
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

    def _validate_training(self, step: int) -> None:
        if self.ema is not None:  # paint what the output will hold: the EMA weights
            self.ema.store(self.unet.parameters())
            self.ema.copy_to(self.unet.parameters())
        encoders = {
            name: self._unwrap(encoder)
            for name, encoder in zip(self.family.text_encoders, self.text_encoders, strict=True)
        }
        self.validator.paint_training(step, self._unwrap(self.unet), encoders, self.vae)
        if self.ema is not None:
            self.ema.restore(self.unet.parameters())
        free_memory()

    def _finish(self, step: int, recipe: CaptionRecipe) -> None:
        args = self.args
        trained = {
            name: self._unwrap(encoder)
            for name, encoder in zip(self.family.text_encoders, self.text_encoders, strict=True)
            if args.train_text_encoder
        }
        info = save_output(
            args, self.family, self.output_dir, step, self._unwrap(self.unet), trained, self.vae,
            self.ema,
        )  # fmt: skip
        save_recipe(recipe, self.output_dir)
        if args.validation_prompt and args.num_validation_images:
            self.validator.paint_output(step, info["kind"])
        write_model_card(
            args,
            self.output_dir,
            global_step=step,
            captions=[e.caption for e in self.examples],
            validation_images=self.validator.images,
            num_examples=len(self.examples),
            family=self.family,
            recipe=recipe,
            grids=self.validator.grids,
        )
